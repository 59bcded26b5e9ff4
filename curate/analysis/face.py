"""The "face" analysis: the subject's face, its identity embedding, size, sharpness and yaw.

dlib (from the `dlib-bin` wheel) with the model files of `face-recognition-models` is the
default back-end: HOG face detector, the 5-point landmark predictor (the 68-point one's
training data excludes commercial use) and the ResNet descriptor (128-d, Euclidean distance,
same person below about 0.6). Nothing downloads; dlib is imported only on a cache miss.

Per image (JSON-able, cached by file content + back-end identity):
  faces      every face found in the scanned region: box [x0,y0,x1,y1], 5 landmarks, score
  subject    the subject's face (matched to the pose subject's head) or None, with
             box, landmarks, score, height_native_px, sharpness, exposure, yaw, yaw_offset,
             embedding (128 floats; insightface's size when `face-model` is set), embedder
  reason     why there is no subject face: turned away, covered, too small, cut by the frame,
             not detected
  scan       "head" (crop around the pose head box) or "full" (pose found nobody)

Public API for other commands (eval, infer --eval): `embed_images(paths)`, `distance(a, b)`,
`default_threshold(embedder)`.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Sequence

from curate.analysis.base import Analysis
from curate.errors import KlintError

MODEL_PACKAGE = "face_recognition_models"
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
INSTALL_HINT = "pip install dlib-bin face-recognition-models"
DLIB_EMBEDDER = "dlib-resnet-v1"
# Same-person threshold on the Euclidean distance between descriptors. dlib's convention is
# 0.6; on the shared identity photos (benchmarks/face_identity.py) no same-person pair reached
# 0.53 while 3 of 827 different-person pairs fell under 0.6 and 2 under 0.55.
DLIB_THRESHOLD = 0.55
# insightface embeddings are compared L2-normalised: cosine 0.3 <=> distance sqrt(2 - 0.6)
INSIGHTFACE_THRESHOLD = round(math.sqrt(2 - 2 * 0.3), 3)

HEAD_TARGET_PX = 170  # head crops are resized so the head is about this high (HOG needs >= 80 px)
FULL_SCAN_PX = 1024  # long side for the whole-image scan when pose finds nobody
MIN_HEAD_NATIVE_PX = 20  # below this, a head has too few pixels for any detector
SHARP_CHIP = 64  # sharpness is measured on an aligned chip of this size...
MIN_SHARP_NATIVE_PX = 56  # ...only when the face has at least this many real pixels
CHIP_PX = 96  # the face chip the report shows (aligned, cached as nothing: rebuilt on demand)
VISIBLE = 0.5

_memo: dict[str, Any] = {}


# ---- model files and settings ---------------------------------------------------------------

def dlib_model_dir() -> Path | None:
    """face-recognition-models' `models/` folder, found without importing the package
    (its __init__ imports pkg_resources, which is slow and deprecated)."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / "models"
        if (cand / SHAPE_FILE).is_file() and (cand / DESCRIPTOR_FILE).is_file():
            return cand
    return None


def backend_problem() -> str | None:
    """Why the default back-end cannot run here (with where to get it), or None."""
    if dlib_model_dir() is None:
        return f"face model files missing (the face-recognition-models package): {INSTALL_HINT}"
    try:
        if importlib.util.find_spec("dlib") is None:
            return f"dlib is not installed: {INSTALL_HINT}"
    except (ImportError, ValueError):
        return f"dlib is not installed: {INSTALL_HINT}"
    return None


RULE_KEYS = ("dataset.identity-outlier", "KL701")


def face_model_setting(config) -> str | None:
    """The user's insightface pack folder, if any: the one place `face-model` is read.

    Accepted as a top-level `face-model` key or (older configs) as an option of
    dataset.identity-outlier; relative paths are relative to the klint.toml that holds them.
    """
    value = None
    for key in RULE_KEYS:
        value = (getattr(config, "rule_options", {}).get(key) or {}).get("face-model")
        if value:
            break
    else:
        value = getattr(config, "extra", {}).get("face-model")
    if not value:
        return None
    p = Path(str(value)).expanduser()
    if not p.is_absolute() and getattr(config, "source", None) is not None:
        p = Path(config.source).parent / p
    return str(p)


