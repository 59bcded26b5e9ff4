"""Warm re-lint of an unchanged 60-image dataset: median wall time of `klint lint` in a subprocess.

    python benchmarks/warm_relint.py [--runs 15] [--keep DIR]

Builds the dataset from the real photos in ../shared/photos (60 images, captions written here),
lints it once cold (real YOLO + spaCy), then times warm runs exactly as pre-commit would start them.
Target: median <= 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "photos"
CAPTIONS = [
    "bench_person, full body shot, standing outdoors, natural light",
    "bench_person, half body, seated at a table, warm lamp light",
    "bench_person, close portrait, soft window light, plain wall",
]


def build(dest: Path, n: int = 60) -> Path:
    photos = sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if len(photos) < n:
        raise SystemExit(f"need {n} photos in {PHOTOS}, found {len(photos)}")
    dest.mkdir(parents=True, exist_ok=True)
    for i, src in enumerate(photos[:n]):
        shutil.copyfile(src, dest / f"img_{i:03d}{src.suffix.lower()}")
        (dest / f"img_{i:03d}.txt").write_text(CAPTIONS[i % 3] + f", shot {i}\n")
    (dest / "klint.toml").write_text('trigger = "bench_person"\nresolution = 512\n')
    return dest


def klint(ds: Path) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "curate.cli.main", "lint", "--exit-zero", "--no-progress", str(ds)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ds = build(args.keep or Path(tmp) / "ds")
        cold = klint(ds)
        warm = [klint(ds) for _ in range(args.runs)]
    print(f"images: 60  cold: {cold:.2f} s")
    print(f"warm re-lint over {args.runs} runs: median {statistics.median(warm):.3f} s, "
          f"min {min(warm):.3f} s, max {max(warm):.3f} s  (target <= 0.5 s)")


if __name__ == "__main__":
    main()
