"""musubi-tuner exporter: dataset TOML (one `[[datasets]]` per repeat group), training TOML, caching commands."""

from __future__ import annotations

from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import (
    Export, Group, SingleFileExporter, StepRow, ToolSpec, samples, shell_join, toml_dump,
)

TOOL = ToolSpec("musubi-tuner", "MUSUBI_TUNER_DIR", ("src/musubi_tuner/flux_2_train_network.py",))
MODEL_VERSION = {"klein-4b": "klein-base-4b", "klein-9b": "klein-base-9b"}
OPTIMIZERS = {"adamw8bit": "AdamW8bit", "adamw": "AdamW", "adafactor": "Adafactor"}
SCRIPTS = "$MUSUBI_TUNER_DIR/src/musubi_tuner"


class MusubiTunerExporter(SingleFileExporter):
    name = "musubi-tuner"
    tool = TOOL
    vae_name = "ae.safetensors"

    def validate(self, job: Any) -> None:
        if job.recipe.optimizer not in OPTIMIZERS:
            raise KlintError(f"musubi-tuner has no {job.recipe.optimizer} optimizer; use --optimizer adamw8bit")

    def dataset_toml(self, ex: Export, groups: list[Group], cache: str) -> str:
        data = {
            "general": {"resolution": [ex.resolution, ex.resolution], "caption_extension": ".txt",
                        "batch_size": ex.recipe.batch_size, "enable_bucket": True, "bucket_no_upscale": False},
            "datasets": [{"image_directory": g.rel_dir, "cache_directory": f"{cache}/{g.rel_dir.split('/')[-1]}",
                          "num_repeats": g.repeats} for g in groups],
        }
        return toml_dump(data, [f"musubi-tuner dataset written by klint: {samples(groups)} samples per epoch"])

    def train_toml(self, ex: Export, dataset: str, name: str, steps: int, lr: float, init: str | None) -> str:
        r, job = ex.recipe, ex.job
        m = ex.models
        data: dict[str, Any] = {
            "model_version": MODEL_VERSION[r.model], "dit": m["DiT"], "vae": m["VAE"], "text_encoder": m["text encoder"],
            "dataset_config": dataset, "sdpa": True, "mixed_precision": "bf16",
        }
        if ex.base_dtype == "fp8":
            data.update({"fp8_base": True, "fp8_scaled": True})
        data.update({
            "timestep_sampling": "flux2_shift", "weighting_scheme": "none",
            "optimizer_type": OPTIMIZERS[r.optimizer], "optimizer_args": [f"weight_decay={r.weight_decay}"],
            "learning_rate": float(lr), "lr_scheduler": r.lr_schedule,
            "gradient_checkpointing": True, "gradient_accumulation_steps": r.gradient_accumulation,
            "network_module": "networks.lora_flux_2", "network_dim": r.rank,
            # musubi's default alpha is 1, which would scale the LoRA by 1/rank: always write the recipe's
            "network_alpha": r.alpha,
            "max_train_steps": steps, "seed": int(getattr(job, "seed", 0) or 0),
            "max_data_loader_n_workers": 2, "persistent_data_loader_workers": True,
            "output_dir": "output", "output_name": name,
        })
        if ex.checkpoint_every:
            data["save_every_n_steps"] = ex.checkpoint_every
        if init:
            data["network_weights"] = init
        return toml_dump(data, [f"musubi-tuner training config written by klint (recipe {r.name}, {r.model})"])

    def cache_commands(self, ex: Export, dataset: str) -> list[str]:
        m = ex.models
        version = MODEL_VERSION[ex.recipe.model]
        return [
            shell_join(["$PYTHON", f"{SCRIPTS}/flux_2_cache_latents.py", "--dataset_config", dataset,
                        "--vae", m["VAE"], "--model_version", version]),
            shell_join(["$PYTHON", f"{SCRIPTS}/flux_2_cache_text_encoder_outputs.py", "--dataset_config", dataset,
                        "--text_encoder", m["text encoder"], "--model_version", version, "--batch_size", "16"]),
        ]

    def train_command(self, config: str) -> str:
        return shell_join(["accelerate", "launch", "--num_cpu_threads_per_process", "1", "--mixed_precision", "bf16",
                           f"{SCRIPTS}/flux_2_train_network.py", "--config_file", config])

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        ex.write("dataset.toml", self.dataset_toml(ex, ex.groups, "cache"))
        ex.write("train.toml", self.train_toml(ex, "dataset.toml", ex.name, r.steps, r.lr, None))
        ex.steps.append(StepRow("stage 1", r.steps, r.steps, "max_train_steps"))
        if ex.stage2_groups:
            ex.steps.append(StepRow("stage 2", r.stage2_steps, r.stage2_steps, "max_train_steps"))
        commands = ["# cache latents and Qwen3 outputs once, then train",
                    *self.cache_commands(ex, "dataset.toml"), self.train_command("train.toml")]
        if ex.stage2_groups:
            ex.write("dataset_stage2.toml", self.dataset_toml(ex, ex.stage2_groups, "cache_stage2"))
            ex.write("train_stage2.toml", self.train_toml(ex, "dataset_stage2.toml", f"{ex.name}_stage2",
                                                          r.stage2_steps, r.stage2_lr, f"output/{ex.name}.safetensors"))
            commands += ["# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA",
                         *self.cache_commands(ex, "dataset_stage2.toml"), self.train_command("train_stage2.toml")]
        return commands
