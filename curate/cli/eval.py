"""`klint eval RUN_OR_LORA... --model PATH|tiny -o DIR`: score LoRAs for identity and proportions."""

from __future__ import annotations

import json
from pathlib import Path

import click

from curate.errors import KlintError
from curate.eval_job import IDENTITY_THRESHOLD, RATIO_TOLERANCE


@click.command("eval")
@click.argument("inputs", nargs=-1, required=True, metavar="RUN_OR_LORA...")
@click.option("--model", required=True, metavar="PATH|ID|tiny", help="Klein model to generate on.")
@click.option("--refs", "refs", multiple=True, metavar="DATASET_OR_IMAGES",
              help="Reference photos (the dataset folder); repeatable.")
@click.option("--holdout", "holdout", multiple=True, metavar="IMAGES",
              help="Held-out photos of the person (not trained on): identity is scored against these.")
@click.option("--trigger", required=True, help="Trigger word the LoRA was trained with.")
@click.option("--strengths", default="0.6,0.8,1.0,1.2", show_default=True, help="LoRA strengths.")
@click.option("--prompts", "prompts_file", type=click.Path(path_type=Path), default=None,
              help="Extra prompts, one a line (trigger added first when missing).")
@click.option("--seeds", type=int, default=2, show_default=True, help="Seeds per prompt (0..N-1).")
@click.option("--steps", type=int, default=4, show_default=True, help="Denoising steps.")
@click.option("--cfg", type=float, default=1.0, show_default=True)
@click.option("--size", type=int, default=1024, show_default=True, help="Image side in pixels.")
@click.option("--mode", type=click.Choice(["none", "reference"]), default="none", show_default=True)
@click.option("--identity-threshold", type=float, default=IDENTITY_THRESHOLD, show_default=True,
              help="Exit 1 unless a cell's mean identity (1 - dlib distance) reaches this; 0 checks proportions only.")
@click.option("--ratio-tolerance", type=float, default=RATIO_TOLERANCE, show_default=True,
              help="Head heights the stature may differ from the dataset's.")
@click.option("--device", default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True)
def eval_cmd(inputs, model, refs, holdout, trigger, strengths, prompts_file, seeds, steps, cfg, size, mode,
             identity_threshold, ratio_tolerance, device, as_json, out):
    """Generate a checkpoint x strength grid and score identity and head-to-body ratio."""
    from curate.eval_job import EvalJob, parse_floats, prompt_set, reference_images, resolve_loras

    loras = resolve_loras(inputs)
    ref_paths = reference_images(refs) if refs else []
    if not ref_paths:
        raise KlintError("--refs DATASET_OR_IMAGES is required: identity is scored against them")
    if not 1 <= seeds <= 16 or not 1 <= steps <= 100:
        raise KlintError("--seeds must be 1-16 and --steps 1-100")
    if size < 64 or size % 16 or size > 2048:
        raise KlintError(f"--size must be a multiple of 16 between 64 and 2048, got {size}")
    if prompts_file is not None and not prompts_file.is_file():
        raise KlintError(f"{prompts_file}: prompts file not found")
    if out.exists() and not out.is_dir():
        raise KlintError(f"{out}: exists and is not a folder")
    job = EvalJob(loras=tuple(loras), model=model, out=out, prompts=tuple(prompt_set(trigger, prompts_file)),
                  refs=tuple(ref_paths), holdout=tuple(reference_images(holdout)) if holdout else (),
                  strengths=parse_floats(strengths, "--strengths", 0.0, 3.0),
                  seeds=tuple(range(seeds)), steps=steps, cfg=cfg, size=size, mode=mode,
                  identity_threshold=identity_threshold, ratio_tolerance=ratio_tolerance, device=device)
    from curate.backends import get_registry

    backend = get_registry().get("inference", "klein-eval")
    rc = backend.run(job)
    data = backend.last
    if as_json:
        click.echo(json.dumps({k: v for k, v in data.items() if k != "table"}, indent=2, default=str))
    else:
        click.echo(data["table"])
        click.echo(f"wrote {out / 'eval.html'} and {out / 'eval.json'}")
        if rc:
            click.echo("no cell reaches the identity threshold with proportions in tolerance")
    return rc
