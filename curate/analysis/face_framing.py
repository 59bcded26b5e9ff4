"""Framing with the face analysis as second witness.

Pose alone calls a tight face crop with no shoulders, or an old faded portrait, `none`: YOLO
finds no person in it. The face detector does find the face, and a face that fills a good part
of the frame is a close shot whatever pose says. Kept apart from framing.py so the pose-only
classifier stays a pure function of the keypoints.
"""

from __future__ import annotations

from typing import Any

from curate.analysis.framing import FramingAnalysis, describe

# A dlib face box spans brow to chin; the whole head (crown to chin) is about this many times
# taller (median of pose head-height / face-box height on the shared photos, see README).
HEAD_PER_FACE_BOX = 1.45
# A face box at least this share of the frame height is a close shot (a half-body shot's head
# is under a fifth of the frame; a close portrait's face box is a third or more).
CLOSE_FACE_SHARE = 0.2
FACE_CLOSE_CONFIDENCE = 0.7


# A frontal head (nose and both eyes >= 0.8, both ears >= 0.5 in pose) at least this many
# native pixels high gives the face detector a face box of ~66 px, enough real pixels that it
# rarely misses a real frontal face; missing one there means the face is covered or not a face.
FACELESS_HEAD_PX = 96


def faceless_head(fr: dict[str, Any] | None, face_res: dict[str, Any] | None) -> bool:
    """Pose sees a clear frontal head, the face scan of that head finds no face: a mask or
    hand over it, or a person-like thing (doll, figurine, mannequin) with no living face."""
    if not fr or fr.get("framing") == "none" or not fr.get("keypoints") or not isinstance(face_res, dict):
        return False
    if face_res.get("subject") or face_res.get("faces") or face_res.get("reason") != "not detected":
        return False
    kp = fr["keypoints"]
    frontal = min(kp[i][2] for i in (0, 1, 2)) >= 0.8 and min(kp[3][2], kp[4][2]) >= 0.5
    return frontal and (fr.get("head_height_px") or 0.0) >= FACELESS_HEAD_PX


def face_head_px(face: dict[str, Any]) -> float:
    """Head height (pixels, full size) implied by a measured face box."""
    return (face["box"][3] - face["box"][1]) * HEAD_PER_FACE_BOX


def _largest(face_res: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(face_res, dict):
        return None
    if face_res.get("subject"):
        return face_res["subject"]
    faces = face_res.get("faces") or []
    return max(faces, key=lambda f: f["box"][3] - f["box"][1], default=None)


def with_face(rec: dict[str, Any], pose: dict[str, Any] | None, face_res: dict[str, Any] | None) -> dict[str, Any]:
    """The pose framing record, corrected by what the face scan saw."""
    face = _largest(face_res)
    if face is None or not pose:
        return rec
    rec = dict(rec)
    if face_res.get("subject") and rec.get("face_visible") is False:
        # the detector found the subject's face where pose's keypoints were unsure
        rec.update(face_visible=True, face_reason=None, face_witness="face")
    if rec.get("framing") != "none":
        return rec
    w, h = float(pose["width"]), float(pose["height"])
    x0, y0, x1, y1 = face["box"]
    if (y1 - y0) / h < CLOSE_FACE_SHARE:
        return rec
    head = face_head_px(face)
    # the head around the face box, clipped to the frame, stands in for the subject box
    cx = (x0 + x1) / 2
    box = [max(0.0, cx - 0.5 * head / 1.2), max(0.0, y1 - head), min(w, cx + 0.5 * head / 1.2), min(h, y1 + 0.05 * head)]
    area = max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
    rec.update(framing="close", framing_confidence=FACE_CLOSE_CONFIDENCE, framing_source="face",
               people=max(1, int(rec.get("people") or 0)), head_height_px=round(head, 1),
               subject_box=[round(c, 1) for c in box], subject_fraction=round(area / (w * h), 4),
               face_visible=True, face_reason=None)
    return rec


class FaceAwareFramingAnalysis(FramingAnalysis):
    """`framing` = pose framing + the face witness; changing either never re-runs YOLO or dlib."""

    version = FramingAnalysis.version + "+face1"
    needs = ("pose", "face")

    def fingerprint(self, config) -> str:
        from curate.analysis.face import FaceAnalysis

        return f"{super().fingerprint(config)}:{FaceAnalysis().fingerprint(config)}"

    def run_batch(self, items, ctx, advance):
        from curate.analysis.framing import tiny_head_px

        poses = ctx.results.get("pose", {})
        faces = ctx.results.get("face", {})
        res, tiny = ctx.config.resolution, tiny_head_px(ctx.config)
        out = []
        for item in items:
            pose = poses.get(item.rel_image)
            out.append(None if pose is None else with_face(describe(pose, resolution=res, tiny_px=tiny), pose,
                                                           faces.get(item.rel_image)))
            advance(1)
        return out


def subject_head_px(ctx, item) -> tuple[float | None, str | None]:
    """(head height at the training resolution, "face" | "pose"): subject.small's quantity.

    The measured face box wins over pose's head estimate when the face analysis found the
    subject's face; both are in the same unit (crown-to-chin head heights).
    """
    from curate.analysis.face import subject_face, train_scale

    pose = ctx.result("pose", item)
    fr = ctx.result("framing", item)
    if not pose or not fr or fr.get("framing") == "none":
        return None, None
    scale = train_scale(ctx.config.resolution, pose["width"], pose["height"])
    face = subject_face(ctx, item)
    if face:
        return face_head_px(face) * scale, "face"
    if fr.get("head_height_px"):
        return fr["head_height_px"] * scale, "pose"
    return None, None
