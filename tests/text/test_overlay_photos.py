"""image.text-overlay and dataset.repeated-text with the real PP-OCR models on real photos."""

from __future__ import annotations

import hashlib
import json

import pytest
from PIL import Image

from curate.testing import make_dataset, plant_text, run_cli

BASE = "pool/rembg/girl-2.jpg"  # a woman seen from behind on a mountain path, no text
SHIRT = "pool/rembg/girl-1.jpg"  # "BOB MARLEY" printed on her T-shirt: text in the scene


def sha(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def lint(ds, *extra):
    res = run_cli(["lint", str(ds), "--format", "json", "--exit-zero", "--no-progress", *extra])
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture()
def planted(photos, tmp_path):
    with Image.open(photos / BASE) as im:
        marked, boxes = plant_text(im.convert("RGB"), "corner-watermark", height=0.04, opacity=0.7, corner="br")
    src = tmp_path / "marked.png"
    marked.save(src)
    return src, boxes


def test_corner_watermark_is_an_error_and_a_shirt_print_is_info(photos, planted, tmp_path):
    src, _ = planted
    ds = make_dataset(tmp_path / "ds", {"marked.png": src, "marked.txt": "jane_doe, walking on a path",
                                        "shirt.jpg": photos / SHIRT, "shirt.txt": "jane_doe, arms raised"})
    diags = [d for d in lint(ds, "--select", "KL109,KL203") if d["code"] in ("KL109", "KL203")]
    by = {d["path"].rsplit("/", 1)[-1]: d for d in diags}
    assert by["marked.png"]["severity"] == "error"
    assert "shutterstock" in by["marked.png"]["message"].lower() and "bottom-right corner" in by["marked.png"]["message"]
    # 718 x 478 px cannot give a crop at the default 1024 px: the message says why instead of a fix
    assert by["marked.png"]["fix"] is None and "below the training resolution 1024" in by["marked.png"]["message"]
    # the T-shirt print is not an overlay: at most an info line
    assert by.get("shirt.jpg", {"severity": "info"})["severity"] == "info"
    assert not any(d["code"] == "KL203" for d in diags)


def test_fix_writes_a_clean_crop_that_replaces_its_source(planted, tmp_path):
    src, boxes = planted
    ds = make_dataset(tmp_path / "ds", {"marked.png": src, "marked.txt": "jane_doe, walking on a path"},
                      config='trigger = "jane_doe"\nresolution = 256\n')
    before = sha(ds / "marked.png")
    res = run_cli(["fix", str(ds), "--unsafe-fixes", "--select", "KL109", "--no-progress"])
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "clean crop" in res.stdout + res.stderr
    crop = ds / "_klint" / "derived" / "marked__clean.png"
    assert crop.is_file() and sha(ds / "marked.png") == before  # the original is byte-identical
    assert (ds / "_klint" / "derived" / "marked__clean.txt").read_text() == "jane_doe, walking on a path"
    manifest = json.loads((ds / "_klint" / "derived" / "manifest.json").read_text())
    entry = manifest["items"][0]
    assert entry["kind"] == "text-crop" and entry["source"] == "marked.png"
    assert entry["sha256"] == sha(crop)
    # the crop no longer holds the planted text box
    x0, y0, x1, y1 = entry["box"]
    bx0, by0, bx1, by1 = boxes[0]
    assert y1 <= by0 or x1 <= bx0
    with Image.open(crop) as im:
        assert im.size == (x1 - x0, y1 - y0) and min(im.size) >= 256
    # the rule re-run is silent on both the source (replaced) and the crop (clean)
    again = [d for d in lint(ds, "--select", "KL109") if d["code"] == "KL109" and d["severity"] != "info"]
    assert again == []
    # a second fix writes nothing
    mtime = crop.stat().st_mtime_ns
    res2 = run_cli(["fix", str(ds), "--unsafe-fixes", "--select", "KL109", "--no-progress"])
    assert res2.exit_code == 0 and "clean crop" not in res2.stdout + res2.stderr
    assert crop.stat().st_mtime_ns == mtime


def test_same_signature_in_several_photos_is_repeated_text(photos, tmp_path):
    files = {}
    for i, rel in enumerate(("identities/obama/obama.jpg", "identities/biden/biden.jpg", "pool/rembg/girl-3.jpg")):
        with Image.open(photos / rel) as im:
            marked, _ = plant_text(im.convert("RGB"), "signature", text="Kowalski Foto", height=0.04, opacity=0.9)
        p = tmp_path / f"src{i}.png"
        marked.save(p)
        files[f"p{i}.png"] = p
        files[f"p{i}.txt"] = "jane_doe, portrait"
    ds = make_dataset(tmp_path / "ds", files)
    rep = [d for d in lint(ds, "--select", "KL203,KL109") if d["code"] == "KL203"]
    assert len(rep) == 1 and rep[0]["severity"] == "error" and rep[0]["value"] == 3, rep
    assert "3 photos" in rep[0]["message"]


def test_inspect_records_and_report_show_the_text(planted, tmp_path):
    src, _ = planted
    ds = make_dataset(tmp_path / "ds", {"marked.png": src, "marked.txt": "jane_doe, walking on a path"})
    res = run_cli(["inspect", str(ds), "--format", "json", "--no-progress"])
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    records = data["records"] if isinstance(data, dict) else data
    text = records[0]["text"]
    assert text["worst"] == "error" and any("shutterstock" in r["text"].lower() for r in text["regions"])
    out = tmp_path / "r.html"
    res = run_cli(["report", str(ds), "-o", str(out), "--no-progress"])
    assert res.exit_code in (0, 1), res.stderr
    html = out.read_text()
    assert 'class="textboxes"' in html and "watermark: " in html
