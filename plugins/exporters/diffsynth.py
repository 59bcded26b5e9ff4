"""DiffSynth-Studio exporter: `metadata.csv` (repeats as duplicated rows) and the `train.py` launch arguments."""

from __future__ import annotations

import csv
import io
import json
import math
from functools import reduce
from pathlib import Path
from typing import Any

from curate.errors import KlintError
from plugins.exporters.common import Export, Exporter, Group, ToolSpec, epochs_for, plain_float, shell_join

TOOL = ToolSpec("diffsynth", "DIFFSYNTH_DIR", ("examples/flux2/model_training/train.py",))
SINGLE_BLOCKS = {"klein-4b": 20, "klein-9b": 24}
# DiffSynth's own Klein LoRA example: every block linear, single-block `to_out` named per index
# (a bare `to_out` would also catch the double blocks' `to_out` container)
BLOCK_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out",
                 "linear_in", "linear_out", "to_qkv_mlp_proj")
# expand shard globs on the training machine, where the files are
MODEL_PATHS_PY = ('import glob,json,sys; m=sys.argv[1]; print(json.dumps([sorted(glob.glob(m+"/transformer/*.safetensors")),'
                  ' sorted(glob.glob(m+"/text_encoder/*.safetensors")), m+"/vae/diffusion_pytorch_model.safetensors"]))')


def target_modules(variant: str) -> str:
    singles = [f"single_transformer_blocks.{i}.attn.to_out" for i in range(SINGLE_BLOCKS[variant])]
    return ",".join([*BLOCK_TARGETS, *singles])


class DiffSynthExporter(Exporter):
    name = "diffsynth"
    tool = TOOL

    def validate(self, job: Any) -> None:
        r = job.recipe
        if r.optimizer == "adafactor":
            raise KlintError("DiffSynth-Studio trains with AdamW only; adafactor cannot be expressed")
        if r.lr_schedule != "constant":
            raise KlintError(f"DiffSynth-Studio has no {r.lr_schedule} lr schedule; use a constant lr")
        if r.batch_size != 1:
            raise KlintError("DiffSynth-Studio trains at batch size 1; use --gradient-accumulation instead")

    def model_paths(self, job: Any, o: dict[str, Any]) -> dict[str, str]:
        return {"--model": str(job.model), "transformer folder": str(Path(str(job.model)) / "transformer")}

    def metadata(self, groups: list[Group]) -> tuple[str, int, int]:
        """CSV rows repeat each image repeats/g times; --dataset_repeat g restores the exact counts."""
        g = reduce(math.gcd, (grp.repeats for grp in groups))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["image", "prompt"])
        rows = 0
        for grp in groups:
            folder = grp.rel_dir.split("/", 1)[1]
            for name in grp.files:
                caption = self._captions[(grp.rel_dir, name)]
                for _ in range(grp.repeats // g):
                    writer.writerow([f"{folder}/{name}", caption])
                    rows += 1
        return buf.getvalue(), g, rows

    def args(self, ex: Export, base: str, meta: str, repeat: int, steps: int, lr: float, rows: int,
             output: str, init: str | None) -> list[str]:
        r = ex.recipe
        epochs = epochs_for(steps, rows * repeat, 1, r.gradient_accumulation)
        argv = ["accelerate", "launch", "$DIFFSYNTH_DIR/examples/flux2/model_training/train.py",
                "--dataset_base_path", base, "--dataset_metadata_path", meta, "--data_file_keys", "image",
                "--dataset_repeat", str(repeat), "--max_pixels", str(ex.resolution * ex.resolution),
                "--model_paths", "$MODEL_PATHS", "--tokenizer_path", f"{ex.job.model}/tokenizer",
                "--learning_rate", plain_float(lr), "--weight_decay", plain_float(r.weight_decay),
                "--num_epochs", str(epochs), "--gradient_accumulation_steps", str(r.gradient_accumulation),
                "--remove_prefix_in_ckpt", "pipe.dit.", "--output_path", output,
                "--lora_base_model", "dit", "--lora_target_modules", target_modules(r.model),
                "--lora_rank", str(r.rank), "--use_gradient_checkpointing"]
        every = int(getattr(ex.job, "checkpoint_every", 0) or 0)
        if every:
            argv += ["--save_steps", str(every)]
        if init:
            argv += ["--lora_checkpoint", init]
        return argv

    def write(self, ex: Export) -> list[str]:
        r = ex.recipe
        if r.optimizer != "adamw":
            ex.warnings.append(f"DiffSynth-Studio always uses torch AdamW: {r.optimizer} runs as full-precision "
                               "AdamW (same update rule, more optimizer memory)")
        if r.alpha != r.rank:
            ex.warnings.append(f"DiffSynth-Studio fixes LoRA alpha = rank: recipe alpha {r.alpha} becomes {r.rank}")
        self._captions = {}
        for grp in [*ex.groups, *ex.stage2_groups]:
            for name in grp.files:
                text = (ex.out / grp.rel_dir / (name.rsplit(".", 1)[0] + ".txt")).read_text("utf-8").strip()
                self._captions[(grp.rel_dir, name)] = text
        meta, repeat, rows = self.metadata(ex.groups)
        ex.write("dataset/metadata.csv", meta)
        argv = self.args(ex, "dataset", "dataset/metadata.csv", repeat, r.steps, r.lr, rows, "output", None)
        ex.write("launch_args.json", json.dumps(argv[2:], indent=2) + "\n")
        commands = [f"MODEL={shell_join([str(ex.job.model)])}",
                    f'MODEL_PATHS="$("$PYTHON" -c {shell_join([MODEL_PATHS_PY])} "$MODEL")"',
                    shell_join(argv)]
        if ex.stage2_groups:
            meta2, repeat2, rows2 = self.metadata(ex.stage2_groups)
            ex.write("dataset_stage2/metadata.csv", meta2)
            epochs1 = epochs_for(r.steps, rows * repeat, 1, r.gradient_accumulation)
            argv2 = self.args(ex, "dataset_stage2", "dataset_stage2/metadata.csv", repeat2, r.stage2_steps,
                              r.stage2_lr, rows2, "output_stage2",
                              f"output/epoch-{epochs1 - 1}.safetensors")
            ex.write("launch_args_stage2.json", json.dumps(argv2[2:], indent=2) + "\n")
            commands += ["# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA",
                         shell_join(argv2)]
        return commands
