"""Cost per image of `klint eval` on the CPU: generation on the tiny random Klein (the real
pipeline code, tiny shapes) and scoring (YOLO pose + dlib face), wall and process CPU time.

    KLINT_TEST_PHOTOS=/work/shared/photos python benchmarks/eval_cost.py [--lora FILE] [--sizes 256,512]

Scoring is timed on the generated noise (no person: the pose pass finds nobody) and on real
full-body photos resized to the same size (a person and a face to analyse), since generated
images of a trained LoRA hold a person. No GPU number: that needs a GPU and real weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = Path(os.environ.get("KLINT_TEST_PHOTOS", ROOT.parent / "shared" / "photos"))
PEOPLE = ("pool/icon/028009.jpg", "pool/pifuhd/test.png", "pool/rembg/cloth-1.jpg",
          "pool/sapiens/reel1_woman_standing/000000.jpg")


def clock():
    return time.perf_counter(), time.process_time()


def since(t0) -> tuple[float, float]:
    t, c = clock()
    return t - t0[0], c - t0[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lora", type=Path)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--images", type=int, default=4)
    args = ap.parse_args()
    from PIL import Image

    from curate.eval_job import EvalJob, prompt_set, score_images
    from plugins.klein.eval_backend import _generate
    from plugins.pulid.backend import load_pipeline

    import torch

    print(f"torch threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    t0 = clock()
    pipe = load_pipeline("tiny", "cpu", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    print("load tiny pipeline: %.1f s wall, %.1f s CPU" % since(t0))
    prompts = prompt_set("ohwx")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in (int(s) for s in args.sizes.split(",")):
            job = EvalJob(loras=(), model="tiny", out=tmp, prompts=tuple(prompts), size=size, steps=4)
            paths = []
            t0 = clock()
            for i in range(args.images):
                im = _generate(job, pipe, args.lora, 1.0, prompts[i % len(prompts)].text, i)
                paths.append(tmp / f"g{size}_{i}.png")
                im.save(paths[-1])
            w, c = since(t0)
            lora = "with LoRA" if args.lora else "no LoRA"
            print(f"{size}px, 4 steps, {lora}: generate {w / args.images:.2f} s wall, "
                  f"{c / args.images:.2f} s CPU per image")
            score_images(paths[:1], [])  # model loading, timed apart from the per-image cost
            t0 = clock()
            score_images(paths, [])
            w, c = since(t0)
            print(f"{size}px: score noise {w / len(paths):.2f} s wall, {c / len(paths):.2f} s CPU per image")
            real = []
            for k, rel in enumerate(PEOPLE):
                with Image.open(PHOTOS / rel) as ph:
                    ph = ph.convert("RGB")
                    ph.thumbnail((size, size))
                    real.append(tmp / f"r{size}_{k}.png")
                    ph.save(real[-1])
            t0 = clock()
            rows = score_images(real, [])
            w, c = since(t0)
            print(f"{size}px: score real full-body photos {w / len(real):.2f} s wall, {c / len(real):.2f} s CPU "
                  f"per image (faces found {sum(r['face'] for r in rows)}/{len(rows)}, stature measured "
                  f"{sum(r['heads'] is not None for r in rows)}/{len(rows)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
