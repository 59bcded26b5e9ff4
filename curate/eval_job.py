"""`EvalJob`: what `klint eval` scores, as plain data, plus the scoring that needs no GPU.

The job lists LoRA files (one per checkpoint), strengths, prompts and seeds; the `klein-eval`
inference backend generates every cell's images and calls `score_images` and `summarise`
here, so `klint train --eval-every` and `klint eval` compute the same numbers. No torch here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any, Sequence

from curate.errors import KlintError

PROMPT_SET_VERSION = "1"
# scene-only prompts, trigger first: the LoRA must bring the person, the prompt only the shot
PROMPTS = (
    ("close", "{trigger}, close portrait, soft window light, plain background"),
    ("close", "{trigger}, close portrait, outdoors, evening light"),
    ("half", "{trigger}, half body, sitting at a cafe table"),
    ("half", "{trigger}, half body, standing in a kitchen"),
    ("full", "{trigger}, full body shot, standing in a park"),
    ("full", "{trigger}, full body shot, walking on a city street"),
)
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp"}
MAX_PROMPT_CHARS = 500
MAX_USER_PROMPTS = 64
IDENTITY_THRESHOLD = 0.45  # 1 - face.DLIB_THRESHOLD: the linter's same-person cut, as a similarity
RATIO_TOLERANCE = 1.0  # head heights


@dataclasses.dataclass(frozen=True)
class EvalPrompt:
    framing: str  # close | half | full | user
    text: str


@dataclasses.dataclass(frozen=True)
class EvalJob:
    loras: tuple[tuple[str, Path], ...]  # (checkpoint label, LoRA file)
    model: str
    out: Path
    prompts: tuple[EvalPrompt, ...]
    refs: tuple[Path, ...] = ()
    holdout: tuple[Path, ...] = ()  # held-out photos: the identity reference when given
    ref_heads: tuple[float, ...] = ()  # stature (head heights) of the references' full-body photos
    strengths: tuple[float, ...] = (1.0,)
    seeds: tuple[int, ...] = (0,)
    steps: int = 4
    cfg: float = 1.0
    size: int = 1024
    mode: str = "none"
    identity_threshold: float = IDENTITY_THRESHOLD
    ratio_tolerance: float = RATIO_TOLERANCE  # the cell's median stature vs the dataset's
    device: str | None = None

    @property
    def cells(self) -> list[tuple[str, Path, float]]:
        return [(label, path, s) for label, path in self.loras for s in self.strengths]


def prompt_set(trigger: str, user_file: Path | None = None, framings: Sequence[str] | None = None) -> list[EvalPrompt]:
    """The fixed prompt set (versioned: PROMPT_SET_VERSION) for `trigger`, plus a user file's lines."""
    if not re.fullmatch(r"[\w.\-]{1,64}", trigger or ""):
        raise KlintError(f"trigger word {trigger!r} is not a single token (letters, digits, _ . -)")
    out = [EvalPrompt(f, t.format(trigger=trigger)) for f, t in PROMPTS if not framings or f in framings]
    if user_file is not None:
        try:
            raw = user_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise KlintError(f"{user_file}: cannot read prompts ({exc.strerror})") from None
        lines = [ln.strip() for ln in raw if ln.strip() and not ln.lstrip().startswith("#")]
        if len(lines) > MAX_USER_PROMPTS:
            raise KlintError(f"{user_file}: {len(lines)} prompts; at most {MAX_USER_PROMPTS}")
        for ln in lines:
            if len(ln) > MAX_PROMPT_CHARS:
                raise KlintError(f"{user_file}: a prompt is longer than {MAX_PROMPT_CHARS} characters")
            framing = next((f for f, word in (("full", "full body"), ("half", "half body"), ("close", "portrait"))
                            if word in ln.lower()), "user")
            out.append(EvalPrompt(framing, ln if trigger in ln else f"{trigger}, {ln}"))
    return out


def resolve_loras(inputs: Sequence[str]) -> list[tuple[str, Path]]:
    """Checkpoint label + LoRA file for each input: a file, or a klint training folder (its final
    LoRA and every checkpoint that holds a LoRA file)."""
    out: list[tuple[str, Path]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_file():
            if p.suffix != ".safetensors":
                raise KlintError(f"{raw}: not a .safetensors LoRA file")
            out.append((p.stem, p))
        elif p.is_dir():
            found = []
            for ck in sorted((p / "checkpoints").glob("step-*")):
                lora = ck / "diffusers" / "pytorch_lora_weights.safetensors"
                if lora.is_file() and not lora.is_symlink():
                    found.append((f"{p.name}/{ck.name}", lora))
            final = p / "diffusers" / "pytorch_lora_weights.safetensors"
            if final.is_file() and not final.is_symlink():
                found.append((f"{p.name}/final", final))
            if not found:
                raise KlintError(f"{raw}: no LoRA in this folder (expected a klint training output with "
                                 f"diffusers/pytorch_lora_weights.safetensors)")
            out.extend(found)
        else:
            raise KlintError(f"{raw}: no such LoRA file or training folder")
    return out


def reference_images(inputs: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXT and q.is_file()
                              and not q.is_symlink()))
        elif p.is_file():
            out.append(p)
        else:
            raise KlintError(f"{raw}: no such reference image or folder")
    if not out:
        raise KlintError("no reference images: pass --refs DATASET_OR_IMAGES")
    return out


