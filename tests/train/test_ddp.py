"""Multi-process training through `accelerate launch` (DDP; gloo on CPU, NCCL on GPUs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("accelerate", reason="the train extra (accelerate) is not installed")


def test_accelerate_launch_two_processes(two_images, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, KLINT_FORCE_CPU="1", OMP_NUM_THREADS="1")
    # --multi_gpu is accelerate's DDP launcher; with no CUDA the trainer joins the group over gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
           "-m", "curate.cli.main", "train", str(two_images), "--model", "tiny", "--steps", "4", "--rank", "4",
           "--force", "--out", str(out), "--no-progress", "--no-cache"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical on all 2 ranks" in proc.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["trainer"]["world_size"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # one line per step, written by rank 0 only
    assert (out / "lora.safetensors").is_file()
