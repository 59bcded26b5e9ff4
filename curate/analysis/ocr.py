"""The "ocr" analysis: burned-in text (watermarks, signatures, date stamps, subtitles) per image.

PP-OCR detection + recognition from the `rapidocr-onnxruntime` wheel (ONNX models shipped in
the wheel, run by onnxruntime; nothing is downloaded). It runs on a cache miss only, like pose:
a warm re-lint imports neither rapidocr nor onnxruntime.

Output per image (JSON-able, cached by file content + model identity): oriented `width`,
`height` and `regions`, each with `box` [x0, y0, x1, y1] in full-size pixels, `text` (may be
"" when recognition could not read it), `conf` (recognition confidence) and `det` (detector
score). Judging what a region *is* (corner watermark, subtitle band, a sign in the scene) is
not cached: it lives in `classify_regions` so rules, inspect and the report share it and a
change to the judgement never re-runs OCR.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from curate.analysis.base import Analysis

# Long side the whole photo is searched at. Text a trainer would learn is at least ~1.5 % of
# the frame high; at 960 px that is ~14 px, inside PP-OCR's comfortable range.
DET_SIDE = 960
# The border bands (where watermarks, signatures and date stamps live) are searched a second
# time at this many px across, so a faint 1 %-high corner signature is still ~13 px high.
BAND_SIDE = 1400
BAND_FRACTION = 0.22  # height (or width) of each band searched again, as a share of the frame
MIN_TEXT_SCORE = 0.5  # recognition confidence below which a string is kept as "" (unread)
MAX_REGIONS = 40  # a tiled watermark gives many; beyond this they add nothing but cache bytes
_MODELS = ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx", "ch_ppocr_mobile_v2.0_cls_infer.onnx")

_engine_memo: dict[str, Any] = {}
_identity_memo: list[str] = []


def models_dir() -> Path | None:
    """The ONNX models inside the rapidocr-onnxruntime wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec("rapidocr_onnxruntime")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        cand = Path(loc) / "models"
        if (cand / _MODELS[0]).is_file():
            return cand
    return None


def model_identity() -> str:
    """Package version + model sizes: a new wheel with other models invalidates the cache."""
    if _identity_memo:
        return _identity_memo[0]
    d = models_dir()
    if d is None:
        ident = "missing"
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            ver = version("rapidocr-onnxruntime")
        except PackageNotFoundError:
            ver = "?"
        sizes = ",".join(str((d / m).stat().st_size) if (d / m).is_file() else "0" for m in _MODELS)
        ident = f"rapidocr-{ver}:" + hashlib.blake2b(sizes.encode(), digest_size=6).hexdigest()
    _identity_memo.append(ident)
    return ident


def _engine():
    if "e" in _engine_memo:
        return _engine_memo["e"]
    from curate.errors import KlintError

    if models_dir() is None:
        raise KlintError("text-overlay detection needs rapidocr-onnxruntime (pip install rapidocr-onnxruntime)")
    import logging

    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:  # pragma: no cover - core dependency
        raise KlintError(f"text-overlay detection needs rapidocr-onnxruntime ({exc})") from None
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    # limit_type "max": never upscale the working image (the default upscales its short side to 736)
    eng = RapidOCR(det_limit_side_len=float(BAND_SIDE), det_limit_type="max", print_verbose=False,
                   intra_op_num_threads=2, inter_op_num_threads=1, text_score=0.0)
    _engine_memo["e"] = eng
    return eng


def _resize(arr, side: int):
    import cv2

    h, w = arr.shape[:2]
    f = side / max(h, w)
    if f >= 1:
        return arr, 1.0
    return cv2.resize(arr, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA), f