def embedder_name(face_model: str | None) -> str:
    return DLIB_EMBEDDER if not face_model else f"insightface:{Path(face_model).name}"


def default_threshold(embedder: str) -> float:
    return DLIB_THRESHOLD if embedder == DLIB_EMBEDDER else INSIGHTFACE_THRESHOLD


def distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance between two embeddings of one embedder (smaller = more alike).

    dlib descriptors are compared raw (their training made this the metric); insightface ones
    arrive L2-normalised from this module, so the same formula applies to both.
    """
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)))


# ---- dlib back-end --------------------------------------------------------------------------

def _dlib():
    if "dlib" not in _memo:
        problem = backend_problem()
        if problem:
            raise KlintError(problem)
        import dlib

        d = dlib_model_dir()
        _memo["dlib"] = (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(str(d / SHAPE_FILE)),
                         dlib.face_recognition_model_v1(str(d / DESCRIPTOR_FILE)))
    return _memo["dlib"]


def _insightface(face_model: str):
    key = f"if:{face_model}"
    if key not in _memo:
        from plugins.pulid.faces import load_face_model

        _memo[key] = load_face_model(face_model)
    return _memo[key]


def check_face_model(face_model: str | None) -> None:
    """A wrong `face-model` path is one clear error, before any image is read."""
    if face_model and str(face_model) != "tiny":
        from plugins.pulid.faces import resolve_model_dir

        resolve_model_dir(face_model)


# ---- image loading ---------------------------------------------------------------------------

def _open_rgb(path: Path, region: tuple[float, float, float, float] | None, scale: float):
    """Upright RGB uint8 array of `region` (full-size pixel coords, None = whole image) scaled
    by about `scale`, plus the exact (sx, sy) from the array back to full-size pixels."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        w0, h0 = im.size
        orient = im.getexif().get(0x0112, 1)
        full_w, full_h = (h0, w0) if orient in (5, 6, 7, 8) else (w0, h0)
        if im.format == "JPEG" and scale < 0.5 and orient == 1:
            # DCT-domain downscale: a 12-MP photo decodes at 1/2..1/8 cost
            im.draft("RGB", (max(1, int(w0 * scale * 1.01)), max(1, int(h0 * scale * 1.01))))
        im = ImageOps.exif_transpose(im) if orient != 1 else im
        im = im.convert("RGB")
        dw, dh = im.size
        fx, fy = dw / full_w, dh / full_h
        if region is None:
            region = (0, 0, full_w, full_h)
        x0, y0, x1, y1 = (max(0, int(region[0] * fx)), max(0, int(region[1] * fy)),
                          min(dw, int(math.ceil(region[2] * fx))), min(dh, int(math.ceil(region[3] * fy))))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        im = im.crop((x0, y0, x1, y1))
        # the remaining factor after draft's power-of-two step
        rest = scale / fx
        if abs(rest - 1) > 0.05:
            im = im.resize((max(1, round(im.width * rest)), max(1, round(im.height * rest))),
                           Image.BILINEAR if rest > 1 else Image.BOX)
        arr = np.ascontiguousarray(np.asarray(im))
    sx, sy = (x1 - x0) / fx / arr.shape[1], (y1 - y0) / fy / arr.shape[0]
    return arr, (x0 / fx, y0 / fy), (sx, sy), (full_w, full_h)


# ---- pose subject's head ---------------------------------------------------------------------

def head_region(pose: dict[str, Any] | None) -> tuple[tuple[float, float], float, dict[str, Any]] | None:
    """(head centre, head height) of the pose subject in full-size pixels, or None."""
    from curate.analysis.framing import LEAR, LEYE, LSH, NOSE, REAR, REYE, RSH, describe

    if not pose:
        return None
    rec = describe(pose)
    kp, H = rec.get("keypoints"), rec.get("head_height_px")
    if not kp or not H:
        return None
    pts = [kp[i] for i in (NOSE, LEYE, REYE, LEAR, REAR) if kp[i][2] >= 0.3]
    if pts:
        cx = sum(p[0] for p in pts) / len(pts)
        cy = sum(p[1] for p in pts) / len(pts) + 0.1 * H
    else:
        sh = [kp[i] for i in (LSH, RSH) if kp[i][2] >= VISIBLE]
        if not sh:
            return None
        cx = sum(p[0] for p in sh) / len(sh)
        cy = sum(p[1] for p in sh) / len(sh) - 1.0 * H
    return (cx, cy), float(H), rec


