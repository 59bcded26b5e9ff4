"""Shot framing (close / half / full / none) from COCO-17 keypoints, in pure Python.

The classifier measures how much of the body the frame can hold, in head-heights (H) below
the crown, instead of trusting any single keypoint: ankles in frame mean full body; otherwise
the frame extent along the body axis decides (a waist-up shot with the hips just off-frame
is still half body; a tight portrait with no shoulders is still close). Everything here is
deterministic arithmetic on the "pose" analysis output, so it is unit-testable without YOLO.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

from curate.analysis.base import Analysis

KEYPOINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NOSE, LEYE, REYE, LEAR, REAR, LSH, RSH, LEL, REL, LWR, RWR, LHIP, RHIP, LKNEE, RKNEE, LANK, RANK = range(17)
FRAMINGS = ("close", "half", "full")
VISIBLE = 0.5  # ultralytics itself treats conf < 0.5 as "not there"

# Body landmarks below the crown in head-heights (7.5-head canon: chin 1, chest 2, navel 3,
# hip joints 4, knees 6, ankles 7.5). Close ends above the navel ("chest up" still reads as a
# portrait), half runs from the waist to the shins, full needs room down to the feet.
CLOSE_HALF = 3.3  # frame ends above the navel/waist -> close
HALF_FULL = 7.0  # frame holds the ankles (visible or occluded) -> full
# Klein's transformer sees the image as 16 px tokens (8x VAE, 2x2 patches). A head under three
# tokens high at the training resolution has no face the LoRA could learn: the photo is a
# figure in a scene, framing `none`, and not a full-body sample (subject.small says why).
TINY_HEAD_PX = 48
_SHIN_PER_THIGH = 0.8  # knee-to-ankle over hip-to-knee
# Close or half with the hips out of frame: does the frame reach the waist? The waist (navel
# line) lies 1.5 head-heights below the shoulder line (canon: shoulders 1.5, navel 3). The head
# unit here is measured from the head itself, with proportions measured on the clean standing
# figures of the shared photos (eyes, shoulders, hips, knees, ankles all >= 0.7; one head =
# eye-to-ankle / 7): eye spacing 0.32 H, ear spacing 2.38 eye spacings = 0.76 H, eye line to
# shoulder line 1.1 H. Each of these only shrinks when the head turns or tilts, so the largest
# is taken. (head_height's older constants are kept: eval's stature is measured with them.)
WAIST_BELOW_SHOULDERS = 1.5
_HEAD_UNIT = {"eye_width": 0.32, "ear_width": 0.76, "eye_shoulder": 1.1}
# head-height cues: (point pair, canonical distance in H)
_EYE_TO_SHOULDER = 0.9
_SHOULDER_WIDTH = 1.7
_SHOULDER_TO_HIP = 2.6
_HIP_TO_KNEE = 2.0
_KNEE_TO_ANKLE = 1.6
_EAR_WIDTH = 0.6
_EYE_WIDTH = 0.3


def _vis(kp: Sequence[Sequence[float]], i: int, w: float, h: float, thr: float = VISIBLE) -> bool:
    x, y, c = kp[i]
    # a point more than 1% outside the frame is a guess about where the body continues
    return c >= thr and -0.01 * w <= x <= 1.01 * w and -0.01 * h <= y <= 1.01 * h


def _mid(kp, idx: Iterable[int]) -> tuple[float, float] | None:
    pts = [kp[i] for i in idx]
    if not pts:
        return None
    return (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))


def _dist(a, b) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _median(vals: list[float]) -> float:
    s = sorted(vals)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def head_height(kp, w: float, h: float, box: Sequence[float] | None = None) -> tuple[float | None, dict[str, float]]:
    """Median of independent head-height cues (pixels), and the cues used."""
    v = [_vis(kp, i, w, h) for i in range(17)]
    cues: dict[str, float] = {}
    eyes = [i for i in (LEYE, REYE) if v[i]]
    shoulders = [i for i in (LSH, RSH) if v[i]]
    hips = [i for i in (LHIP, RHIP) if v[i]]
    if eyes and shoulders:
        cues["eye_shoulder"] = _dist(_mid(kp, eyes), _mid(kp, shoulders)) / _EYE_TO_SHOULDER
    if len(shoulders) == 2:
        cues["shoulder_width"] = _dist(kp[LSH], kp[RSH]) / _SHOULDER_WIDTH
    if shoulders and hips:
        cues["torso"] = _dist(_mid(kp, shoulders), _mid(kp, hips)) / _SHOULDER_TO_HIP
    legs = []
    for hip, knee, ank in ((LHIP, LKNEE, LANK), (RHIP, RKNEE, RANK)):
        if v[hip] and v[knee]:
            legs.append(_dist(kp[hip], kp[knee]) / _HIP_TO_KNEE)
        if v[knee] and v[ank]:
            legs.append(_dist(kp[knee], kp[ank]) / _KNEE_TO_ANKLE)
    if legs:
        # bent or foreshortened legs only ever look shorter
        cues["legs"] = max(legs)
    face = []
    if v[LEAR] and v[REAR]:
        face.append(_dist(kp[LEAR], kp[REAR]) / _EAR_WIDTH)
    if v[LEYE] and v[REYE]:
        face.append(_dist(kp[LEYE], kp[REYE]) / _EYE_WIDTH)
    if face:
        # turned heads narrow, never widen: the larger is the better frontal estimate
        cues["face"] = max(face)
    if not cues and box is not None:
        # head alone in a box: the box is about one head high
        cues["box"] = max(1.0, (box[3] - box[1]) / 1.2)
    vals = [c for c in cues.values() if c > 0]
    if not vals:
        return None, cues
    return _median(vals), cues


def head_px_at(head_height_px: float | None, width: float, height: float, resolution: int) -> float | None:
    """Head height at the training resolution: bucketing trainers keep the pixel area near
    resolution^2, so every photo is scaled by resolution / sqrt(w * h)."""
    if not head_height_px or not width or not height:
        return None
    return float(head_height_px) * resolution / (float(width) * float(height)) ** 0.5


def tiny_head_px(config) -> float:
    """The head height below which a subject is too small to count (subject.small's `min_head_px`)."""
    opts = getattr(config, "rule_options", None) or {}
    for key in ("KL303", "subject.small"):
        val = (opts.get(key) or {}).get("min_head_px")
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            return float(val)
    return float(TINY_HEAD_PX)


def _legs_reach_feet(kp, v, w: float, h: float, axis, head: float) -> bool:
    """Knees in frame with room for the shins below them: full body with the feet hidden or
    just cut (standing cut at the ankles, seated, kneeling, cross-legged).

    The shin is about 0.8 of the thigh. A thigh along the body axis (standing, kneeling upright)
    continues straight down to the foot; a thigh across it (seated, cross-legged) has the shin
    hanging from the knee towards the floor, i.e. down the image.
    """
    for hip, knee in ((LHIP, LKNEE), (RHIP, RKNEE)):
        if not (v[hip] and v[knee]):
            continue
        tx, ty = kp[knee][0] - kp[hip][0], kp[knee][1] - kp[hip][1]
        thigh = math.hypot(tx, ty)
        if thigh < 1.3 * head:
            continue  # a thigh seen end-on (lying towards the camera, a crowd) says nothing of the feet
        along = (tx * axis[0] + ty * axis[1]) / thigh
        if along > 0.7:
            d, need = (tx / thigh, ty / thigh), 0.75  # standing: most of the shin must be in frame
        elif axis[1] > 0.7 and abs(ty) < 0.6 * thigh:
            # seated upright with the thigh level: the lower leg hangs down from the knee
            d, need = (0.0, 1.0), 0.75
        else:
            continue  # lying, bent over, foreshortened: no reliable guess where the feet are
        room = _ray_to_frame(kp[knee], d, w, h)
        if room >= need * _SHIN_PER_THIGH * thigh:
            return True
    return False


def _ray_to_frame(p, d, w: float, h: float) -> float:
    """Distance from p along unit vector d to where it leaves the frame (0 if already past it)."""
    best = math.inf
    for comp, lo, hi in ((0, 0.0, w), (1, 0.0, h)):
        if abs(d[comp]) < 1e-9:
            continue
        edge = hi if d[comp] > 0 else lo
        t = (edge - p[comp]) / d[comp]
        if t >= 0:
            best = min(best, t)
    return 0.0 if best is math.inf else best


def classify(kp: Sequence[Sequence[float]] | None, width: float, height: float,
             box: Sequence[float] | None = None) -> dict[str, Any]:
    """Framing of one person. `kp` is 17 x [x, y, conf] in pixels (conf is what counts)."""
    out: dict[str, Any] = {"framing": "none", "framing_confidence": 1.0, "head_height_px": None,
                           "extent_visible": None, "extent_frame": None, "head_cues": {}}
    if not kp or len(kp) != 17:
        return out
    w, h = float(width), float(height)
    v = [_vis(kp, i, w, h) for i in range(17)]
    nvis = sum(v)
    if nvis < 3:
        out["framing_confidence"] = 0.6 if nvis else 0.9
        return out
    H, cues = head_height(kp, w, h, box)
    out["head_cues"] = {k: round(c, 1) for k, c in cues.items()}
    if H is None:
        out["framing_confidence"] = 0.5
        return out
    out["head_height_px"] = round(H, 1)

    face = [i for i in (LEYE, REYE, NOSE) if v[i]] or [i for i in (LEAR, REAR) if v[i]]
    shoulders = [i for i in (LSH, RSH) if v[i]]
    hips = [i for i in (LHIP, RHIP) if v[i]]
    # body axis: the direction "down the body", so lying or leaning people measure the same
    if shoulders and hips:
        a, b = _mid(kp, shoulders), _mid(kp, hips)
    elif face and shoulders:
        a, b = _mid(kp, face), _mid(kp, shoulders)
    else:
        a, b = (0.0, 0.0), (0.0, 1.0)
    norm = _dist(a, b) or 1.0
    axis = ((b[0] - a[0]) / norm, (b[1] - a[1]) / norm)
    if face:
        eye = _mid(kp, [i for i in (LEYE, REYE) if v[i]] or face)
        crown = (eye[0] - 0.5 * H * axis[0], eye[1] - 0.5 * H * axis[1])
    elif shoulders:
        sh = _mid(kp, shoulders)
        crown = (sh[0] - 1.4 * H * axis[0], sh[1] - 1.4 * H * axis[1])
    else:
        top = min((kp[i] for i in range(17) if v[i]), key=lambda p: p[0] * axis[0] + p[1] * axis[1])
        crown = (top[0], top[1])
    proj = [((kp[i][0] - crown[0]) * axis[0] + (kp[i][1] - crown[1]) * axis[1]) / H for i in range(17) if v[i]]
    ext_vis = max(proj)
    # where the ray down the body leaves the frame; a crown above the frame (cropped forehead)
    # needs no special case since only the exit edge matters
    ext_frame = _ray_to_frame(crown, axis, w, h) / H
    ext_frame = max(ext_frame, ext_vis)
    out["extent_visible"] = round(ext_vis, 2)
    out["extent_frame"] = round(ext_frame, 2)

    ankles = [kp[i][2] for i in (LANK, RANK) if v[i]]
    knees = [i for i in (LKNEE, RKNEE) if v[i]]
    if ankles:
        framing = "full"
        conf = 0.7 + 0.3 * min(1.0, (max(ankles) - VISIBLE) / 0.4)
    elif knees:
        # knees without ankles: cropped shins (three-quarter, half) unless the frame has room
        # for the feet, in which case they are hidden (long dress, furniture) and it is full
        legs = _legs_reach_feet(kp, v, w, h, axis, H)
        framing = "full" if ext_frame >= HALF_FULL or legs else "half"
        conf = max(_margin_conf(ext_frame, HALF_FULL), 0.7 if legs else 0.0)
    elif hips:
        framing = "half"
        conf = 0.55 + 0.4 * min(1.0, abs(ext_frame - CLOSE_HALF) / 1.5)
    else:
        reach = _reach_below_shoulders(kp, v, w, h, axis)
        if reach is not None:
            framing = "half" if reach >= WAIST_BELOW_SHOULDERS else "close"
            conf = _margin_conf(reach, WAIST_BELOW_SHOULDERS, 0.6)
            out["waist_reach"] = round(reach, 2)
        else:
            framing = "half" if ext_frame >= CLOSE_HALF else "close"
            conf = _margin_conf(ext_frame, CLOSE_HALF)
    # few cues or few keypoints: trust less
    quality = min(1.0, 0.6 + 0.1 * len(cues) + 0.02 * nvis)
    out["framing"] = framing
    out["framing_confidence"] = round(max(0.05, min(1.0, conf * quality)), 3)
    return out


def _margin_conf(x: float, cut: float, span: float = 1.5) -> float:
    return 0.5 + 0.5 * min(1.0, abs(x - cut) / span)


def _reach_below_shoulders(kp, v, w: float, h: float, axis) -> float | None:
    """How far the frame runs below the shoulder line, down the body, in head-heights of the
    head itself (None without the eyes and a shoulder to measure from)."""
    eyes = [i for i in (LEYE, REYE) if v[i]]
    shoulders = [i for i in (LSH, RSH) if v[i]]
    if not eyes or not shoulders:
        return None
    eye, sh = _mid(kp, eyes), _mid(kp, shoulders)
    units = [((sh[0] - eye[0]) * axis[0] + (sh[1] - eye[1]) * axis[1]) / _HEAD_UNIT["eye_shoulder"]]
    if v[LEYE] and v[REYE]:
        units.append(_dist(kp[LEYE], kp[REYE]) / _HEAD_UNIT["eye_width"])
    if v[LEAR] and v[REAR]:
        units.append(_dist(kp[LEAR], kp[REAR]) / _HEAD_UNIT["ear_width"])
    unit = max(units)
    if unit <= 0:
        return None
    return _ray_to_frame(sh, axis, w, h) / unit


def face_state(kp, width: float, height: float, head_h: float | None) -> tuple[bool | None, str | None]:
    """(visible, reason): reason is 'turned away', 'covered' or 'cut by the frame' when hidden."""
    if not kp or len(kp) != 17:
        return None, None
    w, h = float(width), float(height)
    conf = [p[2] for p in kp]
    eyes = [i for i in (LEYE, REYE) if conf[i] >= VISIBLE]
    ears = [i for i in (LEAR, REAR) if conf[i] >= VISIBLE]
    nose = conf[NOSE] >= VISIBLE
    margin = 0.15 * (head_h or 0.0)
    inside = lambda i: -margin <= kp[i][0] <= w + margin and -margin <= kp[i][1] <= h + margin  # noqa: E731
    detected = [i for i in (NOSE, *eyes) if conf[i] >= VISIBLE]
    if detected and not all(inside(i) for i in detected):
        return False, "cut by the frame"
    if nose and eyes:
        return True, None
    shoulders = [i for i in (LSH, RSH) if conf[i] >= VISIBLE]
    if shoulders and head_h and not eyes and not nose:
        # where the eyes should be, about 0.9 head-heights above the shoulder line
        sy = sum(kp[i][1] for i in shoulders) / len(shoulders)
        if sy - 0.9 * head_h < 0:
            return False, "cut by the frame"
    if ears and not eyes and not nose:
        return False, "turned away"
    if not any(conf[i] >= 0.2 for i in (NOSE, LEYE, REYE, LEAR, REAR)):
        # no face evidence at all: headless crop or everything above the shoulders is gone
        head_in = any(0 <= kp[i][1] <= h and 0 <= kp[i][0] <= w for i in (NOSE, LEYE, REYE))
        return False, ("covered" if head_in else "cut by the frame")
    return False, "covered" if (ears or eyes or conf[NOSE] >= 0.2) else "turned away"


def primary_index(persons: list[dict[str, Any]]) -> int | None:
    """Largest box area x detection confidence."""
    best, idx = -1.0, None
    for i, p in enumerate(persons):
        x0, y0, x1, y1 = p["box"]
        score = max(0.0, x1 - x0) * max(0.0, y1 - y0) * p["conf"]
        if score > best:
            best, idx = score, i
    return idx


def describe(pose: dict[str, Any] | None, *, min_person_conf: float = 0.5, other_ratio: float = 0.25,
             resolution: int | None = None, tiny_px: float = TINY_HEAD_PX) -> dict[str, Any]:
    """Subject facts from one pose result: framing, people, subject box/size, face visibility.

    With `resolution`, a subject whose head is under `tiny_px` at that training size is `none`
    (`framing_reason` "tiny", the body framing kept in `framing_body`).
    """
    if not pose:
        return {"framing": "none", "framing_confidence": 0.0, "people": 0, "subject_box": None,
                "subject_fraction": 0.0, "face_visible": None, "face_reason": None, "head_height_px": None,
                "keypoints": None, "others": [], "framing_reason": "no person", "head_px_train": None}
    w, h = pose["width"], pose["height"]
    persons = [p for p in pose.get("persons", []) if p["conf"] >= min_person_conf]
    rec: dict[str, Any] = {"people": len(persons), "others": []}
    idx = primary_index(persons)
    if idx is None:
        rec.update(framing="none", framing_confidence=round(1.0 - pose.get("max_conf", 0.0), 3), subject_box=None,
                   subject_fraction=0.0, face_visible=None, face_reason=None, head_height_px=None, keypoints=None,
                   framing_reason="no person", head_px_train=None)
        return rec
    prim = persons[idx]
    fr = classify(prim.get("kp"), w, h, prim["box"])
    face, reason = face_state(prim.get("kp"), w, h, fr["head_height_px"])
    x0, y0, x1, y1 = prim["box"]
    area = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    rec.update(fr)
    rec.update(subject_box=[round(c, 1) for c in prim["box"]], subject_fraction=round(area / (w * h), 4),
               face_visible=face, face_reason=reason, keypoints=prim.get("kp"),
               framing_reason="too little body" if fr["framing"] == "none" else None, head_px_train=None)
    if resolution:
        head = head_px_at(fr["head_height_px"], w, h, resolution)
        rec["head_px_train"] = None if head is None else round(head, 1)
        if head is not None and head < tiny_px and fr["framing"] != "none":
            rec.update(framing="none", framing_body=fr["framing"], framing_reason="tiny")
    for j, p in enumerate(persons):
        if j == idx:
            continue
        a0, b0, a1, b1 = p["box"]
        ratio = max(0.0, a1 - a0) * max(0.0, b1 - b0) / area if area else 0.0
        rec["others"].append({"box": [round(c, 1) for c in p["box"]], "conf": p["conf"], "area_ratio": round(ratio, 3),
                              "significant": ratio >= other_ratio})
    return rec


class FramingAnalysis(Analysis):
    """Cheap classification on top of the cached pose: changing it never re-runs YOLO."""

    name = "framing"
    version = "5"
    scope = "image"
    needs = ("pose",)

    def fingerprint(self, config) -> str:
        from curate.analysis.pose import PoseAnalysis

        # the tiny-subject cut depends on the training size and subject.small's threshold
        return f"{PoseAnalysis().fingerprint(config)}:{config.resolution}:{tiny_head_px(config)}"

    def run_batch(self, items, ctx, advance):
        table = ctx.results.get("pose", {})
        res, tiny = ctx.config.resolution, tiny_head_px(ctx.config)
        out = []
        for item in items:
            pose = table.get(item.rel_image)
            out.append(None if pose is None else describe(pose, resolution=res, tiny_px=tiny))
            advance(1)
        return out


# caption framing vocabulary, used when the caption analysis gives no `framing_terms`
_TERMS = {
    "close": ("close-up", "close up", "closeup", "close portrait", "close shot", "headshot", "head shot",
              "head and shoulders", "portrait", "face shot", "extreme close-up", "bust shot"),
    "half": ("half body", "half-body", "upper body", "upper-body", "waist up", "waist-up", "cowboy shot",
             "medium shot", "three-quarter shot", "three quarter shot", "mid shot", "half length", "half-length"),
    "full": ("full body", "full-body", "full length", "full-length", "whole body", "full shot", "long shot",
             "head to toe", "full figure"),
}
_TERM_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(t) for t in sorted((t for ts in _TERMS.values() for t in ts), key=len, reverse=True))
    + r")(?![\w-])", re.IGNORECASE)
_TERM_CLASS = {t: k for k, ts in _TERMS.items() for t in ts}
SEED_PHRASE = {"close": "close portrait", "half": "half body", "full": "full body shot"}


def framing_terms(text: str) -> list[dict[str, Any]]:
    """[{start, end, text, framing}] for framing words in a caption (fallback vocabulary)."""
    return [{"start": m.start(), "end": m.end(), "text": m.group(0), "framing": _TERM_CLASS[m.group(0).lower()]}
            for m in _TERM_RE.finditer(text)]


def caption_framing_terms(ctx, item) -> list[dict[str, Any]]:
    """The caption analysis's `framing_terms` when it provides them, else the fallback matcher."""
    if item.caption_text is None:
        return []
    res = ctx.result("caption", item) if ctx.results.get("caption") is not None else None
    if isinstance(res, dict) and isinstance(res.get("framing_terms"), list):
        return [t for t in res["framing_terms"] if t.get("framing") in FRAMINGS]
    return framing_terms(item.caption_text)
