from curate.lora.rule import LoraRule, listing


class KL802(LoraRule):
    """The file's keys follow no known Klein LoRA naming.

    Why: each trainer names LoRA keys its own way (BFL `diffusion_model.`, kohya `lora_unet_`,
    diffusers `transformer.`, OneTrainer `lora_transformer_`); a key outside all of them is
    silently dropped by every loader. Often the file is for another model (FLUX.1, SDXL) or
    the keys carry an extra prefix from a wrapper.

    Example: `unet.down_blocks.0.attentions.0.lora_A.weight` in a "Klein" LoRA.

    Use instead: the trainer's Klein/Flux2 export; `klint lora convert` for the known namings.

    Fix safety: no fix.

    Options: none.
    """

    code = "KL802"
    name = "lora.unknown-naming"

    def check_lora(self, ctx, rep, opts):
        unknown = rep.parsed.unknown
        if not unknown:
            return
        if not rep.parsed.modules:
            yield self.ldiag(ctx, f"no key follows a known Klein LoRA naming (BFL, kohya, diffusers, OneTrainer); "
                             f"e.g. {listing(unknown, 2)}", value=len(unknown))
        else:
            yield self.ldiag(ctx, f"{len(unknown)} key(s) follow no known naming and no loader will use them: "
                             f"{listing(unknown)}", severity="warning", value=len(unknown))
