"""Crop geometry for `klint fix --rebalance --strategy crops`: pure functions of keypoints.

A tighter framing is cut out of a wider photo (full -> half, full/half -> close) using the
head-height canon (curation.md §4): with H the head height and the crown at eye_y - 0.5 H,
shoulders sit 1.4 H below the crown, hips 4 H, knees 6 H, ankles 7.5 H. Boxes stop well
above the next joint down so the crop reads as the intended framing to the same classifier
that labelled the source. A crop whose short side is below the training resolution is
refused: klint never upscales.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from typing import Any

FRAMINGS = ("close", "half", "full")
# which source framings can give each target framing, tightest first: a close-up cut from a
# half-body shot keeps more pixels per head than one cut from a full-body shot
SOURCES_FOR = {"close": ("half", "full"), "half": ("full",), "full": ()}
FRAMING_PHRASE = {"close": "close portrait", "half": "half body", "full": "full body shot"}

VISIBLE_CONF = 0.5
# box limits in head heights below the crown; the close box ends above the elbows (~2.7 H),
# the half box a head below the hips, far above the knees (6 H)
CLOSE_BOTTOM_H = 2.3
HALF_BELOW_HIP_H = 1.0
HEADROOM_H = 0.35
MAX_HEADROOM_H = 1.2  # how much sky we accept above the crown when growing a box to resolution
HALF_ASPECT = 0.75  # width / height of a half-body crop (3:4 portrait)

# COCO-17 indices
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SH, R_SH, L_HIP, R_HIP, L_KNEE, R_KNEE = 5, 6, 11, 12, 13, 14


@dataclasses.dataclass(frozen=True)
class CropBox:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in source pixels
    framing: str
    head_height: float

    @property
    def size(self) -> tuple[int, int]:
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


@dataclasses.dataclass(frozen=True)
class Refusal:
    framing: str
    reason: str
    short_side: int | None = None  # what the crop would have measured, when it got that far


def normalise_keypoints(raw: Any) -> list[tuple[float, float, float]] | None:
    """Accept [[x, y, conf] * 17], {"xy": [[x, y]], "conf": [c]} or a flat 51-list."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        xy, conf = raw.get("xy"), raw.get("conf")
        if not xy or conf is None:
            return None
        return [(float(p[0]), float(p[1]), float(c)) for p, c in zip(xy, conf)]
    raw = list(raw)
    if len(raw) == 51 and not isinstance(raw[0], (list, tuple)):
        raw = [raw[i:i + 3] for i in range(0, 51, 3)]
    out = []
    for p in raw:
        if not isinstance(p, (list, tuple)) or len(p) < 2:
            return None
        out.append((float(p[0]), float(p[1]), float(p[2]) if len(p) > 2 else 1.0))
    return out if len(out) >= 17 else None


def _visible(kps, i: int, width: int, height: int) -> tuple[float, float] | None:
    x, y, c = kps[i]
    if c < VISIBLE_CONF or (x == 0 and y == 0) or not (0 <= x < width and 0 <= y < height):
        return None
    return x, y


def _mean(points) -> tuple[float, float] | None:
    pts = [p for p in points if p is not None]
    if not pts:
        return None
    return sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)


def head_height(kps, width: int, height: int) -> float | None:
    """Median of the head-height cues the keypoints offer (curation.md §4)."""
    v = lambda i: _visible(kps, i, width, height)  # noqa: E731
    cues = []
    eyes = _mean([v(L_EYE), v(R_EYE)])
    shoulders = [v(L_SH), v(R_SH)]
    sh = _mean(shoulders)
    hips = _mean([v(L_HIP), v(R_HIP)])
    if eyes and sh and sh[1] > eyes[1]:
        cues.append((sh[1] - eyes[1]) / 0.9)
    if all(shoulders):
        sw = abs(shoulders[0][0] - shoulders[1][0])
        # narrow shoulder spans are profile views, where this cue says nothing
        if eyes is None or sw > 0.5 * abs(sh[1] - eyes[1]):
            cues.append(sw / 1.7)
    if sh and hips and hips[1] > sh[1]:
        cues.append((hips[1] - sh[1]) / 2.5)
    cues = [c for c in cues if c > 1]
    return float(statistics.median(cues)) if cues else None


def _crown(kps, width, height, h: float) -> float | None:
    v = lambda i: _visible(kps, i, width, height)  # noqa: E731
    eyes = _mean([v(L_EYE), v(R_EYE)])
    if eyes:
        return eyes[1] - 0.5 * h
    nose = v(NOSE)
    if nose:
        return nose[1] - 0.65 * h
    ears = _mean([v(L_EAR), v(R_EAR)])
    if ears:
        return ears[1] - 0.55 * h
    sh = _mean([v(L_SH), v(R_SH)])
    return sh[1] - 1.4 * h if sh else None


def _fit(center: float, size: float, limit: int) -> tuple[float, float]:
    """An interval of `size` around `center`, shifted (not shrunk) to lie inside [0, limit]."""
    size = min(size, limit)
    lo = center - size / 2
    lo = max(0.0, min(lo, limit - size))
    return lo, lo + size


