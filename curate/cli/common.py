"""Options and target resolution shared by lint, fix, inspect and report."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path

import click

from curate.config import CONFIG_NAME, Config, apply_overrides, load_config
from curate.errors import KlintError


def dataset_options(f):
    """--select/--ignore/--trigger/--config/--no-cache/--no-progress."""
    opts = [
        click.option("--select", multiple=True, metavar="RULE", help="Only these rules (codes, names, prefixes like KL5 or caption)."),
        click.option("--ignore", multiple=True, metavar="RULE", help="Skip these rules."),
        click.option("--trigger", default=None, metavar="WORD", help="Trigger word (overrides config)."),
        click.option("--resolution", type=int, default=None, help="Training resolution (default 1024)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Use this klint.toml / pyproject.toml instead of searching."),
        click.option("--no-cache", is_flag=True, help="Ignore and do not write .klint_cache/."),
        click.option("--no-progress", is_flag=True, help="No progress bar on stderr."),
        trust_option,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


FAIL_ON_HELP = ("Lowest severity that makes the exit code 1 (default: warning; the `klint` pre-commit hooks pass "
                "`--fail-on error`, so warnings are shown but do not block a commit).")


def fail_on_option(f):
    """--fail-on error|warning|info; repeated, the last one wins (hook args come after the hook's own)."""
    return click.option("--fail-on", "fail_on", type=click.Choice(["error", "warning", "info"]), default="warning",
                        show_default=False, help=FAIL_ON_HELP)(f)


def _trust(ctx, param, value):
    if value:
        from curate.trust import trust_dataset_models

        trust_dataset_models()


trust_option = click.option(
    "--trust-dataset-models", is_flag=True, expose_value=False, is_eager=True, callback=_trust,
    help="Load model files named by the dataset's own config (they can run code; only for datasets you trust).")


@dataclasses.dataclass
class Target:
    root: Path  # dataset root, as given (relative paths kept for display)
    only: set[str] | None  # dataset-relative file paths to report on, None = all
    config: Config


def _root_for_file(path: Path) -> Path:
    for parent in path.parents:
        if (parent / CONFIG_NAME).is_file():
            return parent
    return path.parent


def resolve_targets(paths: tuple[str, ...], *, config_file: Path | None = None, **overrides) -> list[Target]:
    if not paths:
        paths = (".",)  # like ruff: the current folder (pre-commit runs hooks from the repo root)
    if config_file is not None and not config_file.is_file():
        raise KlintError(f"{config_file}: config file not found")
    targets: list[Target] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise KlintError(f"{raw}: no such file or directory")
        if p.is_dir():
            root, only = p, None
        else:
            root = _root_for_file(p)
            only = {p.resolve().relative_to(root.resolve()).as_posix()}
            if os.path.relpath(root) == ".":
                root = Path(".")
        if not os.access(root, os.R_OK | os.X_OK):
            raise KlintError(f"{raw}: permission denied")
        cfg = load_config(root.resolve(), config_file)
        cfg = apply_overrides(cfg, **overrides)
        targets.append(Target(root=root, only=only, config=cfg))
    return targets


def keep(diag, only: set[str] | None) -> bool:
    if only is None:
        return True
    stems = {o.rsplit(".", 1)[0] for o in only}
    return diag.rel in only or diag.rel.rsplit(".", 1)[0] in stems


def show_progress(no_progress: bool) -> bool:
    return not no_progress and sys.stderr.isatty() and not os.environ.get("CI")


def echo_out(text: str) -> None:
    click.echo(text, nl=False)


@functools.lru_cache(maxsize=1)
def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
