"""A dataset git repository for the pre-commit tests: fixtures/sample with warnings only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FACE_CAPTION = "sample_person, close portrait, brown eyes, soft window light, office background\n"


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t"})


def warnings_only(data: Path) -> Path:
    """The sample with its three errors mended: what is left are warnings (and an info)."""
    shutil.copytree(ROOT / "fixtures" / "sample", data, ignore=shutil.ignore_patterns(".klint_cache"))
    (data / "crowd_cheer.txt").write_text("sample_person, half body, cheering in a crowd, stage lights\n")
    (data / "window_portrait.txt").write_text("sample_person, close portrait, soft window light, office background\n")
    text = (data / "corridor_closeup.txt").read_text()
    (data / "corridor_closeup.txt").write_text(re.sub(r"(?i)sample[ _]person", "sample_person", text))
    return data


def hook_results(output: str) -> dict[str, str]:
    """pre-commit's `name.....Passed|Failed` lines, by hook name."""
    return {m.group(1).strip(): m.group(2)
            for m in re.finditer(r"^(.+?)\.{3,}(?:\([^)]*\))?(Passed|Failed|Skipped)\s*$", output, re.M)}
