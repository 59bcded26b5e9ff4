"""ruff-like: `path: CODE [*] message (name)`, then counts and what is fixable."""

from __future__ import annotations

from curate.cli.output import counts, safe_text

_MARK = {"safe": "[*] ", "unsafe": "[-] "}


def line(d) -> str:
    loc = d.path if d.col <= 1 else f"{d.path}:{d.line}:{d.col}"
    mark = _MARK[d.fix.applicability] if d.fix is not None else ""
    return safe_text(f"{loc}: {d.code} {mark}{d.severity}: {d.message} ({d.name})")


def footer(diagnostics) -> list[str]:
    c = counts(diagnostics)
    if c["error"] + c["warning"] + c["info"] == 0:
        return ["All checks passed!"]
    parts = [f"Found {c['error']} error{'s' if c['error'] != 1 else ''}"]
    if c["warning"]:
        parts.append(f"{c['warning']} warning{'s' if c['warning'] != 1 else ''}")
    if c["info"]:
        parts.append(f"{c['info']} info")
    out = [", ".join(parts) + "."]
    if c["fixable"]:
        out.append(f"[*] {c['fixable']} fixable with `klint fix`.")
    if c["unsafe"]:
        # "more" only reads right after a [*] line
        more = "more " if c["fixable"] else ""
        out.append(f"[-] {c['unsafe']} {more}fixable with `klint fix --unsafe-fixes`.")
    return out


def render(diagnostics, *, rules, summary, color=False) -> str:
    lines = [line(d) for d in diagnostics]
    return "\n".join(lines + footer(diagnostics)) + "\n"
