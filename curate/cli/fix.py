"""`klint fix PATH...` — safe caption fixes; `--rebalance` for composition."""

from __future__ import annotations

import click

from curate.cli.common import dataset_options, echo_out, fail_on_option, resolve_targets
from curate.cli.output import safe_lines, safe_text
from curate.cli.output.concise import footer, line


def report_skipped(report) -> None:
    """Captions someone edited while klint ran: left as they are, named on stderr."""
    for path in report.skipped:
        click.echo(safe_text(f"klint: skipped {path}: changed while klint was running; your edit is kept "
                             f"(run klint fix again to fix it)"), err=True)


@click.command("fix")
@click.argument("paths", nargs=-1)
@click.option("--unsafe-fixes", is_flag=True, help="Also apply unsafe fixes (e.g. removing face descriptions).")
@click.option("--diff", is_flag=True, help="Write nothing; print a unified diff of what would change.")
@click.option("--rebalance", is_flag=True, help="Bring the set to 1/3 close, half, full composition.")
@click.option("--strategy", type=click.Choice(["repeats", "crops", "both"]), default="repeats", show_default=True,
              help="With --rebalance: per-image repeats, derived crops, or both.")
@click.option("--dry-run", is_flag=True, help="With --rebalance: print the plan, write nothing.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="With --rebalance: where derived crops go (default <dataset>/_klint/derived).")
@fail_on_option
@dataset_options
def fix_cmd(paths, fail_on, unsafe_fixes, diff, rebalance, strategy, dry_run, out_dir, select, ignore, trigger, resolution,
            config_file, no_cache, no_progress):
    """Apply fixes to captions (atomically, with a backup in .klint_cache/backups/)."""
    targets = resolve_targets(paths, config_file=config_file, select=list(select) or None,
                              ignore=list(ignore) or None, trigger=trigger, resolution=resolution)
    if rebalance:
        from curate.fix.rebalance import rebalance_cmd

        return max(rebalance_cmd(t, strategy=strategy, dry_run=dry_run or diff, out_dir=out_dir,
                                 use_cache=not no_cache, no_progress=no_progress) for t in targets)
    from curate.engine.diagnostic import fails
    from curate.fix.apply import fix_dataset

    worst = 0
    for t in targets:
        report = fix_dataset(t.root, t.config, unsafe=unsafe_fixes, write=not diff, use_cache=not no_cache)
        if diff:
            from curate.dataset.scan import scan

            ds = scan(t.root)
            text = report.diff(lambda p: ds.display(p.resolve().relative_to(ds.root).as_posix()))
            echo_out(safe_lines(text))
            for rel in report.created:
                echo_out(safe_text(f"# would write {ds.display(rel)}") + "\n")
            if text or report.created:
                worst = max(worst, 1)
            continue
        lines = [line(d) for d in report.remaining]
        echo_out("\n".join(lines) + ("\n" if lines else ""))
        report_skipped(report)
        if report.runaway:
            click.echo("klint: fixes did not settle after 10 passes; nothing was written", err=True)
        n = len(report.changed)
        if n:
            click.echo(safe_text(f"Fixed {len(report.fixed)} problem{'s' if len(report.fixed) != 1 else ''} "
                                 f"in {n} caption{'s' if n != 1 else ''} (backup: {report.backup_dir})."))
        if report.created:
            made = [r for r in report.created if r.endswith(".png")]
            click.echo(safe_text(f"Wrote {len(made)} clean crop{'s' if len(made) != 1 else ''} under _klint/derived/ "
                                 f"(originals untouched): {', '.join(made)}"))
        for text in footer(report.remaining):
            click.echo(text)
        if fails(report.remaining, fail_on) or report.runaway or report.skipped:
            worst = max(worst, 1)
    return worst
