from curate.lora.rule import LoraRule, listing


class KL803(LoraRule):
    """Keys that diffusers' or ComfyUI's Klein loader would not load.

    Why: a loader that skips keys prints "lora key not loaded" (ComfyUI) or a warning (diffusers)
    and applies the rest: the LoRA then "has no effect" or only part of it. Counts come from the
    loaders' own key logic: diffusers' Flux2 converters (kohya, BFL, PEFT) and ComfyUI's key map.
    A loader that refuses the whole file (diffusers on a BFL file with `.alpha` keys) is reported
    as a warning: the file is for the other loader, and `klint lora convert` makes one for it.

    Example: `diffusion_model.double_blocks.0.img_attn_qkv.lora_A.weight` (underscore instead of dot):
    "0 of 416 keys load".

    Use instead: `klint lora convert FILE --to comfyui|diffusers -o OUT`.

    Fix safety: no fix in place; conversion writes a new file.

    Options: `loaders` (default both: `["diffusers", "comfyui"]`).
    """

    code = "KL803"
    name = "lora.keys-unloadable"
    options = {"loaders": ["diffusers", "comfyui"]}

    def check_lora(self, ctx, rep, opts):
        if not rep.parsed.modules:
            return
        for name in opts["loaders"]:
            r = rep.loads.get(name)
            if r is None:
                continue
            if r.fatal:
                yield self.ldiag(ctx, f"{r.loader}: {r.fatal}; `klint lora convert --to "
                                 f"{'diffusers' if name == 'diffusers' else 'comfyui'}` writes a loadable copy",
                                 severity="warning", value=0, threshold=r.total)
            elif r.ignored:
                yield self.ldiag(ctx, f"{r.loader}: {len(r.loaded)} of {r.total} keys load; {len(r.ignored)} would "
                                 f"be ignored: {listing(r.ignored)}", value=len(r.loaded), threshold=r.total)
        for problem in rep.shape_errors:
            yield self.ldiag(ctx, f"{problem}: no loader can apply it")
