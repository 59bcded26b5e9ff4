"""The keypoint framing classifier and the caption helpers, on constructed skeletons."""

from __future__ import annotations

import pytest

from curate.analysis.framing import classify, describe, face_state, framing_terms
from curate.analysis.variety import background_summary, cluster, lighting_summary, vendi

H = 40.0  # head height in pixels
# canonical standing pose, y in head-heights below the crown, x offsets in head-heights
CANON = {
    0: (0.0, 0.6), 1: (-0.2, 0.5), 2: (0.2, 0.5), 3: (-0.35, 0.55), 4: (0.35, 0.55),
    5: (-0.85, 1.4), 6: (0.85, 1.4), 7: (-1.0, 2.9), 8: (1.0, 2.9), 9: (-1.0, 3.9), 10: (1.0, 3.9),
    11: (-0.5, 4.0), 12: (0.5, 4.0), 13: (-0.5, 6.0), 14: (0.5, 6.0), 15: (-0.5, 7.5), 16: (0.5, 7.5),
}


def skeleton(top: float, width: float, height: float, cx: float | None = None, conf: float = 0.9):
    """Keypoints of a standing person with the crown at y=top; off-frame points get conf 0.1."""
    cx = width / 2 if cx is None else cx
    kp = []
    for i in range(17):
        dx, dy = CANON[i]
        x, y = cx + dx * H, top + dy * H
        inside = 0 <= x <= width and 0 <= y <= height
        kp.append([x, y, conf if inside else 0.1])
    return kp


def test_standing_full_body_is_full():
    out = classify(skeleton(20, 400, 8.2 * H), 400, 8.2 * H)
    assert out["framing"] == "full"
    assert out["framing_confidence"] > 0.8
    assert out["head_height_px"] == pytest.approx(H, rel=0.15)


def test_small_figure_in_a_big_frame_is_still_full():
    out = classify(skeleton(100, 2000, 1500), 2000, 1500)
    assert out["framing"] == "full"


def test_waist_up_with_hips_just_off_frame_is_half():
    h = 3.8 * H  # frame ends a little above the hip joints
    out = classify(skeleton(0, 300, h), 300, h)
    assert out["framing"] == "half"
    assert out["extent_frame"] == pytest.approx(3.8, abs=0.5)


def test_knees_cut_is_half_and_room_for_feet_means_full():
    out = classify(skeleton(0, 300, 6.6 * H), 300, 6.6 * H)
    assert out["framing"] == "half"
    kp = skeleton(0, 300, 9 * H)
    for i in (15, 16):  # ankles hidden by a long dress, yet the frame holds the whole body
        kp[i][2] = 0.2
    assert classify(kp, 300, 9 * H)["framing"] == "full"


def test_tight_portrait_without_shoulders_is_close():
    h = 1.2 * H
    kp = skeleton(-0.1 * H, 200, h)
    out = classify(kp, 200, h)
    assert out["framing"] == "close"
    assert describe({"width": 200, "height": h, "persons": [{"box": [0, 0, 200, h], "conf": 0.9, "kp": kp}]})["face_visible"]


def test_chest_up_portrait_is_close():
    h = 2.4 * H
    assert classify(skeleton(0, 300, h), 300, h)["framing"] == "close"


def test_lying_person_measures_along_the_body():
    # rotate the canonical pose by 90 degrees: body along +x
    kp = [[20 + dy * H, 100 + dx * H, 0.9] for dx, dy in (CANON[i] for i in range(17))]
    assert classify(kp, 8.5 * H, 200)["framing"] == "full"


def test_too_few_keypoints_is_none():
    kp = [[0.0, 0.0, 0.05]] * 17
    kp = [list(p) for p in kp]
    kp[0] = [50, 50, 0.9]
    assert classify(kp, 100, 100)["framing"] == "none"
    assert describe({"width": 100, "height": 100, "persons": []})["framing"] == "none"


def test_face_states():
    kp = skeleton(20, 400, 8.2 * H)
    assert face_state(kp, 400, 8.2 * H, H) == (True, None)
    back = [list(p) for p in kp]
    for i in (0, 1, 2):
        back[i][2] = 0.05
    assert face_state(back, 400, 8.2 * H, H) == (False, "turned away")
    headless = skeleton(-1.3 * H, 300, 5 * H)  # frame starts just below the chin
    assert face_state(headless, 300, 5 * H, H) == (False, "cut by the frame")


def test_multiple_people_only_counts_big_ones():
    big = {"box": [0, 0, 100, 300], "conf": 0.9, "kp": skeleton(10, 400, 8.2 * H, cx=50)}
    other = {"box": [200, 0, 290, 280], "conf": 0.8, "kp": skeleton(10, 400, 8.2 * H, cx=250)}
    tiny = {"box": [350, 10, 360, 40], "conf": 0.7}
    rec = describe({"width": 400, "height": 8.2 * H, "persons": [tiny, other, big]})
    assert rec["people"] == 3
    assert rec["subject_box"] == [0, 0, 100, 300]
    assert [o["significant"] for o in rec["others"]] == [False, True]