# ---- measurements ----------------------------------------------------------------------------

def yaw_of(landmarks: Sequence[Sequence[float]], detector_index: int | None = None) -> tuple[str, float]:
    """Yaw class from where the nose sits between the eyes (0 = centred, 0.5 = over one eye).

    Frontal faces put the nose within about a tenth of the eye distance from the eye midpoint;
    by three-quarter view it sits over the inner corner of the far eye. dlib's side-view HOG
    filters (index 1, 2) fire on faces turned further than the landmarks alone suggest.
    """
    (ax, ay), (bx, by) = _mid(landmarks[0], landmarks[1]), _mid(landmarks[2], landmarks[3])
    nx, ny = landmarks[4]
    ex, ey = bx - ax, by - ay
    d = math.hypot(ex, ey) or 1.0
    mx, my = (ax + bx) / 2, (ay + by) / 2
    offset = ((nx - mx) * ex + (ny - my) * ey) / (d * d)
    a = abs(offset)
    cls = "frontal" if a < 0.09 else "three-quarter" if a < 0.3 else "profile"
    if detector_index in (1, 2) and cls == "frontal":
        cls = "three-quarter"
    return cls, round(offset, 3)


def _mid(p, q):
    return ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)


def _norm(grey):
    import numpy as np

    g = grey.astype(np.float32)
    return (g - g.mean()) / (g.std() + 4.0)


def _rms(a) -> float:
    import numpy as np

    a = a[2:-2, 2:-2]  # chip borders carry resampling edges
    return float(np.sqrt(np.mean(a * a)))


def chip_sharpness(chip64) -> float:
    """Contrast-normalised Laplacian energy of a grey 64 px face chip aligned by its landmarks.

    Every face has the same geometry on the chip, so the score does not depend on the photo's
    size; normalising by the chip's own contrast makes dim and bright faces comparable.
    """
    import cv2

    return _rms(cv2.Laplacian(_norm(chip64), cv2.CV_32F, ksize=3))


def chip_direction_ratio(chip64) -> float:
    """Weakest / strongest second-difference energy over four directions on the aligned chip.

    The image-QA motion measure (KL112's), applied to the face alone: a head that moved smears
    the face along one direction, which flattens detail along the streak but not across it, so
    the ratio falls while the Laplacian energy (mostly from the edges across) can stay high.
    """
    from curate.analysis.image import _sharpness

    return float(_sharpness(chip64.astype("float32"))["direction_ratio"])


def _exposure(grey) -> dict[str, float]:
    import numpy as np

    g = grey.astype(np.float32) / 255.0
    return {"mean": round(float(g.mean()), 3), "dark": round(float((g < 0.06).mean()), 3),
            "bright": round(float((g > 0.97).mean()), 3)}


def _detect(arr, upsample: int):
    dlib, det, sp, _ = _dlib()
    rects, scores, idx = det.run(arr, upsample, 0.0)
    found = []
    for r, s, i in zip(rects, scores, idx):
        shape = sp(arr, r)
        found.append((r, float(s), int(i), shape))
    return found


def _pose_reason(rec: dict[str, Any], H_native: float, region, full) -> str:
    if H_native < MIN_HEAD_NATIVE_PX:
        return "too small"
    if rec.get("face_visible") is False and rec.get("face_reason"):
        return rec["face_reason"]
    (cx, cy), H = region
    w, h = full
    if cx - 0.5 * H < -0.1 * H or cx + 0.5 * H > w + 0.1 * H or cy - 0.6 * H < -0.1 * H or cy + 0.6 * H > h + 0.1 * H:
        return "cut by the frame"
    kp = rec.get("keypoints") or []
    if kp and all(kp[i][2] < VISIBLE for i in (0, 1, 2)) and any(kp[i][2] >= VISIBLE for i in (3, 4)):
        return "turned away"
    return "not detected"


