"""The CLI as a user meets it: real subprocesses, real exit codes, every output format."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from curate.testing import make_dataset, run_cli

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_ENV = {"KLINT_PLUGINS": "tests.engine.upper_plugin", "PYTHONPATH": str(ROOT)}


def png(color=(120, 80, 40), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def ds(tmp_path):
    return make_dataset(tmp_path / "data", {
        "a.png": png(), "a.txt": "Hello ping",
        "b.png": png((10, 200, 30)), "b.txt": "fine caption",
        "c.png": png((200, 10, 30)),
        "orphan.txt": "lost",
    })


def cli(args, cwd=None):
    return run_cli(["lint", "--select", "TST,KL501,KL503", *args] if args and args[0] != "fix" else args,
                   cwd=cwd, env=PLUGIN_ENV)


def test_exit_codes_and_concise_output(ds):
    r = cli([str(ds)])
    assert r.exit_code == 1, r.stderr
    lines = r.stdout.splitlines()
    assert f"{ds}/a.txt: TST001 [*] warning: caption has capitals (test.lowercase)" in lines
    assert f"{ds}/a.txt: TST002 [-] error: caption says ping (test.ping)" in lines
    assert f"{ds}/c.png: KL501 error: no caption: expected c.txt beside the image (caption.missing)" in lines
    assert "[*] 1 fixable with `klint fix`." in lines
    assert "[-] 1 more fixable with `klint fix --unsafe-fixes`." in lines
    assert cli([str(ds), "--exit-zero"]).exit_code == 0
    clean = run_cli(["lint", "--select", "KL503", str(ds / "a.png")], env=PLUGIN_ENV)
    assert clean.exit_code == 0 and "All checks passed!" in clean.stdout


def test_path_is_default_command(ds):
    r = run_cli([str(ds), "--select", "KL501", "--format", "json"], env=PLUGIN_ENV)
    assert r.exit_code == 1
    assert [d["code"] for d in json.loads(r.stdout)] == ["KL501"]


def test_json_contract(ds):
    r = cli([str(ds), "--format", "json"])
    data = json.loads(r.stdout)
    assert isinstance(data, list) and data
    for d in data:
        assert {"path", "code", "name", "severity", "message", "fix"} <= set(d)
    by_code = {d["code"]: d for d in data}
    assert by_code["TST001"]["fix"] == {"description": "lower-case the caption", "applicability": "safe"}
    assert by_code["KL501"]["fix"] is None
    assert by_code["KL503"]["severity"] == "warning"


def test_github_and_sarif(ds):
    gh = cli([str(ds), "--format", "github"]).stdout.splitlines()
    assert any(line.startswith("::error file=") and "title=klint (KL501)::KL501" in line for line in gh)
    assert any(line.startswith("::warning file=") for line in gh)
    sarif = json.loads(cli([str(ds), "--format", "sarif"]).stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"KL501", "TST001"} <= rule_ids
    res = run["results"][0]
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] == 1
    assert res["ruleId"] in rule_ids and res["partialFingerprints"]


def test_full_format_renders_with_rich(ds):
    r = cli([str(ds), "--format", "full"])
    assert r.exit_code == 1
    assert "TST001 [*]" in r.stdout and "fix: lower-case the caption" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["lint", "/definitely/not/here"], "no such file or directory"),
    (["lint", "--select", "bogus", "."], "unknown rule selector 'bogus'"),
    (["rule", "no.such-rule"], "unknown rule"),
    (["lint", "--format", "xml", "."], "Invalid value"),
])
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path):
    r = run_cli(args, cwd=tmp_path)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_config_exit_2(ds):
    (ds / "klint.toml").write_text("resolution = -3\n")
    r = run_cli([str(ds)])
    assert r.exit_code == 2 and "resolution" in r.stderr and "Traceback" not in r.stderr


def test_file_path_is_a_regular_file_not_dir(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    r = run_cli(["lint", str(tmp_path / "x.txt"), "--select", "KL503"])
    # a single file is linted inside its folder's dataset; only its own findings are shown
    assert r.exit_code == 1 and "x.txt: KL503" in r.stdout


def test_rules_and_rule_docs():
    r = run_cli(["rules"])
    assert r.exit_code == 0
    assert "KL501" in r.stdout and "caption.missing" in r.stdout
    doc = run_cli(["rule", "KL501"])
    assert doc.exit_code == 0
    for section in ("Why:", "Example:", "Use instead:", "Fix safety:", "Options:"):
        assert section in doc.stdout
    assert run_cli(["rule", "caption.missing"]).stdout == doc.stdout


def test_every_subcommand_answers_help():
    from curate.cli.main import LAZY_COMMANDS

    for name in LAZY_COMMANDS:
        r = run_cli([name, "--help"])
        if r.exit_code == 2 and "No such command" in r.stderr:
            pytest.fail(f"`klint {name}` is routed but not implemented")
        assert r.exit_code == 0, (name, r.stderr)
        assert "Usage:" in r.stdout


def test_plugin_adds_a_command():
    r = run_cli(["hello", "klint"], env=PLUGIN_ENV)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == "hello klint from a plugin"
