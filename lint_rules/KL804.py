from curate.lora.report import coverage
from curate.lora.rule import LoraRule, ranges


class KL804(LoraRule):
    """Block linears without LoRA: the single-block output projection, or whole block ranges.

    Why: Klein has 14 linears per block pair (12 in a double block, 2 in a single block). LoRAs
    that skip the single blocks' output projection (`linear2` / `attn.to_out`) learn a generic
    face: the identity lives partly there (unsloth's Klein fix). Blocks with no LoRA at all are
    usually a trainer's block filter or a truncated export. Attention-only LoRAs (diffusers and
    SimpleTuner defaults) are reported as info.

    Example: a LoRA with `linear1` but no `linear2` keys in its single blocks.

    Use instead: target all 14 linears (`klint train` does; musubi-tuner and ai-toolkit do by default).

    Fix safety: no fix; retrain with the missing modules.

    Options: none.
    """

    code = "KL804"
    name = "lora.missing-modules"
    severity = "warning"

    def check_lora(self, ctx, rep, opts):
        if not rep.spec or not rep.parsed.modules or rep.fits.get(rep.spec):
            return  # a file that does not fit the model is lora.model-mismatch
        miss = coverage(rep)
        if not miss:
            return
        from curate.lora.model import SPECS

        spec = SPECS[rep.spec]
        if "single attn.to_out" in miss:
            idx = miss.pop("single attn.to_out")
            yield self.ldiag(ctx, f"single blocks {ranges(idx)} have no LoRA on the output projection "
                             f"(`linear2` / `attn.to_out`): identity LoRAs without it come out generic",
                             value=len(idx), threshold=spec.single)
        have = rep.covered()
        for kind, n, head in (("double", spec.double, "transformer_blocks"),
                              ("single", spec.single, "single_transformer_blocks")):
            empty = [i for i in range(n) if not any(t.startswith(f"{head}.{i}.") for t in have)]
            if empty and len(empty) < n or (empty and any(t.startswith(("transformer_blocks", "single_transformer"))
                                                          for t in have)):
                yield self.ldiag(ctx, f"{kind} blocks {ranges(empty)} have no LoRA at all", value=len(empty),
                                 threshold=n)
                for s in list(miss):
                    if set(miss[s]) <= set(empty):
                        miss.pop(s)
        if miss:
            parts = [f"{s} (blocks {ranges(v)})" for s, v in sorted(miss.items())]
            yield self.ldiag(ctx, f"{len(miss)} of 14 block linears not covered: " + "; ".join(parts[:6])
                             + (" ..." if len(parts) > 6 else ""), severity="info", value=len(miss), threshold=14)