def parse_floats(text: str, name: str, lo: float, hi: float) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise KlintError(f"{name}: expected comma-separated numbers, got {text!r}") from None
    if not vals or any(not lo <= v <= hi for v in vals):
        raise KlintError(f"{name}: values must be between {lo:g} and {hi:g}")
    return vals


# ---- scoring (CPU: dlib faces, YOLO pose) ------------------------------------------------

def reference_set(refs: Sequence[Path], holdout: Sequence[Path] = ()) -> dict[str, Any]:
    """Embeddings and full-body statures of the reference photos. With held-out photos (never
    trained on), identity compares with those only: a LoRA that memorised its training photos
    must not score itself; stature still comes from the whole reference set."""
    from curate.analysis.face import embed_images
    from curate.analysis.proportions import detect_poses, measure_poses

    emb = [e for e in embed_images(list(holdout or refs)) if e is not None]
    heads = [m["heads"] for m in measure_poses(detect_poses(list(refs))) if m["heads"] is not None]
    return {"embeddings": emb, "heads": heads}


def similarity(embedding: Sequence[float], ref_embeddings: Sequence[Sequence[float]]) -> float | None:
    """Identity of one face against the references: 1 - mean dlib distance (the eval's one measure)."""
    from curate.analysis.face import distance

    if embedding is None or not ref_embeddings:
        return None
    return round(1.0 - sum(distance(embedding, r) for r in ref_embeddings) / len(ref_embeddings), 4)


def score_images(paths: Sequence[Path], ref_embeddings: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """Per image: face found, similarity to the references (1 - mean dlib distance), face height, stature."""
    from curate.analysis.face import analyse_image
    from curate.analysis.proportions import detect_poses, measure_poses

    poses = detect_poses(list(paths))
    statures = measure_poses(poses)
    out = []
    for p, pose, st in zip(paths, poses, statures):
        try:
            rec = analyse_image(Path(p), pose, None)
        except KlintError:
            raise
        except Exception:
            rec = None
        subj = (rec or {}).get("subject")
        emb = subj.get("embedding") if subj else None
        sim = similarity(emb, ref_embeddings)
        out.append({"image": str(p), "face": emb is not None, "similarity": sim,
                    "face_height_px": (subj or {}).get("height_px"), "heads": st["heads"],
                    "heads_reason": st["reason"]})
    return out


def summarise(rows: Sequence[dict[str, Any]], ref_heads: Sequence[float], *, threshold: float,
              tolerance: float) -> dict[str, Any]:
    """One cell's numbers from its image rows (the table, JSON, HTML and metrics.jsonl all use this)."""
    from curate.analysis.framing import _median

    sims = [r["similarity"] for r in rows if r["similarity"] is not None]
    heads = [r["heads"] for r in rows if r["heads"] is not None]
    mean = sum(sims) / len(sims) if sims else None
    spread = (sum((s - mean) ** 2 for s in sims) / len(sims)) ** 0.5 if sims else None
    ref = _median(list(ref_heads)) if ref_heads else None
    med = _median(heads) if heads else None
    delta = None if med is None or ref is None else round(med - ref, 2)
    return {"images": len(rows), "face_rate": round(sum(r["face"] for r in rows) / len(rows), 3) if rows else 0.0,
            "identity_mean": None if mean is None else round(mean, 4),
            "identity_spread": None if spread is None else round(spread, 4),
            "heads_median": None if med is None else round(med, 2), "heads_measured": len(heads),
            "heads_reference": None if ref is None else round(ref, 2), "heads_delta": delta,
            # a threshold of 0 or below gates on proportions only (e.g. a base model with no face yet)
            "identity_ok": threshold <= 0 or (mean is not None and mean >= threshold),
            "proportions_ok": delta is None or abs(delta) <= tolerance}


def best_cell(cells: Sequence[dict[str, Any]]) -> int | None:
    """Index of the best cell: proportions within tolerance first, then identity mean."""
    scored = [(c["proportions_ok"], c["identity_mean"], -i) for i, c in enumerate(cells)
              if c["identity_mean"] is not None]
    if not scored:
        return None
    return -max(scored)[2]


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def training_prompts(trigger: str | None) -> list[EvalPrompt]:
    """The few prompts `klint train --eval-every` uses: one close and one full-body shot."""
    if not trigger:
        return []
    return [p for i, p in enumerate(prompt_set(trigger)) if i in (0, 4)]
