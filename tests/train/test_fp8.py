from __future__ import annotations

import pytest
import torch

from plugins.klein.fp8 import Fp8Linear, convert_lora_base_layers, quantize_rows


def test_quantize_rows_error_is_fp8_sized():
    x = torch.randn(64, 256) * torch.logspace(-2, 2, 64).unsqueeze(1)  # rows of very different scale
    q, s = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (64, 1)
    rel = ((q.float() * s - x).abs() / x.abs().amax(1, keepdim=True)).max()
    assert rel < 0.07  # e4m3 has 3 mantissa bits


@pytest.mark.parametrize("matmul", [False, True])
def test_fp8_linear_forward_and_input_grad(matmul):
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        lin.weight.mul_(0.05)  # klein-like weight scale (std ~0.005-0.01): unscaled e4m3 would be subnormal
    f8 = Fp8Linear(lin, matmul=matmul)
    x = torch.randn(4, 10, 64, requires_grad=True)
    y = f8(x)
    ref = lin(x)
    assert ((y - ref).norm() / ref.norm()) < 0.06
    gy = torch.randn(4, 10, 32)
    y.backward(gy)
    g_ref = gy @ lin.weight
    assert ((x.grad - g_ref).norm() / g_ref.norm()) < 0.06
    g_deq = gy @ f8.dequantized_weight()
    # fp8 matmul mode quantises the incoming gradient too; storage-only is exact given the weight
    assert torch.allclose(x.grad, g_deq, atol=1e-6) != matmul


def test_fp8_input_grad_folds_row_scales():
    """gx = (gy * s) @ W8: one stored fp8 copy serves the backward, rows of very different scale included."""
    from plugins.klein.fp8 import dequantize, fp8_input_grad

    w = torch.randn(48, 80) * torch.logspace(-3, 0, 48).unsqueeze(1)
    w8, s = quantize_rows(w)
    gy = torch.randn(6, 48)
    gx = fp8_input_grad(gy, w8, s, torch.float32)
    exact = gy @ dequantize(w8, s, torch.float32)
    assert gx.shape == (6, 80)
    assert ((gx - exact).norm() / exact.norm()) < 0.05
    # without the folded scales the small rows' contribution would be wrong by orders of magnitude
    assert ((gy @ w8.float() - exact).norm() / exact.norm()) > 10


def test_storage_only_saves_no_high_precision_weight():
    """Autograd must keep only the fp8 weight for backward, never a dequantised copy."""
    lin = torch.nn.Linear(64, 32, bias=False)
    f8 = Fp8Linear(lin)
    saved = []
    x = torch.randn(3, 64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        f8(x)
    assert saved and not any(t.shape == (32, 64) and t.dtype != torch.float8_e4m3fn for t in saved)


def test_unscaled_fp8_loses_small_weights_row_scaled_does_not():
    w = torch.randn(256, 256) * 0.006  # klein block weight scale
    plain = w.to(torch.float8_e4m3fn).float()
    q, s = quantize_rows(w)
    err_plain = (plain - w).norm() / w.norm()
    err_rows = (q.float() * s - w).norm() / w.norm()
    assert err_rows < 0.03 < err_plain


def test_lora_on_fp8_base_trains(tiny_pipe):
    from plugins.klein.lora import add_lora
    from plugins.klein.tiny import build_transformer

    t = build_transformer(seed=0)
    params = add_lora(t, rank=4, alpha=4)
    assert convert_lora_base_layers(t) == 28
    with torch.no_grad():
        for p in params:
            if p.dim() == 2:
                p.add_(torch.randn_like(p) * 0.01)
    from plugins.klein.latents import image_ids
    from plugins.klein.text import text_ids

    out = t(hidden_states=torch.randn(1, 16, 16), encoder_hidden_states=torch.randn(1, 8, 48),
            timestep=torch.tensor([0.5]), img_ids=image_ids(4, 4), txt_ids=text_ids(8), guidance=None,
            return_dict=False)[0]
    out.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    assert any(float(p.grad.abs().max()) > 0 for p in params)
