"""Planted-problem test: a clean real-photo dataset, then every problem planted once.

The base set must lint clean; the planted copy must report exactly the planted (rule, file)
pairs; `klint fix --unsafe-fixes` must mend the captions without touching an image byte.
Framing labels were checked by eye against tests/data/framing_labels.csv.
"""

from __future__ import annotations

import hashlib
import io
import json
import functools
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from curate.testing import make_dataset, run_cli

T = "jdoe"
# 640 rather than klein's 1024: few of the shared photos have a 1024 px short side, and the
# full-body shots need their heads >= 48 px at the training size (KL303), which rules out 512.
# The shared photos hold no one person 15 times, so the set is 15 different people: the identity
# rules (on by default) would rightly object; they are tested on real identities in
# tests/vision/test_faces.py.
CONFIG = f'trigger = "{T}"\nresolution = 640\nignore = ["identity"]\n'
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp")

M = "mmpose-tests-data/"
P = "pulid-example-inputs/"


def _load(photos: Path, rel: str) -> Image.Image:
    return Image.open(photos / rel).convert("RGB")


def _jpeg(im: Image.Image, quality: int = 95, **kw) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _crop(photos: Path, rel: str, box: tuple[int, int, int, int], mirror: bool = False) -> bytes:
    im = _load(photos, rel).crop(box)
    return _jpeg(ImageOps.mirror(im) if mirror else im)


# name -> (image source, caption). Sources: a shared photo path, or a callable making bytes.
def base_files(photos: Path) -> dict[str, str | bytes | Path]:
    """The clean set: one person per photo, face visible, 6 close / 4 half / 5 full."""
    spec: dict[str, tuple[object, str]] = {
        # close
        "c_lapa.jpg": (M + "lapa/10773046825_0.jpg", "close portrait, white collar, soft window light"),
        "c_lifeifei.jpg": (P + "lifeifei.jpg", "close portrait, conference hall, smiling at the camera"),
        "c_pengwei.jpg": (P + "pengwei.jpg", "close portrait, selfie in an office"),
        "c_rihanna.webp": (P + "rihanna.webp", "close portrait, studio backdrop, black top"),
        "c_aflw.jpg": (M + "aflw/image22568.jpg", "close portrait, outdoors by a brick wall"),
        "c_zcy.webp": (P + "zcy.webp", "close portrait, selfie in a bright room"),
        # half
        "h_selfie.jpg": (M + "deepfasion2/000265.jpg", "half body, mirror selfie, summer dress"),
        "h_truck.jpg": (M + "mpii/004645041.jpg", "half body, leaning on a lorry, sunny car park"),
        "h_greenroom.jpg": (lambda: _crop(photos, M + "mpi_inf_3dhp/TS1_002001.jpg", (690, 420, 1390, 1120)),
                            "half body, grey t-shirt, green screen studio"),
        "h_painter.jpg": (lambda: _crop(photos, M + "mpi_inf_3dhp/TS2_001850.jpg", (0, 480, 760, 1240)),
                          "half body, brown shirt, reaching for a rail"),
        # full
        "f_engine.jpg": (M + "mpii/060754485.jpg", "full body shot, standing by an open engine hood"),
        "f_stage.jpg": (M + "panoptic/005880453_01_l.jpg", "full body shot, seated cellist, black curtain"),
        # the cello player seen closer; the chair and feet stay in frame, so this is still a full shot
        "f_cellist.jpg": (lambda: _crop(photos, M + "panoptic/005880453_01_r.jpg", (400, 0, 1120, 720)),
                          "full body shot, playing the cello on a wooden stage"),
        "f_dance.jpg": (lambda: _crop(photos, M + "mpi_inf_3dhp/TS1_002001.jpg", (540, 380, 1540, 1480)),
                        "full body shot, mid step, chair behind"),
        "f_stride.jpg": (lambda: _crop(photos, M + "mpi_inf_3dhp/TS2_001850.jpg", (0, 420, 1100, 1620)),
                         "full body shot, striding, jeans and trainers"),
    }
    files: dict[str, str | bytes | Path] = {}
    for name, (src, caption) in spec.items():
        files[name] = src() if callable(src) else photos / src
        files[Path(name).stem + ".txt"] = f"{T}, {caption}"
    return files


COMMON = ", denim jacket"  # caption.common-term: planted in every non-empty caption
LONG = "jdoe, half body, " + ", ".join(f"lorry number {i} parked in a sunny yard" for i in range(90))

