"""Issue 20: exact re-saves, flips, crops, keep-advice, tonal range and motion blur on real photos."""

from __future__ import annotations

import pytest
from PIL import Image, ImageEnhance

from curate.config import Config
from curate.engine.runner import lint_dataset
from curate.testing import make_dataset
from tests.images.conftest import jpeg_bytes, png_bytes

# distinct real photos, each the source of one planted look-alike
SOURCES = ["pulid-example-inputs/pengwei.jpg", "pulid-example-inputs/lifeifei.jpg",
           "mmpose-tests-data/lapa/10773046825_0.jpg", "pool/deepface/matt_damon/img31.jpg"]


def _lint(root, *select):
    return lint_dataset(root, Config(select=list(select)), use_cache=False)


def test_png_resave_of_a_jpeg_is_an_exact_duplicate(tmp_path, photos):
    src = photos / SOURCES[0]
    full = Image.open(src)
    full.load()  # a full decode: the PNG holds exactly the JPEG's pixels
    root = make_dataset(tmp_path / "d", {"a.jpg": src, "b.png": png_bytes(full.convert("RGB"))})
    result = _lint(root, "KL201", "KL202")
    assert [(d.rel, d.code, d.severity) for d in result.diagnostics] == [("b.png", "KL201", "error")]
    assert result.diagnostics[0].related == (result.dataset.display("a.jpg"),)


def test_png_of_a_one_pixel_edit_is_not_exact(tmp_path, photos):
    src = photos / SOURCES[0]
    im = Image.open(src).convert("RGB")
    im.putpixel((5, 5), (255, 0, 0))
    root = make_dataset(tmp_path / "d", {"a.jpg": src, "b.png": png_bytes(im)})
    result = _lint(root, "KL201", "KL202")
    assert [(d.rel, d.code) for d in result.diagnostics] == [("b.png", "KL202")]


@pytest.mark.parametrize("plant, kind", [
    (lambda im: im.transpose(Image.FLIP_LEFT_RIGHT), "mirrored copy"),
    (lambda im: im.crop((im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)),
     None),
])
def test_flips_and_90_percent_crops_pair_up(tmp_path, photos, plant, kind):
    files = {}
    for i, rel in enumerate(SOURCES):
        im = Image.open(photos / rel).convert("RGB")
        files[f"p{i}.jpg"] = photos / rel
        files[f"p{i}_copy.jpg"] = jpeg_bytes(plant(im))
    root = make_dataset(tmp_path / "d", files)
    result = _lint(root, "KL202")
    got = {d.rel: d for d in result.diagnostics}
    assert set(got) == {f"p{i}_copy.jpg" for i in range(len(SOURCES))}, [d.message for d in result.diagnostics]
    for i in range(len(SOURCES)):
        d = got[f"p{i}_copy.jpg"]
        assert d.related == (result.dataset.display(f"p{i}.jpg"),)
        if kind:
            assert kind in d.message


def test_keep_advice_prefers_resolution_then_exposure(tmp_path, photos):
    im = Image.open(photos / SOURCES[1]).convert("RGB")
    files = {"a_half.jpg": jpeg_bytes(im.resize((im.width // 2, im.height // 2), Image.LANCZOS)),
             "b_bright.jpg": jpeg_bytes(ImageEnhance.Brightness(im).enhance(1.15)),
             "c_orig.jpg": jpeg_bytes(im)}
    root = make_dataset(tmp_path / "d", files)
    result = _lint(root, "KL202")
    assert sorted(d.rel for d in result.diagnostics) == ["a_half.jpg", "b_bright.jpg"]
    assert all(d.related[0] == result.dataset.display("c_orig.jpg") for d in result.diagnostics)
