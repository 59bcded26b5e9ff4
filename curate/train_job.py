"""`TrainJob`: everything a trainer backend needs, as plain data.

Built once by `klint train` from the dataset, its config, the lint results and the recipe;
the built-in trainer and the exporter backends (ai-toolkit, musubi, ...) read the same object.
No torch here: this module is imported on the CLI path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from curate.errors import KlintError
from curate.recipes import Recipe

FRAMINGS = ("headshot", "half-body", "full-body")
BASE_DTYPES = ("bf16", "fp8")


@dataclasses.dataclass(frozen=True)
class TrainItem:
    image: Path  # absolute path of the image
    rel: str  # dataset-relative posix path of the image
    caption: str  # caption text as written (trigger included when the dataset has it)
    framing: str | None = None  # from the pose analysis when it ran: headshot | half-body | full-body
    repeats: int = 1  # from `[repeats]` in the dataset config (the rebalance plan)


@dataclasses.dataclass(frozen=True)
class TrainJob:
    dataset_root: Path
    items: tuple[TrainItem, ...]
    recipe: Recipe  # resolved: the recipe table with CLI overrides applied
    out_dir: Path
    model: str  # diffusers folder, hub id (offline cache), single-file checkpoint, or "tiny"
    trigger: str | None = None
    resolution: int = 1024
    base_dtype: str = "bf16"
    two_stage: bool = False  # add the seed's stage 2: full-body images only, stage2_lr, stage2_steps
    sample_every: int = 0  # preview images every N steps; 0 = never
    eval_every: int = 0  # `klint eval` metrics into metrics.jsonl every N steps; 0 = never
    checkpoint_every: int = 0  # 0 = backend default
    resume: bool = False
    dry_run: bool = False
    seed: int = 0
    sample_prompts: tuple[str, ...] = ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # backend flags: run, tool_path

    @property
    def stage2_items(self) -> tuple[TrainItem, ...]:
        return tuple(it for it in self.items if it.framing == "full-body")

    @property
    def samples_per_epoch(self) -> int:
        return sum(it.repeats for it in self.items)

    def to_dict(self) -> dict[str, Any]:
        """JSON/TOML-friendly view (paths as strings), used for the resolved-config file."""

        def conv(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items() if x is not None}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            return v

        return conv(dataclasses.asdict(self))


def image_readable(path: Path) -> bool:
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        return True
    except Exception:  # PIL raises many types for damaged files; any of them means "not trainable"
        return False


def check_trainable(trigger: str | None, items: tuple[TrainItem, ...] | list) -> None:
    """What may never reach a training job, --force or not: no trigger word, an image that cannot be decoded."""
    if not (trigger or "").strip():
        raise KlintError("no trigger word: set `trigger` in klint.toml or pass --trigger (a character LoRA without "
                         "one cannot be called up; --force does not skip this)")
    bad = [it.rel for it in items if it.image is None or not image_readable(Path(it.image))]
    if bad:
        raise KlintError(f"{len(bad)} image(s) cannot be decoded and would break training: {', '.join(bad[:5])}"
                         + (" ..." if len(bad) > 5 else "") + " (--force never includes unreadable images)")
