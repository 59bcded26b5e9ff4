"""diffusion-pipe exporter: main `config.toml` + `dataset.toml` (one `[[directory]]` per repeat group)."""

from __future__ import annotations

from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import (
    Export, Group, SingleFileExporter, StepRow, ToolSpec, epochs_for, samples, shell_join, toml_dump,
)

TOOL = ToolSpec("diffusion-pipe", "DIFFUSION_PIPE_DIR", ("train.py",))
# diffusion-pipe lower-cases `type`; these are the spellings its README uses
OPTIMIZERS = {"adamw8bit": "adamw8bit", "adamw8bit-kahan": "AdamW8bitKahan", "adamw": "adamw"}
SHIFT = 3  # diffusion-pipe's Klein example: logit-normal sigma, fixed shift 3
SCHEDULES = ("constant", "linear", "cosine")  # train.py's lr_scheduler choices


class DiffusionPipeExporter(SingleFileExporter):
    name = "diffusion-pipe"
    tool = TOOL
    vae_name = "flux2-vae.safetensors"
    comfy_te = True  # ComfyUI's loader reads one Qwen3 file, not split shards

    def dataset_toml(self, ex: Export, groups: list[Group]) -> str:
        data = {"resolutions": [ex.resolution], "enable_ar_bucket": True, "min_ar": 0.5, "max_ar": 2.0,
                "num_ar_buckets": 7, "frame_buckets": [1],
                "directory": [{"path": g.rel_dir, "num_repeats": g.repeats} for g in groups]}
        return toml_dump(data, [f"diffusion-pipe dataset written by klint: {len(groups)} repeat group(s), "
                                f"{samples(groups)} samples per epoch"])

    def main_toml(self, ex: Export, groups: list[Group], dataset: str, output: str, steps: int, lr: float,
                  init_from: str | None) -> str:
        r, job = ex.recipe, ex.job
        epochs = epochs_for(steps, samples(groups), r.batch_size, r.gradient_accumulation)
        m = ex.models
        model: dict[str, Any] = {"type": "flux2", "diffusion_model": m["DiT"], "vae": m["VAE"],
                                 "text_encoders": [{"path": m["text encoder"], "type": "flux2"}], "dtype": "bfloat16"}
        if ex.base_dtype == "fp8":
            model["diffusion_model_dtype"] = "float8"
        model.update({"timestep_sample_method": "logit_normal", "shift": SHIFT})
        adapter: dict[str, Any] = {"type": "lora", "rank": r.rank, "dtype": "bfloat16"}
        if init_from:
            adapter["init_from_existing"] = init_from
        data = {
            # epochs is only the upper bound: max_steps stops the run at exactly the recipe's steps
            "output_dir": output, "dataset": dataset, "epochs": epochs, "max_steps": steps,
            "micro_batch_size_per_gpu": r.batch_size, "pipeline_stages": 1,
            "gradient_accumulation_steps": r.gradient_accumulation, "gradient_clipping": 1.0, "warmup_steps": 0,
            **({"save_every_n_steps": ex.checkpoint_every} if ex.checkpoint_every else {"save_every_n_epochs": 1}),
            "activation_checkpointing": True, "partition_method": "parameters",
            "save_dtype": "bfloat16", "caching_batch_size": 1, "steps_per_print": 1,
            "lr_scheduler": r.lr_schedule, "model": model, "adapter": adapter,
            "optimizer": {"type": OPTIMIZERS[r.optimizer], "lr": float(lr), "betas": [0.9, 0.999],
                          "weight_decay": float(r.weight_decay), "eps": 1e-8},
        }
        per_epoch = max(1, samples(groups) // max(1, r.batch_size * r.gradient_accumulation))
        header = [f"diffusion-pipe job written by klint (recipe {r.name}, {r.model})",
                  f"recipe steps {steps}: max_steps {steps} (within {epochs} epoch(s) of {per_epoch} steps)"]
        if r.alpha != r.rank:
            header.append(f"recipe alpha {r.alpha} cannot be set: diffusion-pipe trains LoRA at alpha = rank {r.rank}")
        return toml_dump(data, header)

    def validate(self, job: Any) -> None:
        r = job.recipe
        if r.optimizer not in OPTIMIZERS:
            raise KlintError(f"diffusion-pipe has no {r.optimizer} optimizer here; use --optimizer adamw8bit "
                             "or adamw8bit-kahan")
        if r.lr_schedule not in SCHEDULES:
            raise KlintError(f"diffusion-pipe has no {r.lr_schedule} lr schedule (it has {', '.join(SCHEDULES)})")

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        if r.alpha != r.rank:
            ex.warnings.append(f"diffusion-pipe fixes LoRA alpha = rank: recipe alpha {r.alpha} becomes {r.rank}")
        ex.write("dataset.toml", self.dataset_toml(ex, ex.groups))
        ex.write("config.toml", self.main_toml(ex, ex.groups, "dataset.toml", "output", r.steps, r.lr, None))
        self.step_rows(ex)
        launch = ["deepspeed", "--num_gpus=1", "$DIFFUSION_PIPE_DIR/train.py", "--deepspeed", "--config"]
        commands = [shell_join([*launch, "config.toml"])]
        if ex.stage2_groups:
            ex.write("dataset_stage2.toml", self.dataset_toml(ex, ex.stage2_groups))
            ex.write("config_stage2.toml", self.main_toml(ex, ex.stage2_groups, "dataset_stage2.toml",
                                                          "output_stage2", r.stage2_steps, r.stage2_lr,
                                                          "output/stage1-final"))
            commands += [
                "# stage 2 starts from stage 1's final LoRA (diffusion-pipe names run folders by time;"
                " the last save is the newest step*/epoch* folder); the link is relative so the job can move",
                'final="$(ls -td output/*/step* output/*/epoch* 2>/dev/null | head -n 1)"',
                '[ -n "$final" ] || { echo "stage 1 left no saved LoRA under output/" >&2; exit 1; }',
                'ln -sfn "${final#output/}" output/stage1-final',
                shell_join([*launch, "config_stage2.toml"]),
            ]
        return commands

    def step_rows(self, ex: Export) -> None:
        r = ex.recipe
        how = "max_steps (train.py stops at step >= max_steps)"
        if r.lr_schedule != "constant":
            how += f"; {r.lr_schedule} decay spans all epochs, so it is cut off at max_steps, not finished"
        ex.steps.append(StepRow("stage 1", r.steps, r.steps, how))
        if ex.stage2_groups:
            ex.steps.append(StepRow("stage 2", r.stage2_steps, r.stage2_steps, how))
