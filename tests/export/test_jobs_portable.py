"""Issue 14: jobs that survive being copied to the GPU machine, and the faults found running the tools' readers.

ACCEPTED lists, per tool and file, the keys its own reader takes and the type it expects (collected from
the tools' sources: ai-toolkit toolkit/config_modules.py and jobs/process/*; diffusion-pipe train.py,
utils/saver.py, models/flux2.py, utils/dataset.py; musubi-tuner flux_2_train_network argparse and
dataset/config_utils.py; SimpleTuner field_registry/sections and documentation/DATALOADER.md). Every key
klint writes must be in it with that type.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from curate.backends import get_registry
from curate.errors import KlintError
from curate.config import load_config
from curate.fix.rebalance import per_image_repeats
from plugins.exporters.common import plan_repeats

from .conftest import TOOLS, fake_safetensors, make_job

S, I, F, B, L, D = str, int, float, bool, list, dict
ACCEPTED = {
    "ai-toolkit": {
        "": {"job": S, "config": D, "meta": D},
        "config": {"name": S, "process": L},
        "meta": {"name": S, "version": S, "written_by": S},
        "process": {"type": S, "training_folder": S, "trigger_word": S, "network": D, "save": D, "datasets": L,
                    "train": D, "model": D, "sample": D},
        "network": {"type": S, "linear": I, "linear_alpha": I, "pretrained_lora_path": S},
        "save": {"dtype": S, "save_every": I, "max_step_saves_to_keep": I},
        "datasets": {"folder_path": S, "caption_ext": S, "caption_dropout_rate": F, "num_repeats": I,
                     "resolution": L, "cache_latents_to_disk": B},
        "train": {"batch_size": I, "steps": I, "gradient_accumulation_steps": I, "train_unet": B,
                  "train_text_encoder": B, "gradient_checkpointing": B, "noise_scheduler": S, "timestep_type": S,
                  "optimizer": S, "lr": F, "lr_scheduler": S, "optimizer_params": D, "dtype": S,
                  "cache_text_embeddings": B, "disable_sampling": B},
        "model": {"name_or_path": S, "arch": S, "quantize": B, "vae_path": S},
        "sample": {"sampler": S, "sample_every": I, "width": I, "height": I, "samples": L, "seed": I,
                   "walk_seed": B, "guidance_scale": F, "sample_steps": I},
    },
    "diffusion-pipe": {
        "config": {"output_dir": S, "dataset": S, "epochs": I, "max_steps": I, "micro_batch_size_per_gpu": I,
                   "pipeline_stages": I, "gradient_accumulation_steps": I, "gradient_clipping": F,
                   "warmup_steps": I, "save_every_n_epochs": I, "save_every_n_steps": I,
                   "activation_checkpointing": B, "partition_method": S, "save_dtype": S,
                   "caching_batch_size": I, "steps_per_print": I, "lr_scheduler": S, "model": D, "adapter": D,
                   "optimizer": D},
        "model": {"type": S, "diffusion_model": S, "vae": S, "text_encoders": L, "dtype": S,
                  "diffusion_model_dtype": S, "timestep_sample_method": S, "shift": I},
        "adapter": {"type": S, "rank": I, "dtype": S, "init_from_existing": S},
        "optimizer": {"type": S, "lr": F, "betas": L, "weight_decay": F, "eps": F},
        "dataset": {"resolutions": L, "enable_ar_bucket": B, "min_ar": F, "max_ar": F, "num_ar_buckets": I,
                    "frame_buckets": L, "directory": L},
        "directory": {"path": S, "num_repeats": I},
    },
    "musubi-tuner": {
        "train": {"model_version": S, "dit": S, "vae": S, "text_encoder": S, "dataset_config": S, "sdpa": B,
                  "mixed_precision": S, "fp8_base": B, "fp8_scaled": B, "timestep_sampling": S,
                  "weighting_scheme": S, "optimizer_type": S, "optimizer_args": L, "learning_rate": F,
                  "lr_scheduler": S, "gradient_checkpointing": B, "gradient_accumulation_steps": I,
                  "network_module": S, "network_dim": I, "network_alpha": I, "max_train_steps": I, "seed": I,
                  "max_data_loader_n_workers": I, "persistent_data_loader_workers": B, "output_dir": S,
                  "output_name": S, "save_every_n_steps": I, "network_weights": S},
        "general": {"resolution": L, "caption_extension": S, "batch_size": I, "enable_bucket": B,
                    "bucket_no_upscale": B},
        "datasets": {"image_directory": S, "cache_directory": S, "num_repeats": I},
    },
    "simpletuner": {
        "config": {"model_family": S, "model_flavour": S, "model_type": S, "pretrained_model_name_or_path": S,
                   "lora_type": S, "lora_rank": I, "lora_alpha": I, "base_model_precision": S,
                   "mixed_precision": S, "optimizer": S, "learning_rate": F, "lr_scheduler": S,
                   "lr_warmup_steps": I, "max_train_steps": I, "num_train_epochs": I, "train_batch_size": I,
                   "gradient_accumulation_steps": I, "gradient_checkpointing": B, "resolution": I,
                   "resolution_type": S, "data_backend_config": S, "output_dir": S,
                   "checkpoint_step_interval": I, "seed": I, "report_to": S, "push_to_hub": B,
                   "adam_weight_decay": F, "validation_disable": B, "validation_step_interval": I,
                   "validation_prompt": S, "validation_resolution": S, "init_lora": S},
        "backend": {"id": S, "type": S, "instance_data_dir": S, "caption_strategy": S, "resolution": I,
                    "resolution_type": S, "crop": B, "repeats": I, "cache_dir_vae": S,
                    "dataset_type": S, "default": B, "cache_dir": S},
    },
}
# values the readers accept for keys with a fixed set (from the same sources)
CHOICES = {
    ("diffusion-pipe", "config", "lr_scheduler"): {"constant", "linear", "cosine"},
    ("simpletuner", "config", "model_flavour"): {"dev", "klein-4b", "klein-9b"},
    ("simpletuner", "config", "resolution_type"): {"pixel", "area", "pixel_area"},
    ("simpletuner", "backend", "resolution_type"): {"pixel", "area", "pixel_area"},
    ("simpletuner", "backend", "caption_strategy"): {"filename", "textfile", "instanceprompt", "parquet"},
    ("simpletuner", "config", "base_model_precision"): {"no_change", "fp8-quanto", "int8-quanto", "fp8-torchao"},
    ("simpletuner", "config", "optimizer"): {"bnb-adamw8bit", "torch-adamw", "adamw_bf16"},
    ("musubi-tuner", "train", "model_version"): {"klein-base-4b", "klein-base-9b"},
}


def check_table(tool: str, table: str, data: dict) -> None:
    allowed = ACCEPTED[tool][table]
    for key, value in data.items():
        assert key in allowed, f"{tool}: [{table}] {key} is not read by the tool"
        want = allowed[key]
        ok = isinstance(value, want) and not (want is I and isinstance(value, bool))
        assert ok or (want is F and isinstance(value, int) and not isinstance(value, bool)), \
            f"{tool}: {table}.{key} = {value!r}, the tool reads a {want.__name__}"
        if (tool, table, key) in CHOICES:
            assert value in CHOICES[(tool, table, key)], f"{tool}: {key} = {value!r} is not one it accepts"


def check_job(tool: str, out: Path) -> list[str]:
    """Every field against ACCEPTED; returns the job-relative data paths the configs name."""
    paths: list[str] = []
    if tool == "ai-toolkit":
        for f in out.glob("config*.yaml"):
            doc = yaml.safe_load(f.read_text())
            check_table(tool, "", doc)
            check_table(tool, "config", doc["config"])
            check_table(tool, "meta", doc["meta"])
            for proc in doc["config"]["process"]:
                check_table(tool, "process", proc)
                for t in ("network", "save", "train", "model", "sample"):
                    check_table(tool, t, proc[t])
                for d in proc["datasets"]:
                    check_table(tool, "datasets", d)
                    paths.append(d["folder_path"])
    elif tool == "diffusion-pipe":
        for f in out.glob("config*.toml"):
            main = tomllib.loads(f.read_text())
            check_table(tool, "config", main)
            for t in ("model", "adapter", "optimizer"):
                check_table(tool, t, main[t])
            data = tomllib.loads((out / main["dataset"]).read_text())
            check_table(tool, "dataset", data)
            for d in data["directory"]:
                check_table(tool, "directory", d)
                paths.append(d["path"])
    elif tool == "musubi-tuner":
        for f in out.glob("train*.toml"):
            train = tomllib.loads(f.read_text())
            check_table(tool, "train", train)
            data = tomllib.loads((out / train["dataset_config"]).read_text())
            check_table(tool, "general", data["general"])
            for d in data["datasets"]:
                check_table(tool, "datasets", d)
                paths.append(d["image_directory"])
    elif tool == "simpletuner":
        for f in out.glob("config*.json"):
            cfg = json.loads(f.read_text())
            check_table(tool, "config", cfg)
            for b in json.loads((out / cfg["data_backend_config"]).read_text()):
                check_table(tool, "backend", b)
                if "instance_data_dir" in b:
                    paths.append(b["instance_data_dir"])
    elif tool == "diffsynth":
        from .test_exporters import diffsynth_parser, parse_strict

        for line in (out / "run.sh").read_text().splitlines():
            if line.startswith("accelerate launch"):
                args = parse_strict(diffsynth_parser(), shlex.split(line)[3:])
                paths.append(args.dataset_base_path)
                meta = (out / args.dataset_metadata_path).read_text().splitlines()[1:]
                paths += [f"{args.dataset_base_path}/{row.split(',')[0]}" for row in meta]
    return paths


def export(tool, root, out, **kw):
    job = make_job(root, out, tool, **kw)
    assert get_registry().get("trainer", tool).run(job) == 0
    return job


@pytest.mark.parametrize("tool", TOOLS)
def test_job_moved_elsewhere_with_dataset_deleted_still_checks(tool, dataset, tmp_path):
    """Must-show 1: export, move the job, delete the dataset, run the tool's reader / accepted-keys check."""
    out = tmp_path / "laptop" / "job"
    export(tool, dataset, out)
    moved = tmp_path / "gpu-box" / "home" / "job"
    moved.parent.mkdir(parents=True)
    shutil.move(str(out), str(moved))
    shutil.rmtree(dataset)
    paths = check_job(tool, moved)
    assert paths
    for rel in paths:
        assert not Path(rel).is_absolute(), f"{tool}: {rel} is absolute"
        target = moved / rel
        assert target.exists(), f"{tool}: {rel} is missing after the move"
    images = list(moved.rglob("*.png"))
    assert len(images) >= 6 and all(p.is_file() and not p.is_symlink() and p.stat().st_size for p in images)
    script = (moved / "run.sh").read_text()
    assert str(tmp_path) not in script and 'cd "$(dirname "$0")"' in script
    for cfg in moved.glob("*.*"):
        if cfg.suffix in (".toml", ".yaml", ".json", ".csv", ".sh"):
            assert str(tmp_path) not in cfg.read_text(), f"{tool}: {cfg.name} names the laptop's folders"


