"""SARIF 2.1.0 for code-scanning uploads."""

from __future__ import annotations

import hashlib
import json

from curate import __version__

_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render(diagnostics, *, rules, summary, color=False) -> str:
    used = sorted({d.code for d in diagnostics} | {r.code for r in rules})
    by_code = {r.code: r for r in rules}
    driver_rules = []
    for code in used:
        r = by_code.get(code)
        entry = {"id": code}
        if r is not None:
            entry.update(
                name=r.name,
                shortDescription={"text": r.summary},
                fullDescription={"text": (r.__doc__ or "").strip()},
                helpUri=f"https://klint.invalid/rules/{r.name}",
                defaultConfiguration={"level": _LEVEL[r.severity]},
            )
        driver_rules.append(entry)
    index = {code: i for i, code in enumerate(used)}
    results = []
    for d in diagnostics:
        fp = hashlib.sha256(f"{d.code}|{d.path}|{d.message}".encode()).hexdigest()[:32]
        region = {"startLine": d.line, "startColumn": d.col}
        if d.end_col:
            region["endColumn"] = d.end_col
        results.append({
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _LEVEL[d.severity],
            "message": {"text": d.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": d.path, "uriBaseId": "%SRCROOT%"},
                "region": region,
            }}],
            "partialFingerprints": {"klint/v1": fp},
            "properties": {"name": d.name},
        })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "klint", "version": __version__,
                                "informationUri": "https://klint.invalid", "rules": driver_rules}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"
