"""The eval metrics on real photos (not generated ones): stature in head heights, identity."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from curate.analysis.proportions import detect_poses, measure_poses, stature, summary

LABELS = Path(__file__).resolve().parents[1] / "data" / "framing_labels.csv"
SEATED = ("mmpose-tests-data/mpii/052475643.jpg", "mmpose-tests-data/panoptic/005880453_01_l.jpg",
          "pool/icon/8da7ceb94669c2f65cbd28022e1f9876.png")
LYING = ("mmpose-tests-data/h36m/S5/S5_SittingDown.54138969/S5_SittingDown.54138969_002061.jpg",)
STANDING = ("pool/icon/028009.jpg", "mmpose-tests-data/fld/img_00000128.jpg", "pool/oldphotos/old/b.png",
            "pool/pifuhd/test.png")
# upright-looking legs (each leg straight) but the hips sink: a deep stance, a batter's crouch
BENT_KNEES = ("pool/icon/c9856a2bc31846d684cbb965457fad59.png", "mmpose-tests-data/coco/000000196141.jpg")
FEET_CUT = ("mmpose-tests-data/mpii/060754485.jpg", "mmpose-tests-data/mpii/051423444.jpg")
BENT_OVER = ("pool/oldphotos/old/c.png", "mmpose-tests-data/mhp/10084.jpg")  # porter under a load, dribbling
HEAD_CUT = ("pool/icon/003883.jpg",)
HALF = ("pool/yolov5/zidane.jpg", "mmpose-tests-data/mhp/10112.jpg")


def _measure(photos, rels):
    return dict(zip(rels, measure_poses(detect_poses([photos / r for r in rels]))))


def test_standing_adults_measure_in_the_adult_range(photos):
    got = _measure(photos, STANDING)
    for rel, m in got.items():
        assert m["heads"] is not None, (rel, m)
        assert 5.5 <= m["heads"] <= 8.5, (rel, m)


def test_seated_lying_cropped_and_half_are_excluded_with_a_reason(photos):
    got = _measure(photos, SEATED + LYING + HEAD_CUT + HALF + BENT_KNEES + FEET_CUT + BENT_OVER)
    for rel in BENT_KNEES:
        assert got[rel]["heads"] is None and "knees bent" in got[rel]["reason"], (rel, got[rel])
    for rel in FEET_CUT:
        assert got[rel]["heads"] is None and "feet cut" in got[rel]["reason"], (rel, got[rel])
    for rel in BENT_OVER:
        assert got[rel]["heads"] is None and "bent over" in got[rel]["reason"], (rel, got[rel])
    for rel in SEATED:
        assert got[rel]["heads"] is None and "seated" in got[rel]["reason"], (rel, got[rel])
    for rel in LYING:
        assert got[rel]["heads"] is None and "lying" in got[rel]["reason"], (rel, got[rel])
    assert "head cut" in got[HEAD_CUT[0]]["reason"]
    for rel in HALF:
        assert got[rel]["heads"] is None and got[rel]["reason"].startswith("not full body"), (rel, got[rel])


def test_no_half_body_photo_is_ever_measured(photos):
    rows = [r for r in csv.DictReader(LABELS.open()) if r["framing"] in ("half", "close")][:40]
    got = measure_poses(detect_poses([photos / r["path"] for r in rows]))
    assert all(m["heads"] is None for m in got), [(r["path"], m) for r, m in zip(rows, got) if m["heads"]]


def _figure(H=50.0):
    """An upright 8-head figure drawn with the module's anatomy: crown at 0, eye line half a
    head down, ankle joint 0.4 head above the sole at 8 heads; hips 4.2 heads up."""
    from curate.analysis import proportions as P

    eye_y = P.EYE_TO_CROWN * H
    ank_y = 8 * H - P.ANKLE_TO_SOLE * H
    pts = {1: (100 + P.EYE_SPACING * H / 2, eye_y), 2: (100 - P.EYE_SPACING * H / 2, eye_y),
           3: (100 + P.EAR_SPACING * H / 2, eye_y + 3), 4: (100 - P.EAR_SPACING * H / 2, eye_y + 3),
           0: (100, eye_y + 10), 5: (80, eye_y + P.EYE_TO_SHOULDER * H), 6: (120, eye_y + P.EYE_TO_SHOULDER * H),
           11: (90, 3.8 * H), 12: (110, 3.8 * H), 13: (90, 5.8 * H), 14: (110, 5.8 * H), 15: (90, ank_y),
           16: (110, ank_y)}
    kp = [[0.0, 0.0, 0.0] for _ in range(17)]
    for i, (x, y) in pts.items():
        kp[i] = [x, y, 0.95]
    return {"framing": "full", "keypoints": kp, "face_reason": None}


def test_stature_of_a_synthetic_upright_figure():
    subj = _figure()
    m = stature(subj, 200, 8 * 50 + 20)
    assert m["head_px"] == pytest.approx(50.0, abs=0.2)
    assert m["heads"] == pytest.approx(8.0, abs=0.02)
    # the same figure with its soles past the bottom edge: excluded, not read short
    assert "feet cut" in stature(subj, 200, 8 * 50 - 15)["reason"]
    # bent at the knees (thigh horizontal): seated
    kp2 = [list(p) for p in subj["keypoints"]]
    kp2[13], kp2[14] = [180, 195, 0.95], [200, 195, 0.95]
    assert "seated" in stature({**subj, "keypoints": kp2}, 220, 420)["reason"]


def test_a_lunge_with_straight_legs_is_excluded():
    # the crouch the earlier measure let through: both legs straight, feet wide apart, hips low
    subj = _figure()
    kp = [list(p) for p in subj["keypoints"]]
    for i in (5, 6, 11, 12, 0, 1, 2, 3, 4):
        kp[i][1] += 60  # the whole upper body sinks
    for p in kp:
        p[0] += 60
    # each leg straight (4 heads), 35 degrees out from the vertical: hips 0.82 of a leg above the ankles
    kp[13], kp[15] = [98.5, 323.7, 0.95], [46.8, 397.4, 0.95]
    kp[14], kp[16] = [221.5, 323.7, 0.95], [273.2, 397.4, 0.95]
    m = stature({**subj, "keypoints": kp}, 340, 440)
    assert m["heads"] is None and "knees bent" in m["reason"], m


def test_summary_ignores_excluded():
    assert summary([7.0, None, 8.0, 6.0]) == {"n": 3, "median": 7.0, "mean": 7.0, "min": 6.0, "max": 8.0}
    assert summary([None])["n"] == 0


def test_identity_separates_same_person_from_others(photos):
    from curate.eval_job import reference_set, score_images, summarise

    ids = photos / "identities"
    refs = reference_set([ids / "obama" / "obama.jpg", ids / "obama" / "obama1.jpg"])
    assert len(refs["embeddings"]) == 2
    same = score_images([ids / "obama" / n for n in ("obama2.jpg", "obama3.jpg")], refs["embeddings"])
    other = score_images([ids / "biden" / "biden.jpg", ids / "kit_harington" / "john1.jpeg",
                          ids / "rose_leslie" / "img1.jpg"], refs["embeddings"])
    assert all(r["face"] for r in same + other)
    assert min(r["similarity"] for r in same) > max(r["similarity"] for r in other) + 0.2
    s_same = summarise(same, [], threshold=0.45, tolerance=1.0)
    s_other = summarise(other, [], threshold=0.45, tolerance=1.0)
    assert s_same["identity_ok"] and not s_other["identity_ok"]
    assert s_same["face_rate"] == 1.0 and s_same["heads_delta"] is None


def test_best_cell_prefers_proportions_then_identity():
    from curate.eval_job import best_cell

    cells = [{"identity_mean": 0.7, "proportions_ok": False}, {"identity_mean": 0.6, "proportions_ok": True},
             {"identity_mean": 0.65, "proportions_ok": True}, {"identity_mean": None, "proportions_ok": True}]
    assert best_cell(cells) == 2
    assert best_cell([{"identity_mean": None, "proportions_ok": True}]) is None


def test_prompt_set_is_fixed_and_user_prompts_get_the_trigger(tmp_path):
    from curate.errors import KlintError
    from curate.eval_job import prompt_set

    base = prompt_set("jane_doe")
    assert [p.framing for p in base] == ["close", "close", "half", "half", "full", "full"]
    assert all(p.text.startswith("jane_doe, ") for p in base)
    f = tmp_path / "p.txt"
    f.write_text("# comment\nfull body shot, on a beach\njane_doe on a bike\n")
    extra = prompt_set("jane_doe", f)[6:]
    assert [(p.framing, p.text) for p in extra] == [("full", "jane_doe, full body shot, on a beach"),
                                                    ("user", "jane_doe on a bike")]
    f.write_text("x" * 600)
    with pytest.raises(KlintError, match="longer than"):
        prompt_set("jane_doe", f)


def test_holdout_photos_are_the_identity_reference(photos):
    from curate.eval_job import reference_set

    ids = photos / "identities"
    rs = reference_set([photos / "pool" / "icon" / "028009.jpg"],
                       holdout=[ids / "obama" / "obama.jpg", ids / "obama" / "obama1.jpg"])
    assert len(rs["embeddings"]) == 2 and len(rs["heads"]) == 1


def test_stature_tracks_statures_read_by_eye(photos):
    # crown, chin and sole marked by eye on real photos (tests/data/stature_by_eye.csv); the keypoint
    # head cues scatter by about 15% between people, so each figure may be off, but never by 1.5 heads
    rows = list(csv.DictReader((LABELS.parent / "stature_by_eye.csv").open()))
    got = measure_poses(detect_poses([photos / r["path"] for r in rows]))
    for r, m in zip(rows, got):
        by_eye = (float(r["sole_y"]) - float(r["crown_y"])) / (float(r["chin_y"]) - float(r["crown_y"]))
        assert m["heads"] is not None and abs(m["heads"] - by_eye) < 1.5, (r["path"], by_eye, m)


def test_a_cell_with_big_heads_fails_the_proportions_gate():
    from curate.eval_job import summarise

    rows = [{"face": True, "similarity": 0.6, "heads": h} for h in (5.0, 5.4, None)]
    cell = summarise(rows, [7.2, 6.8, 7.0], threshold=0.45, tolerance=1.0)
    assert cell["heads_median"] == 5.2 and cell["heads_reference"] == 7.0 and cell["heads_delta"] == -1.8
    assert cell["heads_measured"] == 2 and cell["identity_ok"] and not cell["proportions_ok"]
    assert summarise(rows, [7.2, 6.8, 7.0], threshold=0.45, tolerance=2.0)["proportions_ok"]
