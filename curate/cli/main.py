"""`klint` entry point. `klint PATH` means `klint lint PATH`; heavy commands import lazily."""

from __future__ import annotations

import importlib
import sys

import click

from curate import __version__
from curate.errors import KlintError

# name -> "module:attribute"; imported only when that command runs (or for --help)
LAZY_COMMANDS = {
    "lint": "curate.cli.lint:lint_cmd",
    "fix": "curate.cli.fix:fix_cmd",
    "rules": "curate.cli.rules:rules_cmd",
    "rule": "curate.cli.rules:rule_cmd",
    "inspect": "curate.cli.inspect:inspect_cmd",
    "report": "curate.cli.report:report_cmd",
    "backends": "curate.cli.backends:backends_cmd",
    "train": "curate.cli.train:train_cmd",
    "infer": "curate.cli.infer:infer_cmd",
    "eval-id": "curate.cli.infer:eval_id_cmd",
    "lora": "curate.cli.lora:lora_cmd",
    "eval": "curate.cli.eval:eval_cmd",
}


class KlintGroup(click.Group):
    """Routes an unknown first argument (a path) to `lint`, and loads commands lazily."""

    def list_commands(self, ctx):
        extra = super().list_commands(ctx)
        return sorted(set(LAZY_COMMANDS) | set(extra))

    def get_command(self, ctx, name):
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        target = LAZY_COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("curate"):
                return None  # command not part of this build
            raise

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.list_commands(ctx) and not args[0].startswith("-"):
            args = ["lint", *args]
        elif args and args[0].startswith("-") and args[0] not in ("--help", "-h", "--version"):
            args = ["lint", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=KlintGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="klint")
def cli():
    """Lint, fix, rebalance and train FLUX.2 [klein] character-LoRA datasets.

    `klint DATA/` lints a dataset folder (same as `klint lint DATA/`).
    """


_plugins_added = False


def _add_plugin_commands() -> None:
    global _plugins_added
    if _plugins_added:
        return
    _plugins_added = True
    from curate.plugin.manager import get_plugin_manager

    get_plugin_manager().hook.klint_add_commands(cli=cli)


def main(argv=None) -> None:
    """Console script: every KlintError becomes one line on stderr and exit 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] not in LAZY_COMMANDS and not args[0].startswith("-"):
            from pathlib import Path

            if not Path(args[0]).exists() and args[0] not in cli.commands:
                _add_plugin_commands()
        rv = cli.main(args=args, prog_name="klint", standalone_mode=False)
    except KlintError as exc:
        from curate.cli.output import safe_text

        click.echo(f"klint: error: {safe_text(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("klint: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("klint: interrupted", err=True)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
