"""A JSON list of diagnostic objects (public contract: path, code, name, severity, message, fix)."""

from __future__ import annotations

import json
import re

_C1 = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def render(diagnostics, *, rules, summary, color=False) -> str:
    text = json.dumps([d.to_json() for d in diagnostics], indent=2, ensure_ascii=False)
    # json escapes C0 controls but not C1 (0x9b is a one-byte CSI) nor line separators; inside
    # JSON strings a \uXXXX escape reads back as the same character
    return _C1.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"
