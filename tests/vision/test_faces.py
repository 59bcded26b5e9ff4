"""The face analysis and its rules on real photos with the real dlib models (no mocks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.analysis.cache import seal, unseal
from curate.analysis.face import DLIB_THRESHOLD, backend_problem, distance, embed_images
from curate.config import load_config
from curate.engine.runner import lint_dataset
from curate.testing import make_dataset, run_cli

pytestmark = pytest.mark.skipif(backend_problem() is not None, reason=f"dlib face models: {backend_problem()}")


def _lint(root: Path, select: list[str]):
    cfg = load_config(root)
    cfg.select = select
    return lint_dataset(root, cfg, use_cache=True)


def _person(photos: Path, name: str) -> list[Path]:
    return sorted((photos / "identities" / name).iterdir())


def _captioned(files: dict[str, Path]) -> dict:
    out: dict = dict(files)
    out.update({Path(k).with_suffix(".txt").as_posix(): "sks, photo" for k in files})
    return out


def test_embedding_api_separates_people(photos):
    obama = _person(photos, "obama")[:3]
    kit = _person(photos, "kit_harington")[:1]
    embs = embed_images(obama + kit + [photos / "pool" / "uno" / sorted(p.name for p in (photos / "pool" / "uno").iterdir())[0]])
    assert all(e is not None and len(e) == 128 for e in embs[:4])
    assert embs[4] is None  # a product shot has no face
    same = [distance(embs[i], embs[j]) for i in range(3) for j in range(i + 1, 3)]
    diff = [distance(embs[i], embs[3]) for i in range(3)]
    assert max(same) < DLIB_THRESHOLD < min(diff), (same, diff)


def test_stranger_is_the_only_identity_outlier(photos, tmp_path):
    files = {p.name: p for p in _person(photos, "obama")}
    files["zz_stranger.jpg"] = _person(photos, "kit_harington")[0]
    ds = make_dataset(tmp_path / "ds", _captioned(files))
    res = _lint(ds, ["KL701", "KL702"])
    got = [(d.code, Path(d.path).name) for d in res.diagnostics]
    assert got == [("KL701", "zz_stranger.jpg")], got
    msg = res.diagnostics[0].message
    assert "threshold" in msg and "nearest photo" in msg and "distance" in msg


def test_two_people_half_and_half_is_an_identity_split(photos, tmp_path):
    alex = {f"a_{p.name}": p for p in _person(photos, "alex_lacamoire")}
    kit = {f"k_{p.name}": p for p in _person(photos, "kit_harington")}
    ds = make_dataset(tmp_path / "ds", _captioned({**alex, **kit}))
    res = _lint(ds, ["KL701", "KL702"])
    assert [d.code for d in res.diagnostics] == ["KL702"], [(d.code, d.message) for d in res.diagnostics]
    d = res.diagnostics[0]
    assert d.severity == "error"
    # each person's photos are named together
    import re

    groups = re.findall(r"person \d \(\d+\): ([^;]+)", d.message)
    assert len(groups) == 2, d.message
    seen = []
    for g in groups:
        names = {n.strip().rsplit("/", 1)[-1].split("_", 1)[0] for n in g.split(",")}
        assert names in ({"a"}, {"k"}), g
        seen.append(names)
    assert seen[0] != seen[1]


def test_too_few_faces_is_one_info_line(photos, tmp_path):
    ds = make_dataset(tmp_path / "ds", _captioned({p.name: p for p in _person(photos, "biden")}))
    res = _lint(ds, ["KL701", "KL702"])
    assert [(d.code, d.severity) for d in res.diagnostics] == [("KL701", "info")]
    assert "found 2" in res.diagnostics[0].message


def _blur_face(src: Path, dst: Path, motion: bool = False) -> None:
    """Blur the face box only: Gaussian (sigma 3 % of the face height) or a horizontal smear
    over 8 % of it, as a head turning during the exposure leaves."""
    import cv2
    import numpy as np
    from PIL import Image

    from curate.analysis.face import analyse_image

    box = analyse_image(src, None)["subject"]["box"]
    im = np.asarray(Image.open(src).convert("RGB")).copy()
    x0, y0, x1, y1 = (int(c) for c in box)
    h = y1 - y0
    x0, y0, x1, y1 = max(0, x0 - h // 4), max(0, y0 - h // 4), x1 + h // 4, y1 + h // 4
    roi = im[y0:y1, x0:x1]
    if motion:
        n = max(3, int(0.08 * h)) | 1
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        im[y0:y1, x0:x1] = cv2.filter2D(roi, -1, k)
    else:
        im[y0:y1, x0:x1] = cv2.GaussianBlur(roi, (0, 0), 0.03 * h)
    Image.fromarray(im).save(dst, quality=95)


def test_face_only_blur_is_caught_and_the_sharp_original_is_not(photos, tmp_path):
    src = photos / "pool" / "sapiens" / "reel1_woman_standing" / "000000.jpg"
    blurred = tmp_path / "blurred.jpg"
    _blur_face(src, blurred)
    ds = make_dataset(tmp_path / "ds", _captioned({"sharp.jpg": src, "blurred.jpg": blurred}))
    res = _lint(ds, ["KL305", "KL108"])
    got = sorted((d.code, Path(d.path).name) for d in res.diagnostics)
    # image.blur passes both (the body is sharp); only the blurred face is reported
    assert got == [("KL305", "blurred.jpg")], [(d.code, d.path, d.message) for d in res.diagnostics]


def test_face_only_motion_blur_is_caught_by_its_direction(photos, tmp_path):
    from curate.analysis.face import subject_face
    from lint_rules.KL305 import KL305

    src = photos / "identities" / "kit_harington" / sorted(p.name for p in (photos / "identities" / "kit_harington").iterdir())[0]
    smeared = tmp_path / "smeared.jpg"
    _blur_face(src, smeared, motion=True)
    ds = make_dataset(tmp_path / "ds", _captioned({"sharp.jpg": src, "smeared.jpg": smeared}))
    res = _lint(ds, ["KL305", "KL108", "KL112"])
    got = sorted((d.code, Path(d.path).name) for d in res.diagnostics)
    assert got == [("KL305", "smeared.jpg")], [(d.code, d.path, d.message) for d in res.diagnostics]
    assert "smeared along one direction" in res.diagnostics[0].message
    # the smear keeps the Laplacian energy above the focus threshold: the direction measure caught it
    face = subject_face(res.context, next(i for i in res.dataset.images if i.rel_image == "smeared.jpg"))
    assert face["sharpness"] >= KL305.options["threshold"], face


def test_small_face_in_full_body_photo_is_subject_small(photos, tmp_path):
    from PIL import Image

    person = Image.open(photos / "pool" / "pifuhd" / "test.png").convert("RGB")
    canvas = Image.new("RGB", (2048, 2048), (235, 235, 230))
    canvas.paste(person, (760, 1500))
    small = tmp_path / "small.jpg"
    canvas.save(small, quality=95)
    ds = make_dataset(tmp_path / "ds", _captioned({"small.jpg": small, "big.png": photos / "pool" / "pifuhd" / "test.png"}))
    res = _lint(ds, ["KL303"])
    got = [(d.code, Path(d.path).name) for d in res.diagnostics]
    assert got == [("KL303", "small.jpg")], [(d.path, d.message) for d in res.diagnostics]
    assert "subject's face" in res.diagnostics[0].message  # measured on the face, not guessed from pose
    face = res.context.results["face"]["small.jpg"]["subject"]
    assert face is not None and face["height_native_px"] < 60


TIGHT_SOURCES = ("pulid-example-inputs/lecun.jpg", "pulid-example-inputs/hinton.jpeg",
                 "pulid-example-inputs/lifeifei.jpg", "pulid-example-inputs/pengwei.jpg",
                 "pulid-example-inputs/zcy.webp", "identities/obama/obama.jpg", "identities/biden/biden.jpg",
                 "identities/kit_harington/john1.jpeg", "pulid-example-inputs/liuyifei.png",
                 "identities/rose_leslie/img1.jpg")


def test_tight_face_crops_without_shoulders_are_close(photos, tmp_path):
    """Crops cut to the face box (brow to chin, no shoulders, no crown), full size and as small
    low-quality 160 px JPEGs (like old scanned portraits): all close, including where pose
    alone finds no one."""
    from PIL import Image, ImageOps

    from curate.analysis.face import analyse_image
    from curate.analysis.framing import describe

    files = {}
    for i, rel in enumerate(TIGHT_SOURCES):
        src = photos / rel
        x0, y0, x1, y1 = analyse_image(src, None)["subject"]["box"]
        w, h = x1 - x0, y1 - y0
        im = ImageOps.exif_transpose(Image.open(src)).convert("RGB")
        crop = im.crop((int(x0), int(y0), int(x1), int(y1)))
        for dst, c, q in ((tmp_path / f"crop_{i}.jpg", crop, 90), (tmp_path / f"crop_{i}_small.jpg",
                                                                  crop.resize((160, 160)), 60)):
            c.save(dst, quality=q)
            files[dst.name] = dst
    ds = make_dataset(tmp_path / "ds", _captioned(files))
    res = _lint(ds, ["KL301"])
    framings = {rel: res.context.results["framing"][rel]["framing"] for rel in files}
    assert set(framings.values()) == {"close"}, framings
    assert not res.diagnostics  # subject.none no longer fires on them
    pose_only = [describe(res.context.results["pose"][rel])["framing"] for rel in files]
    assert "none" in pose_only, pose_only  # the face witness rescued at least one


def test_face_witness_unit():
    """No person from pose + a face filling the frame = close; a small face stays none."""
    from curate.analysis.face_framing import with_face
    from curate.analysis.framing import describe

    pose = {"width": 200, "height": 200, "persons": [], "max_conf": 0.1}
    big = {"subject": {"box": [40, 50, 160, 170]}, "faces": [{"box": [40, 50, 160, 170]}]}
    small = {"subject": None, "faces": [{"box": [90, 90, 110, 110]}]}
    rec = with_face(describe(pose), pose, big)
    assert rec["framing"] == "close" and rec["framing_source"] == "face" and rec["people"] == 1
    assert with_face(describe(pose), pose, small)["framing"] == "none"
    assert with_face(describe(pose), pose, None)["framing"] == "none"


def test_wrong_face_model_path_is_one_line_and_exit_2(photos, tmp_path):
    files = {p.name: p for p in _person(photos, "rose_leslie")}
    ds = make_dataset(tmp_path / "ds", _captioned(files), config=f'face-model = "{tmp_path / "nope"}"\n')
    r = run_cli(["lint", ds, "--no-progress"])
    assert r.exit_code == 2, r.stderr
    assert "face model folder not found" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_inspect_records_carry_the_face(photos, tmp_path):
    files = {p.name: p for p in _person(photos, "obama")[:4]}
    ds = make_dataset(tmp_path / "ds", _captioned(files))
    r = run_cli(["inspect", ds, "--format", "json", "--no-progress"])
    assert r.exit_code == 0, r.stderr
    recs = json.loads(r.stdout)
    for rec in recs:
        f = rec["face"]
        assert set(f) >= {"box", "height_px", "sharpness", "yaw", "identity_distance", "reason"}
        assert f["box"] is not None and f["identity_distance"] is not None and f["identity_distance"] < DLIB_THRESHOLD
    assert min(rec["face"]["identity_distance"] for rec in recs) == 0.0  # the medoid itself
    t = run_cli(["inspect", ds, "--no-progress"])
    assert "identity" in t.stdout.splitlines()[0]


def test_eval_id_defaults_to_dlib(photos):
    obama = _person(photos, "obama")
    kit = _person(photos, "kit_harington")[0]
    r = run_cli(["eval-id", "--ref", obama[0], "--json", obama[1], kit])
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["model"] == "dlib-resnet-v1" and res["detected"] == 2
    same, other = res["rows"]
    assert same["match"] is True and other["match"] is False and same["distance"] < other["distance"]


def test_report_identity_strip_puts_the_stranger_first(photos, tmp_path):
    import re

    from curate.report import build_report

    files = {p.name: p for p in _person(photos, "obama")}
    files["zz_stranger.jpg"] = _person(photos, "kit_harington")[0]
    ds = make_dataset(tmp_path / "ds", _captioned(files))
    res = _lint(ds, ["KL701"])
    page = build_report(res, thumb_size=64)
    strip = page[page.index('<section id="identity">'):]
    strip = strip[:strip.index("</section>")]
    titles = re.findall(r'class="facechip (f\d+)( stranger)?" title="([^"]+)"', strip)
    assert len(titles) == len(files)
    assert titles[0][2].endswith("zz_stranger.jpg") and titles[0][1] == " stranger"
    assert not any(t[1] for t in titles[1:])  # only the stranger is outlined
    assert page.count("identity 0.") + page.count("identity 1.") == len(files)  # each card shows its distance


def test_a_forged_face_record_in_the_cache_is_recomputed(photos, tmp_path):
    """The cache sits inside the (untrusted) dataset: a face record shaped wrongly is a miss."""
    files = {p.name: p for p in _person(photos, "obama")}
    files["zz_stranger.jpg"] = _person(photos, "kit_harington")[0]
    ds = make_dataset(tmp_path / "ds", _captioned(files))
    args = ["lint", "--no-progress", "--select", "KL303,KL304,KL305,KL403,KL701,KL702", str(ds)]
    clean = run_cli(args)
    assert "KL701" in clean.stdout, clean.stdout + clean.stderr
    cfile = next((ds / ".klint_cache").glob("cache-*.json"))
    data = json.loads(unseal(cfile.read_bytes()))
    damages = [lambda r, s: s.update(box="x"),
               lambda r, s: s.update(sharpness="soft", direction_ratio=[0], height_native_px=True, yaw=5),
               lambda r, s: s.update(embedding=["a"] * 128),
               lambda r, s: r.update(faces=[{"box": [0, 0]}])]
    recs = [r for r in data["results"]["face"].values() if r.get("subject")]
    assert len(recs) >= len(damages)
    for k, rec in enumerate(recs):
        damages[k % len(damages)](rec, rec["subject"])
    cfile.write_bytes(seal(json.dumps(data).encode()))  # past the seal, to the shape checks
    again = run_cli(args)
    assert "Traceback" not in again.stderr, again.stderr
    # the stranger is still the one flagged, from faces recomputed instead of the forged ones
    assert (again.exit_code, again.stdout) == (clean.exit_code, clean.stdout), again.stderr
