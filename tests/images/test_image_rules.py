"""image.* rules (KL101-KL108, KL201-KL202) on real photos and real broken files."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image, ImageFilter

from curate.config import Config
from curate.dataset.derived import MANIFEST
from curate.engine.runner import lint_dataset
from curate.testing import make_dataset, run_cli
from tests.images.conftest import jpeg_bytes, png_bytes, with_jpeg_comment

IMAGE_RULES = ["KL1", "KL2"]
# the zoo builds many cases from one source photo, so they are look-alikes by design: KL202
# has its own dataset below
ZOO_RULES = ["KL1", "KL201"]


def by_file(result):
    out: dict[str, list] = {}
    for d in result.diagnostics:
        out.setdefault(d.rel, []).append(d)
    return out


def codes(result, rel):
    return sorted(d.code for d in by_file(result).get(rel, []))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, photos, large):
    """One dataset with a clean photo and one case per rule, each built from a real photo."""
    root = tmp_path_factory.mktemp("zoo")
    peng = Image.open(large["pengwei"]).convert("RGB")  # 2160x2880 portrait
    fei_bytes = large["lifeifei"].read_bytes()
    studio = Image.open(large["studio"]).convert("RGB")  # 2048x2048
    small_src = photos / "mmpose-tests-data/coco/000000000785.jpg"  # 640x425
    files: dict = {
        "clean.jpg": large["pengwei"],
        "clean2.jpg": large["lapa"],
        # KL101
        "truncated.jpg": fei_bytes[: len(fei_bytes) * 2 // 5],
        "zero.jpg": b"",
        "text.jpg": "this is a caption, not a photo\n",
        "png_named.jpg": png_bytes(Image.open(small_src).resize((1100, 1100))),
        "webp_named.png": (photos / "pulid-example-inputs/zcy.webp").read_bytes(),
        "lfs.jpg": b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 123456\n",
        # KL102
        "small.jpg": small_src,  # 640x425: short side < 512 -> error
        "medium.jpg": jpeg_bytes(studio.resize((1200, 800))),  # 800 -> warning
        # KL103
        "rotated.jpg": _exif_rotated(studio.resize((1400, 1100))),
        # KL104
        "cutout.png": png_bytes(_with_alpha(studio.resize((1100, 1100)), transparent=0.4)),
        "opaque_alpha.png": png_bytes(studio.resize((1100, 1100)).convert("RGBA")),
        # KL105
        "bw.jpg": jpeg_bytes(peng.resize((1080, 1440)).convert("L").convert("RGB")),
        "gray_l.png": png_bytes(studio.resize((1100, 1100)).convert("L")),
        # KL106
        "strip.jpg": jpeg_bytes(peng.crop((600, 0, 1300, 2880)).resize((1100, 4526))),
        # KL107
        "dark.jpg": jpeg_bytes(studio.resize((1100, 1100)).point(lambda v: v * 0.22)),
        "blown.jpg": jpeg_bytes(studio.resize((1100, 1100)).point(lambda v: 243 + v * 12 // 255)),
        # KL108
        "blurred.jpg": jpeg_bytes(peng.filter(ImageFilter.GaussianBlur(peng.width * 0.006))),
        # KL201: same JPEG stream with an extra comment segment, and a lossless PNG re-save
        "dup_src.jpg": large["lifeifei"],
        "zz/dup_copy.jpg": with_jpeg_comment(fei_bytes, b"exported by klint tests"),
        "lossless.png": png_bytes(studio.resize((1100, 1100))),
        "lossless_again.png": png_bytes(studio.resize((1100, 1100)), compress_level=1),
    }
    make_dataset(root, files)
    return root, lint_dataset(root, Config(select=ZOO_RULES), use_cache=False)


def _exif_rotated(im: Image.Image, orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(im, exif=exif.tobytes())


def _with_alpha(im: Image.Image, transparent: float) -> Image.Image:
    rgba = im.convert("RGBA")
    w, h = rgba.size
    alpha = Image.new("L", (w, h), 255)
    alpha.paste(0, (0, 0, w, int(h * transparent)))
    rgba.putalpha(alpha)
    return rgba


def test_clean_real_photos_have_no_image_findings(zoo):
    _, result = zoo
    # burned-in text has its own labelled tests (tests/text): a sweater print here is scene text
    assert [c for c in codes(result, "clean.jpg") if c != "KL109"] == []
    assert [c for c in codes(result, "clean2.jpg") if c != "KL109"] == []


@pytest.mark.parametrize("rel, needle", [
    ("truncated.jpg", "cannot decode"),
    ("zero.jpg", "empty file (0 bytes)"),
    ("text.jpg", "not an image: the file is text"),
    ("lfs.jpg", "git lfs pull"),
])
def test_unreadable_files_are_errors(zoo, rel, needle):
    _, result = zoo
    diags = by_file(result)[rel]
    assert [d.code for d in diags] == ["KL101"], diags  # every other rule skips it
    assert diags[0].severity == "error"
    assert needle in diags[0].message


@pytest.mark.parametrize("rel, real, ext", [("png_named.jpg", "PNG", ".png"), ("webp_named.png", "WEBP", ".webp")])
def test_wrong_extension_names_the_real_format(zoo, rel, real, ext):
    _, result = zoo
    [d] = [d for d in by_file(result)[rel] if d.code == "KL101"]
    assert d.severity == "warning"
    assert d.message.startswith(f"{real} data named ") and f"rename it to {ext}" in d.message
    assert d.value == real


def test_resolution_error_below_half_warning_above(zoo):
    _, result = zoo
    small = [d for d in by_file(result)["small.jpg"] if d.code == "KL102"]
    medium = [d for d in by_file(result)["medium.jpg"] if d.code == "KL102"]
    assert [(d.severity, d.value, d.threshold) for d in small] == [("error", 425, 1024)]
    assert [(d.severity, d.value) for d in medium] == [("warning", 800)]
    assert "upscale" not in small[0].message.lower().replace("is upscaled", "")  # never advises upscaling


def test_resolution_follows_config(zoo):
    root, _ = zoo
    result = lint_dataset(root, Config(select=["KL102"], resolution=512), use_cache=False)
    assert [d.rel for d in result.diagnostics] == ["small.jpg"]
    assert result.diagnostics[0].severity == "warning"


def test_exif_rotation(zoo):
    _, result = zoo
    [d] = [d for d in by_file(result)["rotated.jpg"] if d.code == "KL103"]
    assert d.severity == "error" and d.value == 6 and "rotated 90° clockwise" in d.message
    assert all(d.code != "KL103" for d in result.diagnostics if d.rel != "rotated.jpg")


def test_alpha_quantified(zoo):
    _, result = zoo
    [cut] = [d for d in by_file(result)["cutout.png"] if d.code == "KL104"]
    assert cut.severity == "warning" and cut.value == pytest.approx(0.4, abs=0.01)
    assert "40.0% of pixels are transparent" in cut.message
    [opaque] = [d for d in by_file(result)["opaque_alpha.png"] if d.code == "KL104"]
    assert opaque.severity == "info" and opaque.value == 0


def test_grayscale(zoo):
    _, result = zoo
    flagged = sorted(d.rel for d in result.diagnostics if d.code == "KL105")
    assert flagged == ["bw.jpg", "gray_l.png"]
    assert "mode L" in next(d.message for d in result.diagnostics if d.code == "KL105" and d.rel == "gray_l.png")


def test_extreme_aspect(zoo):
    _, result = zoo
    flagged = [d for d in result.diagnostics if d.code == "KL106"]
    assert [(d.rel, round(d.value, 2)) for d in flagged] == [("strip.jpg", 0.24)]


def test_exposure(zoo):
    _, result = zoo
    flagged = {d.rel: d.message for d in result.diagnostics if d.code == "KL107"}
    assert set(flagged) == {"dark.jpg", "blown.jpg"}
    assert flagged["dark.jpg"].startswith("too dark") and flagged["blown.jpg"].startswith("blown out")


def test_blur(zoo):
    _, result = zoo
    assert sorted(d.rel for d in result.diagnostics if d.code == "KL108") == ["blurred.jpg"]


def test_exact_duplicates_by_pixels(zoo):
    _, result = zoo
    dups = {d.rel: d for d in result.diagnostics if d.code == "KL201"}
    assert set(dups) == {"zz/dup_copy.jpg", "lossless_again.png"}
    display = result.dataset.display
    assert dups["zz/dup_copy.jpg"].related == (display("dup_src.jpg"),)
    assert dups["lossless_again.png"].related == (display("lossless.png"),)
    assert f"exact duplicate of {display('dup_src.jpg')}" in dups["zz/dup_copy.jpg"].message
    assert dups["zz/dup_copy.jpg"].severity == "error"
    # exact copies are KL201's only: with KL202 on, the copies themselves stay out of it
    root = result.dataset.root
    near = lint_dataset(root, Config(select=["KL202"]), use_cache=False).diagnostics
    assert not {d.rel for d in near} & {"zz/dup_copy.jpg", "lossless_again.png"}


def test_near_duplicates_keep_the_best(tmp_path, large):
    peng = Image.open(large["pengwei"]).convert("RGB")
    files = {
        "a_blurred.jpg": jpeg_bytes(peng.filter(ImageFilter.GaussianBlur(8))),
        "b_small_q60.jpg": jpeg_bytes(peng.resize((1080, 1440), Image.LANCZOS), quality=60),
        "c_darker.jpg": jpeg_bytes(peng.point(lambda v: int(v * 0.9))),
        "d_orig.jpg": large["pengwei"],
        "e_other.jpg": large["lifeifei"],
        "f_other.jpg": large["studio"],
    }
    root = make_dataset(tmp_path / "nd", files)
    result = lint_dataset(root, Config(select=["KL202"]), use_cache=False)
    near = {d.rel: d for d in result.diagnostics}
    # the sharp full-size original is kept although it sorts last; unrelated photos stay out
    assert set(near) == {"a_blurred.jpg", "b_small_q60.jpg", "c_darker.jpg"}
    kept = result.dataset.display("d_orig.jpg")
    for d in near.values():
        assert d.message.startswith(f"near-duplicate of {kept} ("), d.message
        assert "pHash distance " in d.message
        assert d.related[0] == kept and d.severity == "warning" and d.value <= 6


def test_derived_crop_not_reported_against_its_source(tmp_path, large):
    peng = Image.open(large["pengwei"]).convert("RGB")
    crop = png_bytes(peng.resize((540, 720)))  # klint derives PNGs named <name>__close.png
    files = {"src.jpg": large["pengwei"], "_klint/derived/src__close.png": crop}
    root = make_dataset(tmp_path / "d", files)
    cfg = Config(select=["KL202"])
    before = lint_dataset(root, cfg, use_cache=False)
    assert len(before.diagnostics) == 1  # control: without the manifest the crop is a look-alike
    from curate.dataset.derived import sha256

    (root / MANIFEST).write_text(json.dumps({"version": 1, "items": [
        {"path": "_klint/derived/src__close.png", "source": "src.jpg", "box": [0, 0, 2160, 2880],
         "framing": "close", "sha256": sha256(crop)}]}))
    assert lint_dataset(root, cfg, use_cache=False).diagnostics == []


def test_cli_json(zoo, tmp_path):
    root, _ = zoo
    ds = tmp_path / "cli"
    ds.mkdir()
    for rel in ("clean.jpg", "zero.jpg", "rotated.jpg", "dup_src.jpg", "zz/dup_copy.jpg"):
        (ds / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, ds / rel)
    res = run_cli([str(ds), "--format", "json", "--select", "KL101", "--select", "KL103", "--select", "KL201",
                   "--no-progress"], cwd=tmp_path)
    assert res.exit_code == 1, res.stderr
    rows = json.loads(res.stdout)
    got = sorted((r["path"].split("cli/", 1)[1], r["code"], r["severity"]) for r in rows)
    assert got == [("rotated.jpg", "KL103", "error"), ("zero.jpg", "KL101", "error"),
                   ("zz/dup_copy.jpg", "KL201", "error")]
    dup = next(r for r in rows if r["code"] == "KL201")
    assert dup["name"] == "image.duplicate" and dup["related"][0].endswith("cli/dup_src.jpg")


def test_warm_relint_reads_cache_only(tmp_path, large, monkeypatch):
    """Second lint of an unchanged dataset decodes nothing; a changed file is decoded again."""
    import curate.analysis.image as mod

    root = make_dataset(tmp_path / "w", {"a.jpg": large["pengwei"], "b.png": png_bytes(Image.new("RGB", (64, 64)))})
    cfg = Config(select=IMAGE_RULES)
    first = lint_dataset(root, cfg)
    calls = []
    real = mod.analyse_image
    monkeypatch.setattr(mod, "analyse_image", lambda p: calls.append(p.name) or real(p))
    second = lint_dataset(root, cfg)
    assert calls == []
    assert [d.to_json() for d in second.diagnostics] == [d.to_json() for d in first.diagnostics]
    (root / "b.png").write_bytes(png_bytes(Image.new("RGB", (64, 64), (200, 10, 10))))
    lint_dataset(root, cfg)
    assert calls == ["b.png"]
