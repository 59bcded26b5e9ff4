"""Framing on photos nobody labelled or tuned on: crops cut at known body lines.

    python benchmarks/framing_crops.py [--keep DIR] [--misses] [--json OUT]

The framing cut-offs were chosen on tests/data/framing_labels.csv, so accuracy there is not a
held-out number. Here every single-person photo labelled `full` whose own pose is clean
(eyes, nose, shoulders, hips, knees and ankles all seen with confidence >= 0.7, standing upright) is cut
at a body line, and the label follows from where the cut falls:

    collar      a little below the shoulders            close
    chest       a third of the way down the torso       close
    belt        four fifths of the way to the hips      half
    hips        on the hip line                         half
    mid-thigh   half way from hip to knee               half
    ankles      a quarter of the shin above the ankles  full

The top of every crop is a head-height above the nose; each cut is taken in a 3:4 portrait box
and a square box (clipped to the photo), centred on the shoulders; crops under 160 px tall are
left out. The crops are new images: the
linter's whole analysis (pose, face witness, framing) runs on them from scratch. Cut lines sit
well inside each class, away from the navel (the close/half edge) and the knee, so a
careful person would give each crop one label only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.framing_eval import load_labels, photos_dir, predict, score, table  # noqa: E402

NOSE, L_EYE, R_EYE, L_SH, R_SH, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK = 0, 1, 2, 5, 6, 11, 12, 13, 14, 15, 16
CLEAN = 0.7
# (name, label, where): where = (landmark pair the cut is measured from, fraction to the next)
CUTS = (
    ("collar", "close", ("sh", 0.12)),
    ("chest", "close", ("sh", 0.33)),
    ("belt", "half", ("sh", 0.8)),
    ("hips", "half", ("sh", 1.0)),
    ("thigh", "half", ("hip", 0.5)),
    ("ankles", "full", ("ank", -0.25)),
)
ASPECTS = (("p", 0.75), ("s", 1.0))
# a crop shorter than this is a thumbnail nobody trains on, where pose itself gives up
MIN_CROP_PX = 160


def _y(kps, a, b):
    return (kps[a][1] + kps[b][1]) / 2


def crop_boxes(kps, width: int, height: int) -> dict[str, tuple[str, tuple[int, int, int, int]]]:
    """{crop name: (label, box)} for an upright figure whose keypoints are all clean, else {}."""
    need = (NOSE, L_EYE, R_EYE, L_SH, R_SH, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANK, R_ANK)
    if not kps or any(kps[i][2] < CLEAN for i in need):
        return {}
    nose, sh, hip, knee, ank = kps[NOSE][1], _y(kps, L_SH, R_SH), _y(kps, L_HIP, R_HIP), _y(kps, L_KNEE, R_KNEE), \
        _y(kps, L_ANK, R_ANK)
    cx = (kps[L_SH][0] + kps[R_SH][0]) / 2
    hx = (kps[L_HIP][0] + kps[R_HIP][0]) / 2
    # upright: the torso hangs down the image and the landmarks come in body order
    if not (nose < sh < hip < knee < ank) or (hip - sh) < 1.5 * abs(hx - cx):
        return {}
    top = max(0.0, nose - 1.2 * (sh - nose))
    base = {"sh": (sh, hip - sh), "hip": (hip, knee - hip), "ank": (ank, ank - knee)}
    out = {}
    for name, label, (frm, frac) in CUTS:
        y0, span = base[frm]
        bottom = min(float(height), y0 + frac * span)
        h = bottom - top
        if h < MIN_CROP_PX:
            continue
        for tag, aspect in ASPECTS:
            w = min(float(width), aspect * h)
            x0 = min(max(0.0, cx - w / 2), max(0.0, width - w))
            out[f"{name}_{tag}"] = (label, (int(x0), int(top), int(x0 + w), int(bottom)))
    return out


def build(keep: Path) -> list[dict[str, str]]:
    """Cut the crops into keep/crops (deterministic PNGs) and return label rows for them."""
    from PIL import Image, ImageOps

    rows = [r for r in load_labels() if r["framing"] == "full" and r["people"] == "1"]
    preds = predict(rows, keep / "src")
    out_dir = keep / "crops"
    out_dir.mkdir(parents=True, exist_ok=True)
    src = photos_dir()
    crops = []
    for i, r in enumerate(rows):
        rec = preds[r["path"]]
        if rec.get("framing") != "full" or rec.get("people") != 1:
            continue  # only figures the analysis itself saw whole, alone
        with Image.open(src / r["path"]) as raw:
            im = ImageOps.exif_transpose(raw).convert("RGB")
        for name, (label, box) in crop_boxes(rec.get("keypoints"), im.width, im.height).items():
            fname = f"{i:03d}_{name}.png"
            dest = out_dir / fname
            if not dest.exists():
                im.crop(box).save(dest)
            crops.append({"path": fname, "framing": label, "borderline": "", "source": r["path"],
                          "notes": f"{name} cut of {r['path']}"})
    return crops


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "klint-framing-crops")
    ap.add_argument("--misses", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not photos_dir().is_dir():
        sys.exit("real photos not found (../shared/photos or $KLINT_TEST_PHOTOS)")
    crops = build(args.keep)
    preds = predict(crops, args.keep / "ds", src=args.keep / "crops")
    acc, cm, misses = score(crops, preds, lenient=False)
    sources = len({c["source"] for c in crops})
    print(f"== crops: {len(crops)} from {sources} full-body photos  accuracy {acc:.3f}")
    print(table(cm))
    by_cut = {}
    for c in crops:
        cut = c["path"].split("_", 1)[1].rsplit(".", 1)[0]
        ok = preds[c["path"]]["framing"] == c["framing"]
        n, k = by_cut.get(cut, (0, 0))
        by_cut[cut] = (n + 1, k + ok)
    print("  per cut: " + ", ".join(f"{cut} {k}/{n}" for cut, (n, k) in by_cut.items()))
    if args.misses:
        for m in misses:
            print(f"  miss {m['path']}: label {m['label']} -> {m['pred']}  ({m['notes']})")
    if args.json:
        args.json.write_text(json.dumps({"n": len(crops), "accuracy": acc, "confusion": cm, "misses": misses},
                                        indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
