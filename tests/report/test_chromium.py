"""The report as a person sees it: rendered by a real headless Chromium, DOM and screenshot checked."""

from __future__ import annotations

import re
import shutil
from collections import Counter
import subprocess
from pathlib import Path

import pytest

from curate.config import load_config
from curate.engine.runner import lint_dataset
from curate.report import build_report, collect_records
from curate.report.builder import LABEL, framing_of
from curate.testing import run_cli
from tests.report.conftest import PHOTOS, labelled_records

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium absent (apt-get install -y chromium)")
# where a failing run leaves its screenshots for a human to look at
SHOTS = Path(__file__).resolve().parents[2] / ".pytest_cache" / "report-shots"


def chromium(html: Path, profile: Path, *args: str, fragment: str = "") -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,2000", *args,
           html.resolve().as_uri() + fragment]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def render(html: Path, tmp: Path) -> tuple[str, Path]:
    """(DOM after the page's JS ran, screenshot path)."""
    dom = chromium(html, tmp / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    png = tmp / f"{html.stem}.png"
    shot = chromium(html, tmp / "profile", f"--screenshot={png}")
    assert shot.returncode == 0 and png.is_file(), shot.stderr[-2000:]
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(png, SHOTS / png.name)
    return dom.stdout, png


def text(dom: str) -> str:
    """Visible-ish text: style/script dropped, inline tags removed, block tags turned into spaces."""
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.S)
    dom = re.sub(r"</?(?:span|b|code|small|em|strong)\b[^>]*>", "", dom)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


def assert_looks_like_a_page(png: Path) -> None:
    from PIL import Image, ImageStat

    im = Image.open(png).convert("RGB")
    assert im.size == (1400, 2000) and png.stat().st_size > 100_000
    assert min(ImageStat.Stat(im).stddev) > 20  # not blank: thumbnails, bars and text vary a lot
    return im


def near(im, rgb: tuple[int, int, int], tol: int = 18) -> int:
    """How many pixels are within tol of a colour (to prove the CSS really painted it)."""
    import numpy as np

    a = np.asarray(im.resize((700, 1000)), dtype=np.int16)
    return int((np.abs(a - np.array(rgb, dtype=np.int16)).max(axis=2) <= tol).sum())


def test_labelled_report_renders(report_ds, tmp_path):
    result = lint_dataset(report_ds, load_config(report_ds.resolve()))
    page = tmp_path / "labelled.html"
    page.write_text(build_report(result, records=labelled_records()), "utf-8")
    dom, png = render(page, tmp_path)

    assert 'class="js"' in dom  # the filtering script ran under the page's CSP
    # the caption's script and onerror handler did not (both would have changed the title)
    assert re.search(r"<title>(.*?)</title>", dom).group(1) == f"klint report · {report_ds.name}"
    body = text(dom)
    for name in PHOTOS:
        assert name in body
    for heading in ("Close-up (3)", "Half-body (2)", "Full-body (3)"):
        assert heading in body
    assert "Framing not analysed" not in body
    assert "Close-up 3" in body and "Half-body 2" in body and "Full-body 3" in body
    assert "Each framing is within 13 points of its target" in body  # 2 of 8 is over the 20.3% cut
    for code in ("KL501", "KL503", "caption.missing", "caption.orphan"):
        assert code in body
    assert '&lt;script&gt;document.title="pwned"&lt;/script&gt;' in dom
    assert "Not ready to train" in body and "studio" in body and "Background 2" in body

    im = assert_looks_like_a_page(png)
    # the composition bar's three colours are on screen, not just in the stylesheet
    for rgb in ((0x74, 0x59, 0xE0), (0x0E, 0x9A, 0xA7), (0xE5, 0x79, 0x3B)):
        assert near(im, rgb) > 500, rgb


def test_cli_report_renders(report_ds, tmp_path):
    """End to end: `klint report` with whatever framing analysis this build has."""
    out = tmp_path / "cli.html"
    res = run_cli(["report", str(report_ds), "-o", str(out), "--no-progress"])
    assert res.exit_code == 0, res.stderr
    dom, png = render(out, tmp_path)
    body = text(dom)
    result = lint_dataset(report_ds, load_config(report_ds.resolve()))
    records, _ = collect_records(result)
    groups = Counter(framing_of(r) for r in records)
    assert sum(groups.values()) == len(PHOTOS)
    for g, n in groups.items():
        assert f"{LABEL[g]} ({n})" in body
    for name in PHOTOS:
        assert name in body
    for d in result.diagnostics:
        assert d.code in body and d.message.split(":")[0][:30] in body.replace("&amp;", "&")
    assert f"{len(PHOTOS)} images" in body
    assert_looks_like_a_page(png)


def test_filter_script_hides_clean_cards(report_ds, tmp_path):
    result = lint_dataset(report_ds, load_config(report_ds.resolve()))
    page = tmp_path / "filter.html"
    page.write_text(build_report(result, records=labelled_records(), thumb_size=64), "utf-8")
    dom = chromium(page, tmp_path / "profile", "--dump-dom", fragment="#error")
    assert dom.returncode == 0, dom.stderr[-2000:]
    cards = re.findall(r'<article class="card sev-(\w+)( hidden)?"', dom.stdout)
    assert len(cards) == len(PHOTOS) and any(s == "error" for s, _ in cards)
    for sev, hidden in cards:
        assert bool(hidden) == (sev != "error"), (sev, hidden)
    on = re.findall(r'<button[^>]*class="on"[^>]*>([^<]+)', dom.stdout)
    assert on == ["Errors"]
