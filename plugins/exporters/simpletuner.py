"""SimpleTuner exporter: `config.json` + `multidatabackend.json` (one local back-end per repeat group).

SimpleTuner reads `config.json` from CONFIG_PATH (json back-end) and paths relative to where it starts;
run.sh starts it inside the job folder. Its `repeats` counts EXTRA passes (0 = each image once), so a
kohya-style repeat count N is written as N - 1.
"""

from __future__ import annotations

import json
from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import Export, Exporter, Group, StepRow, ToolSpec, shell_join
from plugins.exporters.models import Resolved, diffusers_folder

TOOL = ToolSpec("simpletuner", "SIMPLETUNER_DIR", ("simpletuner/train.py", "train.py"))
FLAVOUR = {"klein-4b": "klein-4b", "klein-9b": "klein-9b"}
OPTIMIZERS = {"adamw8bit": "bnb-adamw8bit", "adamw": "torch-adamw"}
SCHEDULES = ("constant", "linear", "cosine")
# quanto's fp8 weights: the frozen base in fp8, the LoRA in bf16 (the seed's standard recipe)
PRECISION = {"fp8": "fp8-quanto", "bf16": "no_change"}
DEFAULT_SAVE_EVERY = 250


class SimpleTunerExporter(Exporter):
    name = "simpletuner"
    tool = TOOL

    def validate(self, job: Any) -> None:
        r = job.recipe
        if r.optimizer not in OPTIMIZERS:
            raise KlintError(f"SimpleTuner job: no {r.optimizer} optimizer here; use --optimizer adamw8bit or adamw")
        if r.lr_schedule not in SCHEDULES:
            raise KlintError(f"SimpleTuner job: no {r.lr_schedule} lr schedule here ({', '.join(SCHEDULES)})")

    def models(self, job: Any) -> Resolved:
        return diffusers_folder(str(job.model), job.recipe.model)

    def backends(self, ex: Export, groups: list[Group], stage: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for g in groups:
            label = g.rel_dir.replace("/", "-")
            out.append({"id": label, "type": "local", "instance_data_dir": g.rel_dir,
                        "caption_strategy": "textfile", "resolution": ex.resolution,
                        "resolution_type": "pixel_area", "crop": False,
                        "repeats": g.repeats - 1, "cache_dir_vae": f"cache/{stage}/vae/{label}"})
        out.append({"id": f"text-embeds-{stage}", "dataset_type": "text_embeds", "default": True,
                    "type": "local", "cache_dir": f"cache/{stage}/text"})
        return out

    def config(self, ex: Export, backend_file: str, output: str, steps: int, lr: float,
               init: str | None) -> dict[str, Any]:
        r, job = ex.recipe, ex.job
        cfg: dict[str, Any] = {
            "model_family": "flux2", "model_flavour": FLAVOUR[r.model], "model_type": "lora",
            "pretrained_model_name_or_path": ex.models["model"], "lora_type": "standard",
            "lora_rank": r.rank, "lora_alpha": r.alpha, "base_model_precision": PRECISION[ex.base_dtype],
            "mixed_precision": "bf16", "optimizer": OPTIMIZERS[r.optimizer], "learning_rate": float(lr),
            "lr_scheduler": r.lr_schedule, "lr_warmup_steps": 0, "max_train_steps": steps, "num_train_epochs": 0,
            "train_batch_size": r.batch_size, "gradient_accumulation_steps": r.gradient_accumulation,
            "gradient_checkpointing": True, "resolution": ex.resolution, "resolution_type": "pixel_area",
            "data_backend_config": backend_file, "output_dir": output,
            "checkpoint_step_interval": ex.checkpoint_every or DEFAULT_SAVE_EVERY,
            "seed": int(getattr(job, "seed", 0) or 0), "report_to": "none", "push_to_hub": False,
        }
        if r.weight_decay:
            cfg["adam_weight_decay"] = float(r.weight_decay)
        every = int(getattr(job, "sample_every", 0) or 0)
        prompts = list(getattr(job, "sample_prompts", ()) or ())
        if every and prompts:
            cfg.update({"validation_step_interval": every, "validation_prompt": prompts[0],
                        "validation_resolution": f"{ex.resolution}x{ex.resolution}"})
        else:
            cfg["validation_disable"] = True
        if init:
            cfg["init_lora"] = init
        return cfg

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        ex.write("multidatabackend.json", json.dumps(self.backends(ex, ex.groups, "stage1"), indent=2) + "\n")
        ex.write("config.json", json.dumps(self.config(ex, "multidatabackend.json", "output", r.steps, r.lr, None),
                                           indent=2) + "\n")
        ex.steps.append(StepRow("stage 1", r.steps, r.steps, "max_train_steps (num_train_epochs 0)"))
        launch = ["env", "CONFIG_BACKEND=json"]
        commands = [shell_join([*launch, "CONFIG_PATH=config.json", "simpletuner", "train"])]
        if ex.stage2_groups:
            ex.write("multidatabackend_stage2.json",
                     json.dumps(self.backends(ex, ex.stage2_groups, "stage2"), indent=2) + "\n")
            ex.write("config_stage2.json", json.dumps(self.config(
                ex, "multidatabackend_stage2.json", "output_stage2", r.stage2_steps, r.stage2_lr,
                "output/pytorch_lora_weights.safetensors"), indent=2) + "\n")
            ex.steps.append(StepRow("stage 2", r.stage2_steps, r.stage2_steps, "max_train_steps (num_train_epochs 0)"))
            commands += ["# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA",
                         shell_join([*launch, "CONFIG_PATH=config_stage2.json", "simpletuner", "train"])]
        return commands
