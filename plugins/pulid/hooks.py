"""Inject ID tokens into a diffusers `Flux2Transformer2DModel` through forward hooks.

`forward` is never replaced, so PEFT LoRA layers, attention processors (including the KV-cache
ones) and Klein's reference tokens keep working. Only the noisy-latent image tokens change:
they are the rows of `img_ids` whose time coordinate is 0 (references sit at T = 10, 20, ...),
wherever the pipeline put them (appended, prepended, or absent on cached KV steps).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import nn

DOUBLE_EVERY = 2  # PuLID's spacing: after double block i when i % 2 == 0
SINGLE_EVERY = 4  # ... and after single block j when j % 4 == 0


def ca_slots(n_double: int, n_single: int) -> list[tuple[str, int]]:
    """The (kind, block index) pairs that get a cross-attention, in adapter order."""
    return ([("double", i) for i in range(0, n_double, DOUBLE_EVERY)]
            + [("single", j) for j in range(0, n_single, SINGLE_EVERY)])


def transformer_slots(transformer: nn.Module) -> list[tuple[str, int]]:
    return ca_slots(len(transformer.transformer_blocks), len(transformer.single_transformer_blocks))


@dataclasses.dataclass
class _CallState:
    txt_len: int = 0
    start: int = 0  # noisy-latent token span inside the image stream
    stop: int = 0
    active: bool = False
    uncond: bool = False


class IDInjector:
    """Context manager: while active, adds `weight * ca(id, img)` after the PuLID block slots.

    `id_cond` / `id_uncond`: (B, n_tokens, kv_dim) ID tokens for the conditional and the
    classifier-free-guidance negative call (PuLID gives the negative call IDFormer(zeros)).
    `start` is the fraction of denoising steps before ID is applied (PuLID: start_step / steps).
    `cfg` says the pipeline calls the transformer twice per step (cond, then uncond).
    """

    def __init__(self, transformer: nn.Module, cas: Sequence[nn.Module], id_cond: torch.Tensor,
                 id_uncond: torch.Tensor | None = None, *, weight: float = 1.0, start: float = 0.0,
                 num_steps: int = 1, cfg: bool = False):
        self.transformer = transformer
        self.slots = transformer_slots(transformer)
        if len(cas) != len(self.slots):
            raise ValueError(f"adapter has {len(cas)} cross-attentions; this transformer has "
                             f"{len(self.slots)} PuLID slots")
        self.cas = list(cas)
        self.id_cond, self.id_uncond = id_cond, id_uncond
        self.weight, self.start, self.num_steps, self.cfg = float(weight), float(start), num_steps, cfg
        self.first_step = int(round(self.start * num_steps))
        self.state = _CallState()
        self.calls = 0
        self.fired: list[tuple[str, int, int, int]] = []  # (kind, block, first row, last row + 1): for tests
        self._handles: list = []

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "IDInjector":
        t = self.transformer
        self._handles.append(t.register_forward_pre_hook(self._pre, with_kwargs=True))
        for ca, (kind, idx) in zip(self.cas, self.slots):
            block = (t.transformer_blocks if kind == "double" else t.single_transformer_blocks)[idx]
            self._handles.append(block.register_forward_hook(self._make_hook(kind, idx, ca)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks --------------------------------------------------------------------------------
    def _pre(self, module, args, kwargs):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        enc = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
        img_ids = kwargs.get("img_ids")
        if img_ids is None and len(args) > 3:
            img_ids = args[3]
        if img_ids.ndim == 3:
            img_ids = img_ids[0]
        rows = torch.nonzero(img_ids[:, 0] == 0).flatten()
        if rows.numel() == 0:
            raise RuntimeError("no noisy-latent tokens (img_ids time == 0) in this transformer call")
        start, stop = int(rows[0]), int(rows[-1]) + 1
        if stop - start != rows.numel():
            raise RuntimeError("noisy-latent tokens are not contiguous; cannot inject ID safely")
        if hidden.shape[1] != img_ids.shape[0]:
            raise RuntimeError("img_ids and hidden_states disagree in length")
        step = self.calls // 2 if self.cfg else self.calls
        self.state = _CallState(txt_len=enc.shape[1], start=start, stop=stop,
                                active=self.weight != 0 and step >= self.first_step,
                                uncond=self.cfg and self.calls % 2 == 1)
        self.calls += 1
        return None

    def _make_hook(self, kind: str, idx: int, ca: nn.Module):
        def hook(module, args, output):
            st = self.state
            if not st.active:
                return None
            ids = self.id_uncond if st.uncond else self.id_cond
            if ids is None:
                return None
            if kind == "double":
                enc, img = output
                return enc, self._add(img, st.start, st.stop, ca, ids, kind, idx)
            off = st.txt_len
            return self._add(output, off + st.start, off + st.stop, ca, ids, kind, idx)
        return hook

    def _add(self, x: torch.Tensor, a: int, b: int, ca: nn.Module, ids: torch.Tensor, kind: str,
             idx: int) -> torch.Tensor:
        p = next(ca.parameters())
        with torch.no_grad():
            tokens = x[:, a:b]
            delta = ca(ids.to(p.device, p.dtype).expand(x.shape[0], -1, -1), tokens.to(p.dtype))
            out = x.clone()
            out[:, a:b] = tokens + self.weight * delta.to(x.dtype)
        self.fired.append((kind, idx, a, b))
        return out
