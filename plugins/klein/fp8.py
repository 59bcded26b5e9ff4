"""fp8 (e4m3) storage and matmuls for the frozen base linears under a LoRA (`--base-dtype fp8`).

Weights are quantised once with one scale per output row (klein's block weights have std
0.005-0.01, where unscaled e4m3 is subnormal and loses 6-11 %; row scales keep ~2.5 %).
Only the block linears are stored this way; embedders, modulation and norms stay in the
compute dtype. Two compute modes:

- storage only: the weight is dequantised per layer for a bf16 matmul (any GPU, and CPU);
- fp8 matmuls (sm_89+): `torch._scaled_mm` for the forward (activations quantised per token)
  and for the input gradient, the only gradient a LoRA upstream needs. The backward folds the
  row scales into the incoming gradient, gx = (gy * s) @ W8, so the one stored fp8 copy serves
  both directions (a transient transpose per layer, no second copy of the weights).

Off CUDA the same quantise/dequantise maths runs in fp32, so the CPU tests check the numerics.
"""

from __future__ import annotations

import torch

E4M3_MAX = 448.0


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) -> (fp8 (M, K), fp32 scale (M, 1)) with x ~= fp8 * scale."""
    amax = x.detach().abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12)
    scale = amax / E4M3_MAX
    return (x.float() / scale).clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn), scale


def dequantize(w8: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (w8.float() * scale).to(dtype)


def fp8_hardware(device: torch.device | str) -> bool:
    """fp8 tensor cores (Ada / Hopper and newer) and a torch that exposes them."""
    device = torch.device(device)
    return (device.type == "cuda" and torch.cuda.is_available() and hasattr(torch, "_scaled_mm")
            and torch.cuda.get_device_capability(device) >= (8, 9))


def _mm_rows(a8, a_scale, b8, b_scale, out_dtype, fast: bool | None = None):
    """(a8 * a_scale) @ (b8 * b_scale).T for row-scaled fp8 a8 (M, K) and b8 (N, K)."""
    if fast is None:
        fast = a8.is_cuda and fp8_hardware(a8.device)
    if fast:
        # _scaled_mm wants its second operand column-major: b8 (N, K) row-major, transposed, is exactly that
        return torch._scaled_mm(a8, b8.t(), scale_a=a_scale, scale_b=b_scale.t(), out_dtype=out_dtype)
    return ((a8.float() * a_scale) @ (b8.float() * b_scale).t()).to(out_dtype)


def fp8_input_grad(gy: torch.Tensor, w8: torch.Tensor, w_scale: torch.Tensor, out_dtype,
                   fast: bool | None = None) -> torch.Tensor:
    """gx = gy @ (W8 * s): scales folded into gy (per output column), gy quantised per token row."""
    g2 = gy.reshape(-1, gy.shape[-1]) * w_scale.t().to(gy.dtype)
    g8, g_scale = quantize_rows(g2)
    ones = torch.ones(w8.shape[1], 1, device=w8.device, dtype=torch.float32)
    gx = _mm_rows(g8, g_scale, w8.t().contiguous(), ones, out_dtype, fast)
    return gx.reshape(*gy.shape[:-1], w8.shape[1])


class _Fp8Matmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w8, w_scale, out_dtype, fast):
        shape = x.shape
        x8, x_scale = quantize_rows(x.reshape(-1, shape[-1]))
        y = _mm_rows(x8, x_scale, w8, w_scale, out_dtype, fast)
        ctx.save_for_backward(w8, w_scale)
        ctx.compute_dtype, ctx.fast = x.dtype, fast
        return y.reshape(*shape[:-1], w8.shape[0])

    @staticmethod
    def backward(ctx, gy):
        w8, w_scale = ctx.saved_tensors
        gx = fp8_input_grad(gy.to(ctx.compute_dtype), w8, w_scale, ctx.compute_dtype, ctx.fast)
        return gx, None, None, None, None


class _Fp8Stored(torch.autograd.Function):
    """Weight-only fp8: dequantise per call, and save only the fp8 weight (never the bf16 copy)."""

    @staticmethod
    def forward(ctx, x, w8, w_scale):
        ctx.save_for_backward(w8, w_scale)
        return x @ dequantize(w8, w_scale, x.dtype).t()

    @staticmethod
    def backward(ctx, gy):
        w8, w_scale = ctx.saved_tensors
        return gy @ dequantize(w8, w_scale, gy.dtype), None, None


class Fp8Linear(torch.nn.Module):
    """A frozen nn.Linear with row-scaled fp8 weights in buffers (frozen: never a DDP parameter)."""

    def __init__(self, linear: torch.nn.Linear, *, matmul: bool = False, device=None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach()
        w8, scale = quantize_rows(w.to(device) if device is not None else w)
        self.register_buffer("weight_fp8", w8)
        self.register_buffer("weight_scale", scale)
        self.bias = None if linear.bias is None else torch.nn.Parameter(
            linear.bias.detach().to(w8.device), requires_grad=False)
        self.compute_dtype = linear.weight.dtype
        self.matmul = matmul
        # decided once: a device query inside forward would break compiled graphs
        self.fast = fp8_hardware(w8.device)

    @property
    def weight(self):  # PEFT and diffusers read .weight for device and shape
        return self.weight_fp8

    def dequantized_weight(self) -> torch.Tensor:
        return dequantize(self.weight_fp8, self.weight_scale, self.compute_dtype)

    def forward(self, x):
        x = x.to(self.compute_dtype)
        if self.matmul:
            y = _Fp8Matmul.apply(x, self.weight_fp8, self.weight_scale, self.compute_dtype, self.fast)
        else:
            y = _Fp8Stored.apply(x, self.weight_fp8, self.weight_scale)
        return y if self.bias is None else y + self.bias.to(y.dtype)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, fp8 matmul={self.matmul}"


def convert_lora_base_layers(transformer, *, matmul: bool = False, device=None) -> int:
    """Swap every LoRA-wrapped base linear (the block linears) for an Fp8Linear; returns how many.

    With `device`, each weight is quantised there one layer at a time, so a 9B model never needs
    its bf16 block weights on the GPU all at once.
    """
    n = 0
    for mod in transformer.modules():
        base = getattr(mod, "base_layer", None)
        if isinstance(base, torch.nn.Linear) and hasattr(mod, "lora_A"):
            mod.base_layer = Fp8Linear(base, matmul=matmul, device=device)
            n += 1
    return n
