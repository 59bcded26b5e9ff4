"""Exporter backends: golden files, real parsers, layout safety, refusals.

Regenerate the golden files after an intended change with KLINT_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from curate.backends import get_registry
from curate.errors import KlintError
from curate.fix.trainplan import base_repeats
from plugins.exporters.common import plain_float, plan_repeats, yaml_dump

from .conftest import GOLDEN, MODELS, TOOLS, fake_safetensors, make_job, snapshot

UPDATE = os.environ.get("KLINT_UPDATE_GOLDEN") == "1"


def export(tool, root, out, **kw):
    job = make_job(root, out, tool, **kw)
    rc = get_registry().get("trainer", tool).run(job)
    assert rc == 0
    return job


def rendered(out: Path, root: Path) -> dict[str, str]:
    """Every text file klint wrote, plus the layout with link targets relative to the dataset."""
    files = {}
    layout = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if rel.startswith("dataset") and p.suffix == ".png":
            target = Path(os.readlink(p)).relative_to(root.resolve()).as_posix() if p.is_symlink() else "(file)"
            layout.append(f"{rel} -> {target}")
        elif p.is_file():
            files[rel] = p.read_text("utf-8")
    files["LAYOUT"] = "\n".join(layout) + "\n"
    return files


@pytest.mark.parametrize("tool", TOOLS)
def test_golden(tool, dataset, tmp_path):
    out = tmp_path / "out"
    export(tool, dataset, out)
    got = rendered(out, dataset)
    gold_dir = GOLDEN / tool
    if UPDATE:
        gold_dir.mkdir(parents=True, exist_ok=True)
        for old in gold_dir.iterdir():
            old.unlink()
        for rel, text in got.items():
            (gold_dir / rel.replace("/", "__")).write_text(text, encoding="utf-8")
    want = {p.name: p.read_text("utf-8") for p in sorted(gold_dir.iterdir())}
    assert {k.replace("/", "__") for k in got} == set(want)
    for rel, text in got.items():
        assert text == want[rel.replace("/", "__")], f"{tool}: {rel} differs from its golden file"


def test_ai_toolkit_yaml_carries_recipe(dataset, tmp_path):
    out = tmp_path / "out"
    export("ai-toolkit", dataset, out, steps=2500, rank=16, alpha=8, lr=2e-4)
    doc = yaml.safe_load((out / "config.yaml").read_text())
    proc = doc["config"]["process"][0]
    assert doc["job"] == "extension" and proc["type"] == "diffusion_trainer"
    assert proc["trigger_word"] == "jane_doe"
    assert proc["network"] == {"type": "lora", "linear": 16, "linear_alpha": 8}
    train = proc["train"]
    # a real float: PyYAML would read 2e-4 back as the string "2e-4"
    assert train["lr"] == 0.0002 and isinstance(train["lr"], float)
    assert train["optimizer"] == "adamw8bit" and train["steps"] == 2500
    assert train["optimizer_params"]["weight_decay"] == 0.01
    # the standard recipe trains the frozen base in fp8 (seed: "fp8 for model, bf16 for LoRA")
    assert proc["model"] == {"name_or_path": MODELS["ai-toolkit"], "arch": "flux2_klein_9b", "quantize": True}
    assert "device" not in proc  # ai-toolkit never reads it
    # 6 images, multipliers 1,1,1,1,2,2: base 100 x 6 / 8 = 75 (the rebalance plan's base)
    reps = {d["folder_path"]: d["num_repeats"] for d in proc["datasets"]}
    assert reps == {"dataset/150_jane_doe": 150, "dataset/75_jane_doe": 75}
    assert all(d["resolution"] == [1024] for d in proc["datasets"])
    stage2 = yaml.safe_load((out / "config_stage2.yaml").read_text())["config"]["process"][0]
    assert stage2["train"]["lr"] == 0.00005 and stage2["train"]["steps"] == 750
    assert [d["folder_path"] for d in stage2["datasets"]] == ["dataset_stage2/150_jane_doe"]
    assert stage2["network"]["pretrained_lora_path"] == "output/jane_doe_klein9b/jane_doe_klein9b.safetensors"
    assert sorted(p.name for p in (out / "dataset_stage2/150_jane_doe").glob("*.png")) == [
        "full__full_01.png", "full__full_02.png"]


def test_diffusion_pipe_toml_carries_recipe(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    export("diffusion-pipe", dataset, out, recipe="herbst", optimizer="adamw8bit-kahan")
    main = tomllib.loads((out / "config.toml").read_text())
    data = tomllib.loads((out / "dataset.toml").read_text())
    assert main["dataset"] == "dataset.toml"
    assert main["model"]["type"] == "flux2" and main["model"]["diffusion_model"] == MODELS["diffusion-pipe"]
    assert main["model"]["vae"] == "/models/comfyui/vae/flux2-vae.safetensors"
    assert "diffusion_model_dtype" not in main["model"]  # herbst keeps the base in bf16
    assert main["model"]["text_encoders"] == [{"path": "/models/comfyui/text_encoders/qwen_3_8b.safetensors",
                                               "type": "flux2"}]
    assert main["model"]["timestep_sample_method"] == "logit_normal" and main["model"]["shift"] == 3
    assert main["adapter"] == {"type": "lora", "rank": 128, "dtype": "bfloat16"}  # no `alpha`: rejected by the tool
    assert main["optimizer"]["type"] == "AdamW8bitKahan" and main["optimizer"]["lr"] == 1e-4
    assert main["optimizer"]["weight_decay"] == 1e-5
    # max_steps stops at exactly the recipe's 7000; epochs (12 of 600) is only the upper bound
    assert main["max_steps"] == 7000 and main["epochs"] == 12 and main["lr_scheduler"] == "constant"
    assert [(d["path"], d["num_repeats"]) for d in data["directory"]] == [
        ("dataset/150_jane_doe", 150), ("dataset/75_jane_doe", 75)]
    assert data["resolutions"] == [1024] and data["frame_buckets"] == [1]
    text = (out / "config.toml").read_text()
    assert "recipe alpha 64 cannot be set" in text
    assert "alpha 64 becomes 128" in capsys.readouterr().err
    stage2 = tomllib.loads((out / "config_stage2.toml").read_text())
    assert stage2["adapter"]["init_from_existing"] == "output/stage1-final"
    assert stage2["optimizer"]["lr"] == 5e-5 and stage2["dataset"] == "dataset_stage2.toml"


def test_musubi_toml_carries_recipe(dataset, tmp_path):
    out = tmp_path / "out"
    export("musubi-tuner", dataset, out, rank=24, alpha=12)
    train = tomllib.loads((out / "train.toml").read_text())
    data = tomllib.loads((out / "dataset.toml").read_text())
    assert train["network_dim"] == 24 and train["network_alpha"] == 12  # never musubi's default alpha 1
    assert train["timestep_sampling"] == "flux2_shift" and train["model_version"] == "klein-base-9b"
    assert train["optimizer_type"] == "AdamW8bit" and train["learning_rate"] == 1e-4
    assert train["max_train_steps"] == 3000 and train["optimizer_args"] == ["weight_decay=0.01"]
    assert train["dit"] == MODELS["musubi-tuner"] and train["vae"] == "/models/bfl/ae.safetensors"
    assert train["fp8_base"] is True and train["fp8_scaled"] is True
    assert train["dataset_config"] == "dataset.toml" and train["network_module"] == "networks.lora_flux_2"
    assert data["general"]["resolution"] == [1024, 1024] and data["general"]["caption_extension"] == ".txt"
    assert [(d["image_directory"], d["num_repeats"]) for d in data["datasets"]] == [
        ("dataset/150_jane_doe", 150), ("dataset/75_jane_doe", 75)]
    script = (out / "run.sh").read_text()
    for cmd in ("flux_2_cache_latents.py", "flux_2_cache_text_encoder_outputs.py", "flux_2_train_network.py"):
        assert cmd in script
    assert script.index("flux_2_cache_latents.py") < script.index("flux_2_train_network.py")
    stage2 = tomllib.loads((out / "train_stage2.toml").read_text())
    assert stage2["network_weights"] == "output/jane_doe_klein9b.safetensors" and stage2["max_train_steps"] == 750


def diffsynth_parser() -> argparse.ArgumentParser:
    """DiffSynth-Studio's own argument parser (diffsynth/diffusion/parsers.py, as its FLUX.2 train.py builds it).

    parsers.py imports only argparse; loading it by file skips the package __init__ (torch, modelscope).
    """
    import importlib.util

    spec = importlib.util.find_spec("diffsynth")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("diffsynth not installed (pip install --no-deps diffsynth==2.1.12)")
    path = Path(list(spec.submodule_search_locations)[0]) / "diffusion" / "parsers.py"
    mod_spec = importlib.util.spec_from_file_location("_diffsynth_parsers", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    p = argparse.ArgumentParser(prog="train.py", exit_on_error=False)
    p = mod.add_general_config(p)
    p = mod.add_image_size_config(p)
    # the two arguments examples/flux2/model_training/train.py adds itself
    p.add_argument("--tokenizer_path", type=str, default=None)
    p.add_argument("--initialize_model_on_cpu", default=False, action="store_true")
    return p


def parse_strict(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args, unknown = parser.parse_known_args(argv)
    assert not unknown, f"DiffSynth-Studio rejects {unknown}"
    return args


def test_diffsynth_args_carry_recipe(dataset, tmp_path):
    out = tmp_path / "out"
    export("diffsynth", dataset, out)
    script = (out / "run.sh").read_text().splitlines()
    launch = [line for line in script if line.startswith("accelerate launch")]
    argv = shlex.split(launch[0])[3:]
    args = parse_strict(diffsynth_parser(), argv)
    assert argv == json.loads((out / "launch_args.json").read_text())[1:]
    assert args.learning_rate == 1e-4 and args.lora_rank == 16 and args.weight_decay == 0.01
    assert args.max_pixels == 1024 * 1024 and args.use_gradient_checkpointing
    assert args.tokenizer_path == MODELS["diffsynth"] + "/tokenizer"
    assert "single_transformer_blocks.19.attn.to_out" in args.lora_target_modules  # 4B: 20 single blocks
    assert "single_transformer_blocks.20.attn.to_out" not in args.lora_target_modules
    rows = list(csv.DictReader(io.StringIO((out / "dataset/metadata.csv").read_text())))
    counts = {}
    for row in rows:
        counts[row["image"]] = counts.get(row["image"], 0) + 1
        assert row["prompt"].startswith("jane_doe, ")
    # duplicated rows x --dataset_repeat reproduce the per-image repeats exactly
    # one epoch of exactly the recipe's 1200 samples, in the repeat ratio 1:1:1:1:2:2
    per_image = {k: v * args.dataset_repeat for k, v in counts.items()}
    assert per_image == {"75_jane_doe/close_01.png": 150, "75_jane_doe/close_02.png": 150,
                         "75_jane_doe/half_01.png": 150, "75_jane_doe/half_02.png": 150,
                         "150_jane_doe/full__full_01.png": 300, "150_jane_doe/full__full_02.png": 300}
    assert sum(per_image.values()) == 1200 and args.num_epochs == 1
    assert args.customized_optimizer == "bitsandbytes.optim.AdamW8bit"  # the recipe's adamw8bit, not torch AdamW
    for image in counts:
        assert (out / "dataset" / image).is_file() and not (out / "dataset" / image).is_symlink()
    args2 = parse_strict(diffsynth_parser(), shlex.split(launch[1])[3:])
    assert args2.lora_checkpoint == "output/epoch-0.safetensors" and args2.learning_rate == 5e-5


@pytest.mark.parametrize("tool", TOOLS)
def test_dry_run_writes_only_into_out(tool, dataset, tmp_path):
    before = snapshot(dataset)
    siblings = set(tmp_path.iterdir())
    out = tmp_path / "out"
    export(tool, dataset, out)
    assert snapshot(dataset) == before
    assert set(tmp_path.iterdir()) == siblings | {out}
    script = out / "run.sh"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env bash\n")
    # self-contained by default: real files (hard links or copies), never links back into the dataset
    images = [p for p in out.rglob("*.png")]
    assert images and not any(p.is_symlink() for p in images)
    # exporting again replaces klint's own export and still leaves the dataset alone
    export(tool, dataset, out)
    assert snapshot(dataset) == before


def test_copy_mode_copies_and_never_links(dataset, tmp_path):
    out = tmp_path / "out"
    export("musubi-tuner", dataset, out, options={"link": "copy"})
    pngs = list(out.rglob("*.png"))
    assert pngs and not any(p.is_symlink() for p in pngs)
    assert (out / "dataset/150_jane_doe/full__full_01.png").read_bytes() == (dataset / "full/full_01.png").read_bytes()


def test_refusals(dataset, tmp_path):
    reg = get_registry()
    with pytest.raises(KlintError, match="adafactor fails on klein-9B"):
        reg.get("trainer", "musubi-tuner").run(make_job(dataset, tmp_path / "o1", "musubi-tuner",
                                                        optimizer="adafactor"))
    for tool in ("ai-toolkit", "musubi-tuner"):
        with pytest.raises(KlintError, match="no adamw8bit-kahan optimizer"):
            reg.get("trainer", tool).run(make_job(dataset, tmp_path / "o2", tool, optimizer="adamw8bit-kahan"))
    with pytest.raises(KlintError, match="inside the dataset"):
        reg.get("trainer", "ai-toolkit").run(make_job(dataset, dataset / "export", "ai-toolkit"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(KlintError, match="not written by klint"):
        reg.get("trainer", "ai-toolkit").run(make_job(dataset, foreign, "ai-toolkit"))
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(KlintError, match="model files not found on this machine: DiT .*flux-2-klein-base-9b"):
        reg.get("trainer", "diffusion-pipe").run(make_job(dataset, tmp_path / "o3", "diffusion-pipe", dry_run=False))
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_repeat_math_is_the_rebalance_plans():
    # 10 images x1 keep the seed's 100; a rebalance x3 on one image lowers the base so the average stays 100
    assert base_repeats(100, 10, 10) == 100 and base_repeats(100, 12, 24) == 50
    items = [{"rel": "a.png", "repeats": 1}, {"rel": "b.png", "repeats": 3}]
    assert plan_repeats(items, 100) == {"a.png": 50, "b.png": 150}


def test_plain_floats_read_back_as_floats():
    for value in (1e-4, 5e-5, 1e-5, 0.01, 1.0, 3e-7):
        text = yaml_dump({"lr": value})
        assert "e-" not in text and yaml.safe_load(text)["lr"] == value
    assert plain_float(1e-4) == "0.0001"


def test_backends_lists_limitations():
    from curate.testing import run_cli

    res = run_cli(["backends", "--json"])
    assert res.exit_code == 0, res.stderr
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    for tool in TOOLS:
        assert rows[tool]["installed"] and rows[tool]["kind"] == "trainer"
        assert any("conv" in lim for lim in rows[tool]["limitations"])
    assert any("alpha" in lim for lim in rows["diffusion-pipe"]["limitations"])


FAKE_TOOL = r'''
import os, sys, time
print("fake ai-toolkit: loading config", sys.argv[1], flush=True)
print("step 1/3 loss 0.412", flush=True)
deadline = time.time() + 30
while not os.path.exists(os.environ["GO_FILE"]) and time.time() < deadline:
    time.sleep(0.05)
print("step 2/3 loss 0.398", flush=True)
print("step 3/3 loss 0.371", flush=True)
sys.exit(3)
'''

RUNNER = r'''
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.export.conftest import make_job
from curate.backends import get_registry
from curate.errors import KlintError
job = make_job(Path(sys.argv[2]), Path(sys.argv[3]), "ai-toolkit", two_stage=False, dry_run=False,
               model=sys.argv[4], options={"run": True, "tool_path": sys.argv[5]})
try:
    rc = get_registry().get("trainer", "ai-toolkit").run(job)
except KlintError as exc:
    print(f"klint: error: {exc}", file=sys.stderr)
    rc = 2
sys.exit(rc)
'''


def start_runner(dataset, tmp_path, tool_dir, go):
    import subprocess
    import sys

    model = tmp_path / "FLUX.2-klein-base-9B"
    fake_safetensors(model / "flux-2-klein-base-9b.safetensors")
    env = dict(os.environ, GO_FILE=str(go), PYTHON=sys.executable, PYTHONUNBUFFERED="1")
    env.pop("AI_TOOLKIT_DIR", None)
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(Path(__file__).resolve().parents[2]), str(dataset),
                             str(tmp_path / "out"), str(model), str(tool_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_run_streams_tool_output_and_propagates_exit_code(dataset, tmp_path):
    tool = tmp_path / "ai-toolkit"
    tool.mkdir()
    (tool / "run.py").write_text(FAKE_TOOL)
    go = tmp_path / "go"
    proc = start_runner(dataset, tmp_path, tool, go)
    seen = []
    try:
        # the tool blocks after step 1 until we answer: reading it now proves klint passes output through live
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("step 1/3"):
                break
        assert seen and seen[-1].startswith("step 1/3"), "".join(seen)
        assert proc.poll() is None
        go.write_text("")
        rest = proc.stdout.read()
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "step 3/3 loss 0.371" in rest
    assert rc == 3, proc.stderr.read()
    assert "ai-toolkit exited with status 3" in proc.stderr.read()


def test_run_without_tool_is_one_line_error(dataset, tmp_path):
    proc = start_runner(dataset, tmp_path, tmp_path / "nowhere", tmp_path / "go")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "run.py" in lines[0] and "--tool-path" in lines[0], err


def test_cli_dry_run_then_run(dataset, tmp_path):
    """`klint train --backend ...` end to end: lint, export with --dry-run, then --run a fake tool."""
    import sys

    from curate.testing import run_cli

    # the images are synthetic: only the rule that counts them is worth running (keeps the pose model out)
    toml = dataset / "klint.toml"
    toml.write_text('select = ["KL001"]\n' + toml.read_text())
    before = snapshot(dataset)
    out = tmp_path / "out"
    base = ["train", str(dataset), "--no-cache", "--no-progress", "--force", "--out", str(out)]
    res = run_cli([*base, "--backend", "diffusion-pipe", "--model", MODELS["diffusion-pipe"], "--dry-run",
                   "--rank", "16", "--alpha", "16", "--steps", "2000"])
    assert res.exit_code == 0, res.stderr
    assert "deepspeed --num_gpus=1" in res.stdout
    main = tomllib.loads((out / "config.toml").read_text())
    assert main["adapter"]["rank"] == 16 and main["max_steps"] == 2000 and main["epochs"] == 4  # 600 per epoch
    assert main["model"]["diffusion_model"] == MODELS["diffusion-pipe"]
    assert snapshot(dataset) == before

    tool = tmp_path / "ai-toolkit"
    tool.mkdir()
    (tool / "run.py").write_text(FAKE_TOOL)
    model = tmp_path / "FLUX.2-klein-base-9B"
    fake_safetensors(model / "flux-2-klein-base-9b.safetensors")
    env = {"GO_FILE": str(tmp_path), "PYTHON": sys.executable}  # GO_FILE exists: the fake tool runs straight through
    res = run_cli([*base, "--backend", "ai-toolkit", "--model", str(model), "--run", "--tool-path", str(tool)], env=env)
    assert res.exit_code == 3, res.stderr
    assert "step 3/3 loss 0.371" in res.stdout and "ai-toolkit exited with status 3" in res.stderr
    res = run_cli([*base, "--backend", "ai-toolkit", "--model", str(model), "--run"],
                  env={"PATH": os.path.dirname(sys.executable), "AI_TOOLKIT_DIR": ""})
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "cannot find ai-toolkit" in res.stderr and "run.py" in res.stderr
    assert snapshot(dataset) == before