# caption plants, each on its own base photo: name -> new caption text (None: delete the caption)
CAPTION_PLANTS = {
    "c_zcy.txt": ("caption.missing", None),
    "f_cellist.txt": ("caption.empty", "  \n"),
    "c_aflw.txt": ("caption.trigger-missing", "close portrait, outdoors by a brick wall"),
    "c_lapa.txt": ("caption.trigger-not-first", f"close portrait of {T}, white collar, soft window light"),
    "c_lifeifei.txt": ("caption.trigger-variant", "JDoe, close portrait, conference hall, smiling at the camera"),
    "c_rihanna.txt": ("caption.face-description", f"{T}, close portrait, brown eyes, studio backdrop, black top"),
    "h_truck.txt": ("caption.too-long", LONG),
    "f_engine.txt": ("caption.framing-missing", f"{T}, standing by an open engine hood"),
    # f_stage is a full shot (confidence 1.0): "close portrait" is two framings off
    "f_stage.txt": ("caption.framing-mismatch", f"{T}, close portrait, seated cellist, black curtain"),
}
CAPTION_FIXABLE = {"caption.trigger-missing", "caption.trigger-not-first", "caption.trigger-variant",
                   "caption.face-description", "caption.framing-missing", "caption.framing-mismatch"}


def _exif_rotated(im: Image.Image) -> bytes:
    """Pixels stored on their side with orientation 6, so viewers that honour EXIF show it upright."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _jpeg(im.transpose(Image.Transpose.ROTATE_90), exif=exif.tobytes())


def _with_alpha(im: Image.Image) -> bytes:
    rgba = im.convert("RGBA")
    a = Image.new("L", im.size, 255)
    a.paste(0, (0, 0, im.width // 6, im.height))  # a transparent strip down the left edge
    rgba.putalpha(a)
    return _png(rgba)


@functools.lru_cache(maxsize=None)
def image_plants(photos: Path) -> dict[str, tuple[str, bytes | Path, str]]:
    """name -> (rule name, image, caption): each problem on its own real photo."""
    truncated = (photos / P / "lecun.jpg").read_bytes()[:700]
    ts2 = M + "mpi_inf_3dhp/TS2_001850.jpg"
    return {
        "p_broken.jpg": ("image.unreadable", truncated, "half body, by the window"),
        "p_small.jpg": ("image.resolution", photos / P / "lecun.jpg", "close portrait, office shelves"),
        "p_rotated.jpg": ("image.exif-rotation",
                          _exif_rotated(ImageOps.mirror(_load(photos, P + "pengwei.jpg").crop((0, 0, 2160, 2160)))),
                          "close portrait, selfie by a whiteboard"),
        "p_alpha.png": ("image.alpha",
                        _with_alpha(ImageOps.mirror(_load(photos, P + "lifeifei.jpg").crop((0, 0, 1000, 1000)))),
                        "close portrait, cut-out on a clear layer"),
        "p_gray.png": ("image.grayscale", photos / M / "300w/indoor_020.png", "close portrait, indoor shadows"),
        "p_tall.jpg": ("image.aspect", _crop(photos, ts2, (0, 0, 700, 2048)), "full body shot, tall narrow frame"),
        "x_dup_greenroom.jpg": ("image.duplicate", None, "half body, green screen, second export"),
        "y_near_painter.jpg": ("image.near-duplicate", None, "half body, re-saved copy"),
        "p_dark.jpg": ("image.exposure",
                       _jpeg(ImageEnhance.Brightness(_load(photos, M + "mpi_inf_3dhp/S4_Seq2_Cam0_001033.jpg")
                                                     .crop((918, 1197, 1558, 1837))).enhance(0.22)),
                       "full body shot, sitting on the floor at night"),
        "p_blur.jpg": ("image.blur",
                       _jpeg(ImageOps.mirror(_load(photos, M + "panoptic/005880453_01_r.jpg").crop((300, 0, 1020, 720)))
                             .filter(ImageFilter.GaussianBlur(7))),
                       "full body shot, cello practice, out of focus"),
        "p_truck.jpg": ("subject.none", _crop(photos, M + "mpii/051423444.jpg", (0, 0, 780, 720)),
                        "full body shot, empty car park"),
        "p_tackle.jpg": ("subject.multiple", photos / M / "ochuman/003799.jpg", "full body shot, football tackle"),
        "p_far.jpg": ("subject.small", photos / M / "h36m/S7/S7_Greeting.55011271/S7_Greeting.55011271_000396.jpg",
                      "full body shot, greeting in a lab"),
        "p_phone.jpg": ("subject.face-hidden", photos / M / "deepfasion2/000264.jpg", "half body, mirror selfie"),
    }


PLANTED_CONFIG = CONFIG + """
[train]
optimizer = "adafactor"
repeats = 2
"""


def planted_files(photos: Path) -> dict[str, str | bytes | Path]:
    files = base_files(photos)
    for cap, (_, text) in CAPTION_PLANTS.items():
        if text is None:
            del files[cap]
        else:
            files[cap] = text
    for name, (_, data, caption) in image_plants(photos).items():
        if name.startswith("x_dup_"):
            data = _read(files["h_greenroom.jpg"])
        elif name.startswith("y_near_"):
            im = Image.open(io.BytesIO(_read(files["h_painter.jpg"]))).convert("RGB")
            data = _jpeg(im.resize((int(im.width * 0.9), int(im.height * 0.9)), Image.LANCZOS), quality=60)
        files[name] = data
        files[Path(name).stem + ".txt"] = f"{T}, {caption}"
    files["stray.txt"] = f"{T}, half body, a caption whose photo was deleted"  # caption.orphan
    for rel, text in list(files.items()):
        if rel.endswith(".txt") and isinstance(text, str) and text.strip():
            files[rel] = text + COMMON
    return files


def _read(src: str | bytes | Path) -> bytes:
    return src.read_bytes() if isinstance(src, Path) else src


# --- fixtures: every dataset is analysed cold at most once, then copied with its warm cache ------

def _lint(root: Path) -> tuple[set[tuple[str, str]], list[dict]]:
    res = run_cli(["lint", root, "--format", "json", "--no-progress"])
    assert res.exit_code in (0, 1), res.stderr
    diags = json.loads(res.stdout)
    found = set()
    for d in diags:
        p = Path(d["path"])
        found.add((d["name"], "" if p == root else p.relative_to(root).as_posix()))
    return found, diags


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)  # copy2 keeps mtimes, so the analysis cache stays warm
    return dest


def _write_changes(root: Path, files: dict[str, str | bytes | Path]) -> None:
    for rel, content in files.items():
        dest = root / rel
        data = content.read_bytes() if isinstance(content, Path) else (
            content if isinstance(content, bytes) else content.encode("utf-8"))
        if not dest.exists() or dest.read_bytes() != data:
            dest.write_bytes(data)


def _image_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_EXT and ".klint_cache" not in p.parts}


def _user_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and ".klint_cache" not in p.parts}


# the problems issue 2 asks to plant in one set (the dataset-level ones have their own subsets below)
REQUIRED = {
    "caption.missing", "caption.empty", "caption.orphan", "caption.trigger-missing", "caption.trigger-not-first",
    "caption.trigger-variant", "caption.face-description", "caption.common-term", "caption.too-long",
    "caption.framing-missing", "caption.framing-mismatch", "image.unreadable", "image.resolution",
    "image.exif-rotation", "image.alpha", "image.grayscale", "image.aspect", "image.duplicate",
    "image.near-duplicate", "image.exposure", "image.blur", "subject.none", "subject.multiple", "subject.small",
    "subject.face-hidden",
}


@pytest.fixture(scope="module")
def base(photos, tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("planted") / "base", base_files(photos), CONFIG)
    return root, _lint(root)


@pytest.fixture(scope="module")
def planted(base, photos, tmp_path_factory):
    root = _copy(base[0], tmp_path_factory.mktemp("planted") / "planted")
    files = planted_files(photos)
    for gone in set(_user_files(root)) - set(files) - {"klint.toml"}:
        (root / gone).unlink()
    _write_changes(root, files)
    (root / "klint.toml").write_text(PLANTED_CONFIG, encoding="utf-8")
    return root, _lint(root)


def expected_planted(photos: Path) -> set[tuple[str, str]]:
    exp = {("caption.common-term", ""), ("caption.orphan", "stray.txt"),
           ("train.optimizer", "klint.toml"), ("train.repeats", "klint.toml")}
    for cap, (rule, _) in CAPTION_PLANTS.items():
        # a missing caption is reported on its image
        exp.add((rule, "c_zcy.webp" if rule == "caption.missing" else cap))
    exp |= {(rule, name) for name, (rule, _, _) in image_plants(photos).items()}
    return exp


# --- the tests ----------------------------------------------------------------------------------

def test_base_set_is_clean(base):
    found, diags = base[1]
    assert found == set(), diags


def test_every_planted_problem_is_reported_exactly_once(planted, photos):
    found, diags = planted[1]
    expected = expected_planted(photos)
    assert {rule for rule, _ in expected} == REQUIRED | {"train.optimizer", "train.repeats"}
    assert len(expected) == len(REQUIRED) + 2  # each problem on exactly one file
    assert found == expected, (f"missing: {sorted(expected - found)}\nextra: {sorted(found - expected)}")
    # exactly once: no rule reports the same file twice (face-description reports once per phrase)
    pairs = [(d["name"], d["path"]) for d in diags]
    assert len(pairs) == len(set(pairs))


def test_unsafe_fix_mends_captions_and_never_touches_an_image(planted, photos, tmp_path):
    root = _copy(planted[0], tmp_path / "fix")
    images = _image_hashes(root)
    before = _user_files(root)
    res = run_cli(["fix", "--unsafe-fixes", root, "--no-progress"])
    assert res.exit_code == 1, res.stderr  # unfixable problems remain
    assert _image_hashes(root) == images

    edited = {rel for rel, data in _user_files(root).items() if before.get(rel) != data}
    fixable = {cap for cap, (rule, _) in CAPTION_PLANTS.items() if rule in CAPTION_FIXABLE}
    assert edited == fixable
    found, _ = _lint(root)
    assert found == expected_planted(photos) - {(CAPTION_PLANTS[c][0], c) for c in fixable}
    assert (root / "c_aflw.txt").read_text().startswith(f"{T}, close portrait")
    assert (root / "c_lifeifei.txt").read_text().startswith(f"{T}, close portrait")
    assert "eyes" not in (root / "c_rihanna.txt").read_text()
    assert (root / "f_stage.txt").read_text().startswith(f"{T}, full body shot")

    # every edited caption has its original bytes in a backup
    backups = root / ".klint_cache" / "backups"
    saved = {p.name: p.read_bytes() for p in backups.rglob("*.txt")}
    for rel in fixable:
        assert saved.get(Path(rel).name) == before[rel], rel

    # a second run finds nothing left to fix
    after = _user_files(root)
    res2 = run_cli(["fix", "--unsafe-fixes", root, "--no-progress"])
    assert res2.exit_code == 1
    assert _user_files(root) == after
    assert "Fixed" not in res2.stdout + res2.stderr
    assert len(list(backups.iterdir())) == 1


def test_fix_diff_writes_nothing_and_shows_the_diff(planted, tmp_path):
    root = _copy(planted[0], tmp_path / "diff")
    before = _user_files(root)
    res = run_cli(["fix", "--diff", "--unsafe-fixes", root, "--no-progress"])
    assert res.exit_code in (0, 1), res.stderr
    assert _user_files(root) == before
    assert not (root / ".klint_cache" / "backups").exists() or not any((root / ".klint_cache" / "backups").iterdir())
    out = res.stdout
    assert "-JDoe, close portrait, conference hall" in out
    assert f"+{T}, close portrait, conference hall" in out
    assert f"-{T}, close portrait, seated cellist" in out
    assert f"+{T}, full body shot, seated cellist" in out
    for cap in ("c_aflw.txt", "c_lapa.txt", "c_rihanna.txt", "f_engine.txt"):
        assert cap in out


# --- dataset-level problems that cannot coexist with the clean mix: subsets of the base ---------

def _subset(base_root: Path, dest: Path, keep: set[str]) -> Path:
    root = _copy(base_root, dest)
    for rel in _user_files(root):
        if rel != "klint.toml" and Path(rel).stem not in keep:
            (root / rel).unlink()
    return root


# a set under 8 images is itself a dataset.size error: the variety subsets below need only three
# photos to show their problem, so that finding is inherent to them
SMALL = ("dataset.size", "")


@pytest.mark.parametrize("keep, expected", [
    # 2 close / 2 half / 2 full, all different light and places: only the size is wrong
    ({"c_lapa", "c_rihanna", "h_selfie", "h_greenroom", "f_engine", "f_stage"}, {SMALL}),
    # the base minus three full shots: 6 close / 4 half / 2 full (17% full)
    ({"c_lapa", "c_lifeifei", "c_pengwei", "c_rihanna", "c_aflw", "c_zcy", "h_selfie", "h_truck",
      "h_greenroom", "h_painter", "f_engine", "f_stage"}, {("dataset.composition", "")}),
    # two of three photos share one light (normal, frontal, neutral), in three different places
    ({"c_lifeifei", "h_greenroom", "f_engine"}, {SMALL, ("dataset.lighting-variety", "")}),
    # two of three photos in the same green-screen studio, under three different lights
    ({"c_lapa", "h_greenroom", "f_dance"}, {SMALL, ("dataset.background-variety", "")}),
], ids=["size", "composition", "lighting", "background"])
def test_dataset_level_problems(base, tmp_path, keep, expected):
    root = _subset(base[0], tmp_path / "subset", keep)
    found, diags = _lint(root)
    assert found == expected, diags
