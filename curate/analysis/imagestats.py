"""Helpers the image.* rules share to read the "image" analysis (no image I/O, no heavy imports)."""

from __future__ import annotations

from typing import Any, Iterator

from curate.dataset.model import Item

ORIENTATIONS = {
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "mirrored top-bottom",
    5: "mirrored and rotated 90°",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° counter-clockwise",
    8: "rotated 90° counter-clockwise",
}


def readable_images(ctx) -> Iterator[tuple[Item, dict[str, Any]]]:
    """(item, image record) for every image the analysis could decode; the rest is KL101's."""
    lfs = set(ctx.dataset.lfs_pointers)
    for item in ctx.dataset.images:
        if item.rel_image in lfs:
            continue
        rec = ctx.result("image", item)
        if rec and rec.get("readable"):
            yield item, rec


def short_side(rec: dict[str, Any]) -> int:
    return min(int(rec["width"]), int(rec["height"]))


def pick_best(members: list[tuple[str, dict[str, Any]]]) -> str:
    """The rel path to keep among look-alikes: (rel, image record) pairs, in path order.

    Sharpness at the common working scale comes first, so an upscaled copy (more pixels,
    less detail) never wins; among those within 15% of the sharpest, the most pixels win,
    then the first path.
    """
    top = max(float(r.get("lap_var_max") or 0.0) for _, r in members)
    sharp_enough = [(rel, r) for rel, r in members if float(r.get("lap_var_max") or 0.0) >= 0.85 * top]
    return max(sharp_enough, key=lambda m: int(m[1]["width"]) * int(m[1]["height"]))[0]


# KL107's default limits: an image this dark or blown out has no tonal range left, so its
# sharpness and colour scores say nothing and KL105/KL108 leave it to KL107
DARK_P99 = 0.32
LIGHT_1_MINUS_P5 = 0.05


def badly_exposed(rec: dict[str, Any]) -> bool:
    b = rec.get("brightness") or {}
    return "p99" in b and (b["p99"] < DARK_P99 or 1.0 - b["p5"] < LIGHT_1_MINUS_P5)
