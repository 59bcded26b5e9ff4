"""Must-show 2 (klint-trained tiny LoRA lints clean; each planted fault gives exactly its rule), 3 (convert
round trip), 4 (pickle refused unread), and untrusted-file handling."""
from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from curate.lora import lint_file
from curate.lora.convert import compare, convert, parts
from curate.lora.report import analyse
from tests.lora import makers as M


def _names(path, **kw):
    _, diags = lint_file(path, **kw)
    return sorted(d.name for d in diags if d.severity != "info")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real klint training run on the tiny model (4 steps), its BFL export."""
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from plugins.builtin_trainer.trainer import run_training
    from tests.train.conftest import _draw, make_job

    root = tmp_path_factory.mktemp("ds")
    for i, (c, o) in enumerate([((200, 40, 40), 0), ((40, 40, 200), 6)]):
        _draw(root / f"{i}.png", c, o)
        (root / f"{i}.txt").write_text("jane_doe, a woman, close portrait")
    out = tmp_path_factory.mktemp("run")
    job = make_job(root, out, steps=4, lr=1e-2, rank=4, alpha=2, sample_every=0)
    said = []
    summary = run_training(job, say=said.append, progress=False)
    return summary["files"]["bfl"], said


def test_klint_trained_lora_lints_clean_and_train_prints_the_summary(trained):
    path, said = trained
    assert _names(path) == []
    rep = analyse(path)
    assert rep.parsed.source == "klint" and rep.spec == "klint-tiny"
    assert len(rep.loads["diffusers"].loaded) == len(rep.keys) == len(rep.loads["comfyui"].loaded)
    assert any("lora checks passed" in s and "load: diffusers" in s for s in said)


def _edit(src, dst, fn):
    """Edit a bf16 file with the real safetensors/torch, in fp32 numpy, written back as bf16."""
    import torch
    from safetensors.torch import load_file as tload
    from safetensors.torch import save_file as tsave

    sd = {k: v.float().numpy() for k, v in tload(str(src)).items()}
    out = {k: torch.from_numpy(np.ascontiguousarray(v)).to(torch.bfloat16) for k, v in fn(sd).items()}
    tsave(out, str(dst), metadata=analyse(src).file.metadata)
    return dst


def test_planted_faults_give_exactly_their_rule(trained, tmp_path):
    path, _ = trained
    no_linear2 = _edit(path, tmp_path / "a.safetensors", lambda sd: {k: v for k, v in sd.items() if "linear2" not in k})
    assert _names(no_linear2) == ["lora.missing-modules"]

    def nan(sd):
        k = "diffusion_model.double_blocks.1.img_mlp.0.lora_B.weight"
        sd[k] = sd[k].copy()
        sd[k][0, 0] = np.nan
        return sd
    assert _names(_edit(path, tmp_path / "b.safetensors", nan)) == ["lora.nan"]

    def zero_b(sd):
        return {k: (np.zeros_like(v) if ".lora_B." in k else v) for k, v in sd.items()}
    assert _names(_edit(path, tmp_path / "c.safetensors", zero_b)) == ["lora.untrained"]


def test_convert_klint_file_round_trip_explicit_deltas(trained, tmp_path):
    """BFL -> diffusers -> BFL on the klint-trained file; deltas formed explicitly in fp32."""
    path, _ = trained
    src32 = convert(path, tmp_path / "f32.safetensors", "comfyui", dtype="fp32").out
    d = convert(src32, tmp_path / "d.safetensors", "diffusers")
    back = convert(d.out, tmp_path / "back.safetensors", "comfyui")
    pa, pb = parts(analyse(src32)), parts(analyse(back.out))
    assert set(pa) == set(pb) and len(pa) == 28  # 2 double x 12 + 2 single x 2 targets
    for t in pa:
        da = (pa[t].B * pa[t].scale) @ pa[t].A
        db = (pb[t].B * pb[t].scale) @ pb[t].A
        assert np.abs(da - db).max() <= 1e-6 * np.abs(da).max()
    assert compare(pa, pb) <= 1e-6


def test_dropping_alpha_tensors_gives_lora_alpha(tmp_path):
    ok = M.musubi_file(tmp_path / "m.safetensors", alpha=1.0)
    assert _names(ok) == []
    dropped = M.musubi_file(tmp_path / "d.safetensors", alpha=1.0, drop_alpha=True)
    assert _names(dropped) == ["lora.alpha"]


def test_model_mismatch_against_the_named_model(tmp_path):
    p = M.bfl_file(tmp_path / "4b.safetensors")
    assert _names(p, model="klein-4b") == []
    assert _names(p, model="klein-9b") == ["lora.model-mismatch"]


@pytest.mark.parametrize("maker", [M.bfl_file, M.musubi_file, M.onetrainer_file, M.diffusers_file])
def test_convert_round_trip_is_exact(tmp_path, maker):
    src = maker(tmp_path / "src.safetensors")
    d = convert(src, tmp_path / "d.safetensors", "diffusers")
    back = convert(d.out, tmp_path / "bfl.safetensors", "comfyui")
    assert d.error <= 1e-6 and back.error <= 1e-6
    assert compare(parts(analyse(src)), parts(analyse(back.out))) <= 1e-6
    assert analyse(d.out).parsed.family == "diffusers" and analyse(back.out).parsed.family == "bfl"
    assert _names(d.out) == [] and "lora.keys-unloadable" not in _names(back.out)


def test_convert_never_overwrites_the_input(tmp_path):
    src = M.bfl_file(tmp_path / "src.safetensors")
    before = src.read_bytes()
    r = subprocess.run([sys.executable, "-m", "curate.cli.main", "lora", "convert", str(src), "--to", "diffusers",
                        "-o", str(src)], capture_output=True, text=True)
    assert r.returncode == 2 and "input" in r.stderr and "Traceback" not in r.stderr
    assert src.read_bytes() == before


class _Boom:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["evil.pt", "evil.ckpt", "evil.safetensors"])
def test_pickle_is_refused_unread(tmp_path, name):
    marker = tmp_path / "PWNED"
    p = tmp_path / name
    p.write_bytes(pickle.dumps(_Boom(str(marker))))
    r = subprocess.run([sys.executable, "-m", "curate.cli.main", "lora", str(p)], capture_output=True, text=True)
    assert "lora.not-safetensors" in r.stdout and r.returncode == 1, r.stdout + r.stderr
    assert not marker.exists()
    pickle.loads(p.read_bytes())  # the file really would have written the marker
    assert marker.exists()


@pytest.mark.parametrize("blob", [
    (2**63).to_bytes(8, "little") + b"{}",  # header length far beyond the file
    (30).to_bytes(8, "little") + b'{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,999999]}}',
    (62).to_bytes(8, "little") + b'{"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]},"b":1}   ' + b"\0" * 4,
    (2).to_bytes(8, "little") + b"[]",
    b"\x01\x02",
])
def test_broken_files_give_one_diagnostic(tmp_path, blob):
    p = tmp_path / "x.safetensors"
    p.write_bytes(blob)
    _, diags = lint_file(p)
    assert [d.name for d in diags] == ["lora.not-safetensors"]


def test_cli_formats_exit_codes_select_and_compare(tmp_path):
    a = M.bfl_file(tmp_path / "a.safetensors")
    b = M.bfl_file(tmp_path / "b.safetensors", seed=1)
    run = lambda *args: subprocess.run([sys.executable, "-m", "curate.cli.main", "lora", *map(str, args)],  # noqa
                                       capture_output=True, text=True)
    r = run(a, b, "--format", "full")
    assert r.returncode == 0, r.stderr
    assert "double 0" in r.stdout and "single 19" in r.stdout and "compare" in r.stdout and "COS" in r.stdout
    bad = M.musubi_file(tmp_path / "m.safetensors", drop_alpha=True)
    assert run(bad).returncode == 1
    assert run(bad, "--ignore", "lora.alpha").returncode == 0
    r = run(bad, "--format", "json", "--select", "lora")
    import json

    assert [d["code"] for d in json.loads(r.stdout) if d["severity"] != "info"] == ["KL808"]
    r = subprocess.run([sys.executable, "-m", "curate.cli.main", "rule", "lora.missing-modules"],
                       capture_output=True, text=True)
    assert "linear2" in r.stdout and "KL804" in r.stdout


def test_reading_imports_no_torch(tmp_path):
    p = M.bfl_file(tmp_path / "a.safetensors")
    code = ("import sys; from curate.cli.main import main; sys.argv=['klint','lora',%r]\n"
            "try: main()\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'safetensors' not in sys.modules, 'heavy import'\n") % str(p)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
