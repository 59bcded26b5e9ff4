from __future__ import annotations

import torch

from plugins.klein.fp8 import Fp8Linear, convert_lora_base_layers, quantize_rows


def test_quantize_rows_error_is_fp8_sized():
    x = torch.randn(64, 256) * torch.logspace(-2, 2, 64).unsqueeze(1)  # rows of very different scale
    q, s = quantize_rows(x)
    assert q.dtype == torch.float8_e4m3fn and s.shape == (64, 1)
    rel = ((q.float() * s - x).abs() / x.abs().amax(1, keepdim=True)).max()
    assert rel < 0.07  # e4m3 has 3 mantissa bits


def test_fp8_linear_forward_and_input_grad():
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 32, bias=False)
    f8 = Fp8Linear(lin)
    x = torch.randn(4, 10, 64, requires_grad=True)
    y = f8(x)
    ref = lin(x)
    assert ((y - ref).norm() / ref.norm()) < 0.06
    y.sum().backward()
    g_ref = torch.ones(4, 10, 32) @ lin.weight
    assert ((x.grad - g_ref).norm() / g_ref.norm()) < 0.06


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
