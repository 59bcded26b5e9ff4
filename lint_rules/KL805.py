from curate.lora.rule import LoraRule, listing


class KL805(LoraRule):
    """The LoRA's shapes fit neither Klein 4B nor 9B, or not the model you named.

    Why: klein-4B (hidden 3072, 5 double + 20 single blocks) and klein-9B (hidden 4096, 8 + 24)
    take different LoRAs; a 4B LoRA on 9B (or a FLUX.1 / FLUX.2-dev LoRA on Klein) fails with shape
    errors or silently loads nothing.

    Example: `klint lora lora.safetensors --model klein-4b` on a file whose A matrices have 4096 inputs.

    Use instead: the LoRA trained for the model you run (`--model auto` tells which it fits).

    Fix safety: no fix.

    Options: none.
    """

    code = "KL805"
    name = "lora.model-mismatch"

    def check_lora(self, ctx, rep, opts):
        if not rep.parsed.modules:
            return
        fitting = [s for s, p in rep.fits.items() if not p and s != "klint-tiny"]
        fitting += ["klint-tiny"] if not rep.fits.get("klint-tiny") else []
        if rep.requested != "auto":
            problems = rep.fits.get(rep.requested, [])
            if problems:
                also = f"; it fits {', '.join(fitting)}" if fitting else ""
                yield self.ldiag(ctx, f"does not fit {rep.requested}: {listing(problems, 2)}{also}",
                                 value=fitting or None)
        elif not fitting:
            best = min((s for s in rep.fits if s != "klint-tiny"), key=lambda s: len(rep.fits[s]))
            yield self.ldiag(ctx, f"fits neither klein-4b nor klein-9b (closest {best}: "
                             f"{listing(rep.fits[best], 2)})")
