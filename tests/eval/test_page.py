"""The eval page is built on the report's page shell (curate.report.page): one stylesheet, one CSP."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("PIL", reason="pillow (a core dependency) is not installed")


def _data(img):
    row = {"image": str(img), "similarity": 0.61, "heads": 7.1, "prompt": "ohwx, full body shot", "framing": "full"}
    cells = [{"checkpoint": "<script>alert(1)</script>", "strength": 0.8, "images": 1, "face_rate": 1.0,
              "identity_mean": 0.55, "identity_spread": 0.0, "heads_median": 7.1, "heads_reference": 7.0,
              "rows": [row]},
             {"checkpoint": "run/final", "strength": 1.0, "images": 1, "face_rate": 1.0, "identity_mean": 0.61,
              "identity_spread": 0.0, "heads_median": 7.1, "heads_reference": 7.0, "rows": [row]}]
    return {"model": "tiny", "prompt_set": "1", "prompts": ["p"], "seeds": [0], "steps": 4, "identity_threshold": 0.45,
            "ratio_tolerance": 1.0, "reference_faces": 2, "reference_heads": [7.0], "notes": ["a <b> note"],
            "cells": cells, "best": 1, "passed": True}


def test_eval_page_uses_the_report_shell_and_marks_the_best_cell(tmp_path):
    from PIL import Image

    from curate.report.template import CSS
    from plugins.klein.eval_backend import page

    img = tmp_path / "a.png"
    Image.new("RGB", (40, 60), (120, 30, 30)).save(img)
    html = page(_data(img))
    assert CSS in html and "default-src 'none'" in html and "script-src 'none'" in html
    assert "<script" not in html  # a hostile checkpoint name is escaped, and the page runs no script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &lt;b&gt; note" in html
    best = re.findall(r"<tr class=best><td class='mono'>([^<]*)", html)
    assert [b.strip() for b in best] == ["run/final"]
    assert html.count("data:image/jpeg;base64,") == 2 and "verdict ok" in html
