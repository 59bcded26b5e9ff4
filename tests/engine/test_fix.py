"""Fixes: applied atomically, backed up, reversible, and never touching an image byte."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from curate.testing import make_dataset, run_cli

from .test_cli import PLUGIN_ENV, ROOT, png


def digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".klint_cache" not in p.parts}


def fix(args):
    return run_cli(["fix", "--select", "TST", *args], env=PLUGIN_ENV)


def test_safe_fix_writes_backup_and_leaves_images(tmp_path):
    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "Hello ping", "b.png": png(), "b.txt": "ok"})
    before = digest_tree(ds)
    r = fix([str(ds)])
    assert r.exit_code == 1, r.stderr  # the unsafe ping finding remains
    assert (ds / "a.txt").read_text() == "hello ping"
    assert "Fixed 1 problem in 1 caption" in r.stdout
    after = digest_tree(ds)
    assert after["a.png"] == before["a.png"] and after["b.png"] == before["b.png"]
    backups = list((ds / ".klint_cache" / "backups").rglob("a.txt"))
    assert len(backups) == 1 and backups[0].read_text() == "Hello ping"


def test_unsafe_fixes_loop_until_clean(tmp_path):
    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "Hello ping"})
    r = fix(["--unsafe-fixes", str(ds)])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert (ds / "a.txt").read_text() == "hello pong"
    assert "All checks passed!" in r.stdout


def test_diff_writes_nothing(tmp_path):
    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "Hello ping\n"})
    before = digest_tree(ds)
    r = fix(["--unsafe-fixes", "--diff", str(ds)])
    assert r.exit_code == 1
    assert digest_tree(ds) == before
    assert f"--- a/{ds}/a.txt" in r.stdout and f"+++ b/{ds}/a.txt" in r.stdout
    assert "-Hello ping" in r.stdout and "+hello pong" in r.stdout


def test_crash_mid_write_keeps_old_file(tmp_path):
    """Kill the process between writing the temp file and replacing: the caption stays intact."""
    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "Hello"})
    script = textwrap.dedent(f"""
        import os, sys, time
        import curate.fix.apply as apply
        real = os.replace
        def slow_replace(src, dst):
            print("ready", flush=True)
            time.sleep(60)
            real(src, dst)
        apply.os.replace = slow_replace
        from curate.cli.main import main
        main(["fix", "--select", "TST", {str(ds)!r}])
    """)
    env = {**os.environ, **PLUGIN_ENV}
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (ds / "a.txt").read_text() == "Hello"
    # a leftover temp file is hidden and not a caption: the dataset still lints the same
    r = run_cli(["lint", "--select", "TST,KL503", str(ds), "--format", "json"], env=PLUGIN_ENV)
    assert '"KL503"' not in r.stdout


def test_writer_refuses_to_overwrite_user_images(tmp_path):
    import pytest

    from curate.engine import WriteBytes, WriteText
    from curate.errors import KlintError
    from curate.fix.apply import Writer

    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "x"})
    w = Writer(ds)
    with pytest.raises(KlintError, match="never overwrites"):
        w.apply(WriteBytes(str(ds / "a.png"), b"evil"))
    with pytest.raises(KlintError, match="only edits captions"):
        w.apply(WriteText(str(ds / "a.png"), "evil"))
    w.apply(WriteBytes(str(ds / "_klint" / "derived" / "a__close.png"), b"ok"))
    assert (ds / "_klint" / "derived" / "a__close.png").read_bytes() == b"ok"
    assert (ds / "a.png").read_bytes() == png()


def test_lint_fix_flag_fixes_then_reports_what_remains(tmp_path):
    ds = make_dataset(tmp_path / "d", {"a.png": png(), "a.txt": "Hello ping"})
    r = run_cli(["lint", "--select", "TST", "--fix", "--format", "json", str(ds)], env=PLUGIN_ENV)
    assert r.exit_code == 1  # the unsafe finding is still there
    assert (ds / "a.txt").read_text() == "hello ping"
    assert [d["code"] for d in json.loads(r.stdout)] == ["TST002"]
    assert "fixed 1 problem(s) in 1 caption(s)" in r.stderr
    r = run_cli(["lint", "--select", "TST", "--fix", "--unsafe-fixes", str(ds)], env=PLUGIN_ENV)
    assert r.exit_code == 0 and (ds / "a.txt").read_text() == "hello pong"
