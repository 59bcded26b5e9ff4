from curate.lora.rule import LoraRule


class KL809(LoraRule):
    """LoRA weights stored in fp32 (or fp64) where bf16 suffices.

    Why: loaders cast LoRA weights to the model's bf16 anyway; an fp32 file is twice the size
    (9B rank 32: 332 MiB instead of 166 MiB) for no quality gain.

    Example: a LoRA saved with `save_dtype = float32`.

    Use instead: save in bf16 (`klint lora convert --dtype bf16`).

    Fix safety: no fix in place; conversion writes a new file.

    Options: none.
    """

    code = "KL809"
    name = "lora.dtype"
    severity = "info"

    def check_lora(self, ctx, rep, opts):
        wide = [t for t in rep.file.tensors.values() if t.dtype in ("F32", "F64") and len(t.shape) == 2]
        if not wide:
            return
        size = sum(t.nbytes for t in wide)
        half = sum(t.nbytes // (4 if t.dtype == "F32" else 8) * 2 for t in wide)
        yield self.ldiag(ctx, f"{len(wide)} weight tensor(s) in {wide[0].dtype}: {size / 2**20:.1f} MiB, "
                         f"{half / 2**20:.1f} MiB in bf16", value=round(size / 2**20, 1))
