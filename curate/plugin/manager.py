"""The plugin manager: built-in plugins plus the `klint` entry-point group, loaded defensively."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
from importlib import metadata

import pluggy

from curate.plugin import hookspecs

log = logging.getLogger("klint.plugins")

# built-ins register exactly the way a third-party plugin would, but do not depend on the
# package being installed (a source checkout runs too)
BUILTIN = {
    "core": "curate.plugin.lib",
    "rules": "lint_rules",
    "backends": "plugins",
}


def _disabled() -> set[str]:
    return {n.strip() for n in os.environ.get("KLINT_DISABLE_PLUGINS", "").split(",") if n.strip()}


def make_plugin_manager(autoload: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("klint")
    pm.add_hookspecs(hookspecs)
    disabled = _disabled()
    for name in disabled:
        pm.set_blocked(name)
    for name, modname in BUILTIN.items():
        if name not in disabled:
            pm.register(importlib.import_module(modname), name=name)
    # like PYTEST_PLUGINS: extra plugin modules by import name, for plugin authors' tests
    for modname in filter(None, (m.strip() for m in os.environ.get("KLINT_PLUGINS", "").split(","))):
        if not pm.has_plugin(modname):
            try:
                pm.register(importlib.import_module(modname), name=modname)
            except Exception as exc:
                print(f"klint: warning: plugin {modname!r} from KLINT_PLUGINS failed to load: {exc}", file=sys.stderr)
    if autoload:
        try:
            eps = metadata.entry_points(group="klint")
        except Exception:  # pragma: no cover - broken metadata should not stop linting
            eps = []
        for ep in eps:
            if ep.name in disabled or pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            if ep.value in BUILTIN.values():
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken third-party plugin must not break klint
                dist = getattr(ep, "dist", None)
                version = f" {dist.name} {dist.version}" if dist else ""
                print(f"klint: warning: plugin {ep.name!r}{version} failed to load: {exc}", file=sys.stderr)
    pm.check_pending()
    if os.environ.get("KLINT_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


@functools.lru_cache(maxsize=1)
def get_plugin_manager() -> pluggy.PluginManager:
    return make_plugin_manager()
