"""A pre-commit re-lint of an unchanged dataset must not load torch, ultralytics, spaCy or dlib."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "ultralytics", "spacy", "diffusers", "transformers", "cv2", "thinc", "onnxruntime", "dlib",
         "_dlib_pybind11", "face_recognition_models", "insightface", "rapidocr_onnxruntime")

PROBE = """
import json, sys
from curate.cli.main import main
try:
    main(["lint", "--exit-zero", "--format", "json", sys.argv[1]])
except SystemExit:
    pass
with open(sys.argv[2], "w") as fh:
    json.dump(sorted(sys.modules), fh)
"""


def lint_json(ds: Path, modules_out: Path) -> list:
    proc = subprocess.run([sys.executable, "-c", PROBE, str(ds), str(modules_out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "CI": "1"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_warm_relint_is_model_free_and_identical(tmp_path):
    ds = tmp_path / "sample"
    shutil.copytree(ROOT / "fixtures" / "sample", ds, ignore=shutil.ignore_patterns(".klint_cache"))
    cold = lint_json(ds, tmp_path / "cold.json")
    cold_modules = set(json.loads((tmp_path / "cold.json").read_text()))
    # the cold run really ran the models, so the warm run's silence below means something
    assert "spacy" in cold_modules and "ultralytics" in cold_modules, sorted(m for m in cold_modules if "." not in m)
    assert "dlib" in cold_modules or "_dlib_pybind11" in cold_modules, "the cold run never ran the face analysis"
    warm = lint_json(ds, tmp_path / "warm.json")
    warm_modules = set(json.loads((tmp_path / "warm.json").read_text()))
    loaded = sorted(m for m in warm_modules if m.split(".")[0] in HEAVY)
    assert not loaded, f"warm re-lint imported heavy modules: {loaded[:10]}"
    assert warm == cold
    # touching a caption re-analyses that caption only, and still keeps torch out
    cap = ds / "studio_floor.txt"
    cap.write_text(cap.read_text() + ", blue eyes\n")
    changed = lint_json(ds, tmp_path / "changed.json")
    changed_modules = set(json.loads((tmp_path / "changed.json").read_text()))
    assert not {"torch", "ultralytics", "dlib", "_dlib_pybind11"} & changed_modules
    assert len(changed) != len(warm)
