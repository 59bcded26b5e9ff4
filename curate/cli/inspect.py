"""`klint inspect PATH --format json|table`: what klint sees in each image."""

from __future__ import annotations

import json
from pathlib import Path

import click

from curate.cli.common import echo_out, resolve_targets, show_progress


def _table(records, summary) -> str:
    head = ("path", "framing", "conf", "people", "repeats", "face", "identity", "subject", "lighting", "bg")
    rows = []
    for r in records:
        face = {True: "yes", False: f"no ({r.get('face_reason') or '?'})", None: "-"}[r.get("face_visible")]
        rows.append((
            r["path"], r["framing"], f"{r['framing_confidence']:.2f}", str(r["people"]), str(r["repeats"]), face,
            _identity_cell(r.get("face")),
            f"{100 * (r.get('subject_fraction') or 0):.0f}%",
            (r.get("lighting") or {}).get("bucket", "-"),
            "-" if not r.get("background") or r["background"].get("cluster") is None else str(r["background"]["cluster"]),
        ))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    lines = [fmt(head), fmt(tuple("-" * w for w in widths)), *(fmt(r) for r in rows)]
    from curate.composition import advice, mix_text, pct

    f, comp = summary["framing"], summary["composition"]
    lines.append("")
    lines.append(f"{summary['images']} images: {f['close']} close, {f['half']} half, {f['full']} full, {f['none']} none")
    if comp.framed_weight:
        if comp.short:
            verdict = "; ".join(f"{g} needs at least {pct(comp.floor(g))}: {advice(comp, g)}" for g in comp.short)
        else:
            verdict = "every framing at or above its threshold"
        lines.append(f"composition: {mix_text(comp)}; {verdict}")
    if "lighting" in summary:
        li, bg = summary["lighting"], summary["background"]
        lines.append(f"lighting: {li['distinct']} setup{'s' if li['distinct'] != 1 else ''}, effective number "
                     f"{li['effective']} (largest {100 * li['largest_share']:.0f}%)")
        lines.append(f"backgrounds: {bg['clusters']}, effective number {bg['effective']} "
                     f"(largest {100 * bg['largest_share']:.0f}%)")
    return "\n".join(lines) + "\n"


def _identity_cell(face) -> str:
    d = (face or {}).get("identity_distance")
    return "-" if d is None else f"{d:.2f}"


@click.command("inspect")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--pose-model", default=None, metavar="FILE", help="Any ultralytics pose model (default: yolo11n-pose.pt).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Use this klint.toml / pyproject.toml instead of searching.")
@click.option("--no-cache", is_flag=True, help="Ignore and do not write .klint_cache/.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def inspect_cmd(paths, fmt, pose_model, config_file, no_cache, no_progress):
    """Per-image framing, people, face, lighting and background (one record per image)."""
    from curate.analysis.variety import dataset_variety
    from curate.engine.runner import lint_dataset
    from curate.inspect import inspect_records, summary

    targets = resolve_targets(paths, config_file=config_file, pose_model=pose_model)
    records, variety, config = [], None, None
    for t in targets:
        result = lint_dataset(t.root, t.config, use_cache=not no_cache, show_progress=show_progress(no_progress),
                              rules=[])
        recs = inspect_records(result, use_cache=not no_cache)
        if t.only is not None:
            recs = [r for r in recs if r["rel"] in t.only]
        records.extend(recs)
        variety = dataset_variety(result.context) if len(targets) == 1 else None
        config = t.config if len(targets) == 1 else None
    if fmt == "json":
        echo_out(json.dumps(records, indent=2) + "\n")
    else:
        from curate.cli.output import safe_lines

        echo_out(safe_lines(_table(records, summary(records, variety, config))))
    return 0