def _quad_box(quad) -> list[float]:
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    return [min(xs), min(ys), max(xs), max(ys)]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _overlap_small(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over the smaller box: a band pass often finds a piece of a whole-image region."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / small if small > 0 else 0.0


def _angle(quad) -> float:
    """Slope of the quad's top edge in degrees: overlays are set level, scene text often is not."""
    import math

    (x0, y0), (x1, y1) = quad[0][:2], quad[1][:2]
    return math.degrees(math.atan2(y1 - y0, max(1e-6, x1 - x0)))


def _run(engine, arr, scale: float, ox: float, oy: float) -> list[dict[str, Any]]:
    res, _ = engine(arr, use_cls=True)
    out = []
    for quad, text, conf in res or []:
        x0, y0, x1, y1 = _quad_box(quad)
        box = [round(ox + x0 / scale, 1), round(oy + y0 / scale, 1), round(ox + x1 / scale, 1),
               round(oy + y1 / scale, 1)]
        conf = float(conf)
        out.append({"box": box, "text": str(text).strip() if conf >= MIN_TEXT_SCORE else "",
                    "conf": round(conf, 3), "angle": round(_angle(quad), 1)})
    return out


def ocr_array(bgr, full_w: int, full_h: int) -> list[dict[str, Any]]:
    """Regions in full-size pixels from one decoded (possibly reduced) BGR array."""
    engine = _engine()
    h, w = bgr.shape[:2]
    sx, sy = full_w / w, full_h / h
    whole, f = _resize(bgr, DET_SIDE)
    regions = _run(engine, whole, f, 0.0, 0.0)
    # the border bands once more at a finer scale: small corner signatures and faint stamps
    bands = []
    bh, bw = max(1, round(h * BAND_FRACTION)), max(1, round(w * BAND_FRACTION))
    if h >= w:  # portrait: top and bottom bands cover the corners
        bands = [(0, 0, w, bh), (0, h - bh, w, h)]
    else:
        bands = [(0, 0, bw, h), (w - bw, 0, w, h)] + [(0, 0, w, bh), (0, h - bh, w, h)]
    for x0, y0, x1, y1 in bands:
        crop = bgr[y0:y1, x0:x1]
        small, g = _resize(crop, BAND_SIDE)
        for r in _run(engine, small, g, x0, y0):
            if any(_overlap_small(r["box"], o["box"]) > 0.5 for o in regions):
                continue
            regions.append(r)
    for r in regions:
        b = r["box"]
        r["box"] = [round(b[0] * sx, 1), round(b[1] * sy, 1), round(b[2] * sx, 1), round(b[3] * sy, 1)]
    regions.sort(key=lambda r: (r["box"][1], r["box"][0]))
    return regions[:MAX_REGIONS]


class OcrAnalysis(Analysis):
    name = "ocr"
    version = "1"
    scope = "image"
    label = "Looking for text overlays"

    def fingerprint(self, config) -> str:
        return f"{model_identity()}:{DET_SIDE}:{BAND_SIDE}:{BAND_FRACTION}"

    def run_batch(self, items, ctx, advance):
        from curate.analysis.pose import load_for_detection

        out: list[dict[str, Any] | None] = []
        for item in items:
            loaded = load_for_detection(item.image, target=BAND_SIDE)
            if loaded is None:
                out.append(None)
            else:
                arr, _, full_w, full_h = loaded
                out.append({"width": full_w, "height": full_h, "regions": ocr_array(arr, full_w, full_h)})
            advance(1)
        return out


# --------------------------------------------------------------------------- judgement
# Words and patterns that mark an overlay someone put on the photo. Stock agencies, copyright
# marks, URLs and handles are never part of a scene worth training on: an error wherever they are.
_STOCK_WORDS = (
    "shutterstock", "gettyimages", "getty images", "istock", "istockphoto", "alamy", "dreamstime", "depositphotos",
    "123rf", "adobe stock", "adobestock", "bigstock", "fotolia", "pond5", "stock photo", "stockphoto", "canstock",
    "vectorstock", "freepik", "envato", "unsplash", "watermark", "copyright", "all rights reserved", "photo by",
    "photo:", "foto:",
)
_STRONG_RE = re.compile(
    r"(©|\(c\)\s*\d|®|https?:|www\.|\w\.(?:com|net|org|co|io|ru|cn|jp|de|uk|fr|it)\b|(?:^|\s)@\w{3}|"
    + "|".join(re.escape(w) for w in _STOCK_WORDS) + r")", re.IGNORECASE)
# Platform and studio words are overlays only where overlays sit (a corner or border band): in
# the middle of the picture "facebook" is a screen behind a speaker, "studio" a shop sign.
_EDGE_WORDS = ("facebook", "instagram", "tiktok", "twitter", "weibo", "pinterest", "onlyfans", "patreon", "reddit",
               "youtube", "xiaohongshu", "小红书", "百科", "baidu", "douyin", "抖音", "微博", "studio", "photography",
               "photographer", "sample", "preview", "proof", "imgflip")
_EDGE_RE = re.compile("|".join(re.escape(w) for w in _EDGE_WORDS), re.IGNORECASE)
# camera date stamps and timestamps: 12/08/2016, 2016-08-12, '16 8 12, 12.08.16, 14:32
_DATE_RE = re.compile(
    r"(\b\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{2}|\d{4})\b|\b(?:19|20)\d{2}[/.\-]\d{1,2}[/.\-]\d{1,2}\b|"
    r"'\d{2}\s+\d{1,2}\s+\d{1,2}\b|\b\d{1,2}:\d{2}(?::\d{2})?\b)")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
CORNER_X, CORNER_Y = 0.25, 0.22  # a corner zone: the outer quarter across, the outer ~fifth down
BAND = 0.16  # a border band: the outer 16 % of the frame on a side
LEVEL_DEGREES = 5.0  # overlays are set level; text tilted more than this belongs to a surface in the scene
EDGE_TOUCH = 0.004  # text this close to the frame's edge runs out of the frame: a sign, not a stamp
MAX_OVERLAY_HEIGHT = 0.08  # taller plain text in a border band is a sign or a backdrop, not a watermark


@dataclass(frozen=True)
class Region:
    box: tuple[float, float, float, float]
    text: str
    conf: float
    where: str  # "top-left corner" | "bottom band" | "left band" | "centre" ...
    zone: str  # corner | band | centre
    kind: str  # watermark | date-stamp | subtitle | overlay | tiled | scene | clothing
    severity: str  # error | warning | info
    area: float  # share of the frame

    def to_json(self) -> dict[str, Any]:
        return {"box": [round(c, 1) for c in self.box], "text": self.text, "conf": round(self.conf, 3),
                "where": self.where, "zone": self.zone, "kind": self.kind, "severity": self.severity,
                "area": round(self.area, 5)}


def normalise_text(text: str) -> str:
    """Lower-case letters and digits (any script) only: OCR of one mark differs in spaces and punctuation."""
    return re.sub(r"[\W_]+", "", text.lower())


def _meaningful(text: str) -> bool:
    """Enough characters to be words: single glyphs and pairs are mostly texture read as letters."""
    key = normalise_text(text)
    return len(key) >= 3 or (len(key) >= 2 and bool(_CJK_RE.search(key)))


def locate(box: Sequence[float], w: float, h: float) -> tuple[str, str]:
    """(zone, human place) of a box in a w x h frame, judged by where its centre sits."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
    left, right = cx <= CORNER_X + 0.05, cx >= 1 - CORNER_X - 0.05
    top, bottom = cy <= CORNER_Y and y1 <= 0.3 * h, cy >= 1 - CORNER_Y and y0 >= 0.7 * h
    if (left or right) and (top or bottom):
        return "corner", f"{'top' if top else 'bottom'}-{'left' if left else 'right'} corner"
    if cy >= 1 - BAND:
        return "band", "bottom band"
    if cy <= BAND:
        return "band", "top band"
    if cx <= BAND:
        return "band", "left band"
    if cx >= 1 - BAND:
        return "band", "right band"
    return "centre", "centre"


def _inside(box: Sequence[float], outer: Sequence[float] | None, need: float = 0.7) -> bool:
    if not outer:
        return False
    ix = max(0.0, min(box[2], outer[2]) - max(box[0], outer[0]))
    iy = max(0.0, min(box[3], outer[3]) - max(box[1], outer[1]))
    area = (box[2] - box[0]) * (box[3] - box[1])
    return area > 0 and ix * iy / area >= need


def classify_regions(rec: dict[str, Any] | None, subject_box: Sequence[float] | None = None, *,
                     min_height: float = 0.012, extra_words: Sequence[str] = ()) -> list[Region]:
    """What each OCR region is, and how much it matters for a LoRA (the one judgement for all views).

    - watermark words / URLs / © / handles anywhere, or one string tiled 3+ times: error;
    - camera date stamps and text in a corner or border band: warning (a trainer learns a
      fixed mark in a fixed place fastest);
    - a wide line in the bottom band is a subtitle: warning;
    - text in the middle of the scene, on the subject's own body (a T-shirt print), tilted
      (a sign at an angle), running out of the frame, or taller than a watermark: info.
    Regions under `min_height` of the frame high, unread, or of one or two glyphs are dropped:
    at the training resolution they are a few pixels of texture, and unread "text" in a corner
    is mostly foliage or fabric.
    """
    if not rec or not rec.get("regions"):
        return []
    w, h = float(rec.get("width") or 1), float(rec.get("height") or 1)
    raw = [r for r in rec["regions"] if isinstance(r, dict) and isinstance(r.get("box"), list) and len(r["box"]) == 4]
    counts: dict[str, int] = {}
    for r in raw:
        key = normalise_text(r.get("text") or "")
        if len(key) >= 3:
            counts[key] = counts.get(key, 0) + 1
    extra = [normalise_text(x) for x in extra_words if normalise_text(str(x))]
    out: list[Region] = []
    for r in raw:
        box = tuple(float(c) for c in r["box"])
        bh = box[3] - box[1]
        text = str(r.get("text") or "")
        conf = float(r.get("conf") or 0.0)
        if bh < min_height * h or conf < MIN_TEXT_SCORE or not _meaningful(text):
            continue  # unread or one-glyph regions are texture far more often than marks
        zone, where = locate(box, w, h)
        area = max(0.0, box[2] - box[0]) * max(0.0, bh) / (w * h)
        key = normalise_text(text)
        at_edge = zone != "centre"
        level = abs(float(r.get("angle") or 0.0)) <= LEVEL_DEGREES
        touches = (box[0] <= EDGE_TOUCH * w or box[1] <= EDGE_TOUCH * h or box[2] >= (1 - EDGE_TOUCH) * w
                   or box[3] >= (1 - EDGE_TOUCH) * h)
        on_subject = _inside(box, subject_box)
        if _STRONG_RE.search(text) or any(x in key for x in extra):
            kind, sev = "watermark", "error"
        elif at_edge and _EDGE_RE.search(text):
            kind, sev = "watermark", "error"
        elif counts.get(key, 0) >= 3 and level:
            kind, sev = "tiled", "error"
        elif _DATE_RE.search(text) and level:
            kind, sev = "date-stamp", "warning"
        elif at_edge and level and not touches and bh <= MAX_OVERLAY_HEIGHT * h:
            wide = where == "bottom band" and (box[2] - box[0]) >= 0.3 * w
            kind, sev = ("subtitle" if wide else "overlay"), "warning"
        elif on_subject:
            kind, sev = "clothing", "info"
        else:
            kind, sev = "scene", "info"
        out.append(Region(box, text, conf, where, zone, kind, sev, area))
    return out


SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def item_regions(ctx, item, opts: dict[str, Any] | None = None) -> list[Region]:
    """Judged regions of one dataset image, with the subject box from framing and the rule's options."""
    if opts is None:
        from lint_rules.KL109 import KL109

        opts = ctx.config.options_for(KL109)
    fr = ctx.result("framing", item) if ctx.results.get("framing") is not None else None
    return classify_regions(ctx.result("ocr", item), (fr or {}).get("subject_box"),
                            min_height=float(opts.get("min_height", 0.012)),
                            extra_words=tuple(opts.get("extra_words") or ()))


def text_record(ctx, item) -> dict[str, Any] | None:
    """The `text` field of `klint inspect` and the report: judged regions and coverage."""
    if ctx.results.get("ocr") is None or ctx.result("ocr", item) is None:
        return None
    regions = item_regions(ctx, item)
    return {"regions": [r.to_json() for r in regions],
            "coverage": round(sum(r.area for r in regions), 5),
            "worst": min((r.severity for r in regions), key=SEVERITY_RANK.get, default=None)}
