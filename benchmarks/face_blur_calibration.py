"""Face sharpness (subject.face-blur's score) on real photos and on copies with only the face blurred.

    python benchmarks/face_blur_calibration.py [--limit 60]

For every shared photo whose face is large enough to measure, the face box alone is blurred
(Gaussian, sigma 2 % and 4 % of the face height; horizontal motion over 8 % of it) while the
rest of the image stays as it was. Prints the score range per set and how many each
threshold flags: false alarms on the originals, misses on the blurred copies.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.analysis.face import analyse_image  # noqa: E402
from curate.testing import shared_photos  # noqa: E402
from lint_rules.KL305 import KL305  # noqa: E402

EXTS = (".jpg", ".jpeg", ".png", ".webp")


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
    if kind == "gauss2":
        out = cv2.GaussianBlur(roi, (0, 0), 0.02 * fh)
    elif kind == "gauss4":
        out = cv2.GaussianBlur(roi, (0, 0), 0.04 * fh)
    else:
        n = max(3, int(0.08 * fh))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        out = cv2.filter2D(roi, -1, k)
    im[y0:y1, x0:x1] = out
    Image.fromarray(im).save(dst, quality=95)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=60)
    args = ap.parse_args()
    photos = shared_photos()
    if photos is None:
        sys.exit("../shared/photos is not present")
    thr = KL305.options["threshold"]
    sets: dict[str, list[float]] = {"original": [], "gauss2": [], "gauss4": [], "motion": []}
    names = []
    srcs = sorted(p for p in photos.rglob("*") if p.suffix.lower() in EXTS)
    with tempfile.TemporaryDirectory() as tmp:
        for src in srcs:
            if len(names) >= args.limit:
                break
            rec = analyse_image(src, None)
            subj = (rec or {}).get("subject")
            if not subj or subj.get("sharpness") is None or len(rec["faces"]) != 1:
                # one face only: with several, a blurred subject may lose to a bystander
                continue
            names.append(src.relative_to(photos).as_posix())
            sets["original"].append(subj["sharpness"])
            for kind in ("gauss2", "gauss4", "motion"):
                dst = Path(tmp) / f"{len(names)}_{kind}.jpg"
                blur_face(src, subj["box"], kind, dst)
                r2 = analyse_image(dst, None)
                s2 = (r2 or {}).get("subject") or {}
                if s2.get("sharpness") is not None:
                    sets[kind].append(s2["sharpness"])
    print(f"{len(names)} photos with a measurable face (of {len(srcs)})")
    for name, vals in sets.items():
        if not vals:
            continue
        s = sorted(vals)
        print(f"{name:9s} n={len(s):3d} min {s[0]:.3f} p10 {s[len(s) // 10]:.3f} median {s[len(s) // 2]:.3f} "
              f"p90 {s[9 * len(s) // 10]:.3f} max {s[-1]:.3f}; flagged at {thr}: {sum(v < thr for v in s)}/{len(s)}")
    orig = sorted(zip(sets["original"], names))[:5]
    print("softest originals:", ", ".join(f"{n} {v:.3f}" for v, n in orig))


if __name__ == "__main__":
    main()
