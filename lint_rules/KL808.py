from curate.lora.rule import LoraRule, listing


class KL808(LoraRule):
    """Alpha missing where the loader then assumes scale 1.0, or different from the training alpha.

    Why: the delta is B·A·alpha/rank. kohya-style files (musubi-tuner, OneTrainer) store alpha as
    `.alpha` tensors; without them ComfyUI and diffusers apply scale 1.0, so a rank-32 alpha-1 LoRA
    comes out 32x too strong. BFL and diffusers files bake the scale into B instead; when the
    metadata records a training alpha different from the rank that was not baked, the loader's
    strength is wrong by alpha/rank.

    Example: `lora_unet_...lora_down.weight` without `.alpha`, metadata `ss_network_alpha = 16`, rank 32.

    Use instead: keep the `.alpha` tensors, or bake alpha/rank into B (`klint lora convert` does).

    Fix safety: no fix in place; `klint lora convert` writes a copy with the scale baked.

    Options: none.
    """

    code = "KL808"
    name = "lora.alpha"
    severity = "warning"

    def check_lora(self, ctx, rep, opts):
        stats = list(rep.stats.values())
        if not stats:
            return
        kohya = [s for s in stats if s.module.family in ("kohya", "onetrainer") or ".lora_down." in (s.module.down or "")]
        missing = [s for s in stats if s.alpha is None]
        ma = rep.meta_alpha
        if kohya and [s for s in kohya if s.alpha is None]:
            lost = [s for s in kohya if s.alpha is None]
            note = f" (metadata alpha {ma:g})" if ma is not None else ""
            yield self.ldiag(ctx, f"{len(lost)} of {len(kohya)} kohya-style modules have no `.alpha`{note}: ComfyUI "
                             f"and diffusers then apply scale 1.0 instead of alpha/rank: "
                             f"{listing(s.module.prefix for s in lost)}", value=len(lost))
            return
        if ma is None or rep.alpha_baked:
            return
        with_alpha = [s for s in stats if s.alpha is not None]
        differ = [s for s in with_alpha if abs(s.alpha - ma) > 1e-6 * max(1.0, abs(ma))]
        if differ:
            yield self.ldiag(ctx, f"{len(differ)} module(s) store alpha {differ[0].alpha:g} but the metadata records "
                             f"training alpha {ma:g}: {listing(s.module.prefix for s in differ)}",
                             value=differ[0].alpha, threshold=ma)
        unbaked = [s for s in missing if s.module.family != "diffusers" and s.rank and abs(ma - s.rank) > 1e-6]
        if unbaked:
            yield self.ldiag(ctx, f"metadata records alpha {ma:g} but {len(unbaked)} module(s) (rank "
                             f"{unbaked[0].rank}) have no `.alpha`: loaders apply scale 1.0, not "
                             f"{ma / unbaked[0].rank:g}", value=None, threshold=ma)
