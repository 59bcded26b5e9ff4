"""The text-overlay judgement and crop geometry, on hand-made OCR results (no model needed)."""

from __future__ import annotations

from curate.analysis.ocr import classify_regions, locate, normalise_text
from curate.fix.clean_crop import clean_crop_box

W, H = 1600, 1200


def rec(*regions):
    return {"width": W, "height": H, "regions": [{"box": list(b), "text": t, "conf": c} for b, t, c in regions]}


def kinds(result):
    return [(r.kind, r.severity) for r in result]


def test_locate_corners_bands_centre():
    assert locate((1300, 1120, 1580, 1180), W, H) == ("corner", "bottom-right corner")
    assert locate((20, 20, 300, 70), W, H) == ("corner", "top-left corner")
    assert locate((500, 1110, 1100, 1170), W, H) == ("band", "bottom band")
    assert locate((700, 500, 900, 560), W, H) == ("centre", "centre")


def test_watermark_words_are_errors_anywhere():
    out = classify_regions(rec(((1300, 1120, 1580, 1170), "shutterstock", 0.99),
                               ((700, 500, 1000, 560), "www.example.com", 0.95),
                               ((20, 1120, 300, 1170), "© 2019 J. Smith", 0.9)))
    assert kinds(out) == [("watermark", "error")] * 3


def test_date_stamp_subtitle_and_corner_text_are_warnings():
    out = classify_regions(rec(((1350, 1110, 1580, 1165), "12/08/2016", 0.98),
                               ((300, 1100, 1300, 1160), "I never thought I would see you", 0.97),
                               ((30, 30, 330, 80), "Anna Kowalski", 0.9)))
    assert sorted(kinds(out)) == [("date-stamp", "warning"), ("overlay", "warning"), ("subtitle", "warning")]


def test_scene_and_clothing_text_are_info():
    subject = (500, 200, 1100, 1200)
    out = classify_regions(rec(((650, 600, 950, 680), "BOB MARLEY", 0.93),  # T-shirt print
                               ((1150, 300, 1450, 380), "CAFE ROMA", 0.9)), subject)  # sign beside her
    assert sorted(kinds(out)) == [("clothing", "info"), ("scene", "info")]


def test_tiled_string_is_an_error_even_in_the_centre():
    boxes = [((x, y, x + 250, y + 40), "imagebank", 0.9) for x in (200, 700, 1200) for y in (300, 700)]
    out = classify_regions(rec(*boxes))
    assert len(out) == 6 and {k for k in kinds(out)} == {("tiled", "error")}


def test_tiny_and_unread_centre_regions_are_dropped():
    out = classify_regions(rec(((700, 500, 760, 508), "abc", 0.9), ((700, 600, 900, 650), "", 0.2)))
    assert out == []


def test_extra_words_mark_a_photographers_name():
    r = rec(((700, 500, 1000, 560), "Kowalski Studio", 0.95), ((40, 1120, 340, 1170), "Kowalski Studio", 0.95))
    # "studio" marks an overlay only where overlays sit; in the middle it is a shop sign
    assert kinds(classify_regions(r)) == [("scene", "info"), ("watermark", "error")]
    assert kinds(classify_regions(r, extra_words=["kowalski"])) == [("watermark", "error")] * 2


def test_platform_marks_in_any_script():
    r = rec(((1200, 1120, 1580, 1170), "小红书号：420315736", 0.99), ((700, 400, 1000, 480), "facebook", 0.99))
    assert kinds(classify_regions(r)) == [("watermark", "error"), ("scene", "info")]


def test_tilted_edge_touching_and_tall_border_text_is_scene():
    tilted = {"box": [600, 1100, 900, 1160], "text": "SAFETY", "conf": 0.95, "angle": -32.0}  # a lanyard
    touching = {"box": [0, 20, 300, 90], "text": "TWO WAY", "conf": 0.99, "angle": 0.0}  # a sign cut by the frame
    tall = {"box": [40, 20, 500, 150], "text": "HBO", "conf": 0.99, "angle": 0.5}  # a press wall logo
    level = {"box": [40, 20, 300, 70], "text": "Anna K.", "conf": 0.9, "angle": 0.4}
    out = classify_regions({"width": W, "height": H, "regions": [tilted, touching, tall, level]})
    assert [(r.text, r.kind) for r in out] == [("SAFETY", "scene"), ("TWO WAY", "scene"), ("HBO", "scene"),
                                               ("Anna K.", "overlay")]


def test_normalise_text_ignores_spacing_and_punctuation():
    assert normalise_text("Shutter-Stock ") == normalise_text("shutterstock")


def test_crop_removes_a_corner_mark_and_keeps_the_subject():
    regions = classify_regions(rec(((1300, 1120, 1580, 1170), "shutterstock", 0.99)))
    subject = (400, 100, 1200, 1100)
    plan = clean_crop_box(W, H, regions, subject, 1024)
    assert plan.box is not None
    x0, y0, x1, y1 = plan.box
    # the mark is gone and the subject fully inside
    assert y1 <= 1120 or x1 <= 1300
    assert x0 <= 400 and y0 <= 100 and x1 >= 1200 and y1 >= 1100
    assert min(x1 - x0, y1 - y0) >= 1024


def test_crop_refused_when_it_would_cut_the_subject_or_go_below_resolution():
    regions = classify_regions(rec(((1300, 1120, 1580, 1170), "shutterstock", 0.99)))
    cut = clean_crop_box(W, H, regions, (100, 100, 1500, 1190), 512)  # subject reaches the corner
    assert cut.box is None and "subject" in cut.reason
    small = clean_crop_box(W, H, regions, (400, 100, 1200, 1100), 1250)
    assert small.box is None and "below the training resolution 1250" in small.reason


def test_crop_refused_for_text_in_the_middle():
    regions = classify_regions(rec(((600, 500, 1000, 560), "shutterstock", 0.99)))
    plan = clean_crop_box(W, H, regions, None, 512)
    assert plan.box is None and "inpaint" in plan.reason
