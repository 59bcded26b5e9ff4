"""Clean crops for `image.text-overlay`: cut a border watermark away, keep the subject, never upscale.

The geometry is a pure function of the image size, the judged text regions and the subject
box, so the rule can say up front whether a crop is possible and why not. Writing goes
through `apply_clean_crops`, which renders each crop, writes it and its caption under
`_klint/derived/` and records a `text-crop` manifest entry (the source then leaves the
training set; the original file is never touched).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from curate.dataset.derived import MANIFEST, TEXT_CROP, load_manifest
from curate.dataset.model import OWN_DIR

CLEAN_SUFFIX = "__clean"
MAX_CUT_REGIONS = 8  # 2^8 cut combinations at most; more marks than that is not a border watermark
SUBJECT_KEEP = 0.97  # a crop may shave at most 3 % off the subject's box on a side that is cut
AREA_KEEP_NO_SUBJECT = 0.75


@dataclass(frozen=True)
class CleanCrop:
    box: tuple[int, int, int, int] | None
    reason: str  # why not, when box is None; what was cut otherwise


def _cuts(region_box: Sequence[float], w: int, h: int, pad: float) -> list[tuple[str, float]]:
    """The one or two straight cuts that remove a region sitting at the frame's edge."""
    x0, y0, x1, y1 = region_box
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    out = []
    if cy >= 0.5 and y0 >= 0.6 * h:
        out.append(("bottom", y0 - pad))
    if cy < 0.5 and y1 <= 0.4 * h:
        out.append(("top", y1 + pad))
    if cx >= 0.5 and x0 >= 0.6 * w:
        out.append(("right", x0 - pad))
    if cx < 0.5 and x1 <= 0.4 * w:
        out.append(("left", x1 + pad))
    return out


def _keeps_subject(box: tuple[float, float, float, float], subject: Sequence[float] | None, w: int, h: int) -> bool:
    x0, y0, x1, y1 = box
    if not subject:
        return (x1 - x0) * (y1 - y0) >= AREA_KEEP_NO_SUBJECT * w * h
    sx0, sy0, sx1, sy1 = subject
    sw, sh = max(1.0, sx1 - sx0), max(1.0, sy1 - sy0)
    kept_w = max(0.0, min(x1, sx1) - max(x0, sx0)) / sw
    kept_h = max(0.0, min(y1, sy1) - max(y0, sy0)) / sh
    return kept_w >= SUBJECT_KEEP and kept_h >= SUBJECT_KEEP


def clean_crop_box(width: int, height: int, regions: Sequence[Any], subject_box: Sequence[float] | None,
                   resolution: int) -> CleanCrop:
    """The largest axis-aligned crop that removes every flagged region and keeps the subject.

    `regions` are `curate.analysis.ocr.Region`s (only error/warning ones need removing).
    """
    bad = [r for r in regions if r.severity in ("error", "warning")]
    if not bad:
        return CleanCrop(None, "nothing to remove")
    if any(r.zone == "centre" for r in bad):
        return CleanCrop(None, "the text sits inside the picture; a crop cannot remove it (retake, or inpaint it "
                               "in an image editor)")
    if len(bad) > MAX_CUT_REGIONS:
        return CleanCrop(None, f"{len(bad)} text regions; too many to crop away")
    w, h = int(width), int(height)
    pad = 0.012 * min(w, h) + 2
    options = []
    for r in bad:
        cuts = _cuts(r.box, w, h, pad)
        if not cuts:
            return CleanCrop(None, f"the text in the {r.where} is not at the frame's edge")
        options.append(cuts)
    best: tuple[float, tuple[int, int, int, int], list[str]] | None = None
    why_not = "a crop that removes the text would cut into the subject"
    for combo in itertools.product(*options):
        x0, y0, x1, y1 = 0.0, 0.0, float(w), float(h)
        for side, at in combo:
            if side == "bottom":
                y1 = min(y1, at)
            elif side == "top":
                y0 = max(y0, at)
            elif side == "right":
                x1 = min(x1, at)
            else:
                x0 = max(x0, at)
        box = (int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        if box[2] - box[0] < 16 or box[3] - box[1] < 16:
            continue
        if not _keeps_subject(box, subject_box, w, h):
            continue
        short = min(box[2] - box[0], box[3] - box[1])
        if short < resolution:
            why_not = (f"the crop that removes the text would be {short} px on its short side, below the training "
                       f"resolution {resolution} (klint never upscales)")
            continue
        area = (box[2] - box[0]) * (box[3] - box[1])
        if best is None or area > best[0]:
            best = (area, box, sorted({s for s, _ in combo}))
    if best is None:
        return CleanCrop(None, why_not)
    return CleanCrop(best[1], "cut " + " and ".join(f"the {s} edge" for s in best[2]))


def clean_rel(source_rel: str) -> str:
    stem = source_rel.rsplit(".", 1)[0].replace("/", "__")
    return f"{OWN_DIR}/derived/{stem}{CLEAN_SUFFIX}.png"


def render_crop(source: Path, box: Sequence[int]) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(source) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode not in ("RGB", "RGBA", "L"):
            im = im.convert("RGB")
        buf = io.BytesIO()
        # no metadata, fixed settings: the same crop always encodes to the same bytes
        im.crop(tuple(box)).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def apply_clean_crops(root: Path, diagnostics, *, write: bool = True) -> list[str]:
    """Write the crops the text-overlay diagnostics propose; returns dataset-relative paths written.

    One manifest write at the end, after every crop and caption is on disk: an interrupted run
    leaves crops without entries, which the next run rewrites byte for byte (idempotent).
    """
    from curate.engine.diagnostic import WriteBytes, WriteCrop, WriteText
    from curate.fix.apply import Writer

    jobs = []
    for d in diagnostics:
        if d.fix is None or d.fix.applicability != "unsafe":
            continue
        crops = [e for e in d.fix.edits if isinstance(e, WriteCrop)]
        texts = [e for e in d.fix.edits if isinstance(e, WriteText)]
        jobs.extend((c, texts) for c in crops)
    if not jobs:
        return []
    changed: list[str] = []
    entries = {e["path"]: e for e in load_manifest(root)}
    writer = Writer(root) if write else None
    for crop, texts in jobs:
        source = root / crop.source
        data = render_crop(source, crop.box)
        rel = Path(crop.path).resolve().relative_to(root.resolve()).as_posix()
        old = Path(crop.path).read_bytes() if Path(crop.path).is_file() else None
        if old != data:
            changed.append(rel)
            if writer:
                writer.apply(WriteBytes(crop.path, data))
        cap_rel = None
        for t in texts:
            cap_rel = Path(t.path).resolve().relative_to(root.resolve()).as_posix()
            cur = Path(t.path).read_text("utf-8") if Path(t.path).is_file() else None
            if cur != t.text:
                changed.append(cap_rel)
                if writer:
                    writer.apply(t)
        entries[rel] = {"path": rel, "source": crop.source, "box": list(crop.box), "kind": TEXT_CROP,
                        "caption": cap_rel, "sha256": hashlib.sha256(data).hexdigest(), "reason": crop.reason}
    text = json.dumps({"version": 1, "items": list(entries.values())}, indent=2) + "\n"
    mpath = root / MANIFEST
    cur = mpath.read_text("utf-8") if mpath.is_file() else None
    if cur != text:
        changed.append(MANIFEST)
        if writer:
            writer.apply(WriteText(str(mpath), text))
    return changed