def test_link_flag_symlinks_on_purpose(dataset, tmp_path):
    out = tmp_path / "out"
    export("musubi-tuner", dataset, out, options={"link": "symlink"})
    assert all(p.is_symlink() for p in out.rglob("*.png"))


def test_repeats_are_the_rebalance_plans(dataset):
    job = make_job(dataset, dataset.parent / "o", "ai-toolkit")
    cfg = load_config(dataset)
    rels = [it.rel for it in job.items]
    assert plan_repeats(job.items, job.recipe.repeats) == per_image_repeats(cfg, rels, job.recipe.repeats)


def test_steps_exact_per_tool_and_stage(dataset, tmp_path, capsys):
    """Must-show 2: the plan's step table; every tool stops at the recipe's steps."""
    for tool in TOOLS:
        export(tool, dataset, tmp_path / tool)
        table = capsys.readouterr().out
        assert "steps:" in table
        rows = [line.split() for line in table.splitlines() if line.strip().startswith(("stage 1", "stage 2"))]
        assert len(rows) == 2, table
        for row in rows:
            assert row[2] == row[3], f"{tool}: {row}"  # recipe steps == tool steps
    # steps that do not divide by the repeat weights: DiffSynth still runs exactly 1001 samples
    export("diffsynth", dataset, tmp_path / "odd", steps=1001, two_stage=False)
    args = check_job("diffsynth", tmp_path / "odd")
    rows = (tmp_path / "odd" / "dataset/metadata.csv").read_text().splitlines()[1:]
    launch = [line for line in (tmp_path / "odd" / "run.sh").read_text().splitlines() if line.startswith("accel")]
    repeat = int(shlex.split(launch[0])[shlex.split(launch[0]).index("--dataset_repeat") + 1])
    assert len(rows) * repeat == 1001 and args


