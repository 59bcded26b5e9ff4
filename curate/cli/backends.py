"""`klint backends`: every registered backend, whether it can run here, and what it needs.

Reads the registry's specs only; no backend module is imported.
"""

from __future__ import annotations

import json

import click


@click.command("backends")
@click.option("--kind", type=click.Choice(["trainer", "inference"]), default=None, help="Only this kind.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def backends_cmd(kind, as_json):
    """List trainer and inference backends, their dependencies and limitations."""
    from curate.backends import get_registry

    specs = get_registry().specs(kind)
    rows = []
    for s in specs:
        missing = s.missing()
        rows.append(dict(kind=s.kind, name=s.name, installed=not missing, missing=missing,
                         requires=list(s.requires), install=None if not missing else s.install_hint(),
                         extra=s.extra, summary=s.summary, limitations=list(s.limitations), target=s.target))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return 0
    if not rows:
        click.echo("no backends registered")
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_lines=False, pad_edge=False, box=None)
    for col in ("kind", "name", "ready", "needs", "summary"):
        table.add_column(col, overflow="fold")
    for r in rows:
        ready = "yes" if r["installed"] else "no: " + ", ".join(r["missing"])
        needs = ", ".join(r["requires"]) or "-"
        if r["install"]:
            needs += f"\n{r['install']}"
        summary = r["summary"] + "".join(f"\n- {lim}" for lim in r["limitations"])
        table.add_row(*(escape(x) for x in (r["kind"], r["name"], ready, needs, summary)))
    Console(width=160, soft_wrap=False).print(table)
    return 0
