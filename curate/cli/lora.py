"""`klint lora FILE...` (lint, compare) and `klint lora convert FILE --to comfyui|diffusers -o OUT`."""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import echo_out, stdout_is_tty
from curate.cli.output import OutputFormat, render
from curate.errors import KlintError

MODELS = ["auto", "klein-4b", "klein-9b"]


class _LoraGroup(click.Group):
    """`klint lora FILE` lints; `klint lora convert ...` converts."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["check", *args]
        return super().resolve_command(ctx, args)


@click.group("lora", cls=_LoraGroup, invoke_without_command=False)
def lora_cmd():
    """Lint, compare (two files) and convert trained Klein LoRA files."""


def _table(rep) -> list[str]:
    from curate.lora.report import block_rows

    rows = block_rows(rep)
    if not rows:
        return []
    out = [f"  {'BLOCK':<15} {'|B.A|*scale':>12} {'RANK':>6} {'ALPHA':>7} {'DTYPE':>6} {'MODULES':>7}"]
    for block, norm, rank, alpha, dtype, n in rows:
        out.append(f"  {block:<15} {norm:>12.4g} {rank:>6} {alpha:>7} {dtype:>6} {n:>7}")
    return out


def _compare(a, b) -> list[str]:
    """Block by block: delta norms (naming-independent) and, for modules stored alike, delta cosine."""
    from curate.lora.report import block_rows, module_inner

    na = {r[0]: r[1] for r in block_rows(a)}
    nb = {r[0]: r[1] for r in block_rows(b)}
    inner: dict[str, float] = {}
    for p, sa in a.stats.items():
        sb = b.stats.get(p)
        cos = module_inner(a, b, p) if sb else None
        if cos is not None:
            blk = sa.module.block
            key = f"{blk[0]} {blk[1]}" if blk else "outside blocks"
            inner[key] = inner.get(key, 0.0) + cos * sa.delta_norm * sb.delta_norm
    out = [f"compare {a.path} -> {b.path}", f"  {'BLOCK':<15} {'|dA|':>10} {'|dB|':>10} {'B/A':>7} {'COS':>7}"]
    for blk in list(na) + [k for k in nb if k not in na]:
        x, y = na.get(blk), nb.get(blk)
        ratio = f"{y / x:.3g}" if x and y is not None else "-"
        cos = f"{inner[blk] / (x * y):.3f}" if blk in inner and x and y else "-"
        fx = f"{x:.4g}" if x is not None else "-"
        fy = f"{y:.4g}" if y is not None else "-"
        out.append(f"  {blk:<15} {fx:>10} {fy:>10} {ratio:>7} {cos:>7}")
    if not inner and a.stats and b.stats:
        out.append("  (different namings: norms compared; convert one file for per-module cosines)")
    return out


@lora_cmd.command("check", hidden=True)
@click.argument("files", nargs=-1, required=True)
@click.option("--model", type=click.Choice(MODELS), default="auto", show_default=True,
              help="The Klein model the LoRA is for; auto detects it from the shapes.")
@click.option("--format", "--output-format", "fmt", type=click.Choice([f.value for f in OutputFormat]),
              default="concise", show_default=True, help="How to print diagnostics.")
@click.option("--select", multiple=True, metavar="RULE", help="Only these rules (e.g. lora.nan, KL80).")
@click.option("--ignore", multiple=True, metavar="RULE", help="Skip these rules.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found.")
def check_cmd(files, model, fmt, select, ignore, exit_zero):
    """Lint LoRA files; with two files, also compare them block by block."""
    from curate.lora import lint_file, lora_rules

    rules = lora_rules(list(select) or ["ALL"], list(ignore))
    reports, diagnostics = [], []
    for f in files:
        p = Path(f)
        if not p.exists():
            raise KlintError(f"{f}: no such file")
        if p.is_dir():
            raise KlintError(f"{f}: is a folder; give the .safetensors file (`klint {f}` lints a dataset)")
        rep, diags = lint_file(p, model=model, rules=rules, display=f)
        reports.append(rep)
        diagnostics.extend(diags)
    text_format = fmt in ("concise", "full")
    head = []
    if text_format:
        for rep in reports:
            head.append(rep.summary())
            if fmt == "full":
                head.extend(_table(rep))
        if len(reports) == 2 and all(r.error is None for r in reports):
            head.extend(_compare(*reports))
        echo_out("\n".join(head) + "\n")
    echo_out(render(fmt, diagnostics, rules=rules, summary={}, color=stdout_is_tty()))
    failing = [d for d in diagnostics if d.severity != "info"]
    return 0 if exit_zero or not failing else 1


@lora_cmd.command("convert")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "to", type=click.Choice(["comfyui", "diffusers"]), required=True,
              help="comfyui: BFL names, fused q/k/v; diffusers: PEFT names, split q/k/v.")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--alpha", type=click.Choice(["auto", "keep", "bake"]), default="auto", show_default=True,
              help="keep `.alpha` tensors (comfyui only) or bake alpha/rank into B; diffusers always bakes.")
@click.option("--dtype", type=click.Choice(["keep", "bf16", "fp16", "fp32"]), default="keep", show_default=True)
@click.option("--force", is_flag=True, help="Replace OUT if it exists (never FILE).")
def convert_cmd(file, to, out, alpha, dtype, force):
    """Convert exactly and check the merged deltas equal the original's."""
    from curate.lora.convert import convert

    if not file.is_file():
        raise KlintError(f"{file}: no such file")
    if out.exists() and out.resolve() == file.resolve():
        raise KlintError(f"{out}: the output must not be the input file")
    if out.exists() and not force:
        raise KlintError(f"{out}: exists (use --force to replace it)")
    res = convert(file, out, to, alpha=alpha, dtype=dtype)
    click.echo(f"wrote {res.out} ({res.keys} tensors, {to}); merged deltas match the original: max relative "
               f"difference {res.error:.2g} (<= {res.tolerance:g})")
    return 0