def test_diffusion_pipe_checkpoint_every_and_schedules(dataset, tmp_path):
    job = make_job(dataset, tmp_path / "o", "diffusion-pipe", lr_schedule="cosine")
    import dataclasses

    job = dataclasses.replace(job, checkpoint_every=200)
    assert get_registry().get("trainer", "diffusion-pipe").run(job) == 0
    main = tomllib.loads((tmp_path / "o" / "config.toml").read_text())
    assert main["save_every_n_steps"] == 200 and "save_every_n_epochs" not in main
    assert main["lr_scheduler"] == "cosine" and main["max_steps"] == 3000
    script = (tmp_path / "o" / "run.sh").read_text()
    assert 'ln -sfn "${final#output/}" output/stage1-final' in script and "$PWD" not in script


def test_diffsynth_stage2_after_checkpointing_and_fp8(dataset, tmp_path):
    import dataclasses

    job = dataclasses.replace(make_job(dataset, tmp_path / "o", "diffsynth", gradient_accumulation=2,
                                       base_dtype="fp8"), checkpoint_every=100)
    assert get_registry().get("trainer", "diffsynth").run(job) == 0
    script = (tmp_path / "o" / "run.sh").read_text()
    launch = [line for line in script.splitlines() if line.startswith("accelerate launch")]
    from .test_exporters import diffsynth_parser, parse_strict

    a1 = parse_strict(diffsynth_parser(), shlex.split(launch[0].split(" ${FP8")[0])[3:])
    a2 = parse_strict(diffsynth_parser(), shlex.split(launch[1].split(" ${FP8")[0])[3:])
    assert a1.save_steps == 200  # micro-batches: 100 optimizer steps x accumulation 2
    # stage 1 with --save_steps ends with step-<micro steps>, never epoch-N
    assert a2.lora_checkpoint == "output/step-2400.safetensors"
    assert 'FP8_MODELS="$(' in script and '${FP8_MODELS:+--fp8_models "$FP8_MODELS"}' in launch[0]


