"""Score ranges of the quality rules on the real photos and on degraded copies of them.

    python benchmarks/image_calibration.py
Prints, per set, the range of the KL108 sharpness score and KL107 exposure scores and how
many images each rule flags at its default threshold (false positives on the originals).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.analysis.image import analyse_image  # noqa: E402
from curate.analysis.imagestats import badly_exposed  # noqa: E402
from curate.testing import shared_photos  # noqa: E402
from lint_rules.KL107 import KL107  # noqa: E402
from lint_rules.KL108 import KL108  # noqa: E402

EXTS = (".jpg", ".jpeg", ".png", ".webp")


def main() -> None:
    from PIL import Image, ImageFilter

    photos = shared_photos()
    if photos is None:
        sys.exit("../shared/photos is not present")
    blur_t = KL108.options["threshold"]
    dark_t, light_t = KL107.options["dark"], KL107.options["light"]
    sets: dict[str, list[tuple[str, dict]]] = {"original": [], "blur 0.4%": [], "blur 0.8%": [], "dark x0.25": [],
                                               "blown": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, src in enumerate(sorted(p for p in photos.rglob("*") if p.suffix.lower() in EXTS)):
            name = src.relative_to(photos).as_posix()
            sets["original"].append((name, analyse_image(src)))
            im = Image.open(src).convert("RGB")
            im.thumbnail((1024, 1024), Image.LANCZOS)
            side = max(im.size)
            variants = {"dark x0.25": im.point(lambda v: int(v * 0.25)),
                        "blown": im.point(lambda v: 243 + v * 12 // 255)}
            if max(Image.open(src).size) >= 300:
                variants["blur 0.4%"] = im.filter(ImageFilter.GaussianBlur(0.004 * side))
                variants["blur 0.8%"] = im.filter(ImageFilter.GaussianBlur(0.008 * side))
            for tag, var in variants.items():
                path = Path(tmp) / f"{i}_{tag[:4]}.jpg"
                var.save(path, quality=92)
                sets[tag].append((name, analyse_image(path)))
    _near_duplicates(sets["original"], photos)
    print(f"thresholds: KL108 sharpness < {blur_t}, KL107 dark p99 < {dark_t}, light 1-p5 < {light_t}")
    for tag, rows in sets.items():
        sharp = [r["lap_var_max"] for _, r in rows]
        p99 = [r["brightness"]["p99"] for _, r in rows]
        light = [1 - r["brightness"]["p5"] for _, r in rows]
        n_blur = sum(1 for _, r in rows if r["lap_var_max"] < blur_t and not badly_exposed(r))
        n_exp = sum(1 for _, r in rows if badly_exposed(r))
        print(f"{tag:11s} n={len(rows):3d}  sharpness {min(sharp):8.1f}..{max(sharp):8.1f}  "
              f"p99 {min(p99):.2f}..{max(p99):.2f}  1-p5 {min(light):.2f}..{max(light):.2f}  "
              f"KL108 flags {n_blur:3d}  KL107 flags {n_exp:3d}")
        if tag == "original":
            for name, r in sorted(rows, key=lambda x: x[1]["lap_var_max"])[:3]:
                print(f"    softest original: {name} {r['lap_var_max']:.1f}")


def _near_duplicates(originals, photos) -> None:
    """pHash distances: copies of each photo vs its original, and between distinct photos."""
    from PIL import Image, ImageEnhance

    from curate.analysis.image import hamming
    from lint_rules.KL202 import KL202

    limit = KL202.options["max_distance"]
    worst: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, rec) in enumerate(originals):
            im = Image.open(photos / name).convert("RGB")
            w, h = im.size
            copies = {"half size": im.resize((max(1, w // 2), max(1, h // 2)), Image.LANCZOS), "jpeg q50": im,
                      "+15% bright": ImageEnhance.Brightness(im).enhance(1.15),
                      "3% crop": im.crop((w * 3 // 100, h * 3 // 100, w - w * 3 // 100, h - h * 3 // 100))}
            for tag, var in copies.items():
                path = Path(tmp) / f"{i}.jpg"
                var.save(path, quality=50 if tag == "jpeg q50" else 90)
                d = hamming(rec["phash"], analyse_image(path)["phash"])
                worst[tag] = max(worst.get(tag, 0), d)
    for tag, d in worst.items():
        found = "found" if d <= limit else "MISSED"
        print(f"pHash copy vs original, {tag:12s}: max distance {d:2d} ({found} at <= {limit})")
    pairs = []
    for i, (a, ra) in enumerate(originals):
        for b, rb in originals[i + 1:]:
            if ra["pixel_hash"] != rb["pixel_hash"]:
                pairs.append((hamming(ra["phash"], rb["phash"]), a, b))
    pairs.sort()
    print(f"distinct photos: {len(pairs)} pairs, {sum(d <= limit for d, *_ in pairs)} within {limit}; closest:")
    for d, a, b in pairs[:6]:
        print(f"    {d:2d}  {a}  ~  {b}")
    _crop_windows(originals, photos)


def _window_distance(crop: dict, src: dict, keep: str) -> int:
    """Least pHash + dHash distance from a crop's whole box hash to the source's windows of `keep`."""
    from lint_rules.KL202 import window_hashes

    pa, da = int(crop["box_hash"][:16], 16), int(crop["box_hash"][16:], 16)
    return min((pa ^ p).bit_count() + (da ^ d).bit_count() for p, d in window_hashes(src["crop_windows"][keep]))


def _crop_windows(originals, photos, n_crops: int = 60, seed: int = 7) -> None:
    """KL202's crop windows: random unresized crops at any position vs distinct photos' windows."""
    import random

    from PIL import Image

    from lint_rules.KL202 import KL202, WINDOW_SIZE_SLACK

    total = KL202.options["window_sum"]
    recs = [(n, r) for n, r in originals if r.get("crop_windows")]
    rng = random.Random(seed)
    found, worst = 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for name, rec in rng.sample(recs, min(n_crops, len(recs))):
            im = Image.open(photos / name).convert("RGB")
            keep = rng.uniform(0.78, 0.95)
            cw, ch = int(im.width * keep), int(im.height * keep)
            x, y = rng.randint(0, im.width - cw), rng.randint(0, im.height - ch)
            path = Path(tmp) / "crop.jpg"
            im.crop((x, y, x + cw, y + ch)).save(path, quality=90)
            crop = analyse_image(path)
            k = min(rec["crop_windows"], key=lambda s: abs(float(s) - cw / rec["width"]))
            d = _window_distance(crop, rec, k)
            found += d <= total
            worst.append((d, round(keep, 3), name))
    worst.sort()
    print(f"crop windows: {found}/{len(worst)} random crops (78-95% kept, any position) within {total}; "
          f"worst {worst[-3:]}")
    # distinct photos, every window scale, size test ignored: how close an unrelated window comes
    close = []
    for a, ra in recs:
        for b, rb in recs:
            if a != b and ra["pixel_hash"] != rb["pixel_hash"]:
                close.append((min(_window_distance(ra, rb, k) for k in rb["crop_windows"]), a, b))
    close.sort()
    print(f"crop windows, distinct photos (before the size test, slack {WINDOW_SIZE_SLACK}): closest")
    for d, a, b in close[:8]:
        print(f"    {d:2d}  {a}  ~  {b}")


if __name__ == "__main__":
    main()
