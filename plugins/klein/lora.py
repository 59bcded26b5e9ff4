"""LoRA on every block linear of the Klein DiT, and export to BFL (ComfyUI / ai-toolkit) and diffusers.

Targets: all 14 block linears, the single blocks' `attn.to_out` (BFL `linear2`) included —
leaving it out measurably hurt identity. Modulation, norms and embedders stay frozen.

BFL export fuses q/k/v exactly: with alpha/r baked into each B, A = cat(A_q, A_k, A_v) and
B = block_diag(B_q, B_k, B_v), so B @ A stacks the three deltas by rows (rank 3r, no loss).
"""

from __future__ import annotations

import re

import torch

DOUBLE_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0", "attn.add_q_proj", "attn.add_k_proj",
                  "attn.add_v_proj", "attn.to_add_out", "ff.linear_in", "ff.linear_out", "ff_context.linear_in",
                  "ff_context.linear_out")
SINGLE_TARGETS = ("attn.to_qkv_mlp_proj", "attn.to_out")

# diffusers module suffix -> BFL module suffix (one-to-one ones; qkv are fused separately)
_DOUBLE_BFL = {
    "attn.to_out.0": "img_attn.proj", "attn.to_add_out": "txt_attn.proj",
    "ff.linear_in": "img_mlp.0", "ff.linear_out": "img_mlp.2",
    "ff_context.linear_in": "txt_mlp.0", "ff_context.linear_out": "txt_mlp.2",
}
_SINGLE_BFL = {"attn.to_qkv_mlp_proj": "linear1", "attn.to_out": "linear2"}
_FUSED = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
          "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
BFL_PREFIX = "diffusion_model."
DIFFUSERS_PREFIX = "transformer."


def target_modules(transformer) -> list[str]:
    """Full module names of every LoRA target linear in a Flux2Transformer2DModel."""
    names = []
    for name, mod in transformer.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        m = re.match(r"(transformer_blocks|single_transformer_blocks)\.\d+\.(.+)$", name)
        if m is None:
            continue
        wanted = DOUBLE_TARGETS if m.group(1) == "transformer_blocks" else SINGLE_TARGETS
        if m.group(2) in wanted:
            names.append(name)
    return sorted(names)


def add_lora(transformer, rank: int, alpha: float, *, dtype: torch.dtype | None = None,
             adapter_name: str = "default") -> list[torch.nn.Parameter]:
    """Inject a PEFT LoRA (B = 0 at init); returns the trainable parameters."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=True, target_modules=target_modules(transformer))
    transformer.add_adapter(cfg, adapter_name=adapter_name)
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for p in params:
        if dtype is not None:
            p.data = p.data.to(dtype)
        p.requires_grad_(True)
    return params


def lora_factors(transformer, adapter_name: str = "default") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """module name -> (A, B*scale) in fp32: the delta is exactly (B*scale) @ A."""
    out = {}
    for name, mod in transformer.named_modules():
        a = getattr(mod, "lora_A", None)
        if not isinstance(a, torch.nn.ModuleDict) or adapter_name not in a:
            continue
        A = mod.lora_A[adapter_name].weight.detach().float().cpu()
        B = mod.lora_B[adapter_name].weight.detach().float().cpu()
        out[name] = (A, B * float(mod.scaling[adapter_name]))
    return out


def _split(name: str) -> tuple[str, int, str]:
    kind, idx, rest = name.split(".", 2)
    return kind, int(idx), rest


def to_bfl(factors: dict[str, tuple[torch.Tensor, torch.Tensor]], dtype=torch.bfloat16) -> dict[str, torch.Tensor]:
    """`diffusion_model.<BFL name>.lora_A/lora_B.weight`, alpha baked in (no `.alpha` keys)."""
    sd: dict[str, torch.Tensor] = {}
    blocks: dict[int, dict[str, tuple]] = {}
    for name, (A, B) in factors.items():
        kind, i, rest = _split(name)
        if kind == "single_transformer_blocks":
            bfl = f"single_blocks.{i}.{_SINGLE_BFL[rest]}"
        elif rest in _DOUBLE_BFL:
            bfl = f"double_blocks.{i}.{_DOUBLE_BFL[rest]}"
        else:
            blocks.setdefault(i, {})[rest] = (A, B)
            continue
        sd[f"{BFL_PREFIX}{bfl}.lora_A.weight"] = A
        sd[f"{BFL_PREFIX}{bfl}.lora_B.weight"] = B
    for i, parts in blocks.items():
        for fused, names in _FUSED.items():
            present = [n for n in names if n in parts]
            if not present:
                continue
            if len(present) != 3:
                raise ValueError(f"block {i}: {fused} needs LoRA on all of {names}, got {present}")
            As = [parts[n][0] for n in names]
            Bs = [parts[n][1] for n in names]
            sd[f"{BFL_PREFIX}double_blocks.{i}.{fused}.lora_A.weight"] = torch.cat(As, 0)
            sd[f"{BFL_PREFIX}double_blocks.{i}.{fused}.lora_B.weight"] = torch.block_diag(*Bs)
    return {k: v.to(dtype).contiguous() for k, v in sorted(sd.items())}


def to_diffusers(factors: dict[str, tuple[torch.Tensor, torch.Tensor]], dtype=torch.bfloat16) -> dict[str, torch.Tensor]:
    """`transformer.<module>.lora_A/lora_B.weight` (PEFT names), scale baked in so alpha = rank."""
    sd = {}
    for name, (A, B) in factors.items():
        sd[f"{DIFFUSERS_PREFIX}{name}.lora_A.weight"] = A.to(dtype).contiguous()
        sd[f"{DIFFUSERS_PREFIX}{name}.lora_B.weight"] = B.to(dtype).contiguous()
    return dict(sorted(sd.items()))


def merged_deltas(factors: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {n: B @ A for n, (A, B) in factors.items()}


def save_lora(transformer, out_dir, *, rank: int, alpha: float, metadata: dict[str, str] | None = None,
              dtype=torch.bfloat16, name: str = "lora") -> dict[str, str]:
    """Write `<name>.safetensors` (BFL) and `diffusers/pytorch_lora_weights.safetensors`; return paths."""
    from pathlib import Path

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    factors = lora_factors(transformer)
    meta = {"format": "pt", "klint.rank": str(rank), "klint.alpha": str(alpha), "klint.alpha_baked": "true",
            **(metadata or {})}
    bfl = out / f"{name}.safetensors"
    save_file(to_bfl(factors, dtype), str(bfl), metadata=meta)
    ddir = out / "diffusers"
    ddir.mkdir(exist_ok=True)
    dfile = ddir / "pytorch_lora_weights.safetensors"
    save_file(to_diffusers(factors, dtype), str(dfile), metadata=meta)
    return {"bfl": str(bfl), "diffusers": str(dfile)}