def analyse_image(path: Path, pose: dict[str, Any] | None, face_model: str | None = None) -> dict[str, Any] | None:
    """One image's face record (see the module docstring); None when it cannot be decoded."""
    import numpy as np

    dlib, _, _, rec_model = _dlib()
    head = head_region(pose)
    try:
        if head is not None:
            (cx, cy), H, prec = head
            if H < MIN_HEAD_NATIVE_PX:
                return {"faces": [], "subject": None, "reason": "too small", "scan": "head"}
            scale = min(4.0, HEAD_TARGET_PX / H)
            region = (cx - 1.1 * H, cy - 1.0 * H, cx + 1.1 * H, cy + 1.0 * H)
            loaded = _open_rgb(path, region, scale)
            upsample = 0
            scan = "head"
        else:
            with _image_size(path) as full:
                long_side = max(full)
            scale = min(1.0, FULL_SCAN_PX / long_side)
            loaded = _open_rgb(path, None, scale)
            upsample = 1 if long_side * scale < 700 else 0
            scan, prec = "full", None
    except Exception:  # noqa: BLE001 - any undecodable file (PIL and its plugins raise many kinds)
        return None
    if loaded is None:
        return {"faces": [], "subject": None, "reason": "cut by the frame", "scan": scan}
    arr, (ox, oy), (sx, sy), full = loaded
    found = _detect(arr, upsample)
    to_full = lambda x, y: (round(ox + x * sx, 1), round(oy + y * sy, 1))  # noqa: E731
    faces = []
    for r, s, i, shape in found:
        x0, y0 = to_full(r.left(), r.top())
        x1, y1 = to_full(r.right(), r.bottom())
        lm = [list(to_full(p.x, p.y)) for p in shape.parts()]
        faces.append({"box": [x0, y0, x1, y1], "landmarks": lm, "score": round(s, 3), "view": i})
    out: dict[str, Any] = {"faces": faces, "subject": None, "reason": None, "scan": scan}
    if not faces and face_model:
        # the stronger model the user chose may find what HOG missed; it then supplies the box too
        alt = _insightface_subject(path, head, face_model)
        if alt is not None:
            out.update(faces=[{k: alt[k] for k in ("box", "landmarks", "score")}], subject=alt)
            return out
    if not faces:
        out["reason"] = (_pose_reason(prec, head[1], (head[0], head[1]), full) if head is not None
                         else "not detected")
        return out
    if head is not None:
        (cx, cy), H = head[0], head[1]
        k = min(range(len(faces)), key=lambda j: math.hypot((faces[j]["box"][0] + faces[j]["box"][2]) / 2 - cx,
                                                             (faces[j]["box"][1] + faces[j]["box"][3]) / 2 - cy))
    else:
        k = max(range(len(faces)), key=lambda j: (faces[j]["box"][2] - faces[j]["box"][0]) * faces[j]["score"])
    f = faces[k]
    shape = found[k][3]
    native_h = (f["box"][3] - f["box"][1])
    real_px = min(native_h, found[k][0].bottom() - found[k][0].top())
    to_grey = lambda c: np.asarray(c).astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # noqa: E731
    grey = to_grey(dlib.get_face_chip(arr, shape, size=SHARP_CHIP, padding=0.0))

    measurable = real_px >= MIN_SHARP_NATIVE_PX
    yaw, offset = yaw_of(f["landmarks"], f["view"])
    subject = {
        "box": f["box"], "landmarks": f["landmarks"], "score": f["score"],
        "height_native_px": round(native_h, 1),
        # an upscaled small face looks blurred; its sharpness is not measured, KL303 speaks for it
        "sharpness": round(chip_sharpness(grey), 4) if measurable else None,
        "direction_ratio": chip_direction_ratio(grey) if measurable else None,
        "exposure": _exposure(grey),
        "yaw": yaw, "yaw_offset": offset,
    }
    if face_model:
        subject["embedding"], subject["embedder"] = _insightface_embedding(path, f["box"], face_model)
    else:
        desc = rec_model.compute_face_descriptor(arr, shape)
        subject["embedding"], subject["embedder"] = [round(float(v), 5) for v in desc], DLIB_EMBEDDER
    out["subject"] = subject
    return out


