"""Framing on photos nobody labelled or tuned on: crops cut from the full-body photos.

    python benchmarks/framing_crops.py [KEEP_DIR]

The framing cut-offs were chosen on tests/data/framing_labels.csv, so accuracy there is not a
held-out number. Here every single-person full-body photo from that file is cut by its own
keypoints: below the hips at mid-thigh (a half-body shot) and across the chest (a close shot),
keeping the full width and the top of the frame. Only upright figures are cut, into 3:4 portrait boxes a photographer would
choose. The crops are new images with known framing;
the script re-runs the real analysis on them and prints accuracy and the confusion matrix.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
L_SH, R_SH, L_HIP, R_HIP, L_KNEE, R_KNEE = 5, 6, 11, 12, 13, 14


def _y(kps, a, b, min_conf=0.5):
    ys = [kps[i][1] for i in (a, b) if kps[i][2] >= min_conf]
    return sum(ys) / len(ys) if ys else None


def _crop_boxes(kps, width: int, height: int) -> dict[str, tuple[int, int, int, int]]:
    """A photographer's half-body and close crops of an upright figure, from its keypoints.

    Top: a head-height above the nose; bottom: mid-thigh (half) or upper chest (close); a 3:4
    portrait box centred on the shoulders. Reclining or tiny figures give no crop: their
    "close" cut is not a picture anyone would take.
    """
    sh, hip, knee = _y(kps, L_SH, R_SH), _y(kps, L_HIP, R_HIP), _y(kps, L_KNEE, R_KNEE)
    nose = kps[0][1] if kps[0][2] >= 0.5 else None
    xs = [kps[i][0] for i in (L_SH, R_SH) if kps[i][2] >= 0.5]
    hx = [kps[i][0] for i in (L_HIP, R_HIP) if kps[i][2] >= 0.5]
    if None in (sh, hip, nose) or not xs or not hx:
        return {}
    cx = sum(xs) / len(xs)
    upright = (hip - sh) > 1.5 * abs(sum(hx) / len(hx) - cx) and hip > sh > nose
    if not upright:
        return {}
    top = max(0.0, nose - 1.2 * (sh - nose))
    out = {}
    bottoms = {"close": sh + 0.35 * (hip - sh)}
    if knee is not None and knee > hip:
        bottoms["half"] = hip + 0.4 * (knee - hip)
    for framing, bottom in bottoms.items():
        h = bottom - top
        if h < 96:
            continue
        w = 0.75 * h
        x0 = min(max(0.0, cx - w / 2), max(0.0, width - w))
        out[framing] = (int(x0), int(top), int(min(width, x0 + w)), int(min(height, bottom)))
    return out


def analyse(folder: Path):
    from curate.config import Config
    from curate.engine.registry import all_rules, select_rules
    from curate.engine.runner import lint_dataset
    from curate.inspect import inspect_records

    rules = select_rules(all_rules(), ["subject.none"], [])
    return {r["rel"]: r for r in inspect_records(lint_dataset(folder, Config(), rules=rules))}


def main() -> None:
    from PIL import Image, ImageOps

    from curate.testing import shared_photos

    photos = shared_photos()
    if photos is None:
        sys.exit("real photos not found (../shared/photos or $KLINT_TEST_PHOTOS)")
    rows = list(csv.DictReader((ROOT / "tests" / "data" / "framing_labels.csv").open()))
    fulls = [r["path"] for r in rows if r["framing"] == "full" and r["people"] == "1"]
    keep = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with tempfile.TemporaryDirectory() as tmp:
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            tmp = str(keep)
        src = Path(tmp) / "src"
        src.mkdir()
        for i, rel in enumerate(fulls):
            Image.open(photos / rel).convert("RGB").save(src / f"{i:03d}.png")
        records = analyse(src)
        crops = Path(tmp) / "crops"
        crops.mkdir()
        truth: dict[str, str] = {}
        for rel, rec in sorted(records.items()):
            kps = rec.get("keypoints")
            if not kps or rec.get("framing") != "full":
                continue  # only photos the analysis itself saw whole: the crop's framing is then known
            im = ImageOps.exif_transpose(Image.open(src / rel))
            box = _crop_boxes(kps, im.width, im.height)
            stem = rel.rsplit(".", 1)[0]
            for framing, crop in box.items():
                im.crop(crop).save(crops / f"{stem}_{framing}.png")
                truth[f"{stem}_{framing}.png"] = framing
        got = analyse(crops)
    labels = ["close", "half", "full", "none"]
    confusion = Counter((truth[k], got[k]["framing"]) for k in truth)
    correct = sum(confusion[(c, c)] for c in labels)
    print(f"crops: {len(truth)} from {len(fulls)} full-body photos; accuracy {correct}/{len(truth)} = "
          f"{correct / max(1, len(truth)):.3f}")
    print("true\\pred " + " ".join(f"{c:>6}" for c in labels))
    for t in ("close", "half"):
        print(f"{t:<9} " + " ".join(f"{confusion[(t, p)]:>6}" for p in labels))
    for k in sorted(truth):
        if got[k]["framing"] != truth[k]:
            print(f"  miss: {k} expected {truth[k]}, got {got[k]['framing']} ({got[k].get('framing_confidence')})")


if __name__ == "__main__":
    main()
