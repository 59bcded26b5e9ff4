"""The one computation of the framing mix: `klint lint` (dataset.composition), `klint inspect`'s
summary, `klint report` and the `klint fix --rebalance` table all read it from here.

Inputs are (framing label, repeats) per image, labels taken as given: whatever the framing
analysis calls `close`, `half` or `full` counts; anything else (`none`: no person, or a subject
too small to judge) is left out of the mix, so it neither helps nor dilutes a group.

A group's effective share is the sum of its images' repeats over the sum for the three framed
groups (an image with 3 repeats is trained on 3 times as often, so it counts 3 times).
A group is short when its share is below `target - tolerance` (the dataset.composition
threshold, 1/3 - 0.13 = 20.3% by default) and over when above `target + tolerance`.
"How many to add" counts new photos at x1 (before any new rebalance).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

GROUPS = ("close", "half", "full")
TARGETS = {g: 1 / 3 for g in GROUPS}
TOLERANCE = 0.13  # dataset.composition's default `tolerance`
RULE_KEYS = ("KL310", "dataset.composition")
NOUN = {"close": "close-up", "half": "half-body", "full": "full-body"}


def pct(x: float) -> str:
    """A share as a percentage with one decimal, so 20.0% and 20.3% never print alike."""
    return f"{100 * x:.1f}%"


@dataclasses.dataclass(frozen=True)
class Composition:
    counts: dict[str, int]  # images per close/half/full/none
    weights: dict[str, int]  # sum of repeats per close/half/full/none
    targets: dict[str, float]
    tolerance: float

    @property
    def framed_images(self) -> int:
        return sum(self.counts[g] for g in GROUPS)

    @property
    def framed_weight(self) -> int:
        return sum(self.weights[g] for g in GROUPS)

    @property
    def weighted(self) -> bool:
        """Whether repeats change the picture (some framed image is not x1)."""
        return self.framed_weight != self.framed_images

    @property
    def shares(self) -> dict[str, float]:
        total = self.framed_weight
        return {g: (self.weights[g] / total if total else 0.0) for g in GROUPS}

    @property
    def none_share(self) -> float:
        """Share of all training samples that fall in no framing group."""
        total = sum(self.weights.values())
        return self.weights["none"] / total if total else 0.0

    def floor(self, group: str) -> float:
        return max(0.0, self.targets[group] - self.tolerance)

    def ceiling(self, group: str) -> float:
        return self.targets[group] + self.tolerance

    def status(self, group: str) -> str:
        """`low` (below the floor: dataset.composition fires), `high`, `ok`, or `n/a` (nothing framed)."""
        if not self.framed_weight or self.targets[group] <= 0:
            return "n/a"
        share = self.shares[group]
        if share < self.floor(group) - 1e-9:
            return "low"
        if share > self.ceiling(group) + 1e-9:
            return "high"
        return "ok"

    @property
    def short(self) -> list[str]:
        return [g for g in GROUPS if self.status(g) == "low"]

    def to_add(self, group: str, goal: float | None = None) -> int:
        """New x1 photos of `group` that lift its share to `goal` (default: the floor)."""
        goal = self.floor(group) if goal is None else goal
        w, total = self.weights[group], self.framed_weight
        if goal <= 0 or (total and w / total >= goal - 1e-9):
            return 0
        if goal >= 1:
            return 0 if total == w and w else max(1, total - w)
        # smallest k with (w + k) / (total + k) >= goal
        return max(1, math.ceil((goal * total - w) / (1 - goal) - 1e-9))

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "effective": dict(self.weights),
                "shares": {g: round(v, 4) for g, v in self.shares.items()},
                "threshold": {g: round(self.floor(g), 4) for g in GROUPS},
                "status": {g: self.status(g) for g in GROUPS},
                "add": {g: self.to_add(g) for g in GROUPS},
                "add_for_target": {g: self.to_add(g, self.targets[g]) for g in GROUPS}}


def composition(items: Iterable[tuple[str | None, int]], *, tolerance: float = TOLERANCE,
                targets: dict[str, float] | None = None) -> Composition:
    counts = {g: 0 for g in (*GROUPS, "none")}
    weights = dict(counts)
    for framing, repeats in items:
        g = framing if framing in GROUPS else "none"
        counts[g] += 1
        weights[g] += max(0, int(repeats))
    return Composition(counts=counts, weights=weights, targets=dict(targets or TARGETS), tolerance=float(tolerance))


def settings(config) -> tuple[float, dict[str, float]]:
    """(tolerance, targets) for a dataset: dataset.composition's `tolerance` option and the
    `[rebalance] targets` a user set (thirds when absent or malformed)."""
    tolerance = TOLERANCE
    for key in RULE_KEYS:
        value = (config.rule_options.get(key) or {}).get("tolerance")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
            tolerance = float(value)
    targets = dict(TARGETS)
    table = config.extra.get("rebalance") if isinstance(config.extra, dict) else None
    user = table.get("targets") if isinstance(table, dict) else None
    if (isinstance(user, dict) and not set(user) - set(GROUPS)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in user.values())
            and 0.99 <= sum(user.get(g, 0) for g in GROUPS) <= 1.01):
        targets = {g: float(user.get(g, 0)) for g in GROUPS}
    return tolerance, targets


def for_dataset(config, items: Iterable[tuple[str | None, int]], tolerance: float | None = None) -> Composition:
    """The composition of a dataset as every command shows it (repeats from `[repeats]` are the caller's)."""
    tol, targets = settings(config)
    return composition(items, tolerance=tol if tolerance is None else tolerance, targets=targets)


def mix_text(comp: Composition) -> str:
    """`8 close / 2 half / 2 full`, plus the effective shares when repeats change them."""
    text = " / ".join(f"{comp.counts[g]} {g}" for g in GROUPS)
    if comp.weighted:
        text += " (" + " / ".join(pct(comp.shares[g]) for g in GROUPS) + " with repeats)"
    else:
        text += " (" + " / ".join(pct(comp.shares[g]) for g in GROUPS) + ")"
    return text


def advice(comp: Composition, group: str) -> str:
    """`add 1 half-body photo (3 to reach 33.3%)`: clears the warning, then what a full share takes."""
    need = comp.to_add(group)
    ideal = comp.to_add(group, comp.targets[group])
    text = f"add {need} {NOUN[group]} photo{'s' if need != 1 else ''}"
    if ideal > need:
        text += f" ({ideal} to reach {pct(comp.targets[group])})"
    return text
