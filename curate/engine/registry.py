"""Collect rules and analyses from plugins; resolve --select/--ignore."""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable

from curate.engine.rule import Rule
from curate.errors import ConfigError


def all_rules(pm=None) -> list[Rule]:
    if pm is None:
        from curate.plugin.manager import get_plugin_manager

        pm = get_plugin_manager()
    rules = [cls() for batch in pm.hook.klint_get_rules() for cls in batch]
    return sorted(rules, key=lambda r: r.code)


def all_analyses(pm=None) -> dict[str, Any]:
    if pm is None:
        from curate.plugin.manager import get_plugin_manager

        pm = get_plugin_manager()
    return {a.name: a for batch in pm.hook.klint_get_analyses() for a in batch}


def _matches(selector: str, rule: Rule) -> bool:
    s = selector.strip()
    if s.upper() == "ALL":
        return True
    if s == rule.code or s == rule.name:
        return True
    if s[:1].isupper() and rule.code.startswith(s):  # code prefix: KL5, KL50
        return True
    if rule.name.startswith(s.rstrip(".*") + ".") and "." not in s.rstrip(".*"):  # family: caption
        return True
    if any(ch in s for ch in "*?[") and fnmatch.fnmatchcase(rule.name, s):
        return True
    return s in rule.groups


def find_rule(rules: Iterable[Rule], key: str) -> Rule | None:
    for r in rules:
        if key in (r.code, r.name) or key.upper() == r.code:
            return r
    return None


def validate_selectors(rules: list[Rule], selectors: Iterable[str], what: str) -> None:
    for s in selectors:
        if not any(_matches(s, r) for r in rules):
            raise ConfigError(f"unknown rule selector {s!r} in {what} (see `klint rules`)")


def select_rules(rules: list[Rule], select: list[str], ignore: list[str], extend: list[str] = ()) -> list[Rule]:
    validate_selectors(rules, [*select, *ignore, *extend], "--select/--ignore")
    chosen = [r for r in rules if any(_matches(s, r) for s in [*select, *extend])]
    return [r for r in chosen if not any(_matches(s, r) for s in ignore)]


def ignored_for_path(rule: Rule, rel: str, per_path: dict[str, list[str]]) -> bool:
    for pattern, selectors in per_path.items():
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.rstrip("/") + "/*"):
            if isinstance(selectors, str):
                selectors = [selectors]
            if any(_matches(s, rule) for s in selectors):
                return True
    return False
