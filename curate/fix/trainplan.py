"""What the `[train]` table of a dataset config resolves to, for the training-plan rules.

Mirrors `klint train`: the recipe named in `[train]` (default "standard") with the table's
keys on top; without an explicit recipe the dataset's `model` wins over the recipe's.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from curate.config import Config


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    recipe: str
    optimizer: Any
    model: Any
    repeats: Any  # average repeats per image (the seed's 90-120)
    kind: str  # character | style


def train_settings(config: Config) -> TrainSettings:
    from curate.recipes import RECIPES

    train = config.train
    name = str(train.get("recipe", "standard"))
    recipe = RECIPES.get(name, RECIPES["standard"])
    model = train.get("model", recipe.model if "recipe" in train else config.model)
    return TrainSettings(recipe=name, optimizer=train.get("optimizer", recipe.optimizer), model=model,
                         repeats=train.get("repeats", recipe.repeats), kind=str(train.get("kind", "character")))


def base_repeats(avg_repeats: int, n_images: int, total_mult: int) -> int:
    """Repeats of a x1 image, so the epoch keeps avg_repeats x n_images samples (the seed's math)."""
    if total_mult <= 0:
        return avg_repeats
    return max(1, round(avg_repeats * n_images / total_mult))


def repeats_per_image(multipliers: dict[str, int], avg_repeats: int) -> dict[str, int]:
    """Absolute repeats per image (base x rebalance multiplier): the one number the plan, lint and exports show."""
    mult = {rel: max(1, int(m or 1)) for rel, m in multipliers.items()}
    base = base_repeats(int(avg_repeats), len(mult), sum(mult.values()))
    return {rel: base * m for rel, m in mult.items()}


def config_location(config: Config, root: Path, table: str, key: str) -> tuple[str, int]:
    """(dataset-relative config path or "", 1-based line of `key` inside `[table]`) for messages."""
    src = config.source
    if src is None:
        return "", 1
    try:
        rel = src.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return "", 1
    want = f"tool.klint.{table}" if src.name == "pyproject.toml" else table
    current = ""
    try:
        lines = src.read_text("utf-8").splitlines()
    except OSError:
        return rel, 1
    for no, line in enumerate(lines, 1):
        head = re.match(r"\s*\[([^\[\]]+)\]\s*(#.*)?$", line)
        if head:
            current = head.group(1).strip().replace('"', "")
            continue
        if current == want and re.match(rf"\s*\"?{re.escape(key)}\"?\s*=", line):
            return rel, no
    return rel, 1
