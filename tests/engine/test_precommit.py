"""The real `pre-commit` tool runs klint's hooks from this repository on a dataset in a git repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.mark.slow
def test_pre_commit_try_repo(tmp_path, request):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    # a dataset repository: the images, captions and klint.toml sit at its root
    repo = data = tmp_path / "project"
    shutil.copytree(ROOT / "fixtures" / "sample", data, ignore=shutil.ignore_patterns(".klint_cache"))
    (data / "crowd_cheer.txt").write_text("sample_person, half body, cheering in a crowd, stage lights\n")
    (data / "window_portrait.txt").write_text("sample_person, close portrait, soft window light, office background\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    # pre-commit builds a fresh virtualenv with klint and torch in it (several GB): keep it out of
    # pytest's retained tmp dirs and remove it afterwards
    home = Path(tempfile.mkdtemp(prefix="klint-pc-home-"))
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "CI": "1"}
    def try_repo(hook):
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--all-files",
                               "--verbose"], cwd=repo, env=env, capture_output=True, text=True, timeout=1800)

    # a dataset with a caption problem fails the hook and names the rule
    (data / "corridor_closeup.txt").write_text("office corridor, sample_person, close-up, fluorescent light\n")
    git(repo, "add", "-A")
    bad = try_repo("klint")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out
    assert "KL505" in out or "caption.trigger-not-first" in out, out

    # the fix hook mends it (and fails the commit because a file changed, as pre-commit does)
    fixed = try_repo("klint-fix")
    assert fixed.returncode != 0
    assert (data / "corridor_closeup.txt").read_text().startswith("sample_person")
    assert "files were modified by this hook" in fixed.stdout + fixed.stderr
