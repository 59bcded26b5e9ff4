"""The Rule base class. One rule per file in `lint_rules/`, named by its code."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from curate.engine.diagnostic import Diagnostic, Fix, Severity

if TYPE_CHECKING:
    from curate.dataset.model import Item
    from curate.engine.runner import LintContext

DOC_SECTIONS = ("Why", "Example", "Use instead", "Fix safety", "Options")
_CODE_RE = re.compile(r"^[A-Z]{2,5}\d{3}$")
_NAME_RE = re.compile(r"^[a-z]+(\.[a-z0-9]+(-[a-z0-9]+)*)+$")
_SEEN: dict[str, str] = {}


class Rule:
    """Base class. Subclasses set the class attributes and implement `check`.

    `check` yields diagnostics and never writes; fixes ride on the diagnostics as data.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    groups: ClassVar[tuple[str, ...]] = ("all",)
    severity: ClassVar[Severity] = "error"
    fix_availability: ClassVar[str] = "never"  # always | sometimes | never
    needs: ClassVar[tuple[str, ...]] = ()  # analyses that must have run
    options: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract"):
            return
        module = sys.modules.get(cls.__module__)
        filename = Path(getattr(module, "__file__", "") or "").stem
        if not _CODE_RE.match(cls.code):
            raise TypeError(f"{cls.__name__}: rule code {cls.code!r} must look like KL123")
        if filename and filename.startswith(("KL", "X")) and filename != cls.code:
            raise TypeError(f"rule {cls.code} lives in {filename}.py; one rule per file named by its code")
        if not _NAME_RE.match(cls.name):
            raise TypeError(f"{cls.code}: rule name {cls.name!r} must be dotted kebab-case")
        if "all" not in cls.groups:
            raise TypeError(f"{cls.code}: groups must include 'all'")
        owner = f"{cls.__module__}.{cls.__qualname__}"
        for key in (cls.code, cls.name):
            if _SEEN.setdefault(key, owner) != owner:
                raise TypeError(f"rule {key} is defined twice ({_SEEN[key]} and {owner})")
        doc = cls.__doc__ or ""
        missing = [s for s in DOC_SECTIONS if f"{s}:" not in doc]
        if missing:
            raise TypeError(f"{cls.code}: docstring lacks sections {missing}")

    @property
    def summary(self) -> str:
        return (self.__doc__ or "").strip().splitlines()[0]

    def check(self, ctx: LintContext, opts: dict[str, Any]) -> Iterable[Diagnostic]:
        raise NotImplementedError

    # helpers shared by rules -------------------------------------------------
    def diag(
        self,
        ctx: LintContext,
        rel: str,
        message: str,
        *,
        fix: Fix | None = None,
        severity: Severity | None = None,
        line: int = 1,
        col: int = 1,
        end_col: int | None = None,
        value: Any = None,
        threshold: Any = None,
        related: Iterable[str] = (),
    ) -> Diagnostic:
        return Diagnostic(
            path=ctx.dataset.display(rel) if rel else ctx.dataset.display_root,
            code=self.code,
            name=self.name,
            message=message,
            severity=severity or self.severity,
            line=line,
            col=col,
            end_col=end_col,
            value=value,
            threshold=threshold,
            fix=fix,
            related=tuple(ctx.dataset.display(r) for r in related),
            rel=rel,
        )

    def item_rel(self, item: Item) -> str:
        return item.rel_image or item.rel_caption
