"""`klint lora`: lint, compare and convert trained Klein LoRA files (numpy only, never torch or pickle)."""

from __future__ import annotations

from pathlib import Path


def lora_rules(select=("ALL",), ignore=()):
    from curate.engine.registry import all_rules, select_rules
    from curate.lora.rule import LoraRule

    rules = [r for r in all_rules() if isinstance(r, LoraRule)]
    return select_rules(rules, list(select), list(ignore))


def lint_file(path, *, model: str = "auto", rules=None, display: str | None = None):
    """(report, diagnostics) for one file."""
    from curate.engine.diagnostic import SEVERITY_ORDER
    from curate.lora.report import analyse
    from curate.lora.rule import LoraContext

    rules = lora_rules() if rules is None else rules
    rep = analyse(path, model)
    ctx = LoraContext(rep, display or str(path))
    diags = [d for r in rules for d in r.check(ctx, {**r.options})]
    diags.sort(key=lambda d: (SEVERITY_ORDER[d.severity], d.code))
    return rep, diags


def check_file(path: Path | str, model: str = "auto") -> str:
    """What `klint train` prints after a run: the summary line and each finding, one per line."""
    rep, diags = lint_file(path, model=model)
    lines = [rep.summary()] + [f"  {d.code} {d.severity}: {d.message} ({d.name})" for d in diags]
    if not [d for d in diags if d.severity != "info"]:
        lines.append("  lora checks passed")
    return "\n".join(lines)
