"""Time `klint report`'s HTML build (thumbnails + page) on every photo in ../shared/photos.

Usage: python benchmarks/report_build.py [--thumb-size 256] [--repeat 3]
Lint time is excluded (it is the lint benchmark's business); this measures what the report adds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from curate.config import load_config
from curate.engine.runner import lint_dataset
from curate.report import build_report
from curate.testing import make_dataset, shared_photos


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--thumb-size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    photos = shared_photos()
    if photos is None:
        print("../shared/photos is not present", file=sys.stderr)
        return 2
    srcs = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    with tempfile.TemporaryDirectory() as tmp:
        files = {f"img{i:03d}{p.suffix.lower()}": p for i, p in enumerate(srcs)}
        files.update({f"img{i:03d}.txt": "jdoe, a photo" for i in range(len(srcs))})
        root = make_dataset(Path(tmp) / "ds", files, config='trigger = "jdoe"\n')
        result = lint_dataset(root, load_config(root), rules=[])
        times, size = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            html = build_report(result, thumb_size=args.thumb_size)
            times.append(time.perf_counter() - t0)
            size = len(html.encode())
    mpx = sum(_megapixels(p) for p in srcs)
    print(f"{len(srcs)} images ({mpx:.0f} MPx), thumb {args.thumb_size}px: build median {statistics.median(times):.2f}s "
          f"(min {min(times):.2f}s, {1000 * statistics.median(times) / len(srcs):.0f} ms/image), "
          f"page {size / 1e6:.2f} MB ({size / 1024 / len(srcs):.0f} KiB/image)")
    return 0


def _megapixels(p: Path) -> float:
    from PIL import Image

    with Image.open(p) as im:
        return im.width * im.height / 1e6


if __name__ == "__main__":
    raise SystemExit(main())
