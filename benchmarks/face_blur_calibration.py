"""Face sharpness (subject.face-blur's scores) on real photos and on copies with only the face blurred.

    python benchmarks/face_blur_calibration.py [--limit 40] [--dump FILE]

Every shared photo with one face large enough to measure is linted the way `klint` does it
(pose, then the face analysis on the head crop). Then the face box alone is blurred while the
rest of the image stays as it was: Gaussian (sigma 2 % and 4 % of the face height) and linear
motion over 8 % of it in three directions (horizontal, vertical, 45 degrees). For each set it
prints both scores of the aligned face chip (Laplacian sharpness, direction ratio) and how many
KL305 flags at its current options.

The photos are split by their index in name order: even = calibration (the options were chosen
on these), odd = held out (never looked at while choosing); both halves are reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.testing import shared_photos  # noqa: E402
from lint_rules.KL305 import KL305, face_blurred  # noqa: E402

EXTS = (".jpg", ".jpeg", ".png", ".webp")
KINDS = ("gauss2", "gauss4", "motion-h", "motion-v", "motion-d")


def blur_face(src: Path, box, kind: str, dst: Path) -> None:
    import cv2
    import numpy as np
    from PIL import Image, ImageOps

    im = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB")).copy()
    x0, y0, x1, y1 = (int(round(c)) for c in box)
    fh = max(1, y1 - y0)
    pad = int(0.25 * fh)
    x0, y0, x1, y1 = max(0, x0 - pad), max(0, y0 - pad), min(im.shape[1], x1 + pad), min(im.shape[0], y1 + pad)
    roi = im[y0:y1, x0:x1]
    if kind.startswith("gauss"):
        out = cv2.GaussianBlur(roi, (0, 0), int(kind[-1]) / 100 * fh)
    else:
        n = max(3, int(0.08 * fh)) | 1
        k = np.zeros((n, n), np.float32)
        if kind == "motion-h":
            k[n // 2, :] = 1.0
        elif kind == "motion-v":
            k[:, n // 2] = 1.0
        else:
            np.fill_diagonal(k, 1.0)
        out = cv2.filter2D(roi, -1, k / k.sum())
    im[y0:y1, x0:x1] = out
    Image.fromarray(im).save(dst, quality=95)


def lint_faces(folder: Path) -> dict[str, dict]:
    """rel image -> face record, through the same analyses a lint runs."""
    from curate.analysis.cache import Cache
    from curate.config import Config
    from curate.dataset.scan import scan
    from curate.engine.runner import LintContext, run_analyses

    ctx = LintContext(dataset=scan(folder), config=Config())
    run_analyses(ctx, {"face"}, Cache(folder, enabled=False))
    return ctx.results["face"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--dump", type=Path, default=None, help="write every score to this JSON file")
    args = ap.parse_args()
    photos = shared_photos()
    if photos is None:
        sys.exit("../shared/photos is not present")
    srcs = sorted(p for p in photos.rglob("*") if p.suffix.lower() in EXTS)
    opts = dict(KL305.options)
    tmp = Path(tempfile.mkdtemp(prefix="klint-faceblur-"))
    try:
        orig_dir, blur_dir = tmp / "orig", tmp / "blur"
        orig_dir.mkdir()
        blur_dir.mkdir()
        names = {}
        for i, src in enumerate(srcs):
            dst = orig_dir / f"{i:04d}{src.suffix.lower()}"
            shutil.copyfile(src, dst)
            names[dst.name] = src.relative_to(photos).as_posix()
        recs = lint_faces(orig_dir)
        measured = [r["subject"] for r in recs.values() if r and r.get("subject") and r["subject"].get("sharpness") is not None]
        all_flagged = [names[f] for f, r in sorted(recs.items()) if r and r.get("subject")
                       and r["subject"].get("sharpness") is not None
                       and face_blurred(r["subject"]["sharpness"], r["subject"]["direction_ratio"], opts)]
        rows = []
        for fname in sorted(recs):
            rec = recs[fname] or {}
            subj = rec.get("subject")
            # one face only: with several, a blurred subject may lose to a bystander
            if not subj or subj.get("sharpness") is None or len(rec["faces"]) != 1:
                continue
            rows.append({"photo": names[fname], "file": fname, "box": subj["box"],
                         "original": [subj["sharpness"], subj["direction_ratio"]]})
            if len(rows) >= args.limit:
                break
        for r in rows:
            for kind in KINDS:
                blur_face(orig_dir / r["file"], r["box"], kind, blur_dir / f"{Path(r['file']).stem}_{kind}.jpg")
        brecs = lint_faces(blur_dir)
        for r in rows:
            for kind in KINDS:
                s2 = (brecs.get(f"{Path(r['file']).stem}_{kind}.jpg") or {}).get("subject") or {}
                r[kind] = None if s2.get("sharpness") is None else [s2["sharpness"], s2["direction_ratio"]]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(rows)} photos with one measurable face (of {len(srcs)}); KL305 options {opts}")
    print(f"all {len(measured)} originals with a measured subject face (any number of faces): "
          f"{len(all_flagged)} flagged {all_flagged}")
    for half, label in ((0, "calibration (even)"), (1, "held out (odd)")):
        part = rows[half::2]
        print(f"-- {label}: {len(part)} photos")
        for kind in ("original",) + KINDS:
            vals = [r[kind] for r in part if r.get(kind)]
            if not vals:
                continue
            sh, dr = sorted(v[0] for v in vals), sorted(v[1] for v in vals)
            sharp_only = sum(v[0] < opts["threshold"] for v in vals)
            both = sum(face_blurred(v[0], v[1], opts) is not None for v in vals)
            print(f"{kind:9s} n={len(vals):3d} sharpness min {sh[0]:.3f} median {sh[len(sh) // 2]:.3f} "
                  f"max {sh[-1]:.3f} | ratio min {dr[0]:.3f} median {dr[len(dr) // 2]:.3f} max {dr[-1]:.3f} "
                  f"| flagged: sharpness alone {sharp_only}/{len(vals)}, KL305 {both}/{len(vals)}")
    soft = sorted(rows, key=lambda r: r["original"][1])[:5]
    print("lowest-ratio originals:", ", ".join(f"{r['photo']} {r['original'][1]:.3f} ({r['original'][0]:.2f})"
                                               for r in soft))
    if args.dump:
        args.dump.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
