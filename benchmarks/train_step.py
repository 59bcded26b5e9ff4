"""klint's training step vs the reference step, measured in the same process on the same card.

The reference is `shared/bench/lora_step_baseline.py` (diffusers + peft + bitsandbytes, the plain
path), imported and run with the same shapes: 1024^2 image (4096 tokens) + 512 text tokens, rank
32, batch 1, random weights. Its cases are interleaved with klint's, so clock or thermal drift
hits both. klint's cases run the trainer's own code (`prepare_model`, `apply_checkpointing`,
`Stepper`, `flow_matching_loss`) in these modes:

  eager       no checkpointing, no compilation                    (same work as the reference)
  fast        regional compilation of the repeated blocks (+ fp8 matmuls on an fp8 base)
  selective   MLP halves recomputed (+ fp8 matmuls on an fp8 base)
  low-memory  full gradient checkpointing (+ fp8 matmuls on an fp8 base)

each on a bf16 and an fp8 (row-scaled e4m3) base, LoRA bf16 with fp32 masters, AdamW8bit; the
eager bf16 case is repeated with fused torch AdamW. Warm-up steps (and compilation) are excluded.
One table at the end: s/step, peak GiB, MFU (useful bf16 FLOPs / card peak) and the speed ratio
to the reference without and with checkpointing. Goals: fast >= 1.4x the reference eager step;
low-memory >= 1.25x the reference checkpointed step at no more memory; klein-9B in <= 16 GiB.

    python benchmarks/train_step.py                      # GPU: 4B and 9B (22 cases), aimed at ~6 min on one
                                                         # H100/H200; --budget-s (450) skips what is left
    python benchmarks/train_step.py --tiny               # CPU smoke run, tiny shapes (numbers meaningless)
    python benchmarks/train_step.py --baseline PATH/lora_step_baseline.py --models klein-9b
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

MODES = {  # mode -> (checkpointing, compile)
    "eager": ("off", False), "fast": ("off", True), "selective": ("selective", False), "low-memory": ("full", False),
}


def load_baseline(path: str | None):
    """The reference module: --baseline, else $KLINT_SHARED/bench, else ../shared/bench beside the repo."""
    candidates = [Path(path)] if path else []
    if os.environ.get("KLINT_SHARED"):
        candidates.append(Path(os.environ["KLINT_SHARED"]) / "bench" / "lora_step_baseline.py")
    candidates.append(ROOT.parent / "shared" / "bench" / "lora_step_baseline.py")
    for c in candidates:
        if c.is_file():
            spec = importlib.util.spec_from_file_location("lora_step_baseline", c)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod, c
    sys.exit(f"reference step not found (tried {', '.join(map(str, candidates))}); pass --baseline PATH")


def run_reference(base, name, ckpt, a, device):
    """Call the reference's own `run` and read back the JSON line it prints."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        base.run(name, a.res, a.n_txt, a.rank, ckpt, False, a.steps, a.warmup, device, a.peak_tflops)
    rec = json.loads(buf.getvalue().strip().splitlines()[-1])
    return dict(model=name, case="reference" + (" ckpt" if ckpt else ""), base="bf16",
                ckpt="full" if ckpt else "off", s_per_step=rec["s_per_step"], peak_gib=rec.get("peak_gib"),
                warmup_s=rec["warmup_s"], loss=rec["loss"])


def run_klint(base, name, mode, base_dtype, optimizer, a, device):
    from diffusers import Flux2Transformer2DModel

    from plugins.builtin_trainer.trainer import Stepper, apply_checkpointing, flow_matching_loss, prepare_model
    from plugins.klein import latents as L
    from plugins.klein import text as T
    from plugins.klein.sigmas import sample_sigmas

    cfg = base.CONFIGS[name]  # the reference's shapes, by construction
    ckpt, compile_ = MODES[mode]
    cuda = device == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    dev = torch.device(device)
    torch.manual_seed(0)
    with dev:
        model = Flux2Transformer2DModel(**cfg).to(dtype)
    fp8_matmul = base_dtype == "fp8" and mode != "eager"
    params, _ = prepare_model(model, rank=a.rank, alpha=a.rank, lora_dtype=torch.bfloat16 if cuda else torch.float32,
                              base_dtype=base_dtype, fp8_matmul=fp8_matmul, device=dev)
    apply_checkpointing(model, ckpt)
    if compile_ and cuda:
        model.compile_repeated_blocks()
    stepper = Stepper(params, optimizer=optimizer, lr=1e-4, weight_decay=0.01, max_grad_norm=1.0, masters=cuda)
    side = a.res // 16
    g = torch.Generator().manual_seed(0)
    c = cfg["in_channels"]
    x0 = torch.randn(1, side * side, c, generator=g).to(dev)
    noise = torch.randn(1, side * side, c, generator=g).to(dev)
    emb = torch.randn(1, a.n_txt, cfg["joint_attention_dim"], generator=g).to(dev, dtype)
    img_ids, txt_ids = L.image_ids(side, side).to(dev), T.text_ids(a.n_txt).to(dev)
    sigmas = sample_sigmas(a.warmup + a.steps, side * side, g).to(dev)
    model.train()

    def step(i):
        loss = flow_matching_loss(model, x0, noise, sigmas[i:i + 1], emb, side, side, dtype, img_ids=img_ids,
                                  txt_ids=txt_ids)
        loss.backward()
        stepper.step()
        return loss

    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    for i in range(a.warmup):
        step(i)
    sync()
    warm = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = step(a.warmup + i)
    sync()
    dt = (time.perf_counter() - t0) / a.steps
    case = mode + ("" if optimizer == "adamw8bit" else f" {optimizer}")
    rec = dict(model=name, case=case, base=base_dtype, ckpt=ckpt, s_per_step=round(dt, 4),
               peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
               warmup_s=round(warm, 1), loss=round(float(loss.detach()), 4))
    if compile_ and not cuda:
        rec["note"] = "compile skipped on CPU"
    del model, stepper
    return rec


