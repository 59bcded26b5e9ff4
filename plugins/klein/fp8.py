"""fp8 (e4m3) matmuls for the frozen base linears under a LoRA (the benchmark's "fast" mode).

Weights are quantised once with one scale per output row; activations per token on the fly.
On GPUs with fp8 tensor cores (sm_89+) the forward runs `torch._scaled_mm`; elsewhere it
dequantises (same numerics, no speed-up), so the CPU tests exercise the maths. The input
gradient (all a LoRA upstream needs) uses the dequantised weight in the compute dtype.
"""

from __future__ import annotations

import torch

E4M3_MAX = 448.0


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) -> (fp8 (M, K), fp32 scale (M, 1)) with x ~= fp8 * scale."""
    amax = x.detach().abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / E4M3_MAX
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), scale


def _fast_path(x: torch.Tensor) -> bool:
    return x.is_cuda and torch.cuda.get_device_capability(x.device) >= (8, 9) and hasattr(torch, "_scaled_mm")


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w8, w_scale, out_dtype):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        x8, x_scale = quantize_rows(x2)
        if _fast_path(x2):
            y = torch._scaled_mm(x8, w8.t(), scale_a=x_scale, scale_b=w_scale.t(), out_dtype=out_dtype)
        else:
            y = ((x8.float() * x_scale) @ (w8.float() * w_scale).t()).to(out_dtype)
        ctx.save_for_backward(w8, w_scale)
        ctx.compute_dtype = x.dtype
        return y.reshape(*shape[:-1], w8.shape[0])

    @staticmethod
    def backward(ctx, gy):
        w8, w_scale = ctx.saved_tensors
        w = (w8.to(ctx.compute_dtype) * w_scale.to(ctx.compute_dtype))
        return gy.to(ctx.compute_dtype) @ w, None, None, None


class Fp8Linear(torch.nn.Module):
    """A frozen nn.Linear (no bias in Klein's blocks) with fp8 weights."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w8, scale = quantize_rows(linear.weight.detach())
        self.register_buffer("weight_fp8", w8)
        self.register_buffer("weight_scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.out_dtype = linear.weight.dtype

    @property
    def weight(self):  # PEFT and diffusers read .weight for dtype/device/shape
        return self.weight_fp8

    def forward(self, x):
        y = _Fp8Matmul.apply(x.to(self.out_dtype), self.weight_fp8, self.weight_scale, self.out_dtype)
        return y if self.bias is None else y + self.bias


def convert_lora_base_layers(transformer) -> int:
    """Swap every LoRA-wrapped base linear for an Fp8Linear; returns how many were swapped."""
    n = 0
    for mod in transformer.modules():
        base = getattr(mod, "base_layer", None)
        if isinstance(base, torch.nn.Linear) and hasattr(mod, "lora_A"):
            mod.base_layer = Fp8Linear(base)
            n += 1
    return n
