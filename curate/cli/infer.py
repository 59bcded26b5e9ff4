"""`klint infer PROMPT ...` and `klint eval-id --ref IMG ... IMAGES...`.

Both hand off to the `klein` inference backend (`pip install -e ".[infer]"`); nothing heavy is
imported until the inputs have been checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from curate.errors import KlintError

_MODES = ("pulid", "reference", "none")
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}


def _existing_files(paths, what: str) -> list[Path]:
    out = []
    for raw in paths:
        p = Path(raw)
        if not p.is_file():
            raise KlintError(f"{raw}: {what} not found")
        out.append(p)
    return out


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise KlintError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")


def _backend(name: str = "klein"):
    from curate.backends import get_registry

    return get_registry().get("inference", name)


@click.command("infer")
@click.argument("prompt")
@click.option("--model", required=True, metavar="PATH|ID|tiny",
              help="Diffusers Klein folder or hub id; `tiny` / `tiny-kv` = random in-process model whose "
                   "output is noise (tests).")
@click.option("--lora", type=click.Path(path_type=Path), default=None, help="LoRA .safetensors to apply.")
@click.option("--lora-scale", type=float, default=1.0, show_default=True)
@click.option("--ref", "refs", multiple=True, metavar="IMG", help="Reference photo (repeat for several).")
@click.option("--mode", type=click.Choice(_MODES), default="none", show_default=True,
              help="pulid: ID tokens via cross-attention; reference: Klein's native references; none.")
@click.option("--id-weight", type=float, default=1.0, show_default=True, help="PuLID ID strength (0-3).")
@click.option("--id-start", type=float, default=0.0, show_default=True,
              help="Fraction of the denoising steps before ID is applied (PuLID: 4/28 photoreal).")
@click.option("--steps", type=int, default=20, show_default=True, help="Denoising steps (seed: 20).")
@click.option("--cfg", type=float, default=1.0, show_default=True, help="Guidance scale (base models only).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--width", type=int, default=1024, show_default=True)
@click.option("--height", type=int, default=1024, show_default=True)
@click.option("--num-images", type=int, default=1, show_default=True)
@click.option("--face-model", default=None, metavar="DIR",
              help="insightface antelopev2/buffalo_l folder for PuLID conditioning.")
@click.option("--eva-weights", type=click.Path(path_type=Path), default=None,
              help="open_clip EVA02-L-14-336 checkpoint (PuLID's vision features).")
@click.option("--pulid-weights", type=click.Path(path_type=Path), default=None,
              help="pulid_flux_v0.9.1.safetensors (klein-4B, experimental) or a klint adapter.")
@click.option("--parsing-weights", type=click.Path(path_type=Path), default=None,
              help="facexlib BiSeNet parsing_bisenet.pth (read with weights_only) or .safetensors: PuLID's "
                   "face parsing before EVA-CLIP.")
@click.option("--with-reference", is_flag=True, help="pulid: also pass the references natively.")
@click.option("--ref-cache", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Compute reference K/V once. Only a KV checkpoint (Flux2KleinKVPipeline) caches; `on` "
                   "is refused on a base one. auto = cache exactly when the checkpoint is the KV variant.")
@click.option("--eval", "do_eval", is_flag=True, help="Score identity of the outputs against the references.")
@click.option("--eval-face-model", default=None, metavar="DIR",
              help="insightface pack for --eval (default: klint's dlib face model, by construction not "
                   "the conditioning one).")
@click.option("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available).")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (existing files are never overwritten).")
def infer_cmd(prompt, model, lora, lora_scale, refs, mode, id_weight, id_start, steps, cfg, seed, width, height,
              num_images, face_model, eva_weights, pulid_weights, parsing_weights, with_reference, ref_cache, do_eval,
              eval_face_model, device, out):
    """Generate images with a Klein model, optionally a LoRA and identity references."""
    from plugins.pulid.job import InferJob

    ref_paths = _existing_files(refs, "reference image")
    if mode != "none" and not ref_paths:
        raise KlintError(f"--mode {mode} needs at least one --ref IMAGE")
    if lora is not None and not lora.is_file():
        raise KlintError(f"{lora}: LoRA file not found")
    for name, p in (("--eva-weights", eva_weights), ("--pulid-weights", pulid_weights),
                    ("--parsing-weights", parsing_weights)):
        if p is not None and not p.is_file():
            raise KlintError(f"{p}: {name} file not found")
    _check_range("--id-weight", id_weight, 0, 3)
    _check_range("--id-start", id_start, 0, 1)
    if steps < 1 or num_images < 1:
        raise KlintError("--steps and --num-images must be >= 1")
    if width < 64 or height < 64 or width % 16 or height % 16:
        raise KlintError(f"--width/--height must be multiples of 16 and >= 64, got {width}x{height}")
    if do_eval and not ref_paths:
        raise KlintError("--eval needs at least one --ref IMAGE to compare with")
    if out.exists() and not out.is_dir():
        raise KlintError(f"{out}: exists and is not a folder")
    job = InferJob(prompt=prompt, model=model, out=out, mode=mode, refs=ref_paths, lora=lora, lora_scale=lora_scale,
                   id_weight=id_weight, id_start=id_start, steps=steps, cfg=cfg, seed=seed, width=width,
                   height=height, num_images=num_images, face_model=face_model, eva_weights=eva_weights,
                   pulid_weights=pulid_weights, parsing_weights=parsing_weights, with_reference=with_reference,
                   ref_cache=ref_cache,
                   eval_face_model=(eval_face_model or "dlib") if do_eval else None, device=device)
    return _backend().run(job)


@click.command("eval-id")
@click.argument("images", nargs=-1)
@click.option("--ref", "refs", multiple=True, required=True, metavar="IMG", help="Reference photo(s).")
@click.option("--face-model", default=None, metavar="DIR",
              help="insightface pack folder (default: klint's offline dlib face model); use a model other "
                   "than the one that conditioned the images.")
@click.option("--conditioning-face-model", default=None, metavar="DIR",
              help="The face model that conditioned the images (default: read from klint infer's JSON "
                   "beside them), to warn when it is the evaluating one.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def eval_id_cmd(images, refs, face_model, conditioning_face_model, as_json):
    """Identity of IMAGES against the references (face-embedding distance, or insightface cosine) + detection rate."""
    ref_paths = _existing_files(refs, "reference image")
    paths: list[Path] = []
    for raw in images:
        p = Path(raw)
        if p.is_dir():
            paths.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in _IMAGE_EXT))
        elif p.is_file():
            paths.append(p)
        else:
            raise KlintError(f"{raw}: no such file or directory")
    if not paths:
        raise KlintError("no images to evaluate")
    if face_model is None:
        from curate.analysis.face import score_identity

        res = score_identity(ref_paths, paths)
    else:
        _backend()  # fails early, with the install hint, when the [infer] extra is missing
        from plugins.pulid.backend import conditioning_record, evaluate

        res = evaluate(face_model, ref_paths, paths,
                       conditioning=conditioning_record(conditioning_face_model, paths))
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return 0
    dlib_style = "mean_distance" in res
    for row in res["rows"]:
        if not row["face"]:
            score = "no face"
        elif dlib_style:
            score = f"distance {row['distance']:.4f} ({'same' if row['match'] else 'other'} person)"
        else:
            score = f"{row['similarity']:.4f}"
        click.echo(f"{row['image']}: {score}")
    summary = (f"mean distance {res['mean_distance']}, median {res['median_distance']}; same person "
               f"(< {res['threshold']}) in {res['match_rate']}" if dlib_style else
               f"mean similarity {res['mean_similarity']}, median {res['median_similarity']}")
    click.echo(f"{res['model']}: faces detected in {res['detected']}/{res['images']} "
               f"(rate {res['detection_rate']}); {summary} (misses excluded)")
    return 0
