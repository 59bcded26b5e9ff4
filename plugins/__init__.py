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
    # exporters for other trainers (ai-toolkit, diffusion-pipe, musubi-tuner, DiffSynth-Studio): data only here
    from plugins.exporters import register as _register_exporters

    _register_exporters(registry)
    registry.add("inference", "klein-eval", "plugins.klein.eval_backend:KleinEval",
                 requires=("torch", "diffusers", "safetensors"), extra="infer",
                 summary="klint eval: checkpoint x strength grid scored for identity and head-to-body ratio")
    registry.add("inference", "klein", "plugins.pulid.backend:KleinInference",
                 requires=("torch", "diffusers", "safetensors"), extra="infer",
                 summary="FLUX.2 [klein] inference: LoRA, native references, PuLID-style ID tokens",
                 limitations=(
                     "identity on Klein: native references (--mode reference) are the trained path; --mode pulid "
                     "on Klein is an experiment until an adapter trained for Klein exists (the official v0.9.1 "
                     "file loads on klein-4B only, its cross-attentions trained on FLUX.1-dev)",
                     "--mode pulid: the official encoder needs antelopev2 (glintr100.onnx); another recognition "
                     "model (buffalo_l w600k_r50.onnx) is refused",
                     "--mode pulid without --parsing-weights (facexlib parsing_bisenet.pth): no face parsing, "
                     "EVA-CLIP sees the whole aligned crop in grey instead of PuLID's face on white (warned)",
                     "--ref-cache on needs a KV checkpoint (Flux2KleinKVPipeline); refused on a base one",
                     "the ComfyUI 'PuLID for FLUX.2' weights are refused (not PuLID; its loader leaves the "
                     "cross-attentions random)",
                     "--model tiny / tiny-kv: random weights, the images are noise (tests only)"))

