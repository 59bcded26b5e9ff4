"""`klint report`: the HTML builder and the CLI command (no browser; see test_chromium.py for rendering)."""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest

from curate.config import load_config
from curate.engine.runner import lint_dataset
from curate.report import build_report
from curate.report.builder import _overlay, composition
from curate.testing import make_dataset, run_cli
from tests.report.conftest import EVIL, PHOTOS, labelled_records


@pytest.fixture(scope="module")
def result(report_ds):
    return lint_dataset(report_ds, load_config(report_ds.resolve()))


@pytest.fixture(scope="module")
def labelled_html(result):
    return build_report(result, records=labelled_records(), thumb_size=128)


def _between(html: str, start: str, end: str | None) -> str:
    i = html.index(start)
    j = html.index(end, i) if end else len(html)
    return html[i:j]


def _card(html: str, name: str) -> str:
    """The <article> whose name line is `name`."""
    m = re.search(r'<article class="card[^>]*>(?:(?!</article>).)*?<div class="name"[^>]*>[^<]*' + re.escape(name)
                  + r'</div>.*?</article>', html, re.S)
    assert m, f"no card for {name}"
    return m.group(0)


def test_cards_are_grouped_by_framing(labelled_html):
    close = _between(labelled_html, 'id="group-close"', 'id="group-half"')
    half = _between(labelled_html, 'id="group-half"', 'id="group-full"')
    full = _between(labelled_html, 'id="group-full"', 'id="dataset"')
    for name, (_, framing) in PHOTOS.items():
        where = {"close": close, "half": half, "full": full}
        for f, chunk in where.items():
            assert (f'>{name}</div>' in chunk) == (f == framing), (name, f)
    assert 'id="group-unknown"' not in labelled_html and 'id="group-none"' not in labelled_html
    assert labelled_html.count('<article class="card') == len(PHOTOS)


def test_composition_bar_and_what_is_missing(labelled_html):
    comp = _between(labelled_html, 'id="composition"', "</section>")
    assert ">Close-up 3</div>" in comp and ">Half-body 2</div>" in comp and ">Full-body 3</div>" in comp
    assert comp.count('class="target"') == 2  # the 1/3 and 2/3 markers
    # 2 of 8 half-body is 25.0%: over dataset.composition's 20.3% threshold, so on target as in lint
    assert "short" not in comp and comp.count("on target") == 3
    assert "25.0%" in comp and "Each framing is within 13 points of its target" in comp


def test_diagnostics_sit_beside_their_image(result, labelled_html):
    card = _card(labelled_html, "indoor_029.png")
    assert "KL501" in card and "caption.missing" in card and 'class="card sev-error"' in card
    assert "no caption" in card
    # every card shows exactly its own image's and caption's findings (whatever rules this build has)
    for name in PHOTOS:
        stem = name.rsplit(".", 1)[0]
        mine = {d.code for d in result.diagnostics if d.rel.rsplit(".", 1)[0] == stem}
        card = _card(labelled_html, name)
        assert set(re.findall(r"<code>(KL\d{3})</code>", card)) == mine, name
        assert ("no problems" in card) == (not mine)
    dataset = _between(labelled_html, 'id="dataset"', "</section>")
    assert "KL503" in dataset and "stray.txt" in dataset
    assert "KL503" not in _between(labelled_html, 'id="images"', 'id="dataset"')


