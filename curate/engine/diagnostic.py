"""Diagnostics and fixes are plain data; only `curate.fix.apply` touches the disk."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
SEVERITIES = tuple(SEVERITY_ORDER)


def fails(diagnostics, fail_on: str = "warning") -> bool:
    """Whether any diagnostic is at least as severe as `fail_on` (the `--fail-on` exit rule)."""
    limit = SEVERITY_ORDER[fail_on]
    return any(SEVERITY_ORDER[d.severity] <= limit for d in diagnostics)


@dataclasses.dataclass(frozen=True)
class WriteText:
    """Replace a text file's content (captions, configs) atomically."""

    path: str  # absolute
    text: str


@dataclasses.dataclass(frozen=True)
class WriteBytes:
    """Create a new file (derived crops). Refuses to overwrite anything klint did not write."""

    path: str  # absolute
    data: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class WriteCrop:
    """Create a derived crop of `source` (dataset-relative) at `path`; rendered only when applied."""

    path: str  # absolute, under _klint/derived/
    source: str
    box: tuple[int, int, int, int]
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class Fix:
    description: str
    edits: tuple[WriteText | WriteBytes | WriteCrop, ...]
    applicability: Literal["safe", "unsafe"] = "safe"

    def targets(self) -> tuple[str, ...]:
        return tuple(e.path for e in self.edits)


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    path: str  # as shown to the user
    code: str
    name: str
    message: str
    severity: Severity = "error"
    line: int = 1
    col: int = 1
    end_col: int | None = None
    value: Any = None
    threshold: Any = None
    fix: Fix | None = None
    related: tuple[str, ...] = ()
    rel: str = ""  # dataset-relative path, for per-path-ignores

    def sort_key(self):
        return (self.path, self.line, self.col, self.code)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "fix": None,
        }
        if self.fix is not None:
            out["fix"] = {"description": self.fix.description, "applicability": self.fix.applicability}
        if self.value is not None:
            out["value"] = self.value
        if self.threshold is not None:
            out["threshold"] = self.threshold
        if self.related:
            out["related"] = list(self.related)
        return out
