"""bitsandbytes AdamW8bit on this machine, and the Kahan-compensated variant for bf16 weights."""
from __future__ import annotations

import pytest
import torch

from plugins.builtin_trainer.optim import build_optimizer, kahan_add_


def _eight_bit_available() -> bool:
    try:
        p = torch.nn.Parameter(torch.zeros(4096))
        opt = build_optimizer("adamw8bit", [p], lr=1e-3, weight_decay=0.0, min_8bit_size=0)
        p.grad = torch.ones_like(p)
        opt.step()
        return opt.state[p]["state1"].dtype == torch.uint8 and bool((p != 0).all())
    except Exception:
        return False


needs_8bit = pytest.mark.skipif(not _eight_bit_available(), reason="bitsandbytes 8-bit optimizer needs CUDA")


@needs_8bit
def test_adamw8bit_uses_8bit_state():
    p = torch.nn.Parameter(torch.randn(64, 128))
    opt = build_optimizer("adamw8bit", [p], lr=1e-3, weight_decay=0.01, min_8bit_size=0)
    p.grad = torch.randn_like(p)
    before = p.detach().clone()
    opt.step()
    assert opt.state[p]["state1"].dtype == torch.uint8
    assert 0 < (p - before).abs().max() < 2e-3


def test_kahan_add_accumulates_tiny_steps():
    w = torch.full((1000,), 1.0, dtype=torch.bfloat16)
    c = torch.zeros_like(w)
    plain = w.clone()
    for _ in range(100):
        kahan_add_(w, torch.full((1000,), 1e-4), c)
        plain += torch.full((1000,), 1e-4).to(torch.bfloat16)
    assert float(plain[0]) == 1.0  # 1e-4 is below bf16 resolution at 1.0: lost every time
    assert float(w[0].float() + c[0].float()) == pytest.approx(1.01, abs=1e-3)


@needs_8bit
def test_kahan_adamw8bit_tracks_fp32_far_better_than_plain_bf16():
    torch.manual_seed(0)
    w0 = torch.randn(64, 256) * 0.02
    ref = torch.nn.Parameter(w0.clone())
    plain = torch.nn.Parameter(w0.clone().bfloat16())
    kahan = torch.nn.Parameter(w0.clone().bfloat16())
    opts = [build_optimizer(n, [p], lr=1e-4, weight_decay=0.01, min_8bit_size=0)
            for n, p in (("adamw8bit", ref), ("adamw8bit", plain), ("adamw8bit-kahan", kahan))]
    assert type(opts[2]).__name__ == "AdamW8bitKahan"
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        grad = torch.randn(64, 256, generator=g) * 0.01 + 0.005
        for p, o in zip((ref, plain, kahan), opts):
            p.grad = grad.to(p.dtype)
            o.step()
            o.zero_grad()
    assert kahan.dtype == torch.bfloat16 and opts[2].state[kahan]["state1"].dtype == torch.uint8
    err_plain = (plain.float() - ref).abs().mean()
    err_kahan = (kahan.float() - ref).abs().mean()
    moved = (ref - w0).abs().mean()
    assert moved > 10 * err_kahan
    assert err_kahan * 5 < err_plain


def test_other_optimizers_step():
    for name in ("adamw", "adafactor"):
        p = torch.nn.Parameter(torch.randn(8, 8))
        opt = build_optimizer(name, [p], lr=1e-2, weight_decay=0.0)
        before = p.detach().clone()
        p.grad = torch.ones_like(p)
        opt.step()
        assert not torch.equal(before, p.detach()), name
