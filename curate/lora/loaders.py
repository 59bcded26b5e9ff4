"""Which keys of a file would load into Klein, per loader, from the loaders' own logic (key names only).

diffusers 0.42 (`Flux2LoraLoaderMixin.lora_state_dict` -> `load_lora_adapter`):
  `dora_scale` keys dropped; any `.lora_down.weight` -> the kohya converter, which maps `lora_unet_<bfl>` for
  the block indices it finds (+ img_in, txt_in, time_in, final_layer.linear), bakes alpha/rank and drops the
  rest with a warning; else `base_model.model.` is renamed `diffusion_model.`, and any `diffusion_model.` key
  sends every key through the BFL converter, which raises on anything it does not map (an `.alpha` key
  fails the whole file); then every key must contain "lora" (else the file is refused), only `transformer.`
  keys go to the transformer, and PEFT ignores keys whose module the model lacks.
ComfyUI (`comfy/lora.py` `model_lora_keys_unet` + `load_lora`, Flux2 diffusers names since PR #11981):
  a module loads when its prefix is `diffusion_model.<bfl>`, `lora_unet_<bfl as _>`, `transformer.<diffusers>`,
  `lora_transformer_<diffusers as _>` or `lycoris_<diffusers as _>` of a module the model has, and its up
  matrix is present in one of five spellings; `.alpha`/`.dora_scale`/`.lora_mid` ride along; the rest is
  "lora key not loaded".
"""

from __future__ import annotations

import dataclasses
import functools

from curate.lora.model import EXTRA, bfl_modules, diffusers_modules
from curate.lora.naming import PAIRS, split_key

_KOHYA_EXTRA = ("img_in", "txt_in", "time_in.in_layer", "time_in.out_layer", "final_layer.linear")
_BFL_EXTRA_DIFFUSERS = {"img_in", "txt_in", "time_in.in_layer", "time_in.out_layer", "guidance_in.in_layer",
                        "guidance_in.out_layer", "final_layer.linear", "final_layer.adaLN_modulation.1",
                        "single_stream_modulation.lin", "double_stream_modulation_img.lin",
                        "double_stream_modulation_txt.lin"}


@dataclasses.dataclass
class LoadResult:
    loader: str
    total: int
    loaded: set[str]
    fatal: str | None = None  # the loader refuses the whole file, or loads nothing from it
    modules: frozenset = frozenset()  # diffusers module names that receive a LoRA

    @property
    def ignored(self) -> list[str]:
        return [] if self.fatal else sorted(set(self._keys) - self.loaded)

    _keys: tuple[str, ...] = ()


@functools.lru_cache(maxsize=None)
def _comfy_prefixes(spec: str) -> frozenset[str]:
    out = set()
    for b in bfl_modules(spec):
        out |= {f"diffusion_model.{b}", "lora_unet_" + b.replace(".", "_")}
    for d in diffusers_modules(spec):
        us = d.replace(".", "_")
        out |= {f"transformer.{d}", f"lora_transformer_{us}", f"lycoris_{us}"}
    return frozenset(out)


def comfyui(keys: list[str], spec: str) -> LoadResult:
    known = _comfy_prefixes(spec)
    keyset = set(keys)
    loaded = set()
    for k in keys:
        sp = split_key(k)
        if sp is None or sp[0] not in known:
            continue
        prefix, suffix = sp
        for down, up in PAIRS:
            if suffix in (down, up) and prefix + up in keyset:
                loaded.add(k)
        if suffix in (".alpha", ".dora_scale") or (suffix == ".lora_mid.weight" and prefix + ".lora_up.weight" in keyset):
            loaded.add(k)
    if not loaded and keys:
        return LoadResult("ComfyUI", len(keys), set(), f"loads none of the {len(keys)} keys (\"lora key not "
                          f"loaded\" for each, e.g. {keys[0][:80]})", _keys=tuple(keys))
    return LoadResult("ComfyUI", len(keys), loaded, None, _keys=tuple(keys))