def test_model_folder_resolves_per_tool(dataset, tmp_path):
    """A BFL/diffusers snapshot: musubi gets the DiT file, the first Qwen3 shard and the given BFL ae."""
    snap = tmp_path / "FLUX.2-klein-base-9B"
    fake_safetensors(snap / "flux-2-klein-base-9b.safetensors")
    for i in (1, 2, 3, 4):
        fake_safetensors(snap / "text_encoder" / f"model-0000{i}-of-00004.safetensors", 8)
    fake_safetensors(snap / "transformer" / "diffusion_pytorch_model-00001-of-00002.safetensors", 8)
    (snap / "model_index.json").write_text("{}")
    ae = fake_safetensors(tmp_path / "FLUX.2-dev" / "ae.safetensors", 8)
    job = make_job(dataset, tmp_path / "m", "musubi-tuner", model=str(snap), dry_run=False,
                   options={"vae": str(ae)})
    assert get_registry().get("trainer", "musubi-tuner").run(job) == 0
    train = tomllib.loads((tmp_path / "m" / "train.toml").read_text())
    assert train["dit"] == str(snap / "flux-2-klein-base-9b.safetensors")
    assert train["text_encoder"] == str(snap / "text_encoder" / "model-00001-of-00004.safetensors")
    assert train["vae"] == str(ae)
    # no VAE: refused in one line naming the file and the flag
    with pytest.raises(KlintError, match=r"VAE .*ae\.safetensors.*--vae"):
        get_registry().get("trainer", "musubi-tuner").run(make_job(dataset, tmp_path / "m2", "musubi-tuner",
                                                                   model=str(snap), dry_run=False))
    # diffusion-pipe cannot read split Qwen3 shards: refused unless one file is given
    with pytest.raises(KlintError, match="split shards cannot be loaded"):
        get_registry().get("trainer", "diffusion-pipe").run(make_job(
            dataset, tmp_path / "d", "diffusion-pipe", model=str(snap), dry_run=False, options={"vae": str(ae)}))
    qwen = fake_safetensors(tmp_path / "te" / "qwen_3_8b.safetensors", 8)
    job = make_job(dataset, tmp_path / "d", "diffusion-pipe", model=str(snap), dry_run=False,
                   options={"vae": str(ae), "text_encoder": str(qwen)})
    assert get_registry().get("trainer", "diffusion-pipe").run(job) == 0
    main = tomllib.loads((tmp_path / "d" / "config.toml").read_text())
    assert main["model"]["diffusion_model"].endswith("flux-2-klein-base-9b.safetensors")
    assert main["model"]["text_encoders"][0]["path"] == str(qwen)
    # ai-toolkit: --vae becomes vae_path; the plan says where Qwen3 comes from
    job = make_job(dataset, tmp_path / "a", "ai-toolkit", model=str(snap), dry_run=False, options={"vae": str(ae)})
    assert get_registry().get("trainer", "ai-toolkit").run(job) == 0
    proc = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["config"]["process"][0]
    assert proc["model"]["vae_path"] == str(ae)
    assert "Qwen/Qwen3-8B" in (tmp_path / "a" / "run.sh").read_text()


