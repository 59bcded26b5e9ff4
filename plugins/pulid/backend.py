"""The `klein` inference backend: Flux2KleinPipeline (+ LoRA) with PuLID ID tokens, native
references (optionally through the KV-cache pipeline), or nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

import plugins.klein  # noqa: F401  (quiets an irrelevant bitsandbytes import warning)

from curate.errors import KlintError

from .job import MODES, InferJob

MAX_NATIVE_REFS = 4  # BFL documents up to 4 reference images for Klein
TINY_MODELS = ("tiny", "tiny-kv")
TINY_NOTE = ("klint: note: --model {model} is a tiny model with random weights, built for tests: its images are "
             "noise and say nothing about identity or quality")
BASE_CACHE_REFUSAL = (
    "--ref-cache on: this checkpoint is not the KV variant (Flux2KleinKVPipeline), so caching would not be a cache: "
    "the KV pipeline puts the references first, gives them t = 0 modulation and lets them attend only to "
    "themselves, which a base checkpoint was not trained for and which changes the image. Use --ref-cache "
    "auto/off here, or a KV checkpoint")


def _device_dtype(job: InferJob) -> tuple[str, torch.dtype]:
    device = job.device or ("cuda" if torch.cuda.is_available() else "cpu")
    # CAs, EVA and ID tokens follow the device: bf16 on GPU (as PuLID runs them), fp32 on CPU
    return device, (torch.float32 if device == "cpu" else torch.bfloat16)


def load_pipeline(model: str, device: str, dtype: torch.dtype):
    """The trainer's loader (folder, offline hub id, single file, tiny); distilled is fine here."""
    from plugins.klein.loading import load_pipeline as load

    if model == "tiny-kv":  # the tiny random weights driven as the KV variant (tests, benchmarks)
        return _kv_pipeline(load("tiny", dtype=dtype, warn=lambda _msg: None)).to(device)
    return load(model, dtype=dtype, warn=lambda _msg: None).to(device)


def _kv_pipeline(pipe):
    """The same components driven by Flux2KleinKVPipeline: reference K/V computed on step 0 only."""
    from diffusers import Flux2KleinKVPipeline

    if isinstance(pipe, Flux2KleinKVPipeline):
        return pipe
    parts = {k: pipe.components[k] for k in ("scheduler", "vae", "text_encoder", "tokenizer", "transformer")}
    return Flux2KleinKVPipeline(**parts, is_distilled=True)


def _use_ref_cache(job: InferJob, pipe) -> bool:
    from diffusers import Flux2KleinKVPipeline

    is_kv = isinstance(pipe, Flux2KleinKVPipeline)
    if job.ref_cache == "off":
        if is_kv:
            raise KlintError("--ref-cache off: this checkpoint is the KV variant, which always caches references")
        return False
    if job.ref_cache == "on":
        if not is_kv:
            raise KlintError(BASE_CACHE_REFUSAL)
        if job.cfg > 1 and not getattr(pipe.config, "is_distilled", True):
            raise KlintError("--ref-cache on runs without classifier-free guidance; use --cfg 1")
        return True
    return is_kv


def _load_refs(paths: list[Path]) -> list:
    from PIL import Image, ImageOps, UnidentifiedImageError

    out = []
    for p in paths:
        try:
            with Image.open(p) as im:
                out.append(ImageOps.exif_transpose(im).convert("RGB"))
        except (OSError, UnidentifiedImageError) as exc:
            raise KlintError(f"{p}: not a readable image ({exc.__class__.__name__})") from None
    return out


