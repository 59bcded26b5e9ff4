"""Key names of each trainer's Klein LoRA files, read from their saving code (facts, not code).

- BFL / ComfyUI `diffusion_model.<bfl module>.lora_A|lora_B.weight`: klint, ai-toolkit (metadata `software`
  names ai-toolkit), diffusion-pipe (`adapter_model.safetensors`, metadata only `format: pt`); ComfyUI also
  reads `.lora_down/.lora_up` + `.alpha` under the same names.
- kohya `lora_unet_<bfl module, dots as _>.lora_down|lora_up.weight` + `.alpha`: musubi-tuner
  (`networks.lora_flux_2`, metadata `ss_network_module`).
- diffusers / PEFT `transformer.<diffusers module>.lora_A|lora_B.weight`: diffusers' example and SimpleTuner
  (`save_lora_weights`; alpha only in `lora_adapter_metadata`); SimpleTuner can fuse q/k/v to `attn.to_qkv`.
- OneTrainer `lora_transformer_<diffusers module, dots as _>.lora_down|lora_up.weight` + `.alpha`.
- raw PEFT `base_model.model.<bfl module>`; SimpleTuner LyCORIS `lycoris_<diffusers module as _>`.
"""

from __future__ import annotations

import dataclasses
import json
import re

from curate.lora.model import DOUBLE, EXTRA, FUSED, SINGLE

