"""Hostile or odd LoRA files: escaped key names, oversized factors, dtype report, convert dtype."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from curate.lora import lint_file
from curate.lora.convert import convert
from curate.lora.report import analyse
from tests.lora import makers as M


def test_control_characters_in_key_names_are_escaped(tmp_path):
    p = M.write(tmp_path / "x.safetensors", {"\x1b[2J\x1b]0;pwn\x07.lora_A.weight": np.zeros((1, 4), np.float32)})
    r = subprocess.run([sys.executable, "-m", "curate.cli.main", "lora", str(p)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\\x1b" in r.stdout


def test_oversized_rank_is_not_read(tmp_path):
    sd = {"diffusion_model.single_blocks.0.linear2.lora_A.weight": np.zeros((5000, 1), np.float32),
          "diffusion_model.single_blocks.0.linear2.lora_B.weight": np.zeros((1, 5000), np.float32)}
    rep, diags = lint_file(M.write(tmp_path / "big.safetensors", sd))
    assert any("too large" in e for e in rep.shape_errors)
    assert "lora.keys-unloadable" in {d.name for d in diags}


def test_dtype_rule_only_for_fp32(tmp_path):
    f32 = M.bfl_file(tmp_path / "a.safetensors")
    _, diags = lint_file(f32)
    assert [d.name for d in diags if d.code == "KL809"] == ["lora.dtype"]
    bf16 = convert(f32, tmp_path / "b.safetensors", "comfyui", dtype="bf16")
    assert bf16.error <= 1.6e-2
    _, diags = lint_file(bf16.out)
    assert not [d for d in diags if d.code == "KL809"]
    assert {t.dtype for t in analyse(bf16.out).file.tensors.values()} == {"BF16"}