def test_framing_terms_vocabulary():
    got = framing_terms("jane_doe, Full Body shot, close-up of the hands, upper-body armor")
    assert [(t["text"], t["framing"]) for t in got] == [("Full Body", "full"), ("close-up", "close"),
                                                         ("upper-body", "half")]
    assert framing_terms("jane_doe standing in a park") == []


def test_vendi_and_clusters():
    import numpy as np

    assert vendi(np.ones((4, 4))) == pytest.approx(1.0)
    assert vendi(np.eye(3)) == pytest.approx(3.0)
    S = np.array([[1, .95, .1, .1], [.95, 1, .1, .1], [.1, .1, 1, .9], [.1, .1, .9, 1]])
    assert cluster(S, 0.8) == [0, 0, 1, 1]
    h1 = [1.0] + [0.0] * 255
    h2 = [0.0] * 255 + [1.0]
    assert background_summary([h1, h1, h2])["clusters"] == 2
    li = lighting_summary([{"bucket": "a", "brightness": [0, .5, 1], "contrast": 50, "balance": 0, "cct": 6500}] * 3)
    assert li["distinct"] == 1 and li["largest_share"] == 1.0 and li["vendi"] == pytest.approx(1.0)


def _pose(kp, w, h):
    xs, ys = [p[0] for p in kp], [p[1] for p in kp]
    return {"width": w, "height": h, "max_conf": 0.9,
            "persons": [{"box": [min(xs), min(ys), max(xs), max(ys)], "conf": 0.9, "kp": kp}]}


def test_tiny_figure_is_none_at_the_training_size_and_the_cut_follows_resolution():
    from curate.analysis.framing import head_px_at

    w, h = 2000, 1500  # a 40 px head in a 3 MP frame: about 24 px at 1024
    rec = describe(_pose(skeleton(100, w, h), w, h), resolution=1024)
    assert rec["framing"] == "none" and rec["framing_reason"] == "tiny" and rec["framing_body"] == "full"
    assert rec["head_px_train"] == pytest.approx(head_px_at(rec["head_height_px"], w, h, 1024), abs=0.1)
    assert rec["head_px_train"] < 48
    # the same figure in a frame cropped around it is a usable full-body shot
    w2, h2 = 400, int(8.2 * H)
    assert describe(_pose(skeleton(20, w2, h2), w2, h2), resolution=1024)["framing"] == "full"
    # without a training size (pure pose facts) nothing is cut
    assert describe(_pose(skeleton(100, w, h), w, h))["framing"] == "full"
    # a lower threshold keeps it
    assert describe(_pose(skeleton(100, w, h), w, h), resolution=1024, tiny_px=16)["framing"] == "full"


def test_standing_cut_at_the_ankles_is_full():
    # regression guard: the head-height cut already gets this; the shin rule must not break it
    h = 7.2 * H  # frame ends just above the ankle joints: the shins are in
    kp = skeleton(0, 300, h)
    assert kp[15][2] < 0.5 and kp[13][2] > 0.5
    assert classify(kp, 300, h)["framing"] == "full"
    # cut at mid-shin is still a three-quarter (half) shot
    assert classify(skeleton(0, 300, 6.6 * H), 300, 6.6 * H)["framing"] == "half"


def test_seated_figure_with_hidden_feet_is_full():
    # torso upright, thighs level towards the camera side, shins hang down, feet hidden by a desk
    # (a seated body is only ~5.8 head-heights tall, so the frame never reaches the standing 7.0 cut)
    def seated(height):
        kp = skeleton(0, 400, height)
        for side, knee, ank in ((11, 13, 15), (12, 14, 16)):
            hx, hy = kp[side][0], kp[side][1]
            kp[knee] = [hx + (1.9 * H if side == 12 else -1.9 * H), hy + 0.2 * H, 0.9]
            kp[ank] = [kp[knee][0], kp[knee][1] + 1.6 * H, 0.1]
        return kp

    assert classify(seated(5.6 * H), 400, 5.6 * H)["framing"] == "full"
    # the same seated figure cut just below the knees is half
    assert classify(seated(4.5 * H), 400, 4.5 * H)["framing"] == "half"


# A standing figure with the proportions measured on the clean full-body photos (framing.py):
# eye spacing 0.32 H, ear spacing 0.76 H, eye line to shoulder line 1.1 H, torso 2.45 H.
MEASURED = {
    0: (0.0, 0.65), 1: (-0.16, 0.5), 2: (0.16, 0.5), 3: (-0.38, 0.55), 4: (0.38, 0.55),
    5: (-0.73, 1.6), 6: (0.73, 1.6), 7: (-0.85, 2.9), 8: (0.85, 2.9), 9: (-0.9, 4.0), 10: (0.9, 4.0),
    11: (-0.45, 4.05), 12: (0.45, 4.05), 13: (-0.45, 5.9), 14: (0.45, 5.9), 15: (-0.45, 7.5), 16: (0.45, 7.5),
}
TORSO = 4.05 - 1.6