def test_user_text_is_escaped_and_nothing_loads_from_outside(labelled_html):
    assert EVIL not in labelled_html
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&lt;img src=x" in labelled_html
    assert labelled_html.count("<script") == 1 and labelled_html.count("<img") == 0
    assert not re.search(r"\b(?:src|href|action)\s*=", labelled_html.replace("&lt;img src=x", ""))
    assert all(u.startswith('url("data:image/jpeg;base64,') for u in re.findall(r"url\([^)]{0,40}", labelled_html))
    # the CSP lets only our own script run, so even a slipped escape could not execute
    script = re.search(r"<script>(.*?)</script>", labelled_html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in labelled_html and "default-src 'none'" in labelled_html


def test_thumbnails_are_small_jpegs_defined_once(labelled_html):
    blobs = re.findall(r'url\("data:image/jpeg;base64,([^"]+)"\)', labelled_html)
    assert len(blobs) == len(PHOTOS)  # reused by the grid and both cluster strips, embedded once
    from io import BytesIO

    from PIL import Image

    for b in blobs:
        im = Image.open(BytesIO(base64.b64decode(b)))
        assert im.format == "JPEG" and max(im.size) == 128


def test_lighting_and_background_clusters(labelled_html):
    variety = _between(labelled_html, 'id="variety"', "</section>")
    assert "studio" in variety and "5 images · 62%" in variety
    assert "Background 1" in variety and "4 images · 50%" in variety and "Background 0" not in variety
    assert "dominates" not in variety  # nothing reaches 70%


def test_a_dominating_cluster_is_highlighted(result):
    recs = labelled_records()
    for r in recs:
        r["lighting"] = {"bucket": "flat-indoor" if r["rel"] != "skier.jpg" else "daylight"}
    html = build_report(result, records=recs, thumb_size=64)
    blocks = re.findall(r'<div class="cluster( dominant)?"><div class="cluster-head"><h3>([^<]+)', html)
    assert (" dominant", "flat-indoor") in blocks and ("", "daylight") in blocks
    assert html.count(">dominates<") == 1


def test_composition_counts_and_deficits():
    recs = [{"framing": f} for f in ["close"] * 6 + ["half"] + ["full"] + ["none"] * 2 + [None]]
    comp = composition(recs)
    assert comp.framed_images == 8 and comp.counts["none"] == 3  # unknown framing counts as none
    assert comp.status("close") == "high"
    # (1 + k) / (8 + k) >= 1/3 - 0.13 first holds at k = 1 (2/9 = 22.2%); a full third takes 3 (4/11)
    assert comp.status("half") == "low" and comp.to_add("half") == 1 and comp.to_add("half", 1 / 3) == 3
    # repeats count: x3 on the half-body photo makes it 3 of 10
    weighted = composition([{**r, "repeats": 3} if r["framing"] == "half" else r for r in recs])
    assert weighted.shares["half"] == pytest.approx(0.3) and weighted.status("half") == "ok"
    balanced = composition([{"framing": f} for f in ["close", "half", "full"] * 4])
    assert all(balanced.status(g) == "ok" for g in ("close", "half", "full"))


def test_pose_overlay_svg():
    kps = [[100 + i, 50 + 10 * i, 0.9] for i in range(17)]
    kps[3] = [0, 0, 0.0]  # a keypoint the detector did not find is not drawn
    svg = _overlay({"width": 400, "height": 300, "subject_box": [80, 40, 220, 260], "keypoints": kps})
    assert svg.startswith('<svg viewBox="0 0 400 300"') and svg.count("<circle") == 16
    assert svg.count("<rect") == 1 and 0 < svg.count("<line") < 19
    assert _overlay({"width": 400, "height": 300}) == "" and _overlay({"keypoints": kps}) == ""


def test_unreadable_image_still_gets_a_card(photos, tmp_path):
    ds = make_dataset(tmp_path / "ds", {"good.jpg": photos / "pulid-example-inputs/lecun.jpg",
                                        "good.txt": "jdoe, portrait", "broken.jpg": b"\xff\xd8 not really a jpeg",
                                        "broken.txt": "jdoe, <b>broken</b>"})
    html = build_report(lint_dataset(ds, load_config(ds)), thumb_size=64)
    broken, good = _card(html, "broken.jpg"), _card(html, "good.jpg")
    assert "image could not be read" in broken and "&lt;b&gt;broken&lt;/b&gt;" in broken
    assert re.search(r'class="thumb t\d+"', good) and not re.search(r'class="thumb t\d+"', broken)


def test_without_the_inspect_module_everything_is_framing_unknown(result, monkeypatch):
    monkeypatch.setitem(sys.modules, "curate.inspect", None)  # import fails exactly as if C's module were absent
    html = build_report(result, thumb_size=64)
    assert "is not available in this build" in html
    assert 'id="group-unknown"' in html and 'id="group-close"' not in html
    assert "Not analysed for this dataset." in html


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".klint_cache" not in p.parts}


def test_cli_writes_report_and_leaves_dataset_alone(report_ds, tmp_path):
    before = _files(report_ds)
    out = tmp_path / "r.html"
    res = run_cli(["report", str(report_ds), "-o", str(out), "--thumb-size", "96", "--no-progress"])
    assert res.exit_code == 0, res.stderr  # written even though the dataset has errors
    assert res.stdout.strip() == str(out)
    html = out.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "KL501" in html and "KL503" in html
    assert out.stat().st_mode & 0o044  # readable by others like any new file, not mkstemp's 0600
    assert _files(report_ds) == before
    assert not list(tmp_path.glob("*.klint-tmp"))


def test_cli_default_output_name(report_ds, tmp_path):
    res = run_cli(["report", str(report_ds), "--thumb-size", "64"], cwd=tmp_path)
    assert res.exit_code == 0 and (tmp_path / "klint-report.html").is_file()


@pytest.mark.parametrize("args, message", [
    (["report", "missing-dir"], "missing-dir: no such file or directory"),
    (["report", "{ds}", "-o", "{tmp}/no/such/dir/r.html"], "output folder does not exist"),
    (["report", "{ds}", "-o", "{tmp}"], "is a directory"),
])
def test_cli_bad_input_exits_2(report_ds, tmp_path, args, message):
    args = [a.format(ds=report_ds, tmp=tmp_path) for a in args]
    res = run_cli(args, cwd=tmp_path)
    assert res.exit_code == 2
    assert res.stderr.startswith("klint: error:") and message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_empty_dataset_still_reports(tmp_path):
    ds = tmp_path / "empty"
    ds.mkdir()
    html = build_report(lint_dataset(ds, load_config(ds)))
    assert "No images found." in html and "Not ready to train" in html and "KL001" in html
    assert "<article" not in html
