"""PuLID's ID encoder (IDFormer) and the cross-attention that injects its tokens into image tokens.

Written from the documented architecture (reference notes, pulid.md section 2); module and
parameter names follow the v0.9.1 file so `load_state_dict(strict=True)` works per prefix.
Sizes are arguments so tests can build tiny copies with the same key layout.
"""

from __future__ import annotations

import torch
from torch import nn

# the five ViT depths whose tokens feed the five IDFormer stages (outputs of blocks 3, 7, 11, 15, 19)
VIT_LEVELS = (3, 7, 11, 15, 19)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Multi-head attention with PuLID's numerics: q and k each scaled by dim_head**-0.25, fp32 softmax."""
    b, nq, inner = q.shape
    dh = inner // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, t.shape[1], heads, dh).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    s = dh ** -0.25
    w = (q * s) @ (k * s).transpose(-2, -1)
    w = torch.softmax(w.float(), dim=-1).to(w.dtype)
    return (w @ v).transpose(1, 2).reshape(b, nq, inner)


class PerceiverAttention(nn.Module):
    """Queries (`latents`) attend to the context followed by themselves."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 16):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        context = self.norm1(context)
        latents = self.norm2(latents)
        k, v = self.to_kv(torch.cat([context, latents], dim=1)).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(latents), k, v, self.heads))


class PerceiverAttentionCA(nn.Module):
    """Image tokens (queries) attend to ID tokens (keys/values); returns the residual to add."""

    def __init__(self, dim: int = 3072, dim_head: int = 128, heads: int = 16, kv_dim: int = 2048):
        super().__init__()
        inner = dim_head * heads
        self.heads = heads
        self.norm1 = nn.LayerNorm(kv_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(kv_dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, id_tokens: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        id_tokens = self.norm1(id_tokens)
        img = self.norm2(img)
        k, v = self.to_kv(id_tokens).chunk(2, dim=-1)
        return self.to_out(_attend(self.to_q(img), k, v, self.heads))


def _mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    # indices 0, 1, 3, 4, 6 carry weights: the key layout of the official file
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.LayerNorm(d_hidden), nn.LeakyReLU(),
                         nn.Linear(d_hidden, d_hidden), nn.LayerNorm(d_hidden), nn.LeakyReLU(),
                         nn.Linear(d_hidden, d_out))


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * mult, bias=False), nn.GELU(),
                         nn.Linear(dim * mult, dim, bias=False))


class IDFormer(nn.Module):
    """(face embedding ++ pooled CLIP, 5 ViT levels) -> `num_queries` ID tokens of `output_dim`.

    `id_dim` = face embedding (512) + pooled vision feature (768); `vit_dim` = ViT width (1024);
    `hidden` = the MLP width inside the mappings (1024 in the official file).
    """

    def __init__(self, dim: int = 1024, depth: int = 10, dim_head: int = 64, heads: int = 16,
                 num_id_token: int = 5, num_queries: int = 32, output_dim: int = 2048, ff_mult: int = 4,
                 id_dim: int = 1280, vit_dim: int = 1024, hidden: int = 1024):
        super().__init__()
        if depth % len(VIT_LEVELS):
            raise ValueError(f"depth must be a multiple of {len(VIT_LEVELS)}")
        self.dim, self.num_id_token, self.num_queries = dim, num_id_token, num_queries
        self.per_stage = depth // len(VIT_LEVELS)
        scale = dim ** -0.5
        self.latents = nn.Parameter(torch.randn(1, num_queries, dim) * scale)
        self.proj_out = nn.Parameter(torch.randn(dim, output_dim) * scale)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim, dim_head, heads), _feed_forward(dim, ff_mult)])
            for _ in range(depth))
        for i in range(len(VIT_LEVELS)):
            setattr(self, f"mapping_{i}", _mlp(vit_dim, hidden, dim))
        self.id_embedding_mapping = _mlp(id_dim, hidden, dim * num_id_token)

    def forward(self, id_cond: torch.Tensor, vit_hidden: list[torch.Tensor]) -> torch.Tensor:
        """`id_cond` (B, id_dim) or (B, R, id_dim) for R references; `vit_hidden` 5 x (B, R*L, vit_dim).

        R references give R*num_id_token ID tokens, and their ViT tokens are concatenated: the
        queries see every reference at once (the official model's multi-image path).
        """
        b = id_cond.shape[0]
        refs = id_cond.shape[1] if id_cond.ndim == 3 else 1
        ids = self.id_embedding_mapping(id_cond).reshape(b, self.num_id_token * refs, self.dim)
        latents = torch.cat([self.latents.expand(b, -1, -1), ids], dim=1)
        for i, hidden in enumerate(vit_hidden):
            context = torch.cat([ids, getattr(self, f"mapping_{i}")(hidden)], dim=1)
            for attn, ff in self.layers[i * self.per_stage:(i + 1) * self.per_stage]:
                latents = latents + attn(context, latents)
                latents = latents + ff(latents)
        return latents[:, :self.num_queries] @ self.proj_out


# ---- the official v0.9.1 file -------------------------------------------------------------------

OFFICIAL_ENCODER = dict(dim=1024, depth=10, dim_head=64, heads=16, num_id_token=5, num_queries=32,
                        output_dim=2048, ff_mult=4, id_dim=1280, vit_dim=1024, hidden=1024)
OFFICIAL_CA = dict(dim=3072, dim_head=128, heads=16, kv_dim=2048)
OFFICIAL_NUM_CA = 20  # FLUX.1-dev: 10 double-block slots then 10 single-block slots


def official_key_shapes() -> dict[str, tuple[int, ...]]:
    """The 312 tensor names and shapes of `pulid_flux_v0.9.1.safetensors`, derived from the layout."""
    e = OFFICIAL_ENCODER
    d, h = e["dim"], e["hidden"]
    inner = e["dim_head"] * e["heads"]
    out: dict[str, tuple[int, ...]] = {
        "pulid_encoder.latents": (1, e["num_queries"], d),
        "pulid_encoder.proj_out": (d, e["output_dim"]),
    }

    def mlp(prefix: str, d_in: int, d_out: int) -> None:
        for idx, (i, o) in {0: (d_in, h), 3: (h, h), 6: (h, d_out)}.items():
            out[f"{prefix}.{idx}.weight"], out[f"{prefix}.{idx}.bias"] = (o, i), (o,)
        for idx in (1, 4):
            out[f"{prefix}.{idx}.weight"] = out[f"{prefix}.{idx}.bias"] = (h,)

    mlp("pulid_encoder.id_embedding_mapping", e["id_dim"], d * e["num_id_token"])
    for i in range(len(VIT_LEVELS)):
        mlp(f"pulid_encoder.mapping_{i}", e["vit_dim"], d)
    for i in range(e["depth"]):
        p = f"pulid_encoder.layers.{i}"
        for n in ("norm1", "norm2"):
            out[f"{p}.0.{n}.weight"] = out[f"{p}.0.{n}.bias"] = (d,)
        out[f"{p}.0.to_q.weight"], out[f"{p}.0.to_kv.weight"], out[f"{p}.0.to_out.weight"] = \
            (inner, d), (2 * inner, d), (d, inner)
        out[f"{p}.1.0.weight"] = out[f"{p}.1.0.bias"] = (d,)
        out[f"{p}.1.1.weight"], out[f"{p}.1.3.weight"] = (d * e["ff_mult"], d), (d, d * e["ff_mult"])
    c = OFFICIAL_CA
    ca_inner = c["dim_head"] * c["heads"]
    for k in range(OFFICIAL_NUM_CA):
        p = f"pulid_ca.{k}"
        out[f"{p}.norm1.weight"] = out[f"{p}.norm1.bias"] = (c["kv_dim"],)
        out[f"{p}.norm2.weight"] = out[f"{p}.norm2.bias"] = (c["dim"],)
        out[f"{p}.to_q.weight"], out[f"{p}.to_kv.weight"], out[f"{p}.to_out.weight"] = \
            (ca_inner, c["dim"]), (2 * ca_inner, c["kv_dim"]), (c["dim"], ca_inner)
    return out


def split_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in state.items() if k.startswith(p)}


def official_ca_for_slot(kind: str, index: int, n_blocks: int) -> int:
    """Which FLUX.1-dev CA to reuse for a Klein slot: the one at the nearest relative depth.

    FLUX.1 has 19 double blocks (CA k at block 2k, k = 0..9) and 38 single blocks (CA 10+k at
    block 4k). Reusing them on Klein is an experiment: they were never trained on Klein.
    """
    if kind == "double":
        k = round(index / n_blocks * 19 / 2)
        return min(max(k, 0), 9)
    k = round(index / n_blocks * 38 / 4)
    return 10 + min(max(k, 0), 9)
