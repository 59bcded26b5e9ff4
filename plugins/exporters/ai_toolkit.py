"""ai-toolkit exporter: `config.yaml` (+ `config_stage2.yaml`) for `python run.py`, one dataset entry per repeat group."""

from __future__ import annotations

from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import Export, Exporter, Group, ToolSpec, shell_join, yaml_dump

TOOL = ToolSpec("ai-toolkit", "AI_TOOLKIT_DIR", ("run.py",))
ARCH = {"klein-4b": "flux2_klein_4b", "klein-9b": "flux2_klein_9b"}
OPTIMIZERS = {"adamw8bit": "adamw8bit", "adamw": "adamw", "adafactor": "adafactor"}
DEFAULT_SAVE_EVERY = 250


def default_prompts(trigger: str | None) -> list[str]:
    t = trigger or "the person"
    return [f"{t}, close portrait, turned slightly to camera, soft window light",
            f"{t}, half body, seated at a cafe table, morning light",
            f"{t}, full body shot, standing in a park, arms at sides"]


class AiToolkitExporter(Exporter):
    name = "ai-toolkit"
    tool = TOOL

    def process(self, ex: Export, groups: list[Group], steps: int, lr: float, init_lora: str | None) -> dict:
        r, job = ex.recipe, ex.job
        network: dict[str, Any] = {"type": "lora", "linear": r.rank, "linear_alpha": r.alpha}
        if init_lora:
            network["pretrained_lora_path"] = init_lora
        sample_every = int(getattr(job, "sample_every", 0) or 0)
        proc: dict[str, Any] = {"type": "diffusion_trainer", "training_folder": "output", "device": "cuda:0"}
        if ex.trigger:
            proc["trigger_word"] = ex.trigger
        proc["network"] = network
        proc["save"] = {"dtype": "bf16", "save_every": int(getattr(job, "checkpoint_every", 0) or DEFAULT_SAVE_EVERY),
                        "max_step_saves_to_keep": 4}
        proc["datasets"] = [{"folder_path": g.rel_dir, "caption_ext": "txt", "caption_dropout_rate": 0.0,
                             "num_repeats": g.repeats, "resolution": [ex.resolution], "cache_latents_to_disk": True}
                            for g in groups]
        proc["train"] = {
            "batch_size": r.batch_size, "steps": steps, "gradient_accumulation_steps": r.gradient_accumulation,
            "train_unet": True, "train_text_encoder": False, "gradient_checkpointing": True,
            "noise_scheduler": "flowmatch", "timestep_type": "weighted",
            "optimizer": OPTIMIZERS[r.optimizer], "lr": float(lr), "lr_scheduler": r.lr_schedule,
            "optimizer_params": {"weight_decay": float(r.weight_decay)},
            "dtype": "bf16", "cache_text_embeddings": True, "disable_sampling": sample_every == 0,
        }
        base_dtype = getattr(job, "base_dtype", None) or r.base_dtype
        proc["model"] = {"name_or_path": str(job.model), "arch": ARCH[r.model], "quantize": base_dtype == "fp8"}
        prompts = list(getattr(job, "sample_prompts", ()) or ()) or default_prompts(ex.trigger)
        proc["sample"] = {"sampler": "flowmatch", "sample_every": sample_every or steps,
                          "width": ex.resolution, "height": ex.resolution,
                          "samples": [{"prompt": p} for p in prompts],
                          "seed": int(getattr(job, "seed", 0) or 0), "walk_seed": True,
                          "guidance_scale": 4.0, "sample_steps": 25}
        return proc

    def validate(self, job: Any) -> None:
        if job.recipe.optimizer not in OPTIMIZERS:
            raise KlintError(f"ai-toolkit has no {job.recipe.optimizer} optimizer; use --optimizer adamw8bit")

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        doc = {"job": "extension",
               "config": {"name": ex.name, "process": [self.process(ex, ex.groups, r.steps, r.lr, None)]},
               "meta": {"name": ex.name, "version": "1.0", "written_by": "klint"}}
        ex.write("config.yaml", yaml_dump(doc))
        commands = [shell_join(["$PYTHON", "$AI_TOOLKIT_DIR/run.py", "config.yaml"])]
        if ex.stage2_groups:
            name2 = f"{ex.name}_stage2"
            stage1_lora = f"output/{ex.name}/{ex.name}.safetensors"
            doc2 = {"job": "extension",
                    "config": {"name": name2, "process": [self.process(ex, ex.stage2_groups, r.stage2_steps,
                                                                      r.stage2_lr, stage1_lora)]},
                    "meta": {"name": name2, "version": "1.0", "written_by": "klint"}}
            ex.write("config_stage2.yaml", yaml_dump(doc2))
            commands += ["# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA",
                         shell_join(["$PYTHON", "$AI_TOOLKIT_DIR/run.py", "config_stage2.yaml"])]
        return commands
