"""Optimizers: bitsandbytes AdamW8bit, a Kahan-compensated variant for bf16 weights, AdamW, Adafactor.

`adamw` is torch's AdamW, fused (one kernel for all tensors, no host sync) when the weights are
on a GPU; bitsandbytes' AdamW8bit launches per parameter and synchronises after each (~900 per
klein step) but keeps its state in 8 bits. For a rank-32 LoRA the fp32 AdamW state is ~0.7 GB,
so `adamw` trades that memory for the syncs; the benchmark measures both.

AdamW8bitKahan: the 8-bit kernel updates an fp32 copy of a bf16 weight, and the update is
added back with Kahan compensation, so steps far below bf16's resolution (lr 1e-4 on weights
of ~1e-2) accumulate instead of rounding away. fp32 weights take the plain 8-bit path.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("klint.train")


def _adamw8bit_cls():
    import bitsandbytes as bnb

    return bnb.optim.AdamW8bit


def kahan_add_(w: torch.Tensor, delta: torch.Tensor, comp: torch.Tensor) -> None:
    """w += delta with Kahan compensation `comp` (all updated in place; w/comp low precision)."""
    y = delta.float() + comp.float()
    w32 = w.float()
    new = (w32 + y).to(w.dtype)
    comp.copy_(y - (new.float() - w32))
    w.copy_(new)


def make_kahan_class():
    base = _adamw8bit_cls()

    class AdamW8bitKahan(base):
        @torch.no_grad()
        def update_step(self, group, p, gindex, pindex):
            if p.dtype not in (torch.bfloat16, torch.float16):
                return super().update_step(group, p, gindex, pindex)
            w, g = p.data, p.grad
            master = w.float()
            p.data, p.grad = master, g.float()
            try:
                super().update_step(group, p, gindex, pindex)
                delta = p.data - w.float()
            finally:
                p.data, p.grad = w, g
            state = self.state[p]
            if "kahan_comp" not in state:
                state["kahan_comp"] = torch.zeros_like(w)
            kahan_add_(p.data, delta, state["kahan_comp"])

    AdamW8bitKahan.__name__ = AdamW8bitKahan.__qualname__ = "AdamW8bitKahan"
    return AdamW8bitKahan


def build_optimizer(name: str, params, *, lr: float, weight_decay: float, min_8bit_size: int = 4096):
    """The recipe's optimizer over `params`. Settings follow ai-toolkit's AdamW8bit defaults (eps 1e-6)."""
    params = list(params)
    if name in ("adamw8bit", "adamw8bit-kahan"):
        cls = make_kahan_class() if name == "adamw8bit-kahan" else _adamw8bit_cls()
        return cls(params, lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=weight_decay,
                   min_8bit_size=min_8bit_size)
    if name == "adamw":
        fused = bool(params) and all(p.is_cuda and p.dtype == torch.float32 for p in params)
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay,
                                 fused=True if fused else None)
    if name == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, scale_parameter=False, relative_step=False, warmup_init=False,
                         weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")


def set_lr(opt, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


class MasterWeights:
    """bf16 LoRA weights for compute, fp32 master copies for the optimizer (classic mixed precision).

    PEFT casts each LoRA input to the LoRA weights' dtype; with fp32 LoRA factors under autocast
    that is a cast to fp32 and back at every adapted linear (~5 % of a 9B step). With bf16
    factors the cast is a no-op, and the masters keep updates far below bf16's resolution.
    """

    def __init__(self, params):
        self.model = list(params)
        self.master = [torch.nn.Parameter(p.detach().float().clone()) for p in self.model]

    def grads_to_master(self) -> None:
        for m, p in zip(self.master, self.model):
            m.grad = None if p.grad is None else p.grad.float()
            p.grad = None

    @torch.no_grad()
    def master_to_model(self) -> None:
        for m, p in zip(self.master, self.model):
            p.copy_(m)
