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


# C0 controls (ESC starts ANSI sequences, CR/LF forge lines), DEL, C1 (0x9b is a one-byte CSI),
# line/paragraph separators, bidi overrides and isolates (they reorder what the eye reads)
_CONTROL = None
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def safe_text(text: str) -> str:
    """Text from a dataset (file names, captions, trigger) made inert for a terminal or a log."""
    global _CONTROL
    if _CONTROL is None:
        import re

        _CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: _NAMED.get(m.group()) or (
        f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"), text)


def safe_lines(text: str) -> str:
    """safe_text for multi-line output (a diff): line breaks stay, everything else is escaped."""
    return "\n".join(safe_text(part) for part in text.split("\n"))
