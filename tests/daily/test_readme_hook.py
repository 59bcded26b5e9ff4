"""The README's pre-commit snippet, copied as is, run by the real `pre-commit` (no hook venv to build)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daily.hookdata import FACE_CAPTION, ROOT, git, warnings_only


def readme_local_snippet() -> str:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text[text.index("### pre-commit"):]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    local = [b for b in blocks if "repo: local" in b]
    assert local, "the README's pre-commit section lost its `repo: local` snippet"
    return local[0]


def test_readme_snippet_passes_on_warnings_and_fails_on_a_face_caption(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "project"
    repo.mkdir()
    data = warnings_only(repo / "data")
    (repo / ".pre-commit-config.yaml").write_text(readme_local_snippet())
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    # `language: system` runs the klint on PATH: the one beside this interpreter
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-home"), "CI": "1",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}

    def run():
        p = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files", "--verbose"], cwd=repo,
                           env=env, capture_output=True, text=True, timeout=900)
        return p.returncode, p.stdout + p.stderr

    # the dataset has warnings (and the same lint without --fail-on fails on them)
    plain = subprocess.run([sys.executable, "-m", "curate.cli.main", "lint", "--no-progress", str(data)],
                           capture_output=True, text=True, env=env, timeout=900)
    assert plain.returncode == 1 and " warning: " in plain.stdout and " error: " not in plain.stdout, plain.stdout
    code, out = run()
    assert code == 0, out
    assert "warning:" in out  # --verbose shows what the hook let through

    (data / "window_portrait.txt").write_text(FACE_CAPTION)
    git(repo, "add", "-A")
    code, out = run()
    assert code != 0, out
    assert "KL507" in out and "error:" in out, out
