"""Resolve `--model` to a `Flux2KleinPipeline`, offline.

Accepted: `tiny` (random test model), a diffusers folder (model_index.json), a hub id already in
the local Hugging Face cache, or a single-file BFL/ComfyUI transformer checkpoint (.safetensors),
whose VAE, text encoder and tokenizer come from a base diffusers folder or cached repo
(`KLINT_KLEIN_BASE`, else the official base repo of the detected size).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch

from curate.errors import KlintError

log = logging.getLogger("klint.train")

BASE_REPOS = {"klein-4b": "black-forest-labs/FLUX.2-klein-base-4B", "klein-9b": "black-forest-labs/FLUX.2-klein-base-9B"}
_HIDDEN_TO_MODEL = {3072: "klein-4b", 4096: "klein-9b"}
DISTILLED_WARNING = ("{what} looks like a distilled FLUX.2 klein checkpoint: train on the base model "
                     "(FLUX.2-klein-base-4B/-9B); distilled training gives grey blocks and generic faces, "
                     "and a LoRA trained on base also runs on distilled")


def looks_distilled(name: str) -> bool:
    n = name.lower()
    return bool(re.search(r"klein[-_]?(4|9)b", n)) and "base" not in n


PIPELINE_CLASSES = ("Flux2KleinPipeline", "Flux2KleinKVPipeline")


def _from_pretrained(src: str | Path, dtype: torch.dtype, **kw):
    from diffusers import DiffusionPipeline

    # safetensors only: a pickled .bin in a model folder is code, and diffusers would load it
    kw.setdefault("use_safetensors", True)
    pipe = DiffusionPipeline.from_pretrained(src, dtype=dtype, trust_remote_code=False, **kw)
    if type(pipe).__name__ not in PIPELINE_CLASSES:
        raise KlintError(f"{src}: is a {type(pipe).__name__}, not a FLUX.2 [klein] pipeline")
    return pipe


def _bfl_hidden_size(path: Path) -> tuple[int | None, str]:
    """The DiT width and key prefix of a BFL/ComfyUI single-file checkpoint, from its header only."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        for prefix in ("", "model.diffusion_model.", "diffusion_model."):
            k = f"{prefix}img_in.weight"
            if k in keys:
                return int(f.get_slice(k).get_shape()[0]), prefix
    return None, ""


def load_single_file(path: Path, dtype: torch.dtype, base: str | None = None):
    from diffusers import Flux2Transformer2DModel

    hidden, prefix = _bfl_hidden_size(path)
    if hidden is None:
        raise KlintError(f"{path}: not a FLUX.2 transformer checkpoint (no img_in.weight in BFL/ComfyUI naming)")
    base = base or os.environ.get("KLINT_KLEIN_BASE")
    if base is None:
        size = _HIDDEN_TO_MODEL.get(hidden)
        if size is None:
            raise KlintError(f"{path}: unknown FLUX.2 width {hidden}; set KLINT_KLEIN_BASE to a matching base "
                             "diffusers folder for the VAE and text encoder")
        base = BASE_REPOS[size]
    try:
        source: object = str(path)
        if prefix:
            # diffusers' Flux2 converter expects bare BFL keys; ComfyUI files carry a prefix
            from safetensors.torch import load_file

            source = {k[len(prefix):]: v for k, v in load_file(str(path)).items() if k.startswith(prefix)}
        transformer = Flux2Transformer2DModel.from_single_file(
            source, config=str(base), subfolder="transformer", torch_dtype=dtype, local_files_only=True)
        pipe = _from_pretrained(base, dtype, transformer=transformer, local_files_only=True)
    except (OSError, EnvironmentError, ValueError) as exc:
        raise KlintError(f"{path}: single-file checkpoints need the VAE, text encoder and tokenizer from {base}, "
                         f"which is not available offline ({type(exc).__name__}); download it once or set "
                         "KLINT_KLEIN_BASE to a local diffusers folder") from None
    return pipe


def load_pipeline(spec: str, *, dtype: torch.dtype = torch.float32, warn=log.warning):
    """A Flux2KleinPipeline for `spec` (see module doc). Warns when the checkpoint is distilled."""
    if spec == "tiny":
        from plugins.klein.tiny import build_tiny_pipeline

        pipe = build_tiny_pipeline(seed=0)
        return pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    path = Path(spec).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise KlintError(f"{spec}: not a diffusers model folder (no model_index.json)")
        try:
            cls = json.loads(index.read_text()).get("_class_name")
        except (OSError, ValueError):
            cls = None
        if cls not in (None, *PIPELINE_CLASSES):
            raise KlintError(f"{spec}: a {cls} folder, expected a FLUX.2 [klein] (Flux2KleinPipeline) model")
        pipe = _from_pretrained(path, dtype)
    elif path.is_file():
        if path.suffix not in (".safetensors", ".sft"):
            raise KlintError(f"{spec}: single-file checkpoints must be .safetensors")
        pipe = load_single_file(path, dtype)
    elif re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
        try:
            pipe = _from_pretrained(spec, dtype, local_files_only=True)
        except (OSError, EnvironmentError, ValueError):
            raise KlintError(f"{spec}: not in the local Hugging Face cache and klint does not download; run "
                             f"`huggingface-cli download {spec}` first, or pass a local folder") from None
    else:
        raise KlintError(f"{spec}: no such model folder or file (expected a diffusers folder, a cached hub id, "
                         "a .safetensors checkpoint, or `tiny`)")
    if getattr(pipe.config, "is_distilled", False) or looks_distilled(spec):
        warn(DISTILLED_WARNING.format(what=spec))
    return pipe


def model_size(transformer) -> str:
    """klein-4b / klein-9b from the DiT width (the tiny model reports 'tiny')."""
    d = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    return _HIDDEN_TO_MODEL.get(d, "tiny")
