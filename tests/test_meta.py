"""Project-wide invariants: rules documented and tested, plugins load, the package layout holds."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from curate.engine.registry import all_rules
from curate.engine.rule import DOC_SECTIONS

ROOT = Path(__file__).resolve().parents[1]
RULE_NAME = re.compile(r"^[a-z]+\.[a-z0-9-]+$")


def test_rule_docs_and_names():
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules)
    assert len({r.name for r in rules}) == len(rules)
    for r in rules:
        assert RULE_NAME.match(r.name), r.name
        assert all(f"{s}:" in r.__doc__ for s in DOC_SECTIONS), r.code
        assert (ROOT / "lint_rules" / f"{r.code}.py").is_file()
        assert r.fix_availability in ("always", "sometimes", "never")
        assert r.severity in ("error", "warning", "info")


def test_every_rule_is_exercised_by_a_test():
    """Each rule's code or name must appear in a test other than this file."""
    corpus = "\n".join(p.read_text("utf-8", errors="replace") for p in (ROOT / "tests").rglob("*.py")
                       if p.name != "test_meta.py")
    corpus += "\n".join(p.read_text("utf-8", errors="replace") for p in (ROOT / "tests").rglob("*.json*"))
    untested = [r.code for r in all_rules() if r.code not in corpus and f'"{r.name}"' not in corpus]
    assert not untested, f"rules without tests: {untested}"


def test_entry_points_name_importable_modules():
    import importlib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name, target in meta["project"]["entry-points"]["klint"].items():
        module = importlib.import_module(target.split(":")[0])
        assert any(hasattr(module, h) for h in ("klint_get_rules", "klint_get_analyses", "klint_register_backends",
                                                "klint_add_commands")), name


def test_every_hookspec_is_implemented_in_tree():
    from curate.plugin import hookspecs

    specs = [n for n in dir(hookspecs) if n.startswith("klint_")]
    sources = "\n".join(p.read_text() for d in ("curate", "lint_rules", "plugins", "tests")
                        for p in (ROOT / d).rglob("*.py"))
    for name in specs:
        assert re.search(rf"def {name}\(", sources.replace("hookspecs.py", "")), name


def test_plugin_manager_blocks_and_reports_broken_plugins(monkeypatch, capsys):
    from curate.plugin.manager import make_plugin_manager

    monkeypatch.setenv("KLINT_DISABLE_PLUGINS", "rules")
    pm = make_plugin_manager(autoload=False)
    assert pm.is_blocked("rules")
    assert all(not batch for batch in pm.hook.klint_get_rules())
    monkeypatch.delenv("KLINT_DISABLE_PLUGINS")
    monkeypatch.setenv("KLINT_PLUGINS", "no_such_klint_plugin_module")
    pm = make_plugin_manager(autoload=False)
    assert "no_such_klint_plugin_module" in capsys.readouterr().err
    assert pm.has_plugin("rules")
