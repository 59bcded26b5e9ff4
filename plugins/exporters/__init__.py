"""Exporter backends: turn a klint `TrainJob` into another trainer's own configs, dataset layout and commands.

This file is data only (read by the registration hook and `klint backends`); the exporter modules
load when a backend is used. Limitations say what each tool cannot express of a klint recipe.
"""

NO_CONV = "recipe conv_rank/conv_alpha are not written: Klein's transformer has no conv layers"

EXPORTERS = {
    "ai-toolkit": dict(
        target="plugins.exporters.ai_toolkit:AiToolkitExporter", requires=("yaml",),
        summary="export an ai-toolkit job: config.yaml, per-repeat dataset folders, run.sh",
        limitations=(
            "--model is ai-toolkit's model.name_or_path: a folder holding flux-2-klein-base-*.safetensors, that file, "
            "or a hub id; Qwen3 always comes from the hub (Qwen/Qwen3-4B/8B): offline it must be cached",
            "the VAE is <name_or_path>/ae.safetensors, --vae (written as vae_path) or the hub (ai-toolkit/flux2_vae)",
            "no AdamW8bitKahan: --optimizer adamw8bit-kahan is refused",
            "repeats become per-dataset num_repeats (sampling weights); run length is the recipe's steps",
            NO_CONV,
        )),
    "diffusion-pipe": dict(
        target="plugins.exporters.diffusion_pipe:DiffusionPipeExporter", requires=(),
        summary="export a diffusion-pipe job: config.toml, dataset.toml ([[directory]] num_repeats), run.sh",
        limitations=(
            "--model: a DiT file, a ComfyUI models/ folder or a BFL/diffusers folder holding the DiT file; VAE "
            "(flux2-vae / ae.safetensors) and ONE Qwen3 file are found beside it or given with --vae / --text-encoder",
            "alpha is fixed to rank ([adapter] rejects `alpha`): recipes with alpha != rank train at alpha = rank",
            "max_steps stops at the recipe's steps exactly; a linear/cosine decay spans whole epochs, so it is "
            "cut off at max_steps rather than finished",
            "lr schedules constant, linear, cosine; adafactor is refused",
            NO_CONV,
        )),
    "musubi-tuner": dict(
        target="plugins.exporters.musubi_tuner:MusubiTunerExporter", requires=(),
        summary="export a musubi-tuner job: dataset.toml, train.toml, caching + training commands in run.sh",
        limitations=(
            "--model: the BFL DiT file, or a BFL/diffusers folder holding it; VAE must be the BFL ae.safetensors "
            "(the diffusers VAE cannot be used); Qwen3 one file or the first shard of the split files",
            "no AdamW8bitKahan: --optimizer adamw8bit-kahan is refused",
            NO_CONV,
        )),
    "diffsynth": dict(
        target="plugins.exporters.diffsynth:DiffSynthExporter", requires=(),
        summary="export a DiffSynth-Studio job: metadata.csv and train.py launch arguments in run.sh",
        limitations=(
            "--model is a diffusers-layout FLUX.2-klein-base folder (transformer/, text_encoder/, vae/, tokenizer/)",
            "adamw8bit via --customized_optimizer bitsandbytes.optim.AdamW8bit, adamw = torch AdamW; "
            "adamw8bit-kahan and adafactor are refused",
            "alpha is fixed to rank; constant lr; batch size 1 (gradient accumulation is kept)",
            "one epoch of exactly steps x accumulation samples: repeats become duplicated metadata rows x "
            "--dataset_repeat (ratios exact when they divide the steps, else within one sample per image)",
            "fp8 base via --fp8_models only for a one-file transformer; a sharded one trains in bf16",
            NO_CONV,
        )),
    "simpletuner": dict(
        target="plugins.exporters.simpletuner:SimpleTunerExporter", requires=(),
        summary="export a SimpleTuner job: config.json, multidatabackend.json (one back-end per repeat group), run.sh",
        limitations=(
            "--model is a diffusers FLUX.2-klein-base folder or hub id (model_flavour klein-4b / klein-9b)",
            "needs a SimpleTuner with FLUX.2 [klein] (GitHub main); the PyPI release 3.1.6 has only flux2 dev",
            "adamw8bit-kahan and adafactor are refused; fp8 base is quanto's fp8-quanto",
            NO_CONV,
        )),
}


def register(registry) -> None:
    for name, spec in EXPORTERS.items():
        registry.add("trainer", name, spec["target"], requires=spec["requires"], summary=spec["summary"],
                     limitations=spec["limitations"])
