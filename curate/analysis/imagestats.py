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

    Resolution first (a half-size copy never wins), except that a copy far softer than the
    sharpest at the common 512 px scale (a blurred edit, under half its sharpness) is out;
    then sharpness (relative to tonal spread) within 15% of the best; then exposure (tonal
    range minus clipping, so brightened and darkened copies lose to their original); then the
    first path.
    """
    def sharp(r):
        # Laplacian variance grows with the square of contrast, so a brightened copy would
        # look sharper than its original: compare detail relative to the tonal spread
        b = r.get("brightness") or {}
        spread = max(0.05, float(b.get("p95", 1.0)) - float(b.get("p5", 0.0)))
        return float(r.get("lap_var_max") or 0.0) / (spread * spread)

    # sharpness compares only at one common scale: a copy smaller than the working size is
    # measured at its own size, where it always looks sharper
    def common(r):
        return max(r.get("work") or [0]) >= max(max(m[1].get("work") or [0]) for m in members)

    top = max(sharp(r) for _, r in members if common(r))
    pool = [m for m in members if not common(m[1]) or sharp(m[1]) >= 0.5 * top]
    most = max(int(r["width"]) * int(r["height"]) for _, r in pool)
    pool = [m for m in pool if int(m[1]["width"]) * int(m[1]["height"]) >= 0.98 * most]
    top = max(sharp(r) for _, r in pool)
    pool = [m for m in pool if sharp(m[1]) >= 0.85 * top]

    def exposure(m):
        # tonal range used, less three times the share of clipped pixels: a darkened copy
        # uses less range, a brightened one clips highlights its original kept
        r = m[1]
        b = r.get("brightness") or {}
        clipped = float(r.get("clip_light") or 0.0) + float(r.get("clip_dark") or 0.0)
        score = float(b.get("p99", 0.0)) - float(b.get("p1", 0.0)) - 3.0 * clipped
        # steps of 0.02: re-encoding or flipping moves the score by about 0.01, which must not
        # outrank path order
        return int(score * 50)

    return max(pool, key=exposure)[0]  # the first of equals: path order


# KL107's default limits: an image this dark or blown out has no tonal range left, so its
# sharpness and colour scores say nothing and KL105/KL108 leave it to KL107
DARK_P99 = 0.32
LIGHT_1_MINUS_P5 = 0.05


def badly_exposed(rec: dict[str, Any]) -> bool:
    b = rec.get("brightness") or {}
    return "p99" in b and (b["p99"] < DARK_P99 or 1.0 - b["p5"] < LIGHT_1_MINUS_P5)


LOW_CONTRAST_SPREAD = 0.33


def low_contrast(rec: dict[str, Any], limit: float = LOW_CONTRAST_SPREAD) -> bool:
    """KL111's test: 5th-99th percentile brightness spread under `limit`."""
    b = rec.get("brightness") or {}
    return "p99" in b and b["p99"] - b["p5"] < limit
