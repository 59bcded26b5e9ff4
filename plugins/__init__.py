"""Built-in backends. Registered by import string only: nothing heavy is imported here."""

from __future__ import annotations

from curate.plugin import hookimpl


@hookimpl
def klint_register_backends(registry):
    # each backend package adds itself here, as a third-party plugin would in its own hook
    registry.add("trainer", "builtin", "plugins.builtin_trainer.backend:BuiltinTrainer",
                 requires=("torch", "diffusers", "peft", "bitsandbytes", "safetensors"), extra="train",
                 summary="built-in FLUX.2 klein LoRA trainer (diffusers + peft; GPU, tiny model runs on CPU)",
                 limitations=("batch size 1 per process (multi-GPU via accelerate launch)",))
