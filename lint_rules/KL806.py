from curate.lora.rule import LoraRule, listing


class KL806(LoraRule):
    """The LoRA holds NaN or Inf values.

    Why: one NaN in B or A turns every pixel the layer touches into NaN: black or noise images.
    It comes from a diverged run (learning rate too high, fp16 overflow) saved without a check.

    Example: a checkpoint saved after the loss printed `nan`.

    Use instead: an earlier checkpoint; lower the learning rate, train in bf16.

    Fix safety: no fix.

    Options: none.
    """

    code = "KL806"
    name = "lora.nan"

    def check_lora(self, ctx, rep, opts):
        bad = [k for s in rep.stats.values() for k in s.bad]
        if bad:
            yield self.ldiag(ctx, f"{len(bad)} tensor(s) hold NaN/Inf: {listing(bad)}", value=len(bad))