def test_dry_run_warns_loudly_naming_missing_files(dataset, tmp_path, capsys):
    export("musubi-tuner", dataset, tmp_path / "o", model="/gpu/models/flux-2-klein-base-9b.safetensors")
    err = capsys.readouterr().err
    assert "MODEL FILES NOT CHECKED" in err and "/gpu/models/ae.safetensors" in err and "--text-encoder" in err


def test_model_kind_is_only_what_is_known(dataset, tmp_path, capsys):
    export("musubi-tuner", dataset, tmp_path / "o", model="/gpu/klein-9b.safetensors")
    out = capsys.readouterr()
    assert "distilled Klein checkpoint" not in out.err + out.out
    assert "cannot tell base or distilled" in out.out
    dit = fake_safetensors(tmp_path / "m" / "klein-9b.safetensors", width=3072)
    export("musubi-tuner", dataset, tmp_path / "o2", model=str(dit))
    out = capsys.readouterr()
    assert "is a klein-4b transformer (img_in width 3072) but the recipe is klein-9b" in out.err


def test_no_trigger_and_unreadable_images_never_reach_a_job(dataset, tmp_path):
    import dataclasses

    job = make_job(dataset, tmp_path / "o", "ai-toolkit")
    with pytest.raises(KlintError, match="no trigger word"):
        get_registry().get("trainer", "ai-toolkit").run(dataclasses.replace(job, trigger=None))
    (dataset / "close_01.png").write_bytes(b"not a png at all")
    with pytest.raises(KlintError, match="cannot be decoded.*close_01.png"):
        get_registry().get("trainer", "ai-toolkit").run(make_job(dataset, tmp_path / "o2", "ai-toolkit"))
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()


