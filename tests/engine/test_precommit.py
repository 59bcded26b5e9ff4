"""The real `pre-commit try-repo` runs every klint hook from this repository on a dataset in a git repo:
`klint`/`klint-fix` in the virtualenv pre-commit builds, `klint-system`/`klint-fix-system` with the
klint on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.daily.hookdata import FACE_CAPTION, ROOT, git, hook_results, warnings_only

HOOKS = {"klint": "klint (lint LoRA dataset)", "klint-fix": "klint fix (safe caption fixes)",
         "klint-system": "klint (lint LoRA dataset, installed klint)",
         "klint-fix-system": "klint fix (safe caption fixes, installed klint)"}


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path, request):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    # a dataset repository: the images, captions and klint.toml sit at its root
    repo = data = warnings_only(tmp_path / "project")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    # pre-commit builds a fresh virtualenv with klint and torch in it (several GB): keep it out of
    # pytest's retained tmp dirs and remove it afterwards
    home = Path(tempfile.mkdtemp(prefix="klint-pc-home-"))
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "CI": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}

    def try_repo():
        # no hook id: all four hooks in one run, so the hook virtualenv is built once per call
        p = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "--all-files", "--verbose"],
                           cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
        out = p.stdout + p.stderr
        return p.returncode, out, hook_results(out)

    # warnings only: every hook passes (and says what it let through)
    code, out, status = try_repo()
    assert code == 0, out
    assert status == {name: "Passed" for name in HOOKS.values()}, out
    assert "warning:" in out

    # a face-describing caption fails both lint hooks; a trigger out of place is mended by the fix hooks
    (data / "window_portrait.txt").write_text(FACE_CAPTION)
    (data / "corridor_closeup.txt").write_text("office corridor, sample_person, close-up, fluorescent light\n")
    git(repo, "add", "-A")
    code, out, status = try_repo()
    assert code != 0, out
    assert status[HOOKS["klint"]] == "Failed" and status[HOOKS["klint-system"]] == "Failed", out
    assert "KL507" in out and "caption.face-description" in out, out
    assert status[HOOKS["klint-fix"]] == "Failed", out  # it changed a file: pre-commit fails the hook
    assert "files were modified by this hook" in out
    assert (data / "corridor_closeup.txt").read_text().startswith("sample_person")
