"""Daily-use output: every severity labelled, a footer that reads right, `--fail-on` thresholds."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from curate.testing import make_dataset, run_cli

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_ENV = {"KLINT_PLUGINS": "tests.engine.upper_plugin", "PYTHONPATH": str(ROOT)}


def png(color=(120, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "PNG")
    return buf.getvalue()


def lint(ds, *args):
    return run_cli(["lint", *args, str(ds)], env=PLUGIN_ENV)


@pytest.fixture
def ds(tmp_path):
    # a.txt: TST001 (warning, safe fix) + TST002 (error, unsafe fix); orphan.txt: KL503 (warning)
    return make_dataset(tmp_path / "data", {"a.png": png(), "a.txt": "Hello ping", "b.png": png((9, 9, 9)),
                                            "b.txt": "fine", "orphan.txt": "lost"})


def test_every_severity_is_labelled(ds):
    lines = lint(ds, "--select", "TST,KL503").stdout.splitlines()
    assert f"{ds}/a.txt: TST002 [-] error: caption says ping (test.ping)" in lines
    assert f"{ds}/a.txt: TST001 [*] warning: caption has capitals (test.lowercase)" in lines
    assert f"{ds}/orphan.txt: KL503 warning: caption without an image (caption.orphan)" in lines \
        or any(l.startswith(f"{ds}/orphan.txt: KL503 warning: ") for l in lines)


def test_info_is_labelled_and_counted(tmp_path):
    # KL104 reports an almost opaque alpha channel as info
    buf = io.BytesIO()
    im = Image.new("RGBA", (64, 48), (10, 20, 30, 255))
    im.save(buf, "PNG")
    ds = make_dataset(tmp_path / "d", {"a.png": buf.getvalue(), "a.txt": "x"})
    r = run_cli(["lint", "--select", "KL104", str(ds)])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert any(": KL104 info: " in l for l in r.stdout.splitlines()), r.stdout
    assert "Found 0 errors, 1 info." in r.stdout and "All checks passed!" not in r.stdout


def test_unsafe_footer_reads_right_without_safe_line(ds):
    r = lint(ds, "--select", "TST002")
    lines = r.stdout.splitlines()
    assert not any(l.startswith("[*]") for l in lines), lines
    assert "[-] 1 fixable with `klint fix --unsafe-fixes`." in lines, lines
    assert not any("more fixable" in l for l in lines), lines
    both = lint(ds, "--select", "TST").stdout.splitlines()
    assert "[*] 1 fixable with `klint fix`." in both
    assert "[-] 1 more fixable with `klint fix --unsafe-fixes`." in both


@pytest.mark.parametrize("fail_on, select, code", [
    ("error", "TST001", 0),          # warnings only: passes
    ("error", "TST", 1),             # an error: fails
    ("warning", "TST001", 1),
    ("warning", "KL104", 0),         # info only
    ("info", "KL104", 1),
])
def test_fail_on(tmp_path, fail_on, select, code):
    buf = io.BytesIO()
    Image.new("RGBA", (64, 48), (10, 20, 30, 255)).save(buf, "PNG")
    ds = make_dataset(tmp_path / "d", {"a.png": buf.getvalue(), "a.txt": "Hello ping"})
    r = lint(ds, "--select", select, "--fail-on", fail_on)
    assert r.exit_code == code, r.stdout + r.stderr


def test_fail_on_default_is_warning_and_last_flag_wins(ds):
    assert lint(ds, "--select", "TST001").exit_code == 1
    # the hook passes `--fail-on error`; a user's args come after it and win
    assert lint(ds, "--select", "TST001", "--fail-on", "error", "--fail-on", "warning").exit_code == 1
    assert lint(ds, "--select", "TST001", "--fail-on", "warning", "--fail-on", "error").exit_code == 0
    bad = lint(ds, "--fail-on", "never")
    assert bad.exit_code == 2 and "Traceback" not in bad.stderr
    help_text = run_cli(["lint", "--help"]).stdout
    assert "--fail-on" in help_text and "default: warning" in help_text.replace("\n", " ").replace("  ", " ")
    assert "hook" in help_text
