"""Output formats. Each renders a list of diagnostics to text; rich loads only for `full`."""

from __future__ import annotations

import enum
import importlib
from typing import Any


class OutputFormat(str, enum.Enum):
    concise = "concise"
    full = "full"
    json = "json"
    github = "github"
    sarif = "sarif"


def render(fmt: str, diagnostics: list, *, rules: list, summary: dict[str, Any], color: bool = False) -> str:
    module = importlib.import_module(f"curate.cli.output.{OutputFormat(fmt).value}")
    return module.render(diagnostics, rules=rules, summary=summary, color=color)


def counts(diagnostics: list) -> dict[str, int]:
    c = {"error": 0, "warning": 0, "info": 0, "fixable": 0, "unsafe": 0}
    for d in diagnostics:
        c[d.severity] += 1
        if d.fix is not None:
            c["fixable" if d.fix.applicability == "safe" else "unsafe"] += 1
    return c
