"""Face detection + recognition embeddings: insightface from a user-given folder, or a tiny stand-in.

Nothing here downloads: the user points at an unpacked model pack (antelopev2 or buffalo_l).
insightface's models are licensed for non-commercial research only; klint ships none.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import KlintError, MissingDependency

# what a usable folder holds: a detector (>= 5 outputs) and a 112x112 recogniser
PACKS = {
    "antelopev2": ("scrfd_10g_bnkps.onnx", "glintr100.onnx"),
    "buffalo_l": ("det_10g.onnx", "w600k_r50.onnx"),
}


def expected_files_hint() -> str:
    return "; ".join(f"{name}: {', '.join(files)}" for name, files in PACKS.items())


@dataclasses.dataclass
class FaceResult:
    bbox: np.ndarray  # x1, y1, x2, y2 in pixels
    kps: np.ndarray | None  # 5 x 2 landmarks
    score: float
    embedding: np.ndarray  # raw (unnormalised) recognition embedding

    @property
    def area(self) -> float:
        return float(max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1]))

    @property
    def normed(self) -> np.ndarray:
        return self.embedding / (np.linalg.norm(self.embedding) + 1e-12)


def resolve_model_dir(path: str | Path) -> Path:
    """The folder holding the .onnx files; accepts the pack folder or a parent with one nested pack."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise KlintError(f"{path}: face model folder not found (expected an unpacked insightface pack with "
                         f"{expected_files_hint()})")
    if any(root.glob("*.onnx")):
        return root.resolve()
    nested = [d for d in sorted(root.iterdir()) if d.is_dir() and any(d.glob("*.onnx"))]
    if len(nested) == 1:
        return nested[0].resolve()  # the common antelopev2/antelopev2/ unzip layout
    raise KlintError(f"{path}: no .onnx files in the face model folder (expected {expected_files_hint()})")


