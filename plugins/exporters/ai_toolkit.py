"""ai-toolkit exporter: `config.yaml` (+ `config_stage2.yaml`) for `python run.py`, one dataset entry per repeat group."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import Export, Exporter, Group, StepRow, ToolSpec, opts, shell_join, yaml_dump
from plugins.exporters.models import BFL_DIT, BFL_VAE, Resolved, layout

TOOL = ToolSpec("ai-toolkit", "AI_TOOLKIT_DIR", ("run.py",))
ARCH = {"klein-4b": "flux2_klein_4b", "klein-9b": "flux2_klein_9b"}
OPTIMIZERS = {"adamw8bit": "adamw8bit", "adamw": "adamw", "adafactor": "adafactor"}
DEFAULT_SAVE_EVERY = 250
# what ai-toolkit's Klein model class downloads when the files are not local (its class attributes)
HUB_QWEN = {"klein-4b": "Qwen/Qwen3-4B", "klein-9b": "Qwen/Qwen3-8B"}
HUB_VAE = "ai-toolkit/flux2_vae"


def looks_like_hub_id(model: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", model)) and not model.startswith((".", "~"))


def resolve(model: str, variant: str, vae: str | None) -> Resolved:
    """name_or_path as ai-toolkit opens it: <folder>/<BFL DiT name>, the file itself, or a hub repo."""
    kind = layout(model)
    res = Resolved(paths={"name_or_path": model})
    if kind in ("diffusers", "folder", "comfyui"):
        if not (Path(model).expanduser() / BFL_DIT[variant]).is_file():
            res.missing.append(f"DiT {Path(model) / BFL_DIT[variant]}")
            res.hints.append(f"ai-toolkit opens exactly {BFL_DIT[variant]} inside --model (or pass the DiT file)")
    elif kind == "missing" and not looks_like_hub_id(model):
        res.missing.append(f"model {model}")
    if vae:
        res.paths["vae_path"] = str(Path(vae).expanduser())
        if layout(vae) == "missing":
            res.missing.append(f"VAE {vae}")
    elif kind == "file" and (Path(model).expanduser().parent / BFL_VAE).is_file():
        res.paths["vae_path"] = str(Path(model).expanduser().parent / BFL_VAE)
    return res


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
        proc: dict[str, Any] = {"type": "diffusion_trainer", "training_folder": "output"}
        if ex.trigger:
            proc["trigger_word"] = ex.trigger
        proc["network"] = network
        proc["save"] = {"dtype": "bf16", "save_every": ex.checkpoint_every or DEFAULT_SAVE_EVERY,
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
        # quantize: ai-toolkit's qfloat8 weights for the frozen base (the seed's "fp8 for model, bf16 for LoRA")
        proc["model"] = {"name_or_path": ex.models["name_or_path"], "arch": ARCH[r.model],
                         "quantize": ex.base_dtype == "fp8"}
        if "vae_path" in ex.models.paths:
            proc["model"]["vae_path"] = ex.models["vae_path"]
        prompts = list(getattr(job, "sample_prompts", ()) or ()) or default_prompts(ex.trigger)
        proc["sample"] = {"sampler": "flowmatch", "sample_every": sample_every or steps,
                          "width": ex.resolution, "height": ex.resolution,
                          "samples": [{"prompt": p} for p in prompts],
                          "seed": int(getattr(job, "seed", 0) or 0), "walk_seed": True,
                          "guidance_scale": 4.0, "sample_steps": 25}
        return proc

    def models(self, job: Any) -> Resolved:
        return resolve(str(job.model), job.recipe.model, opts(job).get("vae"))

    def offline_notes(self, ex: Export) -> list[str]:
        m = ex.models
        notes = [f"ai-toolkit always loads Qwen3 from the hub ({HUB_QWEN[ex.variant]}): on an offline GPU machine "
                 "it must already be in the Hugging Face cache (HF_HOME)"]
        if "vae_path" in m.paths:
            notes.append(f"VAE: {m['vae_path']}")
        else:
            notes.append(f"VAE: {m['name_or_path']}/{BFL_VAE} if present, else the hub ({HUB_VAE}): offline, "
                         "put it in the cache or pass --vae")
        if layout(m["name_or_path"]) == "missing" and looks_like_hub_id(m["name_or_path"]):
            notes.append(f"DiT: hub repo {m['name_or_path']} ({BFL_DIT[ex.variant]}): offline, it must be cached")
        return notes

    def validate(self, job: Any) -> None:
        if job.recipe.optimizer not in OPTIMIZERS:
            raise KlintError(f"ai-toolkit has no {job.recipe.optimizer} optimizer; use --optimizer adamw8bit")

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        ex.notes.extend(self.offline_notes(ex))
        ex.steps.append(StepRow("stage 1", r.steps, r.steps, "train.steps"))
        if ex.stage2_groups:
            ex.steps.append(StepRow("stage 2", r.stage2_steps, r.stage2_steps, "train.steps"))
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