def crop_box(kps_raw: Any, width: int, height: int, target: str, resolution: int,
             head_h: float | None = None) -> CropBox | Refusal:
    """Where to cut a `target` framing (close|half) out of a wider photo, or why not."""
    if target not in ("close", "half"):
        return Refusal(target, "a wider framing can never be made from a tighter one")
    kps = normalise_keypoints(kps_raw)
    if kps is None:
        return Refusal(target, "no body keypoints")
    h = head_h if head_h and head_h > 1 else head_height(kps, width, height)
    if not h:
        return Refusal(target, "too few visible keypoints to measure the head")
    crown = _crown(kps, width, height, h)
    if crown is None:
        return Refusal(target, "head not visible")
    v = lambda i: _visible(kps, i, width, height)  # noqa: E731
    top_min = max(0.0, crown - MAX_HEADROOM_H * h)
    top = max(0.0, crown - HEADROOM_H * h)
    if target == "close":
        head = _mean([v(NOSE), v(L_EYE), v(R_EYE), v(L_EAR), v(R_EAR)])
        if head is None:
            return Refusal(target, "face not visible")
        cx = head[0]
        bottom = min(float(height), crown + CLOSE_BOTTOM_H * h)
        want_w = bottom - top  # square
    else:
        hips = _mean([v(L_HIP), v(R_HIP)])
        sh = _mean([v(L_SH), v(R_SH)])
        if hips is None or sh is None:
            return Refusal(target, "hips or shoulders not visible")
        bottom = hips[1] + HALF_BELOW_HIP_H * h
        knees = [k for k in (v(L_KNEE), v(R_KNEE)) if k is not None]
        if knees:
            # seated or crouching figures bring the knees up towards the hips
            bottom = min(bottom, min(k[1] for k in knees) - 0.6 * h)
        if bottom < hips[1] + 0.3 * h:
            return Refusal(target, "knees too close to the hips (seated?) for a clean half-body cut")
        bottom = min(float(height), bottom)
        cx = (sh[0] + hips[0]) / 2
        want_w = HALF_ASPECT * (bottom - top)
    if bottom - top < resolution:
        # grow upwards into headroom rather than downwards into the next framing
        top = max(top_min, bottom - resolution)
    box_h = bottom - top
    want_w = max(want_w, min(float(resolution), box_h))
    x0, x1 = _fit(cx, want_w, width)
    box = (int(round(x0)), int(round(top)), int(round(x1)), int(round(bottom)))
    short = min(box[2] - box[0], box[3] - box[1])
    if short < resolution:
        return Refusal(target, f"the {target} crop would be {short} px on its short side, below the training "
                               f"resolution {resolution} (klint never upscales)", short_side=short)
    return CropBox(box=box, framing=target, head_height=h)


# -- captions --------------------------------------------------------------------------------

_FRAMING_WORDS = [
    r"full[- ]body(?: shot)?", r"full[- ]length(?: shot| portrait)?", r"whole body", r"head[- ]to[- ]toe",
    r"half[- ]body(?: shot)?", r"upper[- ]body(?: shot)?", r"waist[- ]up", r"cowboy shot",
    r"three[- ]quarter (?:body|shot|length)", r"medium shot",
    r"close[- ]?up(?: portrait| shot)?", r"close portrait", r"extreme close[- ]?up", r"head ?shot",
    r"head and shoulders(?: portrait| shot)?", r"portrait shot", r"face shot",
]
_FRAMING_RE = re.compile(r"\b(?:" + "|".join(sorted(_FRAMING_WORDS, key=len, reverse=True)) + r")\b", re.I)
# details a tighter crop cuts away; captions must not describe what the image no longer shows
_BELOW_WAIST = ("shoe", "shoes", "sneaker", "sneakers", "boot", "boots", "heels", "sandals", "feet", "foot",
                "barefoot", "socks", "ankle", "ankles", "knee", "knees", "legs", "leg")
_BELOW_CHEST = _BELOW_WAIST + ("jeans", "trousers", "pants", "skirt", "shorts", "belt", "hips", "waist")


def rewrite_caption(text: str, framing: str) -> tuple[str, list[str]]:
    """Caption for a crop: framing phrase swapped in, chunks about cut-away body parts dropped.

    Returns (new caption, dropped chunks). Works on comma-separated chunks; prose captions
    only get the framing phrase swapped or appended.
    """
    phrase = FRAMING_PHRASE[framing]
    body = text.strip()
    gone = _BELOW_CHEST if framing == "close" else _BELOW_WAIST
    chunks = [c.strip() for c in body.split(",")] if "," in body else [body]
    kept, dropped = [], []
    for i, chunk in enumerate(chunks):
        words = set(re.findall(r"[a-z]+", chunk.lower()))
        if i > 0 and len(chunks) > 1 and words & set(gone) and not _FRAMING_RE.search(chunk):
            dropped.append(chunk)
            continue
        kept.append(chunk)
    out, placed = [], False
    for chunk in kept:
        m = _FRAMING_RE.search(chunk)
        if m:
            if placed:
                chunk = _FRAMING_RE.sub("", chunk)
            else:
                chunk = chunk[:m.start()] + phrase + _FRAMING_RE.sub("", chunk[m.end():])
                placed = True
            chunk = re.sub(r"\s{2,}", " ", chunk).strip(" -")
        out.append(chunk)
    new = ", ".join(c for c in out if c)
    if not placed:
        new = f"{new}, {phrase}" if new else phrase
    return new + ("\n" if text.endswith("\n") else ""), dropped


def derived_name(key: str, framing: str) -> str:
    """Provenance naming: `<source key>__<framing>.png`."""
    return f"{key}__{framing}.png"

