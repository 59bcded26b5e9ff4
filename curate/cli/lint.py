"""`klint lint PATH...`"""

from __future__ import annotations

import click

from curate.cli.common import dataset_options, echo_out, fail_on_option, keep, resolve_targets, show_progress, stdout_is_tty
from curate.cli.output import OutputFormat, render, safe_text


@click.command("lint")
@click.argument("paths", nargs=-1)
@click.option("--format", "--output-format", "fmt", type=click.Choice([f.value for f in OutputFormat]),
              default="concise", show_default=True, help="How to print diagnostics.")
@fail_on_option
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
@click.option("--fix", "apply_fixes", is_flag=True, help="Apply safe fixes first (like `klint fix`), then report.")
@click.option("--unsafe-fixes", is_flag=True, help="With --fix: also apply unsafe fixes.")
@dataset_options
def lint_cmd(paths, fmt, fail_on, exit_zero, apply_fixes, unsafe_fixes, select, ignore, trigger, resolution, config_file,
             no_cache, no_progress):
    """Lint dataset folders (images + same-stem .txt captions).

    Exit codes: 0 clean (or only findings below --fail-on), 1 findings at or above --fail-on,
    2 bad input. `klint lint` fails on warnings by default; the pre-commit hooks use
    `--fail-on error` so a dataset with warnings only can be committed.
    """
    from curate.engine.runner import lint_dataset

    targets = resolve_targets(paths, config_file=config_file, select=list(select) or None,
                              ignore=list(ignore) or None, trigger=trigger, resolution=resolution)
    diagnostics, rules = [], []
    for t in targets:
        if apply_fixes:
            from curate.fix.apply import fix_dataset

            report = fix_dataset(t.root, t.config, unsafe=unsafe_fixes, use_cache=not no_cache)
            if report.changed:
                click.echo(safe_text(f"klint: fixed {len(report.fixed)} problem(s) in {len(report.changed)} "
                                     f"caption(s); backup in {report.backup_dir}"), err=True)
            from curate.cli.fix import report_skipped

            report_skipped(report)
        result = lint_dataset(t.root, t.config, use_cache=not no_cache, show_progress=show_progress(no_progress))
        diagnostics.extend(d for d in result.diagnostics if keep(d, t.only))
        rules = result.rules
    echo_out(render(fmt, diagnostics, rules=rules, summary={}, color=stdout_is_tty()))
    from curate.engine.diagnostic import fails

    return 0 if exit_zero or not fails(diagnostics, fail_on) else 1
