"""Time the per-image analysis (`curate.analysis.image.analyse_image`) on a cold cache.

    python benchmarks/image_analysis.py            # synthetic 12-MP JPEG/PNG/WebP + ../shared/photos
Prints the best-of-N milliseconds per image for each case.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.analysis.image import analyse_image  # noqa: E402
from curate.testing import shared_photos  # noqa: E402


def best_ms(path: Path, n: int = 5) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        rec = analyse_image(path)
        best = min(best, time.perf_counter() - t0)
    assert rec["readable"], rec
    return best * 1000


def main() -> None:
    import numpy as np
    from PIL import Image, ImageFilter

    photos = shared_photos()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # a 12-MP photo-like image: a real photo upscaled, plus grain so JPEG size is realistic
        if photos is not None:
            base = Image.open(next(photos.rglob("pengwei.jpg"))).convert("RGB").resize((3000, 4000), Image.LANCZOS)
        else:
            base = Image.radial_gradient("L").convert("RGB").resize((3000, 4000))
        rng = np.random.default_rng(0)
        noisy = np.clip(np.asarray(base, dtype=np.int16) + rng.integers(-6, 7, (4000, 3000, 3)), 0, 255)
        big = Image.fromarray(noisy.astype(np.uint8)).filter(ImageFilter.SMOOTH)
        for ext, kw in ((".jpg", {"quality": 92}), (".png", {}), (".webp", {"quality": 90})):
            path = tmp / f"big{ext}"
            big.save(path, **kw)
            n = 5 if ext == ".jpg" else 2
            print(f"12-MP {ext:5s} {path.stat().st_size / 1e6:5.1f} MB  {best_ms(path, n):7.1f} ms")
    if photos is not None:
        files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
        times = [best_ms(p, 3) for p in files]
        print(f"shared photos: {len(files)} files, median {statistics.median(times):.1f} ms, "
              f"max {max(times):.1f} ms, total {sum(times) / 1000:.2f} s")


if __name__ == "__main__":
    main()