def plan_cases(models):
    """Reference and klint cases interleaved per model (each reference next to the modes it anchors)."""
    cases = []
    for m in models:
        cases += [("ref", m, False), ("klint", m, "eager", "bf16", "adamw8bit"), ("klint", m, "fast", "bf16", "adamw8bit"),
                  ("klint", m, "eager", "bf16", "adamw"), ("klint", m, "fast", "fp8", "adamw8bit"),
                  ("ref", m, True), ("klint", m, "low-memory", "bf16", "adamw8bit"),
                  ("klint", m, "selective", "bf16", "adamw8bit"), ("klint", m, "low-memory", "fp8", "adamw8bit"),
                  ("klint", m, "selective", "fp8", "adamw8bit"), ("klint", m, "eager", "fp8", "adamw8bit")]
    return cases


def table(rows, base, a, useful):
    refs = {(r["model"], r["ckpt"]): r["s_per_step"] for r in rows if r["case"].startswith("reference")}
    head = f"{'model':9} {'case':18} {'base':4} {'ckpt':9} {'s/step':>8} {'peak GiB':>8} {'MFU':>6} " \
           f"{'x ref':>6} {'x ref ckpt':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r or "skipped" in r:
            lines.append(f"{r['model']:9} {r['case']:18} {r.get('base', ''):4} {r.get('error') or r['skipped']}")
            continue
        dt = r["s_per_step"]
        mfu = f"{useful[r['model']] / dt / a.peak_tflops:.3f}" if r["model"] in useful else "-"
        e, c = refs.get((r["model"], "off")), refs.get((r["model"], "full"))
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.2f}"
        lines.append(f"{r['model']:9} {r['case']:18} {r['base']:4} {r['ckpt']:9} {dt:8.4f} {peak:>8} {mfu:>6} "
                     f"{(e / dt if e else float('nan')):6.2f} {(c / dt if c else float('nan')):10.2f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU smoke run on the reference's tiny shapes")
    ap.add_argument("--baseline", default=None, help="path of lora_step_baseline.py")
    ap.add_argument("--models", default=None, help="comma separated (default klein-4b,klein-9b; tiny with --tiny)")
    ap.add_argument("--res", type=int, default=None, help="pixels (default 1024; 64 with --tiny)")
    ap.add_argument("--n-txt", type=int, default=None, help="text tokens (default 512; 32 with --tiny)")
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None, help="timed steps per case (default 8; 2 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per case (default 3; 1 with --tiny)")
    ap.add_argument("--peak-tflops", type=float, default=790.0,
                    help="dense bf16 peak used for MFU (default 790, the reference's own default)")
    ap.add_argument("--budget-s", type=float, default=450, help="skip the remaining cases after this long")
    ap.add_argument("--jsonl", default=None, help="also write every case as a JSON line here")
    a = ap.parse_args()
    base, base_path = load_baseline(a.baseline)
    from diffusers.utils import logging as dlog

    dlog.set_verbosity_error()  # the per-case "modules kept in float32" notice is noise here
    device = "cpu" if a.tiny or not torch.cuda.is_available() else "cuda"
    a.res = a.res or (64 if a.tiny else 1024)
    a.n_txt = a.n_txt or (32 if a.tiny else 512)
    a.steps = a.steps or (2 if a.tiny else 8)
    a.warmup = a.warmup or (1 if a.tiny else 3)
    models = (a.models or ("tiny" if a.tiny else "klein-4b,klein-9b")).split(",")
    if device == "cpu":
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        print("note: CPU run, the timings say nothing about GPU speed; peak memory and MFU need CUDA")
    else:
        print(f"gpu: {torch.cuda.get_device_name()}  torch {torch.__version__}")
    print(f"reference: {base_path}; {a.res}px + {a.n_txt} text tokens, rank {a.rank}, batch 1, "
          f"{a.warmup} warm-up + {a.steps} timed steps per case")
    useful = base.USEFUL_TFLOP if a.res == 1024 and a.n_txt == 512 and device == "cuda" else {}
    rows, out = [], open(a.jsonl, "w") if a.jsonl else None
    t_start = time.perf_counter()
    for case in plan_cases(models):
        kind, name = case[0], case[1]
        label = dict(model=name, case="reference" + (" ckpt" if case[2] else "") if kind == "ref"
                     else case[2] + ("" if case[4] == "adamw8bit" else f" {case[4]}"),
                     base="bf16" if kind == "ref" else case[3])
        if time.perf_counter() - t_start > a.budget_s:
            rows.append({**label, "skipped": f"skipped: over the {a.budget_s:.0f} s budget"})
            continue
        try:
            rec = run_reference(base, name, case[2], a, device) if kind == "ref" else \
                run_klint(base, name, case[2], case[3], case[4], a, device)
        except Exception as exc:  # one case failing (e.g. an inductor crash) must not lose the others
            rec = {**label, "error": f"error: {type(exc).__name__}: {str(exc)[:160]}"}
        rows.append(rec)
        print(json.dumps(rec), flush=True)
        if out:
            out.write(json.dumps(rec) + "\n")
        if device == "cuda":
            torch._dynamo.reset()  # compiled blocks would otherwise keep the last model alive
            torch.cuda.empty_cache()
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s\n")
    print(table(rows, base, a, useful))


if __name__ == "__main__":
    main()
