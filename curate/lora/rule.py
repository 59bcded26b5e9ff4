"""LoRA files as a second target of the lint engine: same Rule registry, select/ignore, outputs, exit codes."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Iterable

from curate.engine.diagnostic import Diagnostic, Severity
from curate.engine.rule import Rule


@dataclasses.dataclass
class LoraContext:
    report: Any  # curate.lora.report.Report
    display: str


class LoraRule(Rule):
    """Base for `lora.*` rules; on a dataset lint they yield nothing."""

    abstract = True
    target: ClassVar[str] = "lora"
    groups = ("all", "lora")

    def check(self, ctx, opts) -> Iterable[Diagnostic]:
        if not isinstance(ctx, LoraContext):
            return ()
        rep = ctx.report
        if rep.error is not None and self.code != "KL801":
            return ()
        return self.check_lora(ctx, rep, opts)

    def check_lora(self, ctx: LoraContext, rep, opts) -> Iterable[Diagnostic]:
        raise NotImplementedError

    def ldiag(self, ctx: LoraContext, message: str, *, severity: Severity | None = None, value: Any = None,
              threshold: Any = None) -> Diagnostic:
        return Diagnostic(path=ctx.display, code=self.code, name=self.name, message=printable(message),
                          severity=severity or self.severity, value=value, threshold=threshold, rel=ctx.display)


def printable(text: str) -> str:
    """Key names come from an untrusted file: control characters never reach the terminal raw."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}"
                   for c in text)


def listing(items, n: int = 4) -> str:
    items = list(items)
    head = ", ".join(items[:n])
    return head + (f" (+{len(items) - n} more)" if len(items) > n else "")


def ranges(idx: list[int]) -> str:
    out, start = [], None
    for i, v in enumerate(idx):
        if start is None:
            start = v
        if i + 1 == len(idx) or idx[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)
