from curate.lora.rule import LoraRule


class KL801(LoraRule):
    """The LoRA file is not a readable safetensors file (pickle checkpoints are refused unread).

    Why: `.pt`/`.ckpt`/`.bin` checkpoints are Python pickles: loading one runs whatever code it holds.
    klint never unpickles; it refuses them by name and by their first bytes. A safetensors file with a
    header longer than the file, offsets out of range or an unknown dtype is broken and no loader
    will read it either.

    Example: `klint lora my_lora.ckpt`, or a download cut short.

    Use instead: export the LoRA as `.safetensors` from the trainer (every Klein trainer can).

    Fix safety: no fix; klint does not convert pickles (that would mean loading them).

    Options: none.
    """

    code = "KL801"
    name = "lora.not-safetensors"

    def check_lora(self, ctx, rep, opts):
        if rep.error is not None:
            yield self.ldiag(ctx, rep.error)
