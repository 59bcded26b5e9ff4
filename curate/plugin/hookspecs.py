"""Hook specifications. Plugins are modules in the `klint` entry-point group.

A plugin's top level imports only the standard library and `curate.plugin`; heavy work
(and heavy imports) happen inside the hooks or inside the objects they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from curate.backends import BackendRegistry

hookspec = pluggy.HookspecMarker("klint")


@hookspec
def klint_get_rules() -> list[type]:
    """Return rule classes (subclasses of `curate.engine.Rule`)."""


@hookspec
def klint_get_analyses() -> list[Any]:
    """Return analysis objects (`curate.analysis.base.Analysis`) that rules may `need`."""


@hookspec
def klint_register_backends(registry: BackendRegistry) -> None:
    """Register trainer / exporter / inference backends by import string, e.g.
    `registry.add("trainer", "builtin", "plugins.builtin_trainer.backend:BuiltinTrainer")`.
    Nothing is imported until the backend is used."""


@hookspec
def klint_add_commands(cli: click.Group) -> None:
    """Add click commands to the `klint` command group."""