def _pulid_parts(job: InferJob, transformer, device: str, dtype: torch.dtype):
    from .adapter import NO_KLEIN_ADAPTER, build_tiny_adapter, check_recognition, load_adapter
    from .faces import TinyFaceModel, load_face_model
    from .parsing import NO_PARSING_NOTE, build_tiny_parser, load_parser
    from .vision import build_tiny_encoder, load_eva_encoder

    tiny = job.model in TINY_MODELS
    if job.face_model:
        face = load_face_model(job.face_model, gpu=device.startswith("cuda"))
    elif tiny:
        face = TinyFaceModel()
    else:
        raise KlintError("--mode pulid needs --face-model DIR (an unpacked insightface antelopev2 or buffalo_l "
                         "folder: scrfd_10g_bnkps.onnx + glintr100.onnx, or det_10g.onnx + w600k_r50.onnx)")
    if job.eva_weights:
        eva = load_eva_encoder(job.eva_weights, device=device, dtype=dtype)
    elif tiny:
        eva = build_tiny_encoder().to(device, dtype)
    else:
        raise KlintError("--mode pulid needs --eva-weights FILE (open_clip EVA02-L-14-336 checkpoint)")
    if job.pulid_weights:
        adapter = load_adapter(job.pulid_weights, transformer)
    elif tiny:
        adapter = build_tiny_adapter(transformer, id_dim=face.embedding_dim + eva.pooled_dim, vit_dim=eva.width)
        adapter.source = "tiny random adapter (tests only)"
    else:
        raise KlintError(NO_KLEIN_ADAPTER)
    if adapter.id_dim != face.embedding_dim + eva.pooled_dim:
        raise KlintError(f"adapter expects {adapter.id_dim}-d ID input; face model gives {face.embedding_dim} "
                         f"and EVA gives {eva.pooled_dim}")
    check_recognition(adapter, face.recognition)
    if job.parsing_weights:
        parser = load_parser(job.parsing_weights).to(device)
    elif tiny:
        parser = build_tiny_parser()
    else:
        parser = None
        print(f"klint: warning: {NO_PARSING_NOTE}", file=sys.stderr)
    return face, eva, adapter.to(device, dtype), parser


def _parsing_label(job: InferJob, parser) -> str:
    if parser is None:
        return "none: whole aligned crop in grey (not PuLID's input)"
    return str(job.parsing_weights) if job.parsing_weights else "tiny random BiSeNet"


def generate(job: InferJob, pipe=None, *, output_type: str = "pil") -> tuple[list[Any], dict[str, Any]]:
    """Run one job in-process. Returns (images, info); `pipe` may be passed to reuse a loaded one."""
    if job.mode not in MODES:
        raise KlintError(f"--mode must be one of {', '.join(MODES)}")
    if job.mode in ("pulid", "reference") and not job.refs:
        raise KlintError(f"--mode {job.mode} needs at least one --ref IMAGE")
    device, dtype = _device_dtype(job)
    if pipe is None:
        pipe = load_pipeline(job.model, device, dtype)
    info: dict[str, Any] = {"mode": job.mode, "model": job.model, "device": device, "seed": job.seed}
    if job.model in TINY_MODELS:
        print(TINY_NOTE.format(model=job.model), file=sys.stderr)
        info["random_weights"] = True
    if job.refs:
        info["references"] = reference_records(job.refs)
    if job.lora:
        try:
            pipe.load_lora_weights(str(job.lora), adapter_name="klint")
        except (OSError, ValueError, KeyError) as exc:
            raise KlintError(f"{job.lora}: cannot load LoRA ({str(exc).splitlines()[0][:160]})") from None
        pipe.set_adapters(["klint"], adapter_weights=[job.lora_scale])
        info["lora"] = str(job.lora)
    native = job.mode == "reference" or (job.mode == "pulid" and job.with_reference)
    refs = _load_refs(job.refs) if native else None
    if refs and len(refs) > MAX_NATIVE_REFS:
        print(f"klint: warning: {len(refs)} native references; Klein is documented for up to {MAX_NATIVE_REFS}",
              file=sys.stderr)
    runner = pipe
    if native and _use_ref_cache(job, pipe):
        runner = _kv_pipeline(pipe)
        info["ref_cache"] = True
    from diffusers import Flux2KleinKVPipeline

    # the KV pipeline takes no guidance and calls the transformer once per step
    base_runner = not isinstance(runner, Flux2KleinKVPipeline)
    kwargs: dict[str, Any] = dict(prompt=job.prompt, image=refs, height=job.height, width=job.width,
                                  num_inference_steps=job.steps, num_images_per_prompt=job.num_images,
                                  generator=torch.Generator(device="cpu").manual_seed(job.seed),
                                  output_type=output_type)
    if base_runner:
        kwargs["guidance_scale"] = job.cfg
    try:
        if job.mode == "pulid":
            from .adapter import encode_references
            from .hooks import IDInjector

            face, eva, adapter, parser = _pulid_parts(job, pipe.transformer, device, dtype)
            id_cond, vit = encode_references(face, eva, list(job.refs), device=device, dtype=dtype, parser=parser)
            cond, uncond = adapter.id_tokens(id_cond, vit)
            # the base pipeline calls the transformer twice per step under CFG: cond, then uncond
            cfg_on = base_runner and job.cfg > 1 and not getattr(pipe.config, "is_distilled", False)
            with IDInjector(pipe.transformer, adapter.pulid_ca, cond, uncond, weight=job.id_weight,
                            start=job.id_start, num_steps=job.steps, cfg=cfg_on) as inj:
                images = runner(**kwargs).images
            info.update(adapter=adapter.source, face_model=face.name, face_recognition=face.recognition,
                        face_parsing=_parsing_label(job, parser), id_weight=job.id_weight,
                        id_start=job.id_start, id_injections=len(inj.fired))
        else:
            images = runner(**kwargs).images
    except ValueError as exc:  # diffusers validates sizes and reference images with ValueError
        raise KlintError(f"pipeline rejected the inputs: {str(exc).splitlines()[0][:200]}") from None
    finally:
        if job.lora:
            pipe.delete_adapters("klint")
    return list(images), info


