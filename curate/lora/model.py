"""Klein transformer shapes and the two module namings (diffusers and BFL), as data.

Dims from diffusers' Flux2Transformer2DModel configs for FLUX.2 [klein] (scripts/convert_flux2_to_diffusers.py):
hidden = heads x 128, mlp_ratio 3 (SwiGLU: linear_in is D -> 2F), in_channels 128, no biases.
The test model is klint's own tiny pipeline (plugins/klein/tiny.py), so a klint-trained tiny LoRA lints clean.
"""

from __future__ import annotations

import dataclasses
import functools


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str
    hidden: int
    double: int
    single: int
    joint: int  # text feature width (3 Qwen3 layers)
    in_channels: int = 128
    mlp_ratio: float = 3.0
    hidden_flag: bool = False  # not offered on the command line

    @property
    def mlp(self) -> int:
        return int(self.hidden * self.mlp_ratio)


SPECS = {
    "klein-4b": Spec("klein-4b", 3072, 5, 20, 7680),
    "klein-9b": Spec("klein-9b", 4096, 8, 24, 12288),
    "klint-tiny": Spec("klint-tiny", 32, 2, 2, 48, in_channels=16, hidden_flag=True),
}

# the 14 block linears LoRA should cover: diffusers suffix -> BFL suffix (q/k/v fuse into one BFL qkv)
DOUBLE = {
    "attn.to_q": "img_attn.qkv", "attn.to_k": "img_attn.qkv", "attn.to_v": "img_attn.qkv",
    "attn.to_out.0": "img_attn.proj",
    "attn.add_q_proj": "txt_attn.qkv", "attn.add_k_proj": "txt_attn.qkv", "attn.add_v_proj": "txt_attn.qkv",
    "attn.to_add_out": "txt_attn.proj",
    "ff.linear_in": "img_mlp.0", "ff.linear_out": "img_mlp.2",
    "ff_context.linear_in": "txt_mlp.0", "ff_context.linear_out": "txt_mlp.2",
}
SINGLE = {"attn.to_qkv_mlp_proj": "linear1", "attn.to_out": "linear2"}
FUSED = {"img_attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
         "txt_attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
# modules outside the blocks (diffusers -> BFL); loaders map them, klint does not train them
EXTRA = {
    "x_embedder": "img_in", "context_embedder": "txt_in", "proj_out": "final_layer.linear",
    "time_guidance_embed.timestep_embedder.linear_1": "time_in.in_layer",
    "time_guidance_embed.timestep_embedder.linear_2": "time_in.out_layer",
    "norm_out.linear": "final_layer.adaLN_modulation.1",
    "single_stream_modulation.linear": "single_stream_modulation.lin",
    "double_stream_modulation_img.linear": "double_stream_modulation_img.lin",
    "double_stream_modulation_txt.linear": "double_stream_modulation_txt.lin",
}


def _shape(spec: Spec, suffix: str) -> tuple[int, int]:
    """(in, out) of a block linear."""
    d, f = spec.hidden, spec.mlp
    return {
        "ff.linear_in": (d, 2 * f), "ff_context.linear_in": (d, 2 * f),
        "ff.linear_out": (f, d), "ff_context.linear_out": (f, d),
        "attn.to_qkv_mlp_proj": (d, 3 * d + 2 * f), "attn.to_out": (d + f, d),
    }.get(suffix, (d, d))


def _extra_shape(spec: Spec, name: str) -> tuple[int, int]:
    d = spec.hidden
    return {
        "x_embedder": (spec.in_channels, d), "context_embedder": (spec.joint, d), "proj_out": (d, spec.in_channels),
        "time_guidance_embed.timestep_embedder.linear_1": (256, d),
        "time_guidance_embed.timestep_embedder.linear_2": (d, d), "norm_out.linear": (d, 2 * d),
        "single_stream_modulation.linear": (d, 3 * d), "double_stream_modulation_img.linear": (d, 6 * d),
        "double_stream_modulation_txt.linear": (d, 6 * d),
    }[name]


@functools.lru_cache(maxsize=None)
def diffusers_modules(spec_name: str) -> dict[str, tuple[int, int]]:
    """Every Linear of Flux2Transformer2DModel a LoRA can target: name -> (in, out)."""
    spec = SPECS[spec_name]
    out = {n: _extra_shape(spec, n) for n in EXTRA}
    for i in range(spec.double):
        for s in DOUBLE:
            out[f"transformer_blocks.{i}.{s}"] = _shape(spec, s)
    for i in range(spec.single):
        for s in SINGLE:
            out[f"single_transformer_blocks.{i}.{s}"] = _shape(spec, s)
    return out


@functools.lru_cache(maxsize=None)
def bfl_modules(spec_name: str) -> dict[str, tuple[int, int]]:
    """Every Linear of the BFL (ComfyUI) Flux2 model a LoRA can target: name -> (in, out)."""
    spec = SPECS[spec_name]
    out = {bfl: _extra_shape(spec, d) for d, bfl in EXTRA.items()}
    for i in range(spec.double):
        for s, b in DOUBLE.items():
            i_, o_ = _shape(spec, s)
            out[f"double_blocks.{i}.{b}"] = (i_, o_ * 3 if b in FUSED else o_)
    for i in range(spec.single):
        for s, b in SINGLE.items():
            out[f"single_blocks.{i}.{b}"] = _shape(spec, s)
    return out


def block_linears() -> int:
    return len(DOUBLE) + len(SINGLE)
