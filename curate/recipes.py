"""Training recipes from the seed, as data every backend (built-in or exporter) reads.

Numbers are the seed's tables; where the seed gives a range we take a value inside it and
keep the range for validation and messages.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from curate.errors import KlintError

OPTIMIZERS = ("adamw8bit", "adamw8bit-kahan", "adamw", "adafactor")


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    model: str  # klein-4b | klein-9b
    optimizer: str
    lr: float
    rank: int
    alpha: int
    steps: int
    repeats: int  # per image, before rebalance weighting
    weight_decay: float
    lr_schedule: str = "constant"
    batch_size: int = 1
    gradient_accumulation: int = 1
    resolution: int = 1024
    base_dtype: str = "bf16"
    max_grad_norm: float = 1.0  # gradient clipping (musubi-tuner's and diffusers' default); 0 = off
    steps_range: tuple[int, int] = (0, 0)
    repeats_range: tuple[int, int] = (90, 120)
    rank_range: tuple[int, int] = (0, 0)
    notes: str = ""
    # extras a tool may or may not express (Herbst's conv dims mean nothing for Klein's DiT)
    conv_rank: int | None = None
    conv_alpha: int | None = None
    # seed's two-stage workaround: full-body only, lower lr
    stage2_steps: int = 750
    stage2_lr: float = 5e-5
    stage2_steps_range: tuple[int, int] = (500, 1000)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: dict[str, Recipe] = {
    "standard": Recipe(
        name="standard", model="klein-9b", optimizer="adamw8bit", lr=1e-4, rank=32, alpha=32, steps=3000,
        repeats=100, weight_decay=0.01, steps_range=(2000, 4000), rank_range=(16, 32), base_dtype="fp8",
        notes="RunComfy standard recipe: adamw8bit, lr 1e-4, rank 16-32, 2-4K steps, 90-120 repeats, fp8 base, bf16 LoRA.",
    ),
    "herbst": Recipe(
        name="herbst", model="klein-9b", optimizer="adamw8bit", lr=1e-4, rank=128, alpha=64, steps=7000,
        repeats=100, weight_decay=1e-5, steps_range=(7000, 7000), rank_range=(128, 128), conv_rank=64, conv_alpha=32,
        notes="Herbst recipe (50+ runs): dims 128/64/64/32, weight decay 1e-5, constant lr 1e-4, 7K steps.",
    ),
    "minimal-4b": Recipe(
        name="minimal-4b", model="klein-4b", optimizer="adamw8bit", lr=1e-4, rank=16, alpha=16, steps=1200,
        repeats=100, weight_decay=0.01, steps_range=(900, 1500), rank_range=(16, 32),
        notes="Minimal path (DiffSynth-Studio, 4B): 8-12 images, 900-1500 steps, fits 16 GB. Prototype only.",
    ),
}

ADAFACTOR_REASON = (
    "adafactor fails on klein-9B for character training: its adaptive scaling collapses the face to a "
    "generic average by ~1K steps (seed: known issue); use adamw8bit (fine for style LoRAs only)"
)


def get_recipe(name: str, **overrides: Any) -> Recipe:
    try:
        base = RECIPES[name]
    except KeyError:
        raise KlintError(f"unknown recipe {name!r} (available: {', '.join(RECIPES)})") from None
    clean = {k: v for k, v in overrides.items() if v is not None}
    if "optimizer" in clean and clean["optimizer"] not in OPTIMIZERS:
        raise KlintError(f"unknown optimizer {clean['optimizer']!r} (available: {', '.join(OPTIMIZERS)})")
    return dataclasses.replace(base, **clean)


def check_recipe(recipe: Recipe, *, character: bool = True) -> None:
    """Refuse the seed's known failure before any GPU time is spent."""
    if character and recipe.optimizer == "adafactor" and recipe.model == "klein-9b":
        raise KlintError(ADAFACTOR_REASON)