def test_cli_flags_reach_the_job(dataset, tmp_path):
    from curate.testing import run_cli

    toml = dataset / "klint.toml"
    toml.write_text('select = ["KL001"]\n' + toml.read_text().replace('[repeats]', '[train]\nlink = "copy"\n\n[repeats]'))
    res = run_cli(["train", str(dataset), "--no-cache", "--no-progress", "--force", "--out", str(tmp_path / "o"),
                   "--backend", "musubi-tuner", "--model", "/gpu/flux-2-klein-base-9b.safetensors", "--dry-run",
                   "--vae", "/gpu/ae.safetensors", "--text-encoder", "/gpu/te/model-00001-of-00004.safetensors"])
    assert res.exit_code == 0, res.stderr
    train = tomllib.loads((tmp_path / "o" / "train.toml").read_text())
    assert train["vae"] == "/gpu/ae.safetensors"
    assert train["text_encoder"] == "/gpu/te/model-00001-of-00004.safetensors"
    assert "frozen base weights trained in fp8" in res.stdout


def test_cli_force_never_exports_unreadable_images_or_no_trigger(dataset, tmp_path):
    from curate.testing import run_cli

    toml = dataset / "klint.toml"
    toml.write_text('select = ["KL001"]\n' + toml.read_text())
    (dataset / "half_02.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    base = ["train", str(dataset), "--no-cache", "--no-progress", "--force", "--backend", "ai-toolkit",
            "--model", "/gpu/FLUX.2-klein-base-9B", "--dry-run"]
    res = run_cli([*base, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "half_02.png" in res.stderr
    (dataset / "half_02.png").unlink()
    (dataset / "half_02.txt").unlink()
    toml.write_text(toml.read_text().replace('trigger = "jane_doe"\n', ""))
    res = run_cli([*base, "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2 and "no trigger word" in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "o2").exists()


FAKE_READER = r'''
import os, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
for d in doc["config"]["process"][0]["datasets"]:
    assert os.path.isdir(d["folder_path"]), d["folder_path"]
print("read", sys.argv[1], "from", os.getcwd())
'''


def test_run_sh_runs_from_any_folder_after_the_move(dataset, tmp_path):
    """run.sh started by absolute path from elsewhere finds its configs and images (relative paths)."""
    import subprocess
    import sys

    out = tmp_path / "job"
    export("ai-toolkit", dataset, out)
    moved = tmp_path / "elsewhere" / "job"
    moved.parent.mkdir()
    shutil.move(str(out), str(moved))
    shutil.rmtree(dataset)
    tool = tmp_path / "ai-toolkit"
    tool.mkdir()
    (tool / "run.py").write_text(FAKE_READER)
    proc = subprocess.run(["bash", str(moved / "run.sh")], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AI_TOOLKIT_DIR": str(tool), "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr
    assert f"read config.yaml from {moved}" in proc.stdout and f"read config_stage2.yaml from {moved}" in proc.stdout


def test_comfyui_models_folder_resolves_for_diffusion_pipe(dataset, tmp_path):
    models = tmp_path / "ComfyUI" / "models"
    dit = fake_safetensors(models / "diffusion_models" / "flux-2-klein-base-9b.safetensors")
    vae = fake_safetensors(models / "vae" / "flux2-vae.safetensors", 8)
    qwen = fake_safetensors(models / "text_encoders" / "qwen_3_8b_fp8mixed.safetensors", 8)
    for model in (models, dit):  # the folder, or the DiT file inside it
        out = tmp_path / f"o-{model.name}"
        export("diffusion-pipe", dataset, out, model=str(model), dry_run=False)
        m = tomllib.loads((out / "config.toml").read_text())["model"]
        assert (m["diffusion_model"], m["vae"], m["text_encoders"][0]["path"]) == (str(dit), str(vae), str(qwen))
