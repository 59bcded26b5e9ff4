"""Built-in trainer step vs the reference LoRA step (shared/bench/lora_step_baseline.py).

Runs klint's own step (`flow_matching_loss` + PEFT LoRA on all 14 block linears + bitsandbytes
AdamW8bit, as the trainer does) on a random-weight Klein-shaped transformer, in modes:

  eager   bf16, no checkpointing, no compilation   (same work as the baseline)
  lowmem  bf16 + gradient checkpointing            (what the trainer picks when VRAM is short)
  fast    regional compilation (compile_repeated_blocks) + fp8 e4m3 matmuls on the frozen base
  compile regional compilation only

One JSON line per case: s/step, peak GiB, MFU (useful FLOPs only), speed-up vs the baseline's
measured H200 numbers. On a CPU it runs the tiny config as a smoke check; nothing is measured.

    python benchmarks/train_step.py                          # GPU: 4B and 9B, all modes, 1024 px
    python benchmarks/train_step.py --cases tiny:eager --res 64   # CPU smoke check
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

CONFIGS = {
    "tiny": dict(num_layers=2, num_single_layers=2, num_attention_heads=2, attention_head_dim=16,
                 joint_attention_dim=48, in_channels=16, axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False),
    "klein-4b": dict(num_layers=5, num_single_layers=20, num_attention_heads=24, attention_head_dim=128,
                     joint_attention_dim=7680, in_channels=128, guidance_embeds=False),
    "klein-9b": dict(num_layers=8, num_single_layers=24, num_attention_heads=32, attention_head_dim=128,
                     joint_attention_dim=12288, in_channels=128, guidance_embeds=False),
}
USEFUL_TFLOP = {"klein-4b": 79.4, "klein-9b": 167.7}  # one LoRA step at 1024 px + 512 text tokens
# reference step, H200, bf16, 1024 px, r32 (klein-training.md section 11): (ckpt, s/step)
BASELINE = {("klein-4b", False): 0.236, ("klein-4b", True): 0.331, ("klein-9b", False): 0.444,
            ("klein-9b", True): 0.624}


def run(name, mode, res, n_txt, rank, steps, warmup, device, peak_tflops):
    from diffusers import Flux2Transformer2DModel

    from plugins.builtin_trainer.optim import build_optimizer
    from plugins.builtin_trainer.trainer import flow_matching_loss
    from plugins.klein.lora import add_lora
    from plugins.klein.sigmas import sample_sigmas

    cfg = CONFIGS[name]
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Flux2Transformer2DModel(**cfg).to(dtype)
    params = add_lora(model, rank, rank, dtype=torch.float32)
    ckpt = mode == "lowmem"
    if ckpt:
        model.enable_gradient_checkpointing()
    if mode == "fast":
        from plugins.klein.fp8 import convert_lora_base_layers

        convert_lora_base_layers(model)
    if mode in ("fast", "compile"):
        model.compile_repeated_blocks()
    opt = build_optimizer("adamw8bit", params, lr=1e-4, weight_decay=0.01)
    side = res // 16
    c = cfg["in_channels"]
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, side * side, c, generator=g).to(device)
    noise = torch.randn(1, side * side, c, generator=g).to(device)
    emb = torch.randn(1, n_txt, cfg["joint_attention_dim"], generator=g).to(device, dtype)

    def step():
        sigma = sample_sigmas(1, side * side, g).to(device)
        with torch.autocast(device, dtype=dtype, enabled=device == "cuda"):
            loss = flow_matching_loss(model, x0, noise, sigma, emb, side, side, dtype)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm = time.perf_counter() - t0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    dt = (time.perf_counter() - t0) / steps
    rec = dict(model=name, mode=mode, res=res, n_txt=n_txt, rank=rank, ckpt=ckpt, s_per_step=round(dt, 4),
               warmup_s=round(warm, 1), loss=round(float(loss.detach()), 4),
               lora_params_m=round(sum(p.numel() for p in params) / 1e6, 1))
    if device == "cuda":
        rec["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if name in USEFUL_TFLOP and res == 1024 and n_txt == 512:
            rec["mfu"] = round(USEFUL_TFLOP[name] / dt / peak_tflops, 3)
            base = BASELINE.get((name, ckpt))
            if base:
                rec["vs_baseline_same_ckpt"] = round(base / dt, 2)
            rec["vs_baseline_eager"] = round(BASELINE[(name, False)] / dt, 2)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=None, help="model:mode,... (default: GPU all 4B/9B modes; CPU tiny:eager)")
    ap.add_argument("--res", type=int, default=None, help="pixels (default 1024 on GPU, 64 on CPU)")
    ap.add_argument("--n-txt", type=int, default=512)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=790.0, help="dense bf16 peak of the card (H200: 790)")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() and os.environ.get("KLINT_FORCE_CPU") != "1" else "cpu"
    cases = a.cases or (",".join(f"{m}:{mode}" for m in ("klein-4b", "klein-9b")
                                 for mode in ("eager", "lowmem", "compile", "fast"))
                        if device == "cuda" else "tiny:eager,tiny:lowmem")
    res = a.res or (1024 if device == "cuda" else 64)
    if device == "cuda":
        print(json.dumps(dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__)), flush=True)
    else:
        print(json.dumps(dict(note="no CUDA: smoke check only, timings are not meaningful")), flush=True)
    for case in cases.split(","):
        name, mode = case.split(":")
        try:
            run(name, mode, res, a.n_txt, a.rank, a.steps, a.warmup, device, a.peak_tflops)
        except Exception as e:  # one case failing (e.g. an inductor crash) must not lose the others
            print(json.dumps(dict(model=name, mode=mode, error=repr(e)[:400])), flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