def _unique(path: Path) -> Path:
    n = 1
    out = path
    while out.exists():  # never overwrite an earlier result
        out = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return out


class KleinInference:
    name = "klein"

    def run(self, job: InferJob) -> int:
        images, info = generate(job)
        job.out.mkdir(parents=True, exist_ok=True)
        saved = []
        for i, im in enumerate(images):
            p = _unique(job.out / f"{job.mode}_s{job.seed}_{i:02d}.png")
            im.save(p)
            saved.append(p)
            print(p)
        info["images"] = [str(p) for p in saved]
        if job.eval_face_model:
            info["eval"] = evaluate(job.eval_face_model, job.refs, saved, conditioning=info.get("face_recognition"))
            ev = info["eval"]
            if "mean_distance" in ev:
                print(f"identity: {ev['model']} detection {ev['detected']}/{ev['images']}, "
                      f"mean distance {ev['mean_distance']}, same person in {ev['match_rate']}")
            else:
                print(f"identity: {ev['model']} detection {ev['detected']}/{ev['images']}, "
                      f"mean similarity {ev['mean_similarity']}, median {ev['median_similarity']}")
        meta = _unique(job.out / f"{job.mode}_s{job.seed}.json")
        meta.write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
        return 0


def reference_records(refs: list[Path]) -> list[dict[str, str]]:
    """Which reference images a run used: path and content hash (a renamed or edited file shows)."""
    from .faces import file_sha256

    return [{"path": str(p), "sha256": file_sha256(p)} for p in refs]


def evaluate(face_model: str | None, refs: list[Path], images: list[Path], *,
             conditioning: dict[str, Any] | None = None) -> dict:
    """`conditioning`: the recognition-model record ({"file", "sha256"}) that conditioned the images.

    `face_model` None or "dlib": klint's offline dlib model, by construction not the insightface
    model that conditioned PuLID."""
    if face_model in (None, "dlib"):
        from curate.analysis.face import score_identity

        return score_identity(list(refs), list(images))
    from .faces import SAME_MODEL_WARNING, identity_scores, load_face_model, same_recognition_model

    model = load_face_model(face_model)
    rec = getattr(model, "recognition", None)
    if same_recognition_model(conditioning, rec):
        print(SAME_MODEL_WARNING.format(file=rec["file"]), file=sys.stderr)
    out = identity_scores(model, list(refs), list(images))
    out["recognition"] = rec
    return out


_RECORD_MAX_BYTES = 1 << 20
_RECORD_MAX_FILES = 200


def conditioning_record(face_model: str | None, images: list[Path]) -> dict[str, Any] | None:
    """The recognition model that conditioned `images`: from `face_model` when given, else from the
    `klint infer` JSON written beside them (its `face_recognition`, for a JSON that lists the image)."""
    if face_model:
        from .faces import load_face_model

        return getattr(load_face_model(face_model), "recognition", None)
    wanted: dict[Path, set[str]] = {}
    for p in images:
        wanted.setdefault(p.parent, set()).add(p.name)
    for folder, names in wanted.items():
        jsons = sorted(q for q in folder.glob("*.json") if q.is_file() and not q.is_symlink())
        for q in jsons[:_RECORD_MAX_FILES]:
            try:
                if q.stat().st_size > _RECORD_MAX_BYTES:
                    continue
                data = json.loads(q.read_text(encoding="utf-8"))
            except (OSError, ValueError, UnicodeDecodeError):
                continue
            if not isinstance(data, dict) or not isinstance(data.get("face_recognition"), dict):
                continue
            listed = data.get("images")
            if isinstance(listed, list) and names & {Path(str(x)).name for x in listed}:
                rec = data["face_recognition"]
                return {"file": str(rec.get("file")), "sha256": rec.get("sha256")}
    return None
