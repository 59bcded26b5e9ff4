"""LoRA files in each trainer's naming, with small random tensors under real Klein key names and shapes.

Key names and layouts are the ones each tool's saving code writes (see curate/lora/naming.py);
files are written with the real `safetensors` library, not klint's writer.
"""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save_file

from curate.lora.model import DOUBLE, FUSED, SINGLE, SPECS, bfl_modules, diffusers_modules

BFL_BLOCK = sorted(set(DOUBLE.values())) + list(SINGLE.values())


def _rng(seed):
    return np.random.default_rng(seed)


def factors(spec="klein-4b", rank=2, seed=0, dtype=np.float32):
    """diffusers target -> (A, B), every block linear, nonzero B."""
    g = _rng(seed)
    out = {}
    for name, (i, o) in diffusers_modules(spec).items():
        if not name.startswith(("transformer_blocks.", "single_transformer_blocks.")):
            continue
        out[name] = ((g.standard_normal((rank, i)) / np.sqrt(i)).astype(dtype),
                     (g.standard_normal((o, rank)) * 0.01).astype(dtype))
    return out


def bfl_factors(spec="klein-4b", rank=2, seed=0, dtype=np.float32):
    """BFL module -> (A, B): fused qkv as one rank-`rank` pair (how ai-toolkit/diffusion-pipe/musubi train)."""
    g = _rng(seed)
    out = {}
    for name, (i, o) in bfl_modules(spec).items():
        if not name.startswith(("double_blocks.", "single_blocks.")):
            continue
        out[name] = ((g.standard_normal((rank, i)) / np.sqrt(i)).astype(dtype),
                     (g.standard_normal((o, rank)) * 0.01).astype(dtype))
    return out


def write(path, sd, metadata=None):
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(path), metadata=metadata)
    return path


def bfl_file(path, spec="klein-4b", rank=2, metadata=None, **kw):
    sd = {}
    for m, (A, B) in bfl_factors(spec, rank, **kw).items():
        sd[f"diffusion_model.{m}.lora_A.weight"] = A
        sd[f"diffusion_model.{m}.lora_B.weight"] = B
    return write(path, sd, metadata if metadata is not None else {"format": "pt"})


def ai_toolkit_file(path, spec="klein-4b", rank=2):
    meta = {"software": json.dumps({"name": "ai-toolkit", "repo": "https://github.com/ostris/ai-toolkit",
                                    "version": "0.7"}), "name": "jane", "version": "1.0", "format": "pt"}
    return bfl_file(path, spec, rank, meta)


def comfy_kohya_suffix_file(path, spec="klein-4b", rank=2, alpha=1.0):
    sd = {}
    for m, (A, B) in bfl_factors(spec, rank).items():
        sd[f"diffusion_model.{m}.lora_down.weight"] = A
        sd[f"diffusion_model.{m}.lora_up.weight"] = B
        sd[f"diffusion_model.{m}.alpha"] = np.array(alpha, dtype=np.float32)
    return write(path, sd)


def musubi_file(path, spec="klein-4b", rank=2, alpha=1.0, drop_alpha=False):
    sd = {}
    for m, (A, B) in bfl_factors(spec, rank).items():
        k = "lora_unet_" + m.replace(".", "_")
        sd[f"{k}.lora_down.weight"] = A
        sd[f"{k}.lora_up.weight"] = B
        if not drop_alpha:
            sd[f"{k}.alpha"] = np.array(alpha, dtype=np.float32)
    meta = {"ss_network_module": "networks.lora_flux_2", "ss_network_dim": str(rank), "ss_network_alpha": str(alpha),
            "ss_base_model_version": "flux2_klein_4b"}
    return write(path, sd, meta)


def diffusers_file(path, spec="klein-4b", rank=2, metadata=None, fused=False):
    sd = {}
    f = factors(spec, rank)
    for t, (A, B) in f.items():
        if fused and t.rsplit(".", 1)[-1] in ("to_q", "to_k", "to_v", "add_q_proj", "add_k_proj", "add_v_proj"):
            continue
        sd[f"transformer.{t}.lora_A.weight"] = A
        sd[f"transformer.{t}.lora_B.weight"] = B
    if fused:
        g = _rng(3)
        D = SPECS[spec].hidden
        for i in range(SPECS[spec].double):
            for name in ("to_qkv", "to_added_qkv"):
                sd[f"transformer.transformer_blocks.{i}.attn.{name}.lora_A.weight"] = g.standard_normal((rank, D)).astype(np.float32)
                sd[f"transformer.transformer_blocks.{i}.attn.{name}.lora_B.weight"] = g.standard_normal((3 * D, rank)).astype(np.float32)
    return write(path, sd, metadata)


def onetrainer_file(path, spec="klein-4b", rank=2, alpha=2.0):
    sd = {}
    for t, (A, B) in factors(spec, rank).items():
        k = "lora_transformer_" + t.replace(".", "_")
        sd[f"{k}.lora_down.weight"] = A
        sd[f"{k}.lora_up.weight"] = B
        sd[f"{k}.alpha"] = np.array(alpha, dtype=np.float32)
    return write(path, sd)


FUSED_NAMES = FUSED