def measured_cut(bottom: float, width: float = 400, arms: bool = True, eyes_apart: float = 1.0):
    """Keypoints and frame height of the MEASURED figure cut at `bottom` head-heights below the
    crown; with arms=False the elbows and wrists are hidden (crossed, under a coat)."""
    h = bottom * H
    kp = []
    for i in range(17):
        dx, dy = MEASURED[i]
        if i in (1, 2):
            dx *= eyes_apart  # a head turned to three-quarter view narrows the eye spacing
        x, y = width / 2 + dx * H, dy * H
        seen = 0 <= y <= h and (arms or i not in (7, 8, 9, 10))
        kp.append([x, min(y, h + 0.3 * H), 0.9 if seen else 0.1])
    return kp, h


@pytest.mark.parametrize("name,bottom,want", [
    ("collar", 1.6 + 0.12 * TORSO, "close"),
    ("chest", 1.6 + 0.33 * TORSO, "close"),
    ("waist", 1.6 + 1.6, "half"),
    ("belt", 1.6 + 0.8 * TORSO, "half"),
    ("hip line", 1.6 + 0.98 * TORSO, "half"),
])
def test_cut_below_the_shoulders_in_head_heights(name, bottom, want):
    # pattern 4: hips at the frame edge come with confidences near 0; the frame's reach below
    # the shoulder line, in heads of the head itself, decides (waist = 1.5 H below the shoulders)
    for arms in (True, False):
        kp, h = measured_cut(bottom, arms=arms)
        kp[11][2] = kp[12][2] = 0.2  # clamped to the edge, unsure
        out = classify(kp, 400, h)
        assert out["framing"] == want, (name, arms, out)
    # a head turned to three-quarter view measures from the eye-to-shoulder distance instead
    kp, h = measured_cut(bottom, eyes_apart=0.5)
    assert classify(kp, 400, h)["framing"] == want, name


def test_close_portrait_with_a_big_face_and_short_neck_stays_close():
    # a large face near the lens, shoulders raised: eye-to-shoulder looks short, eye spacing does not
    # (shoulders 0.6 H below the eyes, frame 1.2 H below the shoulders: measured in eye-to-shoulder
    # distances alone that would be 2.2 "heads", a waist-up shot)
    kp, h = measured_cut(0.5 + 0.6 + 1.2)
    for i in (5, 6):
        kp[i][1] = (0.5 + 0.6) * H
    assert classify(kp, 400, h)["framing"] == "close"


@pytest.mark.parametrize("caption,fixed", [
    ("jane_doe, smiling", "jane_doe, close portrait, smiling"),
    ("jane_doe", "jane_doe, close portrait"),
    # prose: never split a sentence; the phrase closes the trigger's clause
    ("a photo of jane_doe smiling in a park", "a photo of jane_doe smiling in a park, close portrait"),
    ("A photo of jane_doe. She is smiling.", "A photo of jane_doe, close portrait. She is smiling."),
    ("jane_doe sits on a bench, reading. The light is soft.",
     "jane_doe sits on a bench, close portrait, reading. The light is soft."),
])
def test_framing_phrase_lands_where_a_person_would_write_it(caption, fixed):
    import importlib

    insert_framing = importlib.import_module("lint_rules.KL510").insert_framing
    assert insert_framing(caption, "jane_doe", "close portrait")[0] == fixed


def test_a_frontal_head_without_a_detected_face_is_faceless():
    from curate.analysis.face_framing import faceless_head

    kp, h = measured_cut(4.0)
    rec = describe(_pose([[x * 3, y * 3, c] for x, y, c in kp], 1200, 3 * h))  # a 120 px head
    none_found = {"faces": [], "subject": None, "reason": "not detected", "scan": "head"}
    assert rec["head_height_px"] >= 96
    assert faceless_head(rec, none_found)
    assert not faceless_head(rec, {"faces": [{"box": [0, 0, 9, 9]}], "subject": {"box": [0, 0, 9, 9]}})
    assert not faceless_head(rec, {**none_found, "reason": "too small"})  # the detector had no chance
    turned = [list(p) for p in rec["keypoints"]]
    turned[4][2] = 0.1  # one ear hidden: a turned head the frontal detector may well miss
    assert not faceless_head({**rec, "keypoints": turned}, none_found)
    small = describe(_pose(kp, 400, h))  # the same head 40 px high: too few pixels to judge
    assert not faceless_head(small, none_found)
