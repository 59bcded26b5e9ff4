"""DiffSynth-Studio exporter: `metadata.csv` (repeats as duplicated rows) and the `train.py` launch arguments.

DiffSynth trains whole epochs and has no step limit, so the job is ONE epoch whose length is the recipe's
steps: the rows per image are the repeat weights apportioned to steps x accumulation samples, written as
few rows as possible times `--dataset_repeat`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from functools import reduce
from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import Export, Exporter, Group, StepRow, ToolSpec, plain_float, shell_join
from plugins.exporters.models import Resolved, diffusers_folder

TOOL = ToolSpec("diffsynth", "DIFFSYNTH_DIR", ("examples/flux2/model_training/train.py",))
SINGLE_BLOCKS = {"klein-4b": 20, "klein-9b": 24}
# DiffSynth's own Klein LoRA example: every block linear, single-block `to_out` named per index
# (a bare `to_out` would also catch the double blocks' `to_out` container)
BLOCK_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
                 "linear_in", "linear_out", "to_qkv_mlp_proj")
# train.py imports `module.Class` from --customized_optimizer; absent means torch.optim.AdamW
OPTIMIZERS = {"adamw": None, "adamw8bit": "bitsandbytes.optim.AdamW8bit"}
# shard lists are expanded on the training machine, where the files are; a one-file transformer is written
# as a plain string because --fp8_models matches whole --model_paths entries
MODEL_PATHS_PY = ('import glob,json,sys; m=sys.argv[1]; one=lambda l: l[0] if len(l)==1 else l; '
                  't=sorted(glob.glob(m+"/transformer/*.safetensors")); '
                  'print(json.dumps([one(t), one(sorted(glob.glob(m+"/text_encoder/*.safetensors"))), '
                  'm+"/vae/diffusion_pytorch_model.safetensors"]) if sys.argv[2]=="paths" '
                  'else (t[0] if len(t)==1 else ""))')


def target_modules(variant: str) -> str:
    singles = [f"single_transformer_blocks.{i}.attn.to_out" for i in range(SINGLE_BLOCKS[variant])]
    return ",".join([*BLOCK_TARGETS, *singles])


def apportion(weights: dict[str, int], total: int) -> dict[str, int]:
    """Split `total` samples over images in proportion to their repeats (largest remainder; each image >= 1)."""
    w_sum = sum(weights.values())
    exact = {k: total * w / w_sum for k, w in weights.items()}
    rows = {k: max(1, math.floor(v)) for k, v in exact.items()}
    left = total - sum(rows.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - math.floor(exact[k])), k))[:max(0, left)]:
        rows[k] += 1
    return rows


class DiffSynthExporter(Exporter):
    name = "diffsynth"
    tool = TOOL

    def validate(self, job: Any) -> None:
        r = job.recipe
        if r.optimizer not in OPTIMIZERS:
            raise KlintError(f"DiffSynth-Studio job: no {r.optimizer} optimizer (--customized_optimizer takes "
                             "torch / bitsandbytes classes); use --optimizer adamw8bit or adamw")
        if r.lr_schedule != "constant":
            raise KlintError(f"DiffSynth-Studio has no {r.lr_schedule} lr schedule; use a constant lr")
        if r.batch_size != 1:
            raise KlintError("DiffSynth-Studio trains at batch size 1; use --gradient-accumulation instead")

    def models(self, job: Any) -> Resolved:
        return diffusers_folder(str(job.model), job.recipe.model)

    def metadata(self, groups: list[Group], steps: int, accumulation: int) -> tuple[str, int, int]:
        """CSV text, --dataset_repeat and micro-steps of the one epoch (= steps x accumulation)."""
        weights = {(g.rel_dir, name): g.repeats for g in groups for name in g.files}
        rows = apportion(weights, steps * accumulation)
        repeat = reduce(math.gcd, rows.values())
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "prompt"])
        for (rel_dir, name), n in rows.items():
            for _ in range(n // repeat):
                writer.writerow([f"{rel_dir.split('/', 1)[1]}/{name}", self._captions[(rel_dir, name)]])
        return buf.getvalue(), repeat, sum(rows.values())

    def args(self, ex: Export, base: str, meta: str, repeat: int, lr: float, output: str,
             init: str | None) -> list[str]:
        r = ex.recipe
        argv = ["accelerate", "launch", "$DIFFSYNTH_DIR/examples/flux2/model_training/train.py",
                "--dataset_base_path", base, "--dataset_metadata_path", meta, "--data_file_keys", "image",
                "--dataset_repeat", str(repeat), "--max_pixels", str(ex.resolution * ex.resolution),
                "--model_paths", "$MODEL_PATHS", "--tokenizer_path", f"{ex.models['model']}/tokenizer",
                "--learning_rate", plain_float(lr), "--weight_decay", plain_float(r.weight_decay),
                "--num_epochs", "1", "--gradient_accumulation_steps", str(r.gradient_accumulation),
                "--remove_prefix_in_ckpt", "pipe.dit.", "--output_path", output,
                "--lora_base_model", "dit", "--lora_target_modules", target_modules(r.model),
                "--lora_rank", str(r.rank), "--use_gradient_checkpointing"]
        if OPTIMIZERS[r.optimizer]:
            argv += ["--customized_optimizer", OPTIMIZERS[r.optimizer]]
        if ex.checkpoint_every:
            # DiffSynth counts save_steps in micro-batches
            argv += ["--save_steps", str(ex.checkpoint_every * r.gradient_accumulation)]
        if init:
            argv += ["--lora_checkpoint", init]
        return argv

    def final_lora(self, ex: Export, output: str, micro_steps: int) -> str:
        """The file stage 1 ends with: step-N with --save_steps, else the one epoch's epoch-0."""
        if ex.checkpoint_every:
            return f"{output}/step-{micro_steps}.safetensors"
        return f"{output}/epoch-0.safetensors"

    def launch(self, ex: Export, argv: list[str]) -> str:
        line = shell_join(argv)
        if ex.base_dtype == "fp8":
            line += ' ${FP8_MODELS:+--fp8_models "$FP8_MODELS"}'
        return line

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        if r.alpha != r.rank:
            ex.warnings.append(f"DiffSynth-Studio fixes LoRA alpha = rank: recipe alpha {r.alpha} becomes {r.rank}")
        self._captions = {}
        for grp in [*ex.groups, *ex.stage2_groups]:
            for name in grp.files:
                text = (ex.out / grp.rel_dir / (name.rsplit(".", 1)[0] + ".txt")).read_text("utf-8").strip()
                self._captions[(grp.rel_dir, name)] = text
        ga = r.gradient_accumulation
        meta, repeat, micro = self.metadata(ex.groups, r.steps, ga)
        ex.write("dataset/metadata.csv", meta)
        argv = self.args(ex, "dataset", "dataset/metadata.csv", repeat, r.lr, "output", None)
        ex.write("launch_args.json", json.dumps(argv[2:], indent=2) + "\n")
        how = f"1 epoch of {micro} samples ({micro // repeat} metadata rows x --dataset_repeat {repeat})"
        ex.steps.append(StepRow("stage 1", r.steps, micro // ga, how))
        commands = [f"MODEL={shell_join([ex.models['model']])}",
                    f'MODEL_PATHS="$("$PYTHON" -c {shell_join([MODEL_PATHS_PY])} "$MODEL" paths)"']
        if ex.base_dtype == "fp8":
            ex.notes.append("fp8 base: --fp8_models names the transformer when it is one file; a sharded "
                            "transformer cannot be named there and trains in bf16")
            commands.append(f'FP8_MODELS="$("$PYTHON" -c {shell_join([MODEL_PATHS_PY])} "$MODEL" fp8)"')
        commands.append(self.launch(ex, argv))
        if ex.stage2_groups:
            meta2, repeat2, micro2 = self.metadata(ex.stage2_groups, r.stage2_steps, ga)
            ex.write("dataset_stage2/metadata.csv", meta2)
            argv2 = self.args(ex, "dataset_stage2", "dataset_stage2/metadata.csv", repeat2, r.stage2_lr,
                              "output_stage2", self.final_lora(ex, "output", micro))
            ex.write("launch_args_stage2.json", json.dumps(argv2[2:], indent=2) + "\n")
            ex.steps.append(StepRow("stage 2", r.stage2_steps, micro2 // ga,
                                    f"1 epoch of {micro2} samples ({micro2 // repeat2} rows x {repeat2})"))
            commands += ["# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA",
                         self.launch(ex, argv2)]
        return commands
