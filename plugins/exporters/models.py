"""Turn `--model` (plus `--vae` / `--text-encoder`) into the exact files each trainer opens.

The trainers disagree on formats, so one path cannot serve all of them:
- musubi-tuner: BFL DiT single file, BFL `ae.safetensors` (its docs: the diffusers VAE cannot be used),
  Qwen3 as one file or the FIRST shard of the split files (`model-00001-of-0000N.safetensors`);
- diffusion-pipe: single files through ComfyUI's loaders (DiT, `flux2-vae.safetensors`, `qwen_3_*b.safetensors`);
- ai-toolkit: a folder holding the BFL DiT under its exact repo name (or a hub id), VAE `ae.safetensors`;
- DiffSynth-Studio and SimpleTuner: a diffusers folder (transformer/, text_encoder/, vae/, tokenizer/).

Accepted inputs: a diffusers folder (an HF snapshot of FLUX.2-klein-base-*, which also holds the BFL DiT file
at its top level), a ComfyUI `models/` folder (diffusion_models/, vae/, text_encoders/), or a DiT file with its
VAE and Qwen3 found beside it (ComfyUI or BFL names). Paths that exist here are resolved from disk; paths on
another machine (with --dry-run) fall back to the documented names, and every such guess is reported.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from pathlib import Path
from typing import Any

SIZE = {"klein-4b": "4b", "klein-9b": "9b"}
QWEN = {"klein-4b": "qwen_3_4b", "klein-9b": "qwen_3_8b"}
# BFL repo file names (ai-toolkit opens exactly this name inside name_or_path)
BFL_DIT = {"klein-4b": "flux-2-klein-base-4b.safetensors", "klein-9b": "flux-2-klein-base-9b.safetensors"}
# split Qwen3 in the BFL repos (musubi docs: pass the first of them)
QWEN_SHARDS = {"klein-4b": 2, "klein-9b": 4}
BFL_VAE = "ae.safetensors"
COMFY_VAE = "flux2-vae.safetensors"
# transformer width -> variant (img_in.weight rows), as diffusion-pipe detects it
WIDTH = {3072: "klein-4b", 4096: "klein-9b", 6144: "dev"}
HEADER_LIMIT = 64 * 1024 * 1024  # a safetensors header is JSON; refuse to read absurd sizes


@dataclasses.dataclass
class Resolved:
    """Files one tool needs, and what could not be confirmed on this machine."""

    paths: dict[str, str]  # label -> path, in the order the tool opens them
    missing: list[str] = dataclasses.field(default_factory=list)  # "label path" that do not exist here
    guessed: list[str] = dataclasses.field(default_factory=list)  # labels taken from naming conventions
    hints: list[str] = dataclasses.field(default_factory=list)  # how to supply a missing file

    def __getitem__(self, key: str) -> str:
        return self.paths[key]


def _local(path: str | None) -> Path | None:
    if not path:
        return None
    p = Path(path).expanduser()
    return p if p.exists() else None


def _glob_first(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        hits = sorted(p for p in folder.glob(pattern) if p.is_file())
        if hits:
            return hits[0]
    return None


def _dit_patterns(variant: str) -> tuple[str, ...]:
    s = SIZE[variant]
    return (f"flux*2*klein*base*{s}*.safetensors", f"*klein*base*{s}*.safetensors", f"*klein*{s}*.safetensors")


def _qwen_in(folder: Path, variant: str) -> Path | None:
    """A single Qwen3 file, else the first shard of split files (musubi / BFL convention)."""
    return _glob_first(folder, (f"{QWEN[variant]}*.safetensors", "model.safetensors", "model-00001-of-*.safetensors"))


def layout(model: str) -> str:
    """diffusers | comfyui | file | missing (not on this machine)."""
    p = _local(model)
    if p is None:
        return "missing"
    if p.is_file():
        return "file"
    if (p / "transformer").is_dir() or (p / "model_index.json").is_file():
        return "diffusers"
    if (p / "diffusion_models").is_dir():
        return "comfyui"
    return "folder"


def single_files(model: str, variant: str, vae_name: str, vae: str | None = None,
                 text_encoder: str | None = None, comfy_te: bool = False) -> Resolved:
    """DiT, VAE and Qwen3 as single files (musubi-tuner, diffusion-pipe).

    vae_name: the VAE file the tool wants (`ae.safetensors` for musubi, `flux2-vae.safetensors` for diffusion-pipe).
    comfy_te: the tool cannot read split Qwen3 files (diffusion-pipe loads one file through ComfyUI).
    """
    kind = layout(model)
    p = Path(model).expanduser()
    res = Resolved(paths={})
    vae_dirs: list[Path]
    te_dirs: list[Path]
    if kind == "diffusers" or kind == "folder":
        dit = _glob_first(p, _dit_patterns(variant))
        res.paths["DiT"] = str(dit or p / BFL_DIT[variant])
        if dit is None:
            res.missing.append(f"DiT {p / BFL_DIT[variant]}")
            res.hints.append(f"--model: the folder holds no BFL/ComfyUI {variant} DiT file "
                             f"({BFL_DIT[variant]}); the diffusers transformer/ shards cannot be used")
        vae_dirs, te_dirs = [p, p.parent], [p / "text_encoder", p, p.parent / "text_encoders"]
        if comfy_te:
            te_dirs = [p, p.parent / "text_encoders", p.parent]
    elif kind == "comfyui":
        dit = _glob_first(p / "diffusion_models", _dit_patterns(variant))
        res.paths["DiT"] = str(dit or p / "diffusion_models" / BFL_DIT[variant])
        if dit is None:
            res.missing.append(f"DiT {p / 'diffusion_models' / BFL_DIT[variant]}")
        vae_dirs, te_dirs = [p / "vae"], [p / "text_encoders"]
    else:  # a file here, or a path on the training machine
        res.paths["DiT"] = str(p)
        if kind == "missing":
            res.missing.append(f"DiT {p}")
        if p.parent.name == "diffusion_models":
            vae_dirs, te_dirs = [p.parent.parent / "vae"], [p.parent.parent / "text_encoders"]
        else:
            vae_dirs, te_dirs = [p.parent], [p.parent, p.parent / "text_encoder"]

    if vae:
        res.paths["VAE"] = str(Path(vae).expanduser())
        if _local(vae) is None:
            res.missing.append(f"VAE {vae}")
    else:
        names = (vae_name,) if vae_name == BFL_VAE else (vae_name, BFL_VAE)
        found = next((f for d in vae_dirs if d.is_dir() for f in [_glob_first(d, names)] if f), None)
        res.paths["VAE"] = str(found or vae_dirs[0] / vae_name)
        if found is None:
            res.guessed.append("VAE")
            res.missing.append(f"VAE {vae_dirs[0] / vae_name}")
            res.hints.append(f"pass --vae FILE (the BFL {BFL_VAE} from black-forest-labs/FLUX.2-dev"
                             + (", or ComfyUI's flux2-vae.safetensors" if vae_name != BFL_VAE else
                                "; the diffusers vae/ folder cannot be used") + ")")

    if text_encoder:
        res.paths["text encoder"] = str(Path(text_encoder).expanduser())
        if _local(text_encoder) is None:
            res.missing.append(f"text encoder {text_encoder}")
    else:
        found = next((f for d in te_dirs if d.is_dir() for f in [_qwen_in(d, variant)] if f), None)
        if found is not None and comfy_te and re.search(r"-0000[1-9]-of-", found.name):
            found = None  # ComfyUI loads one file: a shard of split weights would miss most of the model
        n = QWEN_SHARDS[variant]
        default = (te_dirs[0] / f"{QWEN[variant]}.safetensors" if comfy_te or kind not in ("diffusers", "folder")
                   else p / "text_encoder" / f"model-00001-of-{n:05d}.safetensors")
        res.paths["text encoder"] = str(found or default)
        if found is None:
            res.guessed.append("text encoder")
            res.missing.append(f"text encoder {default}")
            res.hints.append("pass --text-encoder FILE (" + (f"one {QWEN[variant]}.safetensors file: split shards "
                             "cannot be loaded by this tool" if comfy_te else
                             f"{QWEN[variant]}.safetensors, or the first shard model-00001-of-{n:05d}.safetensors "
                             "of the split Qwen3 files") + ")")
    return res


def diffusers_folder(model: str, variant: str) -> Resolved:
    """DiffSynth-Studio / SimpleTuner read the diffusers folder itself; check its parts when it is here."""
    p = Path(model).expanduser()
    res = Resolved(paths={"model": str(p)})
    kind = layout(model)
    if kind == "missing":
        res.missing.append(f"model folder {p}")
        return res
    if kind != "diffusers":
        res.missing.append(f"diffusers folder {p} (transformer/, text_encoder/, vae/, tokenizer/)")
        res.hints.append("--model must be a diffusers FLUX.2-klein-base folder for this tool, not a single file")
        return res
    for part, pattern in (("transformer", "*.safetensors"), ("text_encoder", "*.safetensors"),
                          ("vae", "diffusion_pytorch_model*.safetensors"), ("tokenizer", "*")):
        if _glob_first(p / part, (pattern,)) is None:
            res.missing.append(f"{part} {p / part}/{pattern}")
    return res


def read_header(path: str) -> dict[str, Any] | None:
    """The JSON header of a local .safetensors file (tensor names, dtypes, shapes), or None."""
    p = _local(path)
    if p is None or not p.is_file():
        return None
    try:
        with open(p, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size <= 0 or size > HEADER_LIMIT:
                return None
            return json.loads(f.read(size))
    except (OSError, struct.error, ValueError):
        return None


def describe_model(model: str, variant: str) -> tuple[str, list[str]]:
    """What klint knows about the model (for the plan) and warnings; never a guess presented as fact."""
    kind = layout(model)
    notes: list[str] = []
    if kind == "missing":
        return "not on this machine: cannot tell base or distilled, size or dtype from the name", notes
    dit = None
    if kind == "file":
        dit = model
    elif kind in ("diffusers", "folder", "comfyui"):
        base = Path(model).expanduser()
        found = _glob_first(base / "diffusion_models" if kind == "comfyui" else base, _dit_patterns(variant))
        dit = str(found) if found else None
    header = read_header(dit) if dit else None
    if header is None:
        what = f"{kind} layout; no readable DiT header: cannot tell base or distilled, size or dtype"
        return what, notes
    width = None
    dtypes: dict[str, int] = {}
    for key, info in header.items():
        if not isinstance(info, dict) or "dtype" not in info:
            continue
        dtypes[info["dtype"]] = dtypes.get(info["dtype"], 0) + 1
        if key.endswith("img_in.weight") and isinstance(info.get("shape"), list) and info["shape"]:
            width = int(info["shape"][0])
    found_variant = WIDTH.get(width or 0)
    dtype = max(dtypes, key=dtypes.get) if dtypes else "unknown"
    size = f"{found_variant} (img_in width {width})" if found_variant else "size unknown (no img_in.weight)"
    if found_variant and found_variant != variant:
        notes.append(f"{Path(dit).name} is a {found_variant} transformer (img_in width {width}) but the recipe is "
                     f"{variant}")
    return (f"{Path(dit).name}: {size}, weights {dtype}; base or distilled cannot be told from the file "
            "(train the base model)"), notes
