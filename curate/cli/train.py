"""`klint train PATH`: lint, resolve the recipe, build a TrainJob, hand it to a trainer backend.

Backend-agnostic: the built-in trainer and exporter backends receive the same `TrainJob`.
No torch import here; the backend imports what it needs when it runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from curate.cli.common import trust_option
from curate.errors import KlintError
from curate.recipes import OPTIMIZERS, RECIPES

# recipe fields a `[train]` table in klint.toml may set (kebab-case keys)
_TRAIN_KEYS = ("steps", "lr", "rank", "alpha", "optimizer", "weight-decay", "resolution", "base-dtype",
               "gradient-accumulation", "repeats", "max-grad-norm")
# exporter settings a `[train]` table may set (paths on the training machine; flags win)
_EXPORT_KEYS = {"vae": "vae", "text-encoder": "text_encoder", "link": "link"}


_FRAMING_NAMES = {"close": "headshot", "headshot": "headshot", "half": "half-body", "half-body": "half-body",
                  "full": "full-body", "full-body": "full-body"}


def _out_dir(out: Path | None, root: Path) -> Path:
    """Beside the dataset by default; never inside it, where previews would be linted as photos."""
    target = (out or root.parent / "klint-train" / root.name).resolve()
    if target == root or root in target.parents:
        raise KlintError(f"--out {target} is inside the dataset {root}; choose a folder outside it")
    return target


def _framing(ctx, item) -> str | None:
    """headshot | half-body | full-body from the framing (or pose) analysis, when it ran."""
    for analysis in ("framing", "pose"):
        if analysis not in ctx.results:
            continue
        res = ctx.result(analysis, item)
        value = res.get("framing") if isinstance(res, dict) else None
        if value in _FRAMING_NAMES:
            return _FRAMING_NAMES[value]
    return None


def _ensure_framing(result, use_cache: bool) -> None:
    """Stage 2 needs framing; run the analysis when the selected rules did not."""
    from curate.engine.registry import all_analyses

    ctx = result.context
    if "framing" in ctx.results or "framing" not in all_analyses():
        return
    from curate.analysis.cache import Cache
    from curate.engine.runner import run_analyses

    cache = Cache(ctx.dataset.root, enabled=use_cache)
    run_analyses(ctx, {"framing"}, cache)
    cache.save({it.rel_image for it in ctx.dataset.items if it.image is not None})


def build_job(target, *, backend: str, model: str, recipe_name: str | None, overrides: dict, two_stage: bool,
              out: Path | None, base_dtype: str | None, sample_every: int | None, resume: bool, dry_run: bool,
              seed: int, force: bool, use_cache: bool = True, show_progress: bool = False):
    """Lint the dataset and turn it plus the recipe into a TrainJob (raises KlintError on refusal)."""
    from curate.engine.runner import lint_dataset
    from curate.recipes import check_recipe, get_recipe
    from curate.train_job import TrainItem, TrainJob

    cfg = target.config
    train_cfg = dict(cfg.train or {})
    name = recipe_name or train_cfg.get("recipe") or ("minimal-4b" if cfg.model == "klein-4b" else "standard")
    from_file = {k.replace("-", "_"): train_cfg[k] for k in _TRAIN_KEYS if k in train_cfg}
    from_file.pop("resolution", None)
    file_dtype = from_file.pop("base_dtype", None)
    merged = {**from_file, **{k: v for k, v in overrides.items() if v is not None}}
    if recipe_name is None and "recipe" not in train_cfg:
        merged.setdefault("model", cfg.model)
    recipe = get_recipe(name, **merged)
    for field in ("steps", "rank", "alpha", "gradient_accumulation"):
        if getattr(recipe, field) < 1:
            raise KlintError(f"--{field} must be >= 1, got {getattr(recipe, field)}")
    if not recipe.lr > 0:
        raise KlintError(f"--lr must be > 0, got {recipe.lr}")
    if not recipe.max_grad_norm >= 0:
        raise KlintError(f"--max-grad-norm must be >= 0 (0 = off), got {recipe.max_grad_norm}")
    check_recipe(recipe)

    result = lint_dataset(target.root, cfg, use_cache=use_cache, show_progress=show_progress)
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors and not force:
        first = errors[0]
        where = f"{first.rel}: " if first.rel else ""
        raise KlintError(f"dataset has {len(errors)} lint error(s), first: {where}{first.code} {first.message} "
                         f"(run `klint {target.root}` to see them, fix them, or pass --force)")
    if two_stage:
        _ensure_framing(result, use_cache)
    ds = result.dataset
    counts = {sev: sum(d.severity == sev for d in result.diagnostics) for sev in ("error", "warning")}
    lint = f"{counts['error']} errors, {counts['warning']} warnings" + (" (trained anyway: --force)" if errors else "")
    items = []
    from curate.dataset.derived import replacements

    replaced = replacements(ds.root)  # a clean crop (text overlay cut away) trains in their place
    for it in ds.images:
        if it.rel_image in replaced:
            continue
        caption = it.caption_text if it.caption_text is not None else (cfg.trigger or "")
        items.append(TrainItem(image=it.image.resolve(), rel=it.rel_image, caption=caption.strip(),
                               framing=_framing(result.context, it), repeats=int(cfg.repeats.get(it.rel_image, 1))))
    if not items:
        raise KlintError(f"{target.root}: no images to train on")
    from curate.train_job import check_trainable

    check_trainable(cfg.trigger, items)
    prompts = train_cfg.get("sample-prompts")
    if isinstance(prompts, str):
        prompts = [prompts]
    if not prompts:
        t = cfg.trigger or "a person"
        prompts = [f"{t}, close-up portrait photo", f"{t}, full-body photo standing in a park"]
    resolution = cfg.resolution
    job = TrainJob(
        dataset_root=Path(ds.root).resolve(), items=tuple(items), recipe=recipe,
        out_dir=_out_dir(out, Path(ds.root).resolve()), model=model,
        trigger=cfg.trigger, resolution=resolution, base_dtype=base_dtype or file_dtype or recipe.base_dtype,
        two_stage=two_stage, sample_every=sample_every if sample_every is not None else int(train_cfg.get("sample-every", 0)),
        checkpoint_every=int(train_cfg.get("checkpoint-every", 0)), resume=resume, dry_run=dry_run, seed=seed,
        sample_prompts=tuple(str(p) for p in prompts), options={"lint": lint},
    )
    if two_stage and not job.stage2_items:
        raise KlintError("--two-stage needs full-body images, and the framing analysis found none "
                         "(see `klint inspect` for each image's framing)")
    return job


_MEMORY_MODES = {
    "auto": "checkpointing by free GPU memory at start (off, else selective, else full); no compilation; "
            "bf16 matmuls",
    "fast": "the least checkpointing that fits free GPU memory; regional compilation when it is off; "
            "fp8 matmuls on an fp8 base (sm_89+)",
    "selective": "selective checkpointing (MLP halves recomputed); fp8 matmuls on an fp8 base (sm_89+)",
    "low-memory": "full gradient checkpointing; fp8 matmuls on an fp8 base (sm_89+)",
}


def _builtin_plan(job) -> list[str]:
    r = job.recipe
    base = ("fp8 (row-scaled e4m3 block linears; embedders, modulation, norms bf16)" if job.base_dtype == "fp8"
            else job.base_dtype)
    lora = "bf16 weights, Kahan-compensated" if r.optimizer == "adamw8bit-kahan" else \
        "bf16 with fp32 master weights on a GPU (fp32 on CPU)"
    clip = f"gradient clipping {r.max_grad_norm:g}" if r.max_grad_norm else "no gradient clipping"
    speed = (job.options or {}).get("speed", "auto")
    return [f"precision   base {base}; LoRA {lora}; {clip}",
            f"memory      --speed {speed}: {_MEMORY_MODES.get(speed, speed)} (resolved on the device below)"]


def describe(job, backend: str) -> str:
    r = job.recipe
    lines = [
        f"backend     {backend}",
        f"dataset     {job.dataset_root} ({len(job.items)} images; per-image repeat weights "
        f"{min(it.repeats for it in job.items)}-{max(it.repeats for it in job.items)}x)",
        *([f"lint        {job.options['lint']}"] if (job.options or {}).get("lint") else []),
        f"model       {job.model}  (recipe variant {r.model}; frozen base weights trained in {job.base_dtype})",
        f"recipe      {r.name}: {r.optimizer}, lr {r.lr:g}, rank {r.rank}, alpha {r.alpha}, {r.steps} steps, "
        f"wd {r.weight_decay:g}, {r.lr_schedule} lr, gradient accumulation {r.gradient_accumulation}",
        f"samples     {len(job.items)} images, {job.samples_per_epoch} effective samples per epoch "
        f"({r.steps * r.gradient_accumulation / job.samples_per_epoch:.1f} epochs in stage 1)",
        f"steps       {r.steps + (r.stage2_steps if job.two_stage else 0)}"
        + (f" ({r.steps} + {r.stage2_steps} in stage 2)" if job.two_stage else ""),
        f"resolution  {job.resolution}",
        f"trigger     {job.trigger or '(none)'}",
    ]
    if job.two_stage:
        lines.append(f"stage 2     {len(job.stage2_items)} full-body images, lr {r.stage2_lr:g}, {r.stage2_steps} steps")
    if backend == "builtin":
        lines += _builtin_plan(job)
    lines.append(f"out         {job.out_dir}")
    return "\n".join(lines) + "\n"


@click.command("train")
@trust_option
@click.argument("path")
@click.option("--backend", default="builtin", show_default=True, help="Trainer backend (see `klint backends`).")
@click.option("--model", default=None, metavar="PATH|ID|tiny",
              help="Diffusers folder, cached hub id, single-file checkpoint, or `tiny` (random test model).")
@click.option("--recipe", "recipe_name", type=click.Choice(sorted(RECIPES)), default=None,
              help="Seed recipe (default: from config, else standard; minimal-4b for model klein-4b).")
@click.option("--steps", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--rank", type=int, default=None)
@click.option("--alpha", type=int, default=None)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=None)
@click.option("--two-stage", is_flag=True, help="Add stage 2: full-body images only at lower lr.")
@click.option("--resolution", type=int, default=None, help="Training resolution (default from config, 1024).")
@click.option("--base-dtype", type=click.Choice(["bf16", "fp8"]), default=None)
@click.option("--gradient-accumulation", type=int, default=None, metavar="N",
              help="Micro-batches per optimizer step (default from recipe / [train], 1).")
@click.option("--speed", type=click.Choice(["auto", "fast", "selective", "low-memory"]), default=None,
              help="builtin on CUDA: auto = least checkpointing that fits free VRAM; fast = that plus regional "
                   "compile (when no checkpointing is needed); selective = recompute MLP halves only; "
                   "low-memory = full checkpointing. fast/selective/low-memory use fp8 matmuls on an fp8 base.")
@click.option("--max-grad-norm", type=float, default=None, metavar="X",
              help="Gradient clipping norm (default from recipe, 1.0; 0 = off).")
@click.option("--sample-every", type=int, default=None, metavar="N", help="Preview images every N steps.")
@click.option("--eval-every", type=int, default=0, metavar="N",
              help="builtin: `klint eval` identity and head-to-body ratio into metrics.jsonl every N steps.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default <dataset>/../klint-train/<dataset name>).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--dry-run", is_flag=True, help="Resolve and print the plan; train nothing.")
@click.option("--force", is_flag=True, help="Train even if the dataset has lint errors.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--trigger", default=None, help="Trigger word (overrides config).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--no-cache", is_flag=True, help="Ignore and do not write .klint_cache/ while linting.")
@click.option("--no-progress", is_flag=True)
@click.option("--run", "run_tool", is_flag=True,
              help="Exporter backends: launch the tool after writing its job, streaming its output.")
@click.option("--tool-path", type=click.Path(path_type=Path), default=None,
              help="Exporter backends: the tool's checkout (else its $..._DIR variable, else PATH).")
@click.option("--vae", default=None, metavar="FILE",
              help="Exporter backends: the VAE file on the training machine (musubi: BFL ae.safetensors).")
@click.option("--text-encoder", default=None, metavar="FILE",
              help="Exporter backends: the Qwen3 file, or the first shard of split files (musubi).")
@click.option("--link", "link", is_flag=True,
              help="Exporter backends: symlink the images instead of copying / hard-linking them "
                   "(the job then only works where the dataset is).")
def train_cmd(path, backend, model, recipe_name, steps, lr, rank, alpha, optimizer, two_stage, resolution,
              base_dtype, gradient_accumulation, speed, max_grad_norm, sample_every, eval_every, out, resume, dry_run, force, seed,
              trigger, config_file, no_cache, no_progress, run_tool, tool_path, vae, text_encoder, link):
    """Train a character LoRA on a linted dataset (or export a job for another trainer)."""
    from curate.backends import get_registry
    from curate.cli.common import resolve_targets, show_progress
    from curate.errors import MissingDependency

    if resolution is not None and (resolution < 64 or resolution % 16):
        raise KlintError(f"--resolution must be a multiple of 16 and >= 64, got {resolution}")
    if sample_every is not None and sample_every < 0:
        raise KlintError("--sample-every must be >= 0")
    if eval_every < 0 or (eval_every and backend != "builtin"):
        raise KlintError("--eval-every must be >= 0 and needs --backend builtin")
    registry = get_registry()
    spec = registry.spec("trainer", backend)
    missing = spec.missing()
    if missing and not dry_run:
        raise MissingDependency(f"backend {backend!r} needs {', '.join(missing)}, which is not installed: "
                                f"run {spec.install_hint()}")
    (target,) = resolve_targets((path,), config_file=config_file, trigger=trigger, resolution=resolution)
    if not Path(target.root).is_dir() or target.only is not None:
        raise KlintError(f"{path}: expected a dataset folder")
    if model is None:
        model = (target.config.train or {}).get("model")
    if not model:
        raise KlintError("no --model given (a diffusers folder, a cached hub id such as "
                         "black-forest-labs/FLUX.2-klein-base-9B, a .safetensors checkpoint, or `tiny`)")
    job = build_job(target, backend=backend, model=str(model), recipe_name=recipe_name,
                    overrides=dict(steps=steps, lr=lr, rank=rank, alpha=alpha, optimizer=optimizer,
                                   gradient_accumulation=gradient_accumulation, max_grad_norm=max_grad_norm),
                    two_stage=two_stage, out=out, base_dtype=base_dtype, sample_every=sample_every, resume=resume,
                    dry_run=dry_run, seed=seed, force=force, use_cache=not no_cache,
                    show_progress=show_progress(no_progress))
    speed = speed or (target.config.train or {}).get("speed") or "auto"
    if speed not in _MEMORY_MODES:
        raise KlintError(f"[train] speed must be auto, fast, selective or low-memory, got {speed!r}")
    options = {**job.options, "speed": speed}
    if run_tool or tool_path:
        options.update(run=run_tool, tool_path=str(tool_path) if tool_path else None)
    train_cfg = target.config.train or {}
    for key, name in _EXPORT_KEYS.items():
        if key in train_cfg:
            options[name] = train_cfg[key]
    if link:
        options["link"] = "symlink"
    if options.get("link") not in (None, "auto", "copy", "hardlink", "symlink"):
        raise KlintError(f"[train] link must be auto, copy, hardlink or symlink, got {options['link']!r}")
    for name, value in (("vae", vae), ("text_encoder", text_encoder)):
        if value:
            options[name] = value
    import dataclasses

    job = dataclasses.replace(job, options=options, eval_every=eval_every)
    if dry_run or backend == "builtin":
        # the plan first: loading and encoding take a while before the first step
        click.echo(describe(job, backend), nl=False)
    if dry_run:
        if missing:
            click.echo(f"note: backend {backend!r} needs {', '.join(missing)}: run {spec.install_hint()}")
            return 0
    return registry.get("trainer", backend).run(job)
