"""GitHub Actions workflow commands: one `::error file=...::` annotation per diagnostic."""

from __future__ import annotations

from curate.cli.output import safe_text

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str, prop: bool = False) -> str:
    text = safe_text(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render(diagnostics, *, rules, summary, color=False) -> str:
    out = []
    for d in diagnostics:
        props = f"file={_escape(d.path, True)},line={d.line},col={d.col},title={_escape(f'klint ({d.code})', True)}"
        out.append(f"::{_LEVEL[d.severity]} {props}::{_escape(f'{d.code} {d.message} ({d.name})')}")
    return "\n".join(out) + ("\n" if out else "")
