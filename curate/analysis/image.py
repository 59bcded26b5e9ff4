"""Cheap per-image facts (PIL + numpy only): readability, size, mode, EXIF, hashes, quality.

Everything the image.* rules need comes from here, computed once per file content.
"""

from __future__ import annotations

from typing import Any

from curate.analysis.base import Analysis


class ImageAnalysis(Analysis):
    name = "image"
    version = "1"
    scope = "image"

    def run_batch(self, items, ctx, advance):
        out = []
        for item in items:
            out.append(analyse_image(item.image))
            advance(1)
        return out


def analyse_image(path) -> dict[str, Any]:
    from PIL import Image

    rec: dict[str, Any] = {"readable": False}
    try:
        with Image.open(path) as im:
            rec["format"] = im.format
            im.load()
            rec.update(width=im.width, height=im.height, mode=im.mode)
    except Exception as exc:  # PIL raises many types for broken files
        rec["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return rec
    rec["readable"] = True
    return rec