# (down suffix, up suffix): the pair spellings ComfyUI's load_lora accepts
PAIRS = ((".lora_A.weight", ".lora_B.weight"), (".lora_down.weight", ".lora_up.weight"),
         ("_lora.down.weight", "_lora.up.weight"), (".lora.down.weight", ".lora.up.weight"),
         (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"))
SINGLETONS = (".alpha", ".dora_scale", ".lora_mid.weight")
_SUFFIXES = sorted([s for p in PAIRS for s in p] + list(SINGLETONS), key=len, reverse=True)

_BFL_BLOCK = {**{b: None for b in DOUBLE.values()}}
_DIFF_FUSED = {"attn.to_qkv": FUSED["img_attn.qkv"], "attn.to_added_qkv": FUSED["txt_attn.qkv"]}
_BFL_EXTRA = {b: d for d, b in EXTRA.items()}
_DIFF_TO_BFL_DOUBLE = {d: b for d, b in DOUBLE.items() if b not in FUSED}
_BFL_TO_DIFF_DOUBLE = {b: d for d, b in _DIFF_TO_BFL_DOUBLE.items()}
_BFL_TO_DIFF_SINGLE = {b: d for d, b in SINGLE.items()}
_US = lambda s: s.replace(".", "_")  # noqa: E731
_RE_BFL_US = re.compile(r"^(double_blocks|single_blocks)_(\d{1,4})_(.+)$")
_RE_DIFF_US = re.compile(r"^(single_transformer_blocks|transformer_blocks)_(\d{1,4})_(.+)$")
_RE_BFL = re.compile(r"^(double_blocks|single_blocks)\.(\d{1,4})\.(.+)$")
_RE_DIFF = re.compile(r"^(single_transformer_blocks|transformer_blocks)\.(\d{1,4})\.(.+)$")
_BFL_DOUBLE_US = {_US(b): b for b in set(DOUBLE.values())}
_BFL_SINGLE_US = {_US(b): b for b in SINGLE.values()}
_BFL_EXTRA_US = {_US(b): b for b in _BFL_EXTRA}
_DIFF_DOUBLE_US = {_US(d): d for d in [*DOUBLE, *_DIFF_FUSED]}
_DIFF_SINGLE_US = {_US(d): d for d in SINGLE}
_DIFF_EXTRA_US = {_US(d): d for d in EXTRA}

FAMILIES = {
    "bfl": "BFL/ComfyUI `diffusion_model.`",
    "kohya": "kohya `lora_unet_`",
    "diffusers": "diffusers/PEFT `transformer.`",
    "onetrainer": "OneTrainer `lora_transformer_`",
    "peft-raw": "raw PEFT `base_model.model.`",
    "lycoris": "LyCORIS `lycoris_`",
    "bare": "bare diffusers module names",
}


@dataclasses.dataclass
class Module:
    """One stored LoRA pair: B @ A is the delta of `targets` (three, row-stacked, for a fused qkv)."""

    prefix: str  # as stored, e.g. diffusion_model.double_blocks.0.img_attn.qkv
    family: str
    targets: tuple[str, ...]  # diffusers module names it covers
    down: str | None = None  # key of A
    up: str | None = None  # key of B
    alpha: str | None = None
    extra: list[str] = dataclasses.field(default_factory=list)  # dora_scale, lora_mid

    @property
    def fused(self) -> bool:
        return len(self.targets) > 1

    @property
    def block(self) -> tuple[str, int] | None:
        m = _RE_DIFF.match(self.targets[0])
        return (("double" if m.group(1) == "transformer_blocks" else "single"), int(m.group(2))) if m else None


def split_key(key: str) -> tuple[str, str] | None:
    for s in _SUFFIXES:
        if key.endswith(s) and len(key) > len(s):
            return key[: -len(s)], s
    return None


def _bfl_targets(path: str) -> tuple[str, ...] | None:
    m = _RE_BFL.match(path)
    if m:
        kind, i, rest = m.groups()
        if kind == "double_blocks":
            if rest in FUSED:
                return tuple(f"transformer_blocks.{i}.{d}" for d in FUSED[rest])
            d = _BFL_TO_DIFF_DOUBLE.get(rest)
            return (f"transformer_blocks.{i}.{d}",) if d else None
        d = _BFL_TO_DIFF_SINGLE.get(rest)
        return (f"single_transformer_blocks.{i}.{d}",) if d else None
    d = _BFL_EXTRA.get(path)
    return (d,) if d else None


def _diff_targets(path: str) -> tuple[str, ...] | None:
    m = _RE_DIFF.match(path)
    if m:
        kind, i, rest = m.groups()
        if kind == "transformer_blocks" and rest in _DIFF_FUSED:
            return tuple(f"transformer_blocks.{i}.{d}" for d in _DIFF_FUSED[rest])
        table = DOUBLE if kind == "transformer_blocks" else SINGLE
        return (path,) if rest in table else None
    return (path,) if path in EXTRA else None


def _us_to_bfl(path: str) -> str | None:
    m = _RE_BFL_US.match(path)
    if m:
        kind, i, rest = m.groups()
        b = (_BFL_DOUBLE_US if kind == "double_blocks" else _BFL_SINGLE_US).get(rest)
        return f"{kind}.{i}.{b}" if b else None
    return _BFL_EXTRA_US.get(path)


def _us_to_diff(path: str) -> str | None:
    m = _RE_DIFF_US.match(path)
    if m:
        kind, i, rest = m.groups()
        d = (_DIFF_DOUBLE_US if kind == "transformer_blocks" else _DIFF_SINGLE_US).get(rest)
        return f"{kind}.{i}.{d}" if d else None
    return _DIFF_EXTRA_US.get(path)


def resolve(prefix: str) -> tuple[str, tuple[str, ...]] | None:
    """(family, diffusers targets) of a stored module prefix, or None when no naming knows it."""
    for head, family in (("diffusion_model.", "bfl"), ("base_model.model.", "peft-raw")):
        if prefix.startswith(head):
            t = _bfl_targets(prefix[len(head):])
            return (family, t) if t else None
    if prefix.startswith("transformer."):
        t = _diff_targets(prefix[len("transformer."):])
        return ("diffusers", t) if t else None
    if prefix.startswith("lora_unet_"):
        b = _us_to_bfl(prefix[len("lora_unet_"):])
        t = _bfl_targets(b) if b else None
        return ("kohya", t) if t else None
    for head, family in (("lora_transformer_", "onetrainer"), ("lycoris_", "lycoris")):
        if prefix.startswith(head):
            d = _us_to_diff(prefix[len(head):])
            t = _diff_targets(d) if d else None
            return (family, t) if t else None
    t = _diff_targets(prefix)
    return ("bare", t) if t else None


@dataclasses.dataclass
class Parsed:
    modules: dict[str, Module]
    unknown: list[str]  # keys no naming knows
    family: str | None  # the majority family
    source: str  # best guess of the tool that wrote it

    @property
    def label(self) -> str:
        if self.family is None:
            return "unknown"
        fused = any(m.fused for m in self.modules.values())
        q = "fused q/k/v" if fused else "split q/k/v"
        return f"{FAMILIES[self.family]} ({self.source}; {q})"


def _source(family: str | None, metadata: dict[str, str], kohya_suffix: bool) -> str:
    meta_text = " ".join(f"{k}={v[:2000]}" for k, v in metadata.items()).lower()
    if any(k.startswith("klint.") for k in metadata):
        return "klint"
    if family == "bfl":
        if "ai-toolkit" in meta_text or "ostris" in meta_text:
            return "ai-toolkit"
        if set(metadata) <= {"format"} and not kohya_suffix:
            return "diffusion-pipe or ai-toolkit"
        return "ComfyUI-style" if kohya_suffix else "BFL-style"
    if family == "kohya":
        return "musubi-tuner" if "lora_flux_2" in meta_text or "musubi" in meta_text else "kohya-style"
    if family == "diffusers":
        if "simpletuner" in meta_text:
            return "SimpleTuner"
        return "diffusers or SimpleTuner"
    if family == "onetrainer":
        return "OneTrainer"
    if family == "lycoris":
        return "SimpleTuner LyCORIS"
    return family or "unknown"


def parse(keys, metadata: dict[str, str]) -> Parsed:
    modules: dict[str, Module] = {}
    unknown: list[str] = []
    kohya_suffix = False
    for key in keys:
        sp = split_key(key)
        res = resolve(sp[0]) if sp else None
        if res is None:
            unknown.append(key)
            continue
        prefix, suffix = sp
        family, targets = res
        mod = modules.get(prefix)
        if mod is None:
            mod = modules[prefix] = Module(prefix, family, targets)
        if suffix == ".alpha":
            mod.alpha = key
        elif suffix in (".dora_scale", ".lora_mid.weight"):
            mod.extra.append(key)
        else:
            for down, up in PAIRS:
                if suffix == down:
                    mod.down = key
                elif suffix == up:
                    mod.up = key
            kohya_suffix |= "lora_down" in suffix or "lora_up" in suffix
    counts: dict[str, int] = {}
    for m in modules.values():
        counts[m.family] = counts.get(m.family, 0) + 1
    family = max(counts, key=counts.get) if counts else None
    return Parsed(modules, sorted(unknown), family, _source(family, metadata, kohya_suffix))


def metadata_alpha(metadata: dict[str, str]) -> tuple[float | None, bool]:
    """(training alpha recorded in the metadata, whether the writer baked it into B)."""
    def num(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    peft = peft_alpha(metadata)
    if "klint.alpha" in metadata:
        return num(metadata["klint.alpha"]), metadata.get("klint.alpha_baked", "").lower() == "true"
    if "ss_network_alpha" in metadata:
        return num(metadata["ss_network_alpha"]), False
    return peft, False


def peft_alpha(metadata: dict[str, str]) -> float | None:
    """lora_alpha from diffusers' `lora_adapter_metadata`: the one alpha diffusers applies to PEFT keys."""
    raw = metadata.get("lora_adapter_metadata") or metadata.get("transformer.lora_adapter_metadata")
    if not raw:
        return None
    try:
        cfg = json.loads(raw[:100_000])
    except (ValueError, RecursionError):
        return None
    v = cfg.get("lora_alpha") if isinstance(cfg, dict) else None
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