class _image_size:
    """Context manager yielding an image's upright (width, height) without decoding it."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        from PIL import Image

        self._im = Image.open(self.path)
        w, h = self._im.size
        return (h, w) if self._im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)

    def __exit__(self, *exc):
        self._im.close()


def _insightface_embedding(path: Path, box: Sequence[float], face_model: str):
    """The insightface embedding (L2-normalised) of the face overlapping dlib's box best."""
    import numpy as np

    from plugins.pulid.faces import load_image_bgr

    model = _insightface(face_model)
    faces = model.faces(load_image_bgr(path))

    def overlap(fb) -> float:
        ix = max(0.0, min(fb[2], box[2]) - max(fb[0], box[0]))
        iy = max(0.0, min(fb[3], box[3]) - max(fb[1], box[1]))
        return ix * iy

    best = max(faces, key=lambda fr: overlap(fr.bbox), default=None)
    if best is None or overlap(best.bbox) <= 0:
        return None, model.name
    return [round(float(v), 5) for v in np.asarray(best.normed)], model.name


def _insightface_subject(path: Path, head, face_model: str) -> dict[str, Any] | None:
    from plugins.pulid.faces import load_image_bgr

    model = _insightface(face_model)
    found = model.faces(load_image_bgr(path))
    if not found:
        return None
    if head is not None:
        (cx, cy) = head[0]
        f = min(found, key=lambda fr: math.hypot((fr.bbox[0] + fr.bbox[2]) / 2 - cx, (fr.bbox[1] + fr.bbox[3]) / 2 - cy))
    else:
        f = max(found, key=lambda fr: fr.area)
    box = [round(float(c), 1) for c in f.bbox]
    return {"box": box, "landmarks": None if f.kps is None else [[round(float(x), 1), round(float(y), 1)] for x, y in f.kps],
            "score": round(float(f.score), 3), "height_native_px": round(box[3] - box[1], 1), "sharpness": None,
            "exposure": None, "yaw": None, "yaw_offset": None,
            "embedding": [round(float(v), 5) for v in f.normed], "embedder": model.name}


# ---- cached records --------------------------------------------------------------------------

def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _opt_num(v) -> bool:
    return v is None or _num(v)


