"""Helpers for klint's tests and for plugin authors' tests."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "photos"


def shared_photos() -> Path | None:
    """Real test photos: `$KLINT_TEST_PHOTOS`, else `../shared/photos` beside the checkout (never shipped)."""
    import os

    root = Path(os.environ.get("KLINT_TEST_PHOTOS") or PHOTOS)
    return root if root.is_dir() else None


def make_dataset(root: Path, files: Mapping[str, str | bytes | Path], config: str | None = None) -> Path:
    """Build a dataset folder: values are caption text, raw bytes, or a path to copy."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, dest)
        elif isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            dest.write_text(content, encoding="utf-8")
    if config is not None:
        (root / "klint.toml").write_text(config, encoding="utf-8")
    return root


@dataclasses.dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(args: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 600) -> CliResult:
    """Run `klint` in a subprocess exactly as a user would (real exit codes, real stderr)."""
    import os

    full_env = dict(os.environ)
    full_env.pop("KLINT_TRACE_PLUGINS", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "curate.cli.main", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def bench_photos(n: int, prefix: str = "klint-bench-") -> Path:
    """A temp folder holding copies of the first `n` shared photos (numbered names), for benchmarks."""
    import tempfile

    photos = shared_photos()
    if photos is None:
        sys.exit("../shared/photos not found")
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))[:n]
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    for i, p in enumerate(files):
        shutil.copyfile(p, tmp / f"{i:03d}{p.suffix.lower()}")
    return tmp
