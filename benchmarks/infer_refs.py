"""Seconds per image for `klint infer` modes on Klein-shaped transformers: none, native references
on the base pipeline (recomputed every step), the same weights driven as the KV variant (reference
K/V cached on step 0; only a KV checkpoint may do this, see --ref-cache), and PuLID hooks (8 CAs
at klein-4B width). Reference counts 0/1/4/8 by default (0 = no references: the `none` row).

    python benchmarks/infer_refs.py            # GPU: klein-4B-shaped random transformer, 1024^2, 4 steps
    python benchmarks/infer_refs.py --tiny     # CPU smoke run on plugins.klein.tiny (numbers meaningless)

Random weights: this measures cost, not quality. One JSON line per arm.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from plugins.pulid.backend import generate
from plugins.pulid.job import InferJob


def _pipe(tiny: bool):
    from plugins.klein import tiny as t

    pipe = t.build_tiny_pipeline(seed=0)
    if not tiny:
        from diffusers import Flux2Transformer2DModel

        with torch.device("cuda"):  # klein-4B transformer shape, random weights; tiny text encoder / VAE
            pipe.transformer = Flux2Transformer2DModel(
                num_layers=5, num_single_layers=20, num_attention_heads=24, attention_head_dim=128,
                joint_attention_dim=t.TRANSFORMER_CONFIG["joint_attention_dim"], in_channels=16,
                axes_dims_rope=(32, 32, 32, 32), guidance_embeds=False).to(torch.bfloat16).eval()
        pipe = pipe.to("cuda")
    return pipe


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--refs", type=int, nargs="*", default=[0, 1, 4, 8])
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()
    tiny = args.tiny or not torch.cuda.is_available()
    side = 64 if tiny else 1024
    pipe = _pipe(tiny)
    from plugins.pulid.backend import _kv_pipeline

    kv_pipe = _kv_pipeline(pipe)
    ref_dir = Path("/tmp/klint_bench_refs")
    ref_dir.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    refs = []
    for i in range(max(args.refs + [1])):
        p = ref_dir / f"r{i}.png"
        Image.fromarray((rng.random((side, side, 3)) * 255).astype("uint8")).save(p)
        refs.append(p)
    dev = "cpu" if tiny else "cuda"
    print(json.dumps({"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "tiny": tiny,
                      "side": side, "torch": torch.__version__}), flush=True)
    arms = [("none", 0, "off")] if 0 in args.refs else []
    for r in (n for n in args.refs if n > 0):
        arms += [("reference", r, "off"), ("reference", r, "on"), ("pulid", r, "off")]
    for mode, r, cache in arms:
        runner = kv_pipe if cache == "on" else pipe
        job = InferJob(prompt="sks person", model="tiny-kv" if cache == "on" else "tiny", out=Path("/tmp/unused"),
                       mode=mode, refs=refs[:r], steps=args.steps, cfg=1.0, width=side, height=side,
                       ref_cache="auto" if cache == "on" else cache, device=dev)
        generate(job, runner, output_type="latent")  # warm-up
        if dev == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        generate(job, runner, output_type="latent")
        if dev == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        row = dict(mode=mode, refs=r, pipeline="kv (cached)" if cache == "on" else "base", s_per_image=round(dt, 4),
                   s_per_step=round(dt / args.steps, 4))
        if dev == "cuda":
            row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
