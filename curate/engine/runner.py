"""Run the selected rules over a dataset: analyses first (cached), then checks."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from curate.analysis.cache import Cache, text_digest
from curate.config import Config
from curate.dataset.model import Dataset, Item
from curate.dataset.scan import scan
from curate.engine.diagnostic import SEVERITY_ORDER, Diagnostic
from curate.engine.registry import all_analyses, all_rules, ignored_for_path, select_rules
from curate.engine.rule import Rule
from curate.errors import KlintError


@dataclasses.dataclass
class LintContext:
    dataset: Dataset
    config: Config
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    digests: dict[str, str] = dataclasses.field(default_factory=dict)  # rel image -> content hash
    show_progress: bool = False
    cache: Cache | None = None

    def dataset_memo(self, name: str, inputs: Any, compute):
        """A dataset-level value derived from per-file results, cached by its inputs.

        Lets an unchanged dataset skip even numpy-level work (clustering, Vendi) on a re-lint.
        """
        import json

        key = text_digest(json.dumps(inputs, sort_keys=True, separators=(",", ":")))
        if self.cache is not None:
            hit = self.cache.get(name, key)
            if hit is not None:
                return hit
        value = compute()
        if self.cache is not None:
            self.cache.put(name, key, value)
        return value

    def result(self, analysis: str, item: Item) -> dict[str, Any] | None:
        """An item's result for one analysis, or None when it could not run (e.g. unreadable)."""
        key = item.rel_image if analysis_scope(analysis) == "image" else item.rel_caption
        return self.results.get(analysis, {}).get(key)

    def progress(self, total: int, label: str):
        return _Progress(total, label, self.show_progress)


_SCOPES: dict[str, str] = {}


def analysis_scope(name: str) -> str:
    return _SCOPES.get(name, "image")


class _Progress:
    """A rich bar on stderr for long analyses; a no-op when not a terminal."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label = total, label
        self.enabled = enabled and total > 0 and sys.stderr.isatty()
        self._bar = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)


@dataclasses.dataclass
class LintResult:
    dataset: Dataset
    diagnostics: list[Diagnostic]
    context: LintContext
    rules: list[Rule]

    @property
    def failing(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity != "info"]


def _order_analyses(names: set[str], available: dict[str, Any]) -> list[Any]:
    ordered: list[Any] = []
    seen: set[str] = set()

    def visit(n: str, stack: tuple[str, ...] = ()) -> None:
        if n in seen:
            return
        if n not in available:
            raise KlintError(f"analysis {n!r} is needed but no plugin provides it")
        if n in stack:
            raise KlintError(f"analyses depend on each other in a cycle: {' -> '.join(stack + (n,))}")
        for dep in available[n].needs:
            visit(dep, stack + (n,))
        seen.add(n)
        ordered.append(available[n])

    for n in sorted(names):
        visit(n)
    return ordered


def run_analyses(ctx: LintContext, names: set[str], cache: Cache) -> None:
    available = all_analyses()
    for a in available.values():
        _SCOPES[a.name] = a.scope
    for analysis in _order_analyses(names, available):
        fp = analysis.fingerprint(ctx.config)
        table = ctx.results.setdefault(analysis.name, {})
        todo: list[tuple[Item, str, str]] = []
        for item in ctx.dataset.items:
            if analysis.scope == "image":
                if item.image is None:
                    continue
                rel = item.rel_image
                digest = ctx.digests.get(rel) or cache.digest(rel, item.image)
                ctx.digests[rel] = digest
            else:
                if item.caption_text is None:
                    continue
                rel = item.rel_caption
                digest = text_digest(item.caption_text)
            key = f"{digest}:{analysis.version}:{fp}"
            hit = cache.get(analysis.name, key)
            if hit is not None:
                table[rel] = hit
            else:
                todo.append((item, rel, key))
        if not todo:
            continue
        with ctx.progress(len(todo), analysis.label or analysis.name) as bar:
            outs = analysis.run_batch([t[0] for t in todo], ctx, bar.advance)
        for (item, rel, key), out in zip(todo, outs):
            table[rel] = out
            if out is not None:
                cache.put(analysis.name, key, out)


def lint_dataset(
    root: Path | str,
    config: Config,
    *,
    use_cache: bool = True,
    show_progress: bool = False,
    overlay: dict[Path, str] | None = None,
    rules: list[Rule] | None = None,
) -> LintResult:
    dataset = scan(root, overlay=overlay)
    if rules is None:
        rules = select_rules(all_rules(), config.select, config.ignore, config.extend_select)
    cache = Cache(dataset.root, enabled=use_cache)
    ctx = LintContext(dataset=dataset, config=config, show_progress=show_progress, cache=cache)
    if config.dataset_table is not None and config.source is not None:
        # plugins loaded with the rules may have declared more model-path keys
        from curate.trust import refuse_dataset_model_paths

        refuse_dataset_model_paths(config.dataset_table, config.source)
    # options are checked before any analysis runs: a typo costs one line, not a model load
    options = {rule.code: config.options_for(rule) for rule in rules}
    needed = {n for r in rules for n in r.needs}
    run_analyses(ctx, needed, cache)
    diagnostics: list[Diagnostic] = []
    for rule in rules:
        opts = options[rule.code]
        for d in rule.check(ctx, opts):
            if d.rel and ignored_for_path(rule, d.rel, config.per_path_ignores):
                continue
            diagnostics.append(d)
    cache.save({it.rel_image for it in dataset.items if it.image is not None})
    diagnostics.sort(key=lambda d: (d.sort_key(), SEVERITY_ORDER[d.severity]))
    return LintResult(dataset=dataset, diagnostics=diagnostics, context=ctx, rules=rules)