def load_image_bgr(path: str | Path) -> np.ndarray:
    """An image as a BGR uint8 array, EXIF orientation applied (insightface's convention)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise KlintError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


class InsightFaceModel:
    """insightface `FaceAnalysis` restricted to detection + recognition, from `model_dir`."""

    def __init__(self, model_dir: str | Path, *, det_size: tuple[int, int] = (640, 640), gpu: bool = False):
        try:
            from insightface.app import FaceAnalysis
        except ImportError:
            raise MissingDependency('face analysis needs insightface: pip install -e ".[infer]"') from None
        self.model_dir = resolve_model_dir(model_dir)
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
        try:
            # an absolute existing directory as `name` is loaded as-is (no download, no ~/.insightface)
            app = FaceAnalysis(name=str(self.model_dir), root=str(self.model_dir.parent),
                               allowed_modules=["detection", "recognition"], providers=providers)
        except AssertionError:
            raise KlintError(f"{model_dir}: no face detector found (expected {expected_files_hint()})") from None
        if "recognition" not in app.models:
            raise KlintError(f"{model_dir}: no recognition model found (expected {expected_files_hint()})")
        app.prepare(ctx_id=0 if gpu else -1, det_size=det_size)
        self.app = app
        self.name = f"insightface:{self.model_dir.name}"

    @property
    def embedding_dim(self) -> int:
        shape = self.app.models["recognition"].output_shape
        return int(shape[-1])

    @property
    def recognition(self) -> dict[str, Any]:
        """The recognition model in use: file name and sha256 (the file insightface picked)."""
        if not hasattr(self, "_recognition"):
            f = Path(self.app.models["recognition"].model_file)
            self._recognition = {"file": f.name, "sha256": file_sha256(f)}
        return self._recognition

    def faces(self, bgr: np.ndarray) -> list[FaceResult]:
        out = []
        for f in self.app.get(bgr):
            out.append(FaceResult(bbox=np.asarray(f.bbox, dtype=np.float32),
                                  kps=None if f.kps is None else np.asarray(f.kps, dtype=np.float32),
                                  score=float(f.det_score), embedding=np.asarray(f.embedding, dtype=np.float32)))
        return out

    def largest(self, bgr: np.ndarray) -> FaceResult | None:
        faces = self.faces(bgr)
        return max(faces, key=lambda f: f.area) if faces else None


class TinyFaceModel:
    """A deterministic stand-in for `--model tiny`: one 'face' = the central square, embedded by a
    fixed random projection of its 16x16 grey thumbnail. Exercises the data flow, knows no faces."""

    name = "tiny"
    recognition = {"file": "tiny", "sha256": None}

    def __init__(self, dim: int = 16, seed: int = 0):
        self.embedding_dim = dim
        self._proj = np.random.default_rng(seed).standard_normal((256, dim)).astype(np.float32) / 16

    def largest(self, bgr: np.ndarray) -> FaceResult:
        import cv2

        h, w = bgr.shape[:2]
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        crop = cv2.cvtColor(bgr[y0:y0 + s, x0:x0 + s], cv2.COLOR_BGR2GRAY)
        thumb = cv2.resize(crop, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1
        box = np.array([x0, y0, x0 + s, y0 + s], dtype=np.float32)
        # the five landmarks of a frontal face inside the box (eyes, nose, mouth corners)
        rel = np.array([[0.34, 0.4], [0.66, 0.4], [0.5, 0.56], [0.38, 0.72], [0.62, 0.72]], dtype=np.float32)
        kps = box[:2] + rel * s
        return FaceResult(bbox=box, kps=kps, score=1.0, embedding=thumb.reshape(-1) @ self._proj)

    faces = lambda self, bgr: [self.largest(bgr)]  # noqa: E731


def load_face_model(spec: str | Path, *, gpu: bool = False) -> Any:
    return TinyFaceModel() if str(spec) == "tiny" else InsightFaceModel(spec, gpu=gpu)


def file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- the "same model as conditioning" check (kept apart: eval-id and infer --eval share it) -------

SAME_MODEL_WARNING = ("klint: warning: evaluating with the recognition model that conditioned the images "
                      "({file}) inflates similarity; use a different recognition model")


def same_recognition_model(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two recognition-model records ({"file", "sha256"}) name the same model: by content
    hash when both have one (a renamed copy is still the same model), else by file name."""
    if not a or not b or "tiny" in (a.get("file"), b.get("file")):
        return False
    if a.get("sha256") and b.get("sha256"):
        return a["sha256"] == b["sha256"]
    return bool(a.get("file")) and a.get("file") == b.get("file")


# ---- identity similarity ------------------------------------------------------------------------

def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / ((np.linalg.norm(a) * np.linalg.norm(b)) + 1e-12))


def identity_scores(model: Any, refs: list[Path], images: list[Path]) -> dict[str, Any]:
    """Per image: cosine of its largest face to each reference face, averaged over references.

    Images with no detected face are misses: they count against the detection rate and are
    left out of the similarity statistics (reported separately, never scored as 0).
    """
    ref_emb = []
    for r in refs:
        face = model.largest(load_image_bgr(r))
        if face is None:
            raise KlintError(f"{r}: no face detected in the reference image")
        ref_emb.append(face.embedding)
    rows = []
    for p in images:
        face = model.largest(load_image_bgr(p))
        if face is None:
            rows.append({"image": str(p), "face": False, "similarity": None})
            continue
        sims = [cosine(face.embedding, e) for e in ref_emb]
        rows.append({"image": str(p), "face": True, "similarity": round(float(np.mean(sims)), 4),
                     "per_reference": [round(s, 4) for s in sims]})
    scored = [r["similarity"] for r in rows if r["face"]]
    return {
        "model": model.name,
        "images": len(rows),
        "detected": len(scored),
        "detection_rate": round(len(scored) / len(rows), 4) if rows else None,
        "mean_similarity": round(float(np.mean(scored)), 4) if scored else None,
        "median_similarity": round(float(np.median(scored)), 4) if scored else None,
        "rows": rows,
    }
