"""Regression tests for the trainer faults of issue 15 (each failed on the code before its fix)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from plugins.builtin_trainer.trainer import run_training
from tests.train.conftest import make_job


def _quiet(msg):
    pass


def test_previews_with_fp8_base(two_images, tmp_path):
    """Fault 1: the preview took float8 from the first parameter and cast the prompt embeddings to it."""
    job = make_job(two_images, tmp_path, steps=1, base_dtype="fp8", sample_every=1)
    run_training(job, say=_quiet, progress=False)
    from PIL import Image

    with Image.open(tmp_path / "samples" / "step-000001-0.png") as im:
        assert im.size == (64, 64)
        lo, hi = im.convert("L").getextrema()
        assert hi > lo  # an image, not a blank canvas


def test_fp8_base_is_row_scaled_and_spares_embedders(two_images, tmp_path):
    """Fault 2: fp8 storage had no scale and covered embedders, modulation and norms too."""
    from plugins.klein.tiny import build_transformer

    job = make_job(two_images, tmp_path, steps=1, base_dtype="fp8")
    t = run_training(job, say=_quiet, progress=False)["transformer"]
    ref = dict(build_transformer(seed=0).named_parameters())
    block_linears = 0
    for name, mod in t.named_modules():
        base = getattr(mod, "base_layer", None)
        if base is None or not hasattr(mod, "lora_A"):
            continue
        block_linears += 1
        assert base.weight_fp8.dtype == torch.float8_e4m3fn and base.weight_scale.shape == (base.out_features, 1)
        w = base.dequantized_weight().float()
        orig = ref[name.replace("base_model.model.", "") + ".weight"]
        assert ((w - orig).norm() / orig.norm()) < 0.03, name  # row scales: ~2.5 %, e4m3's 3 mantissa bits
    assert block_linears == 28
    # everything that is not a LoRA'd block linear stays in the compute dtype
    for name, p in list(t.named_parameters()) + list(t.named_buffers()):
        if "weight_fp8" in name or "weight_scale" in name:
            continue
        assert p.dtype in (torch.float32, torch.bfloat16), (name, p.dtype)
    for name in ("x_embedder.weight", "context_embedder.weight", "double_stream_modulation_img.linear.weight",
                 "single_stream_modulation.linear.weight", "proj_out.weight"):
        assert dict(t.named_parameters())[name].dtype == torch.float32, name


def test_gradient_clipping_is_applied_and_logged(two_images, tmp_path):
    """Fault 4: no gradient clipping. With a clip far below the gradient norm the LoRA barely moves."""
    def b_max(out):
        sd = load_file(str(out / "lora.safetensors"))
        return max(float(v.float().abs().max()) for k, v in sd.items() if "lora_B" in k)

    kw = dict(steps=2, lr=1e-2, rank=4, alpha=4, optimizer="adamw")
    free = run_training(make_job(two_images, tmp_path / "free", max_grad_norm=0.0, **kw), say=_quiet,
                        progress=False)
    clipped = run_training(make_job(two_images, tmp_path / "clip", max_grad_norm=1e-12, **kw), say=_quiet,
                           progress=False)
    assert free["steps"] == clipped["steps"] == 2
    # Adam normalises by the gradient's size, so only a clip pushing grads far below eps shows in the update
    assert b_max(tmp_path / "clip") < 0.05 * b_max(tmp_path / "free")
    default = make_job(two_images, tmp_path / "d", **kw)
    assert default.recipe.max_grad_norm == 1.0  # musubi-tuner's and diffusers' default
    rows = [json.loads(x) for x in (tmp_path / "clip" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["grad_norm"] > 1e-12 and r["max_grad_norm"] == 1e-12 for r in rows)
    cfg = json.loads((tmp_path / "clip" / "config.json").read_text())
    assert cfg["job"]["recipe"]["max_grad_norm"] == 1e-12


GIB = 2**30
NEED = {"off": 40 * GIB, "selective": 28 * GIB, "full": 12 * GIB}


def test_speed_switches_are_explicit_and_fit_memory():
    """Fault 5: fast/low-memory switched compute to fp8 with a bf16 base, and fast forced checkpointing off."""
    from plugins.builtin_trainer.trainer import plan_speed

    def plan(speed, base, free, fp8_hw=True):
        return plan_speed(speed, base, cuda=True, fp8_hw=fp8_hw, free_bytes=free, need_bytes=NEED)

    for speed in ("fast", "low-memory", "auto", "selective"):
        assert not plan(speed, "bf16", 80 * GIB).fp8_matmul, speed  # a bf16 base computes in bf16
    assert plan("fast", "fp8", 80 * GIB).fp8_matmul and not plan("fast", "fp8", 80 * GIB, fp8_hw=False).fp8_matmul
    fast_big = plan("fast", "bf16", 80 * GIB)
    assert fast_big.checkpointing == "off" and fast_big.compile
    fast_24 = plan("fast", "bf16", 22 * GIB)  # a 24 GB card: fast must not run out of memory
    assert fast_24.checkpointing == "full"
    assert plan("fast", "bf16", 32 * GIB).checkpointing == "selective"
    assert [plan("auto", "bf16", f * GIB).checkpointing for f in (80, 32, 16)] == ["off", "selective", "full"]
    assert plan("low-memory", "bf16", 80 * GIB).checkpointing == "full"
    assert plan("selective", "bf16", 80 * GIB).checkpointing == "selective"
    text = fast_24.describe()
    for word in ("checkpointing full", "compile", "fp8 matmuls off", "free"):
        assert word in text, (word, text)
    cpu = plan_speed("fast", "fp8", cuda=False, fp8_hw=False, free_bytes=None, need_bytes=NEED)
    assert cpu.checkpointing == "off" and not cpu.compile and not cpu.fp8_matmul and "cpu" in cpu.describe()


def test_train_prints_the_plan_before_caching(two_images, tmp_path):
    """Point 6: the plan comes first, and the cache lines say what they counted."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, KLINT_FORCE_CPU="1")
    proc = subprocess.run([sys.executable, "-m", "curate.cli.main", "train", str(two_images), "--model", "tiny",
                           "--steps", "1", "--rank", "4", "--force", "--resolution", "64", "--no-progress",
                           "--out", str(tmp_path / "o")], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    text = proc.stdout
    assert proc.returncode == 0, text[-2000:]
    lines = text.splitlines()
    for key in ("dataset", "lint", "recipe", "samples", "steps", "precision", "memory", "out"):
        assert any(line.startswith(key + " ") for line in lines), (key, text)
    assert "2 images, 2 effective samples per epoch" in text
    assert "latents: 2 images encoded, 0 reused from the cache" in text
    assert "text embeddings: 5 prompts encoded (2 captions, the empty prompt, 2 preview prompts), 0 reused" in text
    # the plan is printed before the slow part (encoding) starts
    assert text.index("precision ") < text.index("latents: ")
