"""A JSON list of diagnostic objects (public contract: path, code, name, severity, message, fix)."""

from __future__ import annotations

import json


def render(diagnostics, *, rules, summary, color=False) -> str:
    return json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False) + "\n"