def _kohya(keys: list[str], spec: str) -> tuple[dict[str, list[str]], str | None]:
    """diffusers' kohya path: converted module -> source keys."""
    keyset = set(keys)
    nd = ns = 0
    for k in keys:
        for head in ("lora_unet_double_blocks_", "lora_unet_single_blocks_"):
            if k.startswith(head):
                idx = k.split("_")[4]
                if not idx.isdigit():
                    return {}, f"diffusers' kohya converter fails on {k[:80]!r} (int() of {idx[:20]!r})"
                if "double" in head:
                    nd = max(nd, int(idx) + 1)
                else:
                    ns = max(ns, int(idx) + 1)
    pairs = []
    for i in range(nd):
        for b, d in (("img_attn.proj", ("attn.to_out.0",)), ("img_attn.qkv", ("attn.to_q", "attn.to_k", "attn.to_v")),
                     ("txt_attn.proj", ("attn.to_add_out",)),
                     ("txt_attn.qkv", ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")),
                     ("img_mlp.0", ("ff.linear_in",)), ("img_mlp.2", ("ff.linear_out",)),
                     ("txt_mlp.0", ("ff_context.linear_in",)), ("txt_mlp.2", ("ff_context.linear_out",))):
            pairs.append((f"lora_unet_double_blocks_{i}_{b.replace('.', '_')}",
                          [f"transformer_blocks.{i}.{x}" for x in d]))
    for i in range(ns):
        pairs += [(f"lora_unet_single_blocks_{i}_linear1", [f"single_transformer_blocks.{i}.attn.to_qkv_mlp_proj"]),
                  (f"lora_unet_single_blocks_{i}_linear2", [f"single_transformer_blocks.{i}.attn.to_out"])]
    bfl_to_diff = {b: d for d, b in EXTRA.items()}
    pairs += [("lora_unet_" + b.replace(".", "_"), [bfl_to_diff[b]]) for b in _KOHYA_EXTRA]
    out: dict[str, list[str]] = {}
    for src, targets in pairs:
        down = src + ".lora_down.weight"
        if down not in keyset:
            continue
        if src + ".lora_up.weight" not in keyset:
            return {}, f"diffusers' kohya converter fails: {down} has no .lora_up.weight (KeyError)"
        used = [down, src + ".lora_up.weight"] + ([src + ".alpha"] if src + ".alpha" in keyset else [])
        for t in targets:
            out.setdefault(t, []).extend(used)
    return out, None


def _bfl(keys: list[str]) -> tuple[dict[str, list[str]], str | None]:
    """diffusers' BFL converter: strips 16 chars from every key, raises on leftovers."""
    out: dict[str, list[str]] = {}
    left = []
    for k in keys:
        body = k[len("diffusion_model."):].replace("lora_down", "lora_A").replace("lora_up", "lora_B")
        hit = None
        for src, dst in (("single_transformer_blocks.", "single_transformer_blocks."),
                         ("transformer_blocks.", "transformer_blocks."), ("sformer_blocks.", "transformer_blocks.")):
            if body.startswith(src):
                hit = [dst + body[len(src):]]
                break
        if hit is None:
            for lk in (".lora_A.weight", ".lora_B.weight"):
                if body.endswith(lk):
                    from curate.lora.naming import _bfl_targets

                    mod = body[: -len(lk)]
                    if mod in _BFL_EXTRA_DIFFUSERS or mod.startswith(("double_blocks.", "single_blocks.")):
                        t = _bfl_targets(mod) if mod not in ("guidance_in.in_layer", "guidance_in.out_layer") else (
                            "time_guidance_embed.guidance_embedder.linear_" + ("1" if "in_layer" in mod else "2"),)
                        if t:
                            hit = [x + lk for x in t]
        if hit is None:
            left.append(k)
        else:
            for h in hit:
                out.setdefault(h.rsplit(".lora_", 1)[0] if ".lora_" in h else h, []).append(k)
    if left:
        return {}, (f"diffusers' Flux2 converter raises ValueError on {len(left)} key(s) it cannot map "
                    f"(e.g. {left[0][:90]}): the whole file fails to load")
    return out, None


def diffusers(keys: list[str], spec: str) -> LoadResult:
    modules = diffusers_modules(spec)
    work = [k for k in keys if "dora_scale" not in k]
    fatal = None
    if any(".lora_down.weight" in k for k in work):
        conv, fatal = _kohya(work, spec)
        conv = {f"transformer.{t}": src for t, src in conv.items()}
    else:
        work = [("diffusion_model." + k[len("base_model.model."):]) if k.startswith("base_model.model.") else k
                for k in work]
        if any(k.startswith("diffusion_model.") for k in work):
            conv, fatal = _bfl(work)
            conv = {f"transformer.{t}": src for t, src in conv.items()}
            if not fatal:
                orig = {("diffusion_model." + k[len("base_model.model."):]) if k.startswith("base_model.model.") else k: k
                        for k in keys}
                conv = {t: [orig.get(s, s) for s in src] for t, src in conv.items()}
        else:
            bad = [k for k in work if "lora" not in k and "lokr" not in k]
            if bad:
                fatal = (f"diffusers refuses the file (\"Invalid LoRA checkpoint\"): {len(bad)} key(s) without "
                         f"'lora', e.g. {bad[0][:90]}")
            conv = {}
            for k in work:
                sp = split_key(k)
                if sp is not None and sp[1] in (".lora_A.weight", ".lora_B.weight", "_lora.down.weight",
                                                "_lora.up.weight", ".lora.down.weight", ".lora.up.weight"):
                    conv.setdefault(sp[0], []).append(k)
    if fatal:
        return LoadResult("diffusers", len(keys), set(), fatal, _keys=tuple(keys))
    loaded, hit = set(), set()
    for target, src in conv.items():
        if target.startswith("transformer.") and target[len("transformer."):] in modules:
            loaded.update(src)
            hit.add(target[len("transformer."):])
    if not loaded and keys:
        return LoadResult("diffusers", len(keys), set(), f"loads none of the {len(keys)} keys (its converters map "
                          f"none of them to a Klein module, e.g. {keys[0][:80]})", _keys=tuple(keys))
    return LoadResult("diffusers", len(keys), loaded, None, frozenset(hit), tuple(keys))


LOADERS = {"diffusers": diffusers, "comfyui": comfyui}
