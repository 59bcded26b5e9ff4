"""insightface loading on tiny ONNX graphs, eval-id, and the dataset.identity-outlier rule."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from curate.errors import KlintError
from curate.testing import make_dataset, run_cli
from plugins.pulid.faces import InsightFaceModel, identity_scores, resolve_model_dir
from tests.infer.onnx_faces import build_pack

pytest.importorskip("insightface", reason="insightface ([infer] extra) not installed")


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    # antelopev2 names, unzipped into a nested folder (the common layout); buffalo_l names flat
    ante = build_pack(root / "antelopev2" / "antelopev2", det_name="scrfd_10g_bnkps.onnx",
                      rec_name="glintr100.onnx", seed=1)
    buff = build_pack(root / "buffalo_l", det_name="det_10g.onnx", rec_name="w600k_r50.onnx", seed=2)
    return root / "antelopev2", buff, ante


def _face_photo(path, box, pattern_seed):
    img = np.zeros((240, 320, 3), np.uint8)
    y, x, s = box
    rng = np.random.default_rng(pattern_seed)
    img[y:y + s, x:x + s] = 200 + (rng.random((s, s, 1)) * 55).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def test_insightface_routes_tiny_graphs_and_embeds_the_largest_face(packs, tmp_path):
    ante_parent, buff, ante = packs
    m = InsightFaceModel(ante_parent)  # resolves the nested antelopev2/antelopev2 folder
    assert m.model_dir == ante.resolve()
    assert {k: type(v).__name__ for k, v in m.app.models.items()} == {"detection": "SCRFD",
                                                                      "recognition": "ArcFaceONNX"}
    assert m.embedding_dim == 512
    p = _face_photo(tmp_path / "a.png", (60, 100, 120), 0)
    face = m.largest(np.asarray(Image.open(p))[:, :, ::-1].copy())
    assert face is not None and face.kps.shape == (5, 2) and face.embedding.shape == (512,)
    cx, cy = (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2
    assert 100 <= cx <= 220 and 60 <= cy <= 180  # found where the bright square is
    blank = np.zeros((200, 200, 3), np.uint8)
    assert m.largest(blank) is None


def test_missing_or_empty_face_folder_names_the_expected_files(tmp_path):
    with pytest.raises(KlintError, match="glintr100.onnx"):
        resolve_model_dir(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(KlintError, match="det_10g.onnx"):
        resolve_model_dir(tmp_path / "empty")


def test_eval_id_scores_detection_rate_and_similarity(packs, tmp_path):
    _, buff, _ = packs
    ref = _face_photo(tmp_path / "ref.png", (60, 100, 120), 0)
    same = _face_photo(tmp_path / "same.png", (60, 100, 120), 0)
    other = _face_photo(tmp_path / "other.png", (40, 150, 140), 9)
    Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(tmp_path / "none.png")
    res = identity_scores(InsightFaceModel(buff), [ref], [same, other, tmp_path / "none.png"])
    assert res["detected"] == 2 and res["detection_rate"] == pytest.approx(2 / 3, abs=1e-3)
    rows = {r["image"].rsplit("/", 1)[-1]: r for r in res["rows"]}
    assert rows["same.png"]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert rows["other.png"]["similarity"] < rows["same.png"]["similarity"]
    assert rows["none.png"]["face"] is False and rows["none.png"]["similarity"] is None
    r = run_cli(["eval-id", "--ref", ref, "--face-model", buff, "--json", same, tmp_path / "none.png"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["detected"] == 1 and out["mean_similarity"] == pytest.approx(1.0, abs=1e-4)
    r = run_cli(["eval-id", "--ref", ref, "--face-model", tmp_path / "missing", same])
    assert r.exit_code == 2 and "face model folder not found" in r.stderr and "Traceback" not in r.stderr


def test_identity_outlier_rule(packs, tmp_path):
    _, buff, _ = packs
    files = {f"img_{i:02d}.png": _face_photo(tmp_path / f"s{i}.png", (60, 100, 120), 0) for i in range(5)}
    files["img_09.png"] = _face_photo(tmp_path / "odd.png", (30, 40, 180), 42)
    files.update({k.replace(".png", ".txt"): "sks, photo" for k in list(files)})
    plain = make_dataset(tmp_path / "plain", files)
    r = run_cli(["lint", plain, "--select", "dataset.identity-outlier", "--format", "json"])
    diags = json.loads(r.stdout)
    diags = diags if isinstance(diags, list) else diags.get("diagnostics", diags)
    # dlib (the default) finds no face in a bright square: one info line, not a warning
    assert len(diags) == 1 and diags[0]["severity"] == "info" and "found 0" in diags[0]["message"], diags
    # the tiny recogniser only pools brightness, so every face looks alike to it: judge at
    # distance 0.14 (= cosine 0.99; five identical photos are at 0, the odd one out farther)
    cfg = f'face-model = "{buff}"\n[rule-options."dataset.identity-outlier"]\nmax-distance = 0.14\n'
    ds = make_dataset(tmp_path / "ds", files, config=cfg)
    r = run_cli(["lint", ds, "--select", "dataset.identity-outlier", "--format", "json"])
    diags = json.loads(r.stdout)
    diags = diags if isinstance(diags, list) else diags.get("diagnostics", diags)
    flagged = [d for d in diags if d["code"] == "KL701"]
    assert [d["path"].rsplit("/", 1)[-1] for d in flagged] == ["img_09.png"], r.stdout
    # warm re-lint: cached embeddings, no onnxruntime / insightface import
    code = ("import sys; from pathlib import Path; from curate.config import load_config; "
            "from curate.engine.runner import lint_dataset; "
            f"c = load_config(Path({str(ds)!r})); c.select = ['KL701']; r = lint_dataset(Path({str(ds)!r}), c); "
            "print(sorted(m for m in ('onnxruntime', 'insightface', 'torch') if m in sys.modules)); "
            "print(sum(d.code == 'KL701' for d in r.diagnostics))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "[]", out.stderr[-2000:]
    assert lines[-1] == "1"
