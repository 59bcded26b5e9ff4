from curate.lora.rule import LoraRule, listing


class KL807(LoraRule):
    """The LoRA is untrained: its B matrices are zero (as initialised), so it changes nothing.

    Why: LoRA starts with B = 0, so a file saved before any optimiser step, from a run whose
    gradients never reached the adapter (frozen by mistake, wrong dtype, learning rate 0), or a
    trainer bug "has no effect" however high the strength. Some modules at zero means those layers
    never trained.

    Example: `lora_B` all zeros in every module.

    Use instead: check the run's learning rate, that the adapter parameters require grad, and the
    loss curve.

    Fix safety: no fix.

    Options: `zero` (|B| at or below this counts as zero, default 0.0).
    """

    code = "KL807"
    name = "lora.untrained"
    options = {"zero": 0.0}

    def check_lora(self, ctx, rep, opts):
        vals = [s for s in rep.stats.values() if s.b_max is not None]
        if not vals:
            return
        zero = [s for s in vals if s.b_max <= float(opts["zero"])]
        if len(zero) == len(vals):
            a = [s.a_norm ** 2 / s.rank for s in zero if s.a_norm and s.rank]
            init = ""
            if a and 0.2 < sorted(a)[len(a) // 2] < 0.5:
                init = "; A is at its random initialisation (||A||^2/rank ~ 1/3)"
            yield self.ldiag(ctx, f"every B matrix is zero ({len(vals)} modules): the LoRA changes nothing{init}",
                             value=0)
        elif zero:
            yield self.ldiag(ctx, f"{len(zero)} of {len(vals)} modules have B = 0 and never trained: "
                             f"{listing(s.module.prefix for s in zero)}", severity="warning", value=len(zero))
