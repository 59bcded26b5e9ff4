"""Built-in rules, one per file named by its code. Imported only when rules are asked for."""

from __future__ import annotations

from curate.plugin import hookimpl


@hookimpl
def klint_get_rules():
    import importlib
    import pkgutil

    rules = []
    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("KL"):
            module = importlib.import_module(f"{__name__}.{mod.name}")
            rules.append(getattr(module, mod.name))
    return rules
