"""`klint rules` and `klint rule NAME|CODE`."""

from __future__ import annotations

import inspect

import click

from curate.errors import KlintError


@click.command("rules")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def rules_cmd(fmt):
    """List every rule: code, name, severity, fix availability."""
    from curate.engine.registry import all_rules

    rules = all_rules()
    if fmt == "json":
        import json

        click.echo(json.dumps([{"code": r.code, "name": r.name, "severity": r.severity, "fix": r.fix_availability,
                                "groups": list(r.groups), "summary": r.summary} for r in rules], indent=2))
        return 0
    w = max(len(r.name) for r in rules)
    click.echo(f"{'CODE':<7} {'NAME':<{w}} {'SEVERITY':<8} {'FIX':<9} SUMMARY")
    for r in rules:
        click.echo(f"{r.code:<7} {r.name:<{w}} {r.severity:<8} {r.fix_availability:<9} {r.summary}")
    return 0


@click.command("rule")
@click.argument("key")
def rule_cmd(key):
    """Show a rule's full documentation."""
    from curate.engine.registry import all_rules, find_rule

    rule = find_rule(all_rules(), key)
    if rule is None:
        raise KlintError(f"unknown rule {key!r} (see `klint rules`)")
    click.echo(f"# {rule.name} ({rule.code})\n")
    click.echo(f"Severity: {rule.severity}. Fix: {rule.fix_availability}. Groups: {', '.join(rule.groups)}.\n")
    click.echo(inspect.cleandoc(rule.__doc__ or ""))
    if rule.options:
        click.echo("\nDefaults:")
        for k, v in rule.options.items():
            click.echo(f"  {k} = {v!r}")
    return 0
