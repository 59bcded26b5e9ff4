"""Issue 20: exact re-saves, flips, crops, keep-advice, tonal range and motion blur on real photos."""

from __future__ import annotations

import pytest
from PIL import Image, ImageEnhance, ImageFilter

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


def _motion(im, frac):
    """Linear (horizontal) motion blur of `frac` of the long side: the mean of shifted copies."""
    import numpy as np

    a = np.asarray(im, dtype=np.float32)
    n = max(3, int(frac * max(im.size)))
    acc = np.zeros_like(a)
    for k in range(n):
        acc[:, :, :] += np.roll(a, k - n // 2, axis=1)
    return Image.fromarray(np.clip(acc / n, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def tonal(tmp_path_factory, photos):
    peng = Image.open(photos / SOURCES[0]).convert("RGB").resize((1080, 1440))
    lapa = Image.open(photos / SOURCES[2]).convert("RGB")
    files = {
        # white-background studio shot (most pixels clipped white) and clean soft photos
        "white_bg.jpg": photos / "mmpose-tests-data/humanart/real_human/acrobatics/000000000590.jpg",
        "soft_night.jpg": photos / "pool/simswap/andy_lau/ljm2.jpg",
        "soft_bokeh.jpg": photos / "pool/sapiens/face_reel_woman/000076.jpg",
        "clean.jpg": photos / SOURCES[0],
        "flat.jpg": jpeg_bytes(peng.point(lambda v: int(128 + (v - 128) * 0.3))),
        "flat_lifted.jpg": jpeg_bytes(lapa.point(lambda v: int(150 + (v - 128) * 0.2))),
        "gain.jpg": jpeg_bytes(lapa.point(lambda v: min(255, int(v * 2.2)))),
        "motion.jpg": jpeg_bytes(_motion(peng, 0.04)),
    }
    root = make_dataset(tmp_path_factory.mktemp("tonal"), files)
    result = _lint(root, "KL105", "KL107", "KL108", "KL111", "KL112")
    out: dict[str, set] = {}
    for d in result.diagnostics:
        out.setdefault(d.code, set()).add(d.rel)
    return out


def test_white_background_passes_blown_out(tonal):
    assert "white_bg.jpg" not in tonal.get("KL107", set())
    assert "gain.jpg" in tonal.get("KL107", set())  # control: a x2.2 gain copy is blown out on the subject


def test_low_contrast_caught_and_not_called_grayscale(tonal):
    assert tonal.get("KL111", set()) == {"flat.jpg", "flat_lifted.jpg"}
    assert not {"flat.jpg", "flat_lifted.jpg"} & tonal.get("KL105", set())


def test_motion_blur_caught_clean_soft_photos_pass(tonal):
    assert tonal.get("KL112", set()) == {"motion.jpg"}
    assert not {"soft_night.jpg", "soft_bokeh.jpg", "clean.jpg", "white_bg.jpg"} & tonal.get("KL108", set())


def _crop(im, keep, fx, fy):
    """Keep `keep` of each side, the window placed at (fx, fy) of the margin (0 = left/top)."""
    cw, ch = round(im.width * keep), round(im.height * keep)
    x, y = round((im.width - cw) * fx), round((im.height - ch) * fy)
    return im.crop((x, y, x + cw, y + ch))


# off-centre hand crops: corners and edges, between the grid's kept fractions
OFF_CENTRE = [(0.87, 0.0, 0.0), (0.81, 1.0, 0.3), (0.93, 0.2, 1.0), (0.78, 0.7, 0.1)]


def test_off_centre_crops_pair_with_their_source(tmp_path, photos):
    files = {}
    for i, (rel, (keep, fx, fy)) in enumerate(zip(SOURCES, OFF_CENTRE)):
        files[f"p{i}.jpg"] = photos / rel
        files[f"p{i}_crop.jpg"] = jpeg_bytes(_crop(Image.open(photos / rel).convert("RGB"), keep, fx, fy))
    root = make_dataset(tmp_path / "d", files)
    result = _lint(root, "KL202")
    got = {d.rel: d for d in result.diagnostics}
    assert set(got) == {f"p{i}_crop.jpg" for i in range(len(SOURCES))}, [d.message for d in result.diagnostics]
    for i in range(len(SOURCES)):
        assert got[f"p{i}_crop.jpg"].related == (result.dataset.display(f"p{i}.jpg"),)
        assert "crop" in got[f"p{i}_crop.jpg"].message


def test_frames_of_one_clip_and_one_sitting_stay_apart(tmp_path, photos):
    # distinct moments that the crop windows come closest to: frames of one video reel, shots
    # of one motion-capture studio, and two expressions of one woman in one framing (window distance 5-11, but same size: no crop)
    rels = ["pool/sapiens/face_reel_woman/000001.jpg", "pool/sapiens/face_reel_woman/000076.jpg",
            "pool/sapiens/face_reel_woman/000151.jpg", "mmpose-tests-data/mpi_inf_3dhp/S4_Seq2_Cam0_001033.jpg",
            "mmpose-tests-data/mpi_inf_3dhp/S8_Seq1_Cam8_002165.jpg",
            "pool/sadtalker/same_woman_A/happy.png", "pool/sadtalker/same_woman_A/sad.png"]
    root = make_dataset(tmp_path / "d", {rel.replace("/", "_"): photos / rel for rel in rels})
    result = _lint(root, "KL202")
    assert [d.message for d in result.diagnostics] == []


def test_near_blank_frame_is_low_contrast_not_blurry(tmp_path, photos):
    # a flat frame's Laplacian variance is tiny whatever its focus: one diagnosis, KL111's
    im = Image.open(photos / SOURCES[1]).convert("RGB")
    root = make_dataset(tmp_path / "d", {"blank.jpg": jpeg_bytes(im.point(lambda v: int(128 + (v - 128) * 0.06))),
                                         "blurred.jpg": jpeg_bytes(im.filter(ImageFilter.GaussianBlur(12)))})
    result = _lint(root, "KL108", "KL111")
    assert sorted((d.rel, d.code) for d in result.diagnostics) == [("blank.jpg", "KL111"), ("blurred.jpg", "KL108")]
