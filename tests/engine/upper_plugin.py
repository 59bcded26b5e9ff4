"""A tiny third-party-style plugin used by the engine tests: one fixable caption rule."""

from curate.engine import Fix, Rule, WriteText
from curate.plugin import hookimpl


class TST001(Rule):
    """Caption is not lower case.

    Why: a test rule with a safe fix. Example: `Hello`. Use instead: `hello`.
    Fix safety: safe. Options: none.
    """

    code = "TST001"
    name = "test.lowercase"
    groups = ("all", "test")
    severity = "warning"
    fix_availability = "always"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            text = item.caption_text
            if text and text != text.lower():
                fix = Fix("lower-case the caption", (WriteText(str(item.caption), text.lower()),))
                yield self.diag(ctx, item.rel_caption, "caption has capitals", fix=fix)


class TST002(Rule):
    """Caption mentions 'ping' (unsafe fix flips it to 'pong').

    Why: exercises unsafe fixes. Example: `ping`. Use instead: `pong`.
    Fix safety: unsafe. Options: none.
    """

    code = "TST002"
    name = "test.ping"
    groups = ("all", "test")
    severity = "error"
    fix_availability = "always"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            text = item.caption_text or ""
            if "ping" in text:
                fix = Fix("ping -> pong", (WriteText(str(item.caption), text.replace("ping", "pong")),), "unsafe")
                yield self.diag(ctx, item.rel_caption, "caption says ping", fix=fix)


@hookimpl
def klint_get_rules():
    return [TST001, TST002]


@hookimpl
def klint_add_commands(cli):
    import click

    @cli.command("hello")
    @click.argument("who", default="world")
    def hello(who):
        """Say hello (added by a plugin)."""
        click.echo(f"hello {who} from a plugin")
        return 0
