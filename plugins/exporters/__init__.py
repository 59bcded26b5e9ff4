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
            "--model is ai-toolkit's model.name_or_path (a FLUX.2-klein-base folder or hub id with BFL weights)",
            "no AdamW8bitKahan: --optimizer adamw8bit-kahan is refused",
            "repeats become per-dataset num_repeats (sampling weights); run length is the recipe's steps",
            NO_CONV,
        )),
    "diffusion-pipe": dict(
        target="plugins.exporters.diffusion_pipe:DiffusionPipeExporter", requires=(),
        summary="export a diffusion-pipe job: config.toml, dataset.toml ([[directory]] num_repeats), run.sh",
        limitations=(
            "--model is the base DiT single file (ComfyUI); VAE and Qwen3 default to ComfyUI names beside it",
            "alpha is fixed to rank ([adapter] rejects `alpha`): recipes with alpha != rank train at alpha = rank",
            "trains whole epochs: the recipe's steps are rounded up to epochs of the repeat-weighted dataset",
            "constant lr only (warmup, no decay); adafactor is refused",
            NO_CONV,
        )),
    "musubi-tuner": dict(
        target="plugins.exporters.musubi_tuner:MusubiTunerExporter", requires=(),
        summary="export a musubi-tuner job: dataset.toml, train.toml, caching + training commands in run.sh",
        limitations=(
            "--model is the base DiT single file (BFL); VAE (BFL ae.safetensors) and Qwen3 default to names beside it",
            "no AdamW8bitKahan: --optimizer adamw8bit-kahan is refused",
            NO_CONV,
        )),
    "diffsynth": dict(
        target="plugins.exporters.diffsynth:DiffSynthExporter", requires=(),
        summary="export a DiffSynth-Studio job: metadata.csv and train.py launch arguments in run.sh",
        limitations=(
            "--model is a diffusers-layout FLUX.2-klein-base folder (transformer/, text_encoder/, vae/, tokenizer/)",
            "optimizer is always torch AdamW: adamw8bit(-kahan) runs as full-precision AdamW; adafactor is refused",
            "alpha is fixed to rank; constant lr; batch size 1 (gradient accumulation is kept)",
            "trains whole epochs: the recipe's steps are rounded up; repeats are duplicated metadata rows",
            NO_CONV,
        )),
}


def register(registry) -> None:
    for name, spec in EXPORTERS.items():
        registry.add("trainer", name, spec["target"], requires=spec["requires"], summary=spec["summary"],
                     limitations=spec["limitations"])