def _box(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(map(_num, v))


def _points(v) -> bool:
    return v is None or (isinstance(v, list) and len(v) <= 68
                         and all(isinstance(p, list) and len(p) == 2 and all(map(_num, p)) for p in v))


def valid_record(rec) -> bool:
    """A face record shaped as `analyse_image` writes it. The cache lives inside the dataset, so
    a cached record is untrusted: one that fails this is dropped and recomputed, and no rule,
    framing or report ever indexes a string or compares a list where a number belongs."""
    if not isinstance(rec, dict) or not isinstance(rec.get("faces"), list) or len(rec["faces"]) > 256:
        return False
    if not (rec.get("reason") is None or isinstance(rec["reason"], str)) or not isinstance(rec.get("scan"), str):
        return False
    for f in rec["faces"]:
        if not (isinstance(f, dict) and _box(f.get("box")) and _points(f.get("landmarks")) and _opt_num(f.get("score"))
                and _opt_num(f.get("view"))):
            return False
    s = rec.get("subject")
    if s is None:
        return True
    if not (isinstance(s, dict) and _box(s.get("box")) and _points(s.get("landmarks"))):
        return False
    if not all(_opt_num(s.get(k)) for k in ("score", "height_native_px", "sharpness", "direction_ratio", "yaw_offset")):
        return False
    exp, emb = s.get("exposure"), s.get("embedding")
    if exp is not None and not (isinstance(exp, dict) and all(map(_num, exp.values()))):
        return False
    if emb is not None and not (isinstance(emb, list) and 0 < len(emb) <= 4096 and all(map(_num, emb))):
        return False
    return (s.get("yaw") is None or s.get("yaw") in YAW_CLASSES) and isinstance(s.get("embedder", ""), str)


# ---- the analysis ---------------------------------------------------------------------------

class FaceAnalysis(Analysis):
    name = "face"
    version = "2"
    scope = "image"
    needs = ("pose",)
    label = "Finding faces"

    def fingerprint(self, config) -> str:
        from curate.analysis.pose import PoseAnalysis

        fm = face_model_setting(config)
        return f"{embedder_name(fm)}:{fm or ''}:{PoseAnalysis().fingerprint(config)}"

    def run_batch(self, items, ctx, advance):
        fm = face_model_setting(ctx.config)
        check_face_model(fm)
        if backend_problem() is not None:
            # rules say once where to get the models; nothing is cached, so installing them fixes it
            advance(len(items))
            return [None] * len(items)
        poses = ctx.results.get("pose", {})
        out = []
        for item in items:
            pose = poses.get(item.rel_image)
            # pose could not decode it: unreadable images are the image rules' business
            out.append(None if pose is None else analyse_image(item.image, pose, fm))
            advance(1)
        return out


# ---- embedding API for other commands ------------------------------------------------------

def embed_images(paths: Sequence[str | Path], *, face_model: str | None = None) -> list[list[float] | None]:
    """The largest face's embedding of each image (None where no face is found).

    dlib by default; `face_model` = an insightface pack folder for its embedding instead. Compare
    results with `distance` and judge with `default_threshold(embedder_name(face_model))`; never
    compare embeddings of two embedders.
    """
    check_face_model(face_model)
    out = []
    for p in paths:
        try:
            rec = analyse_image(Path(p), None, face_model)
        except KlintError:
            raise
        except Exception:
            rec = None
        subj = (rec or {}).get("subject")
        out.append(subj.get("embedding") if subj else None)
    return out


def subject_face(ctx, item) -> dict[str, Any] | None:
    """The subject's face record for an item, when the face analysis ran and found one."""
    res = ctx.results.get("face", {}).get(item.rel_image)
    return (res or {}).get("subject") if isinstance(res, dict) else None


def train_scale(resolution: int, width: float, height: float) -> float:
    """Pixels at training size per source pixel: bucketing trainers keep the area near res^2."""
    return resolution / (width * height) ** 0.5



YAW_CLASSES = ("frontal", "three-quarter", "profile")


def yaw_class(ctx, item) -> str | None:
    """The subject's head yaw class: the face's landmarks, or pose's keypoints for a profile the
    frontal-trained detector missed (nose and one eye visible, the other eye hidden)."""
    face = subject_face(ctx, item)
    if face:
        return face.get("yaw")
    fr = ctx.result("framing", item) or {}
    kp = fr.get("keypoints")
    if fr.get("framing") in (None, "none") or not kp or fr.get("face_visible") is False:
        return None
    eyes = sum(kp[i][2] >= VISIBLE for i in (1, 2))
    if kp[0][2] >= VISIBLE and eyes == 1:
        return "profile"
    return None


def score_identity(refs: Sequence[str | Path], images: Sequence[str | Path], *,
                   face_model: str | None = None) -> dict[str, Any]:
    """Identity of `images` against reference photos: per image the mean embedding distance to the
    references and whether it is under the same-person threshold; images with no face are misses
    (they count against the detection rate and stay out of the distance statistics)."""
    import statistics

    embedder = embedder_name(face_model)
    thr = default_threshold(embedder)
    ref_embs = embed_images(refs, face_model=face_model)
    for r, e in zip(refs, ref_embs):
        if e is None:
            raise KlintError(f"{r}: no face detected in the reference image")
    rows = []
    for p, e in zip(images, embed_images(images, face_model=face_model)):
        if e is None:
            rows.append({"image": str(p), "face": False, "distance": None, "match": None})
            continue
        per = [distance(e, r) for r in ref_embs]
        d = sum(per) / len(per)
        rows.append({"image": str(p), "face": True, "distance": round(d, 4), "match": d < thr,
                     "per_reference": [round(x, 4) for x in per]})
    scored = [r["distance"] for r in rows if r["face"]]
    return {"model": embedder, "threshold": thr, "images": len(rows), "detected": len(scored),
            "detection_rate": round(len(scored) / len(rows), 4) if rows else None,
            "mean_distance": round(statistics.mean(scored), 4) if scored else None,
            "median_distance": round(statistics.median(scored), 4) if scored else None,
            "match_rate": round(sum(r["match"] for r in rows if r["face"]) / len(scored), 4) if scored else None,
            "rows": rows}
