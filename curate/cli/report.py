"""`klint report PATH -o report.html`"""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import dataset_options, resolve_targets, show_progress
from curate.errors import KlintError


@click.command("report")
@click.argument("path")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("klint-report.html"), show_default=True,
              help="HTML file to write.")
@click.option("--thumb-size", type=click.IntRange(64, 1024), default=256, show_default=True,
              help="Longer side of the embedded thumbnails, in pixels.")
@dataset_options
def report_cmd(path, output, thumb_size, select, ignore, trigger, resolution, config_file, no_cache, no_progress):
    """Write a self-contained HTML report: thumbnails by framing, composition, variety, findings."""
    from curate.engine.runner import lint_dataset
    from curate.report import write_report

    (target,) = resolve_targets((path,), config_file=config_file, select=list(select) or None,
                                ignore=list(ignore) or None, trigger=trigger, resolution=resolution)
    if output.is_dir():
        raise KlintError(f"{output}: is a directory; give a file name like report.html")
    if not output.parent.is_dir():
        raise KlintError(f"{output.parent}: output folder does not exist")
    result = lint_dataset(target.root, target.config, use_cache=not no_cache,
                          show_progress=show_progress(no_progress))
    written = write_report(result, output, thumb_size=thumb_size, use_cache=not no_cache)
    click.echo(str(written))
    return 0
