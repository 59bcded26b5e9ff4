"""`klint eval` and `klint train --eval-every` end to end on the tiny random Klein (CPU).

The images are noise: these tests check the pipeline, the files, the table and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("diffusers", reason="needs the [infer] extra")


def _klint(args, cwd):
    return subprocess.run([sys.executable, "-m", "curate.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, photos):
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("eval")
    ds = root / "ds"
    ds.mkdir()
    for name, color in (("a", (200, 40, 40)), ("b", (40, 60, 200))):
        im = Image.new("RGB", (64, 64), (230, 230, 230))
        ImageDraw.Draw(im).ellipse((12, 8, 52, 56), fill=color)
        im.save(ds / f"{name}.png")
        (ds / f"{name}.txt").write_text("ohwx woman, studio light")
    (ds / "klint.toml").write_text('trigger = "ohwx"\nresolution = 64\n[train]\ncheckpoint-every = 4\n')
    r = _klint(["train", ds, "--model", "tiny", "--steps", "4", "--rank", "4", "--force", "--eval-every", "2",
                "--out", root / "run", "--no-progress"], root)
    assert r.returncode == 0, r.stderr[-2000:]
    refs = root / "refs"
    refs.mkdir()
    shutil.copy(photos / "identities" / "obama" / "obama.jpg", refs)
    shutil.copy(photos / "pool" / "icon" / "028009.jpg", refs)  # a standing full-body photo
    return root


def test_train_eval_every_writes_eval_rows(trained):
    rows = [json.loads(ln) for ln in (trained / "run" / "metrics.jsonl").read_text().splitlines()]
    ev = [r for r in rows if "eval" in r]
    assert [r["step"] for r in ev] == [2, 4]
    assert ev[0]["eval"]["images"] == 2 and set(ev[0]["eval"]) >= {"identity_mean", "face_rate", "heads_median"}
    assert any("loss" in r for r in rows)
    assert len(list((trained / "run" / "eval").glob("step-*.png"))) == 4


def test_eval_grid_files_table_json_and_exit_code(trained):
    out = trained / "ev"
    r = _klint(["eval", trained / "run", "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx",
                "--strengths", "0.5,1.0", "--seeds", "1", "--size", "64", "--steps", "1", "-o", out,
                "--holdout", trained / "refs" / "obama.jpg"], trained)
    # noise has no face: no cell reaches the identity threshold
    assert r.returncode == 1, r.stderr[-2000:]
    assert "run/final" in r.stdout and "run/step-000004" in r.stdout and "0.50" in r.stdout and "1.00" in r.stdout
    data = json.loads((out / "eval.json").read_text())
    # identity against the held-out photo only; stature from both references
    assert data["identity_reference"] == "holdout" and data["reference_faces"] == 1
    assert len(data["reference_heads"]) == 1
    assert 5.5 < data["reference_heads"][0] < 8.5
    assert [(c["checkpoint"], c["strength"]) for c in data["cells"]] == [
        ("run/step-000004", 0.5), ("run/step-000004", 1.0), ("run/final", 0.5), ("run/final", 1.0)]
    assert all(len(c["rows"]) == 6 and c["heads_reference"] == data["reference_heads"][0] for c in data["cells"])
    assert data["passed"] is False
    assert len(list((out / "images").glob("*.png"))) == 24
    page = (out / "eval.html").read_text()
    assert page.count("<figure>") == 24 and "data:image/jpeg;base64," in page
    # the report's page shell and stylesheet, not a copy: same CSP, same verdict style
    from curate.report.template import CSS

    assert CSS in page and "Content-Security-Policy" in page and "verdict error" in page
    assert "class=best" not in page and data["best"] is None  # no face in noise: no cell to prefer
    # never over an earlier result
    again = _klint(["eval", trained / "run", "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx",
                    "--seeds", "1", "--size", "64", "--steps", "1", "-o", out], trained)
    assert again.returncode == 2 and "not empty" in again.stderr and "Traceback" not in again.stderr


JSON_KEYS = {"model", "mode", "prompt_set", "prompts", "seeds", "steps", "strengths", "identity_threshold",
             "ratio_tolerance", "references", "reference_faces", "identity_reference", "reference_heads", "notes",
             "cells", "best", "passed"}
CELL_KEYS = {"checkpoint", "lora", "strength", "rows", "images", "face_rate", "identity_mean", "identity_spread",
             "heads_median", "heads_measured", "heads_reference", "heads_delta", "identity_ok", "proportions_ok"}


def test_reference_mode_json_and_exit_0_when_the_gate_is_met(trained):
    # Klein native references end to end; identity gate off (threshold 0), noise has no person so the
    # stature check has nothing to fail on: the one cell passes and klint exits 0
    out = trained / "ref"
    lora = trained / "run" / "diffusers" / "pytorch_lora_weights.safetensors"
    r = _klint(["eval", lora, "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx", "--mode",
                "reference", "--strengths", "0.8", "--seeds", "1", "--size", "64", "--steps", "1",
                "--identity-threshold", "0", "--json", "-o", out], trained)
    assert r.returncode == 0, r.stderr[-2000:]
    data = json.loads(r.stdout)
    assert set(data) == JSON_KEYS
    assert data["mode"] == "reference" and data["passed"] is True and data["best"] is None
    assert len(data["cells"]) == 1 and set(data["cells"][0]) == CELL_KEYS
    cell = data["cells"][0]
    assert cell["strength"] == 0.8 and cell["images"] == 6 and cell["identity_ok"] and cell["proportions_ok"]
    assert {row["framing"] for row in cell["rows"]} == {"close", "half", "full"}
    assert any("--holdout" in n for n in data["notes"])  # references shown to the model flatter identity
    assert json.loads((out / "eval.json").read_text())["cells"][0]["rows"] == cell["rows"]
    assert (out / "eval.html").read_text().count("<figure>") == 6 and "verdict ok" in (out / "eval.html").read_text()
    # the same run with the default identity threshold: noise has no face, nothing passes
    r = _klint(["eval", lora, "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx", "--mode",
                "reference", "--strengths", "0.8", "--seeds", "1", "--size", "64", "--steps", "1", "--json",
                "-o", trained / "ref1"], trained)
    assert r.returncode == 1 and json.loads(r.stdout)["passed"] is False


@pytest.mark.parametrize("args, msg", [
    (["--strengths", "abc"], "comma-separated"),
    (["--strengths", "9"], "between"),
    (["--size", "65"], "multiple of 16"),
    (["--trigger", "a b;rm"], "single token"),
])
def test_bad_input_is_one_line_exit_2(trained, args, msg):
    base = {"--trigger": "ohwx"}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    r = _klint(["eval", trained / "run", "--model", "tiny", "--refs", trained / "refs",
                *[x for kv in base.items() for x in kv], "-o", trained / "bad"], trained)
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_missing_lora_and_refs(trained):
    r = _klint(["eval", trained / "nope", "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx",
                "-o", trained / "x"], trained)
    assert r.returncode == 2 and "no such LoRA" in r.stderr
    r = _klint(["eval", trained / "refs", "--model", "tiny", "--refs", trained / "refs", "--trigger", "ohwx",
                "-o", trained / "x"], trained)
    assert r.returncode == 2 and "no LoRA in this folder" in r.stderr
