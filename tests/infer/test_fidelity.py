"""What must match PuLID exactly: the residual, the slot -> CA mapping, the EVA taps, the key list,
the negative, the face parsing, the recognition model; and the formats klint refuses."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from curate.errors import KlintError
from plugins.pulid import adapter as adapter_mod
from plugins.pulid.adapter import (COMFY_FLUX2_PREFIXES, build_tiny_adapter, check_recognition, load_adapter,
                                   official_ca_indices)
from plugins.pulid.encoders import OFFICIAL_CA, OFFICIAL_ENCODER, IDFormer, PerceiverAttentionCA
from plugins.pulid.hooks import IDInjector, transformer_slots

DATA = Path(__file__).resolve().parents[1] / "data"


def _transformer(n_double=5, n_single=20, heads=2, head_dim=16):
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(0)
    return Flux2Transformer2DModel(num_layers=n_double, num_single_layers=n_single, num_attention_heads=heads,
                                   attention_head_dim=head_dim, joint_attention_dim=48, in_channels=16,
                                   axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False).eval()


def _call(n_txt=5, side=3):
    hh, ww = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    ids = torch.stack([torch.zeros_like(hh), hh, ww, torch.zeros_like(hh)], -1).reshape(-1, 4)
    txt_ids = torch.stack([torch.zeros(n_txt), torch.zeros(n_txt), torch.zeros(n_txt), torch.arange(n_txt)], -1)
    g = torch.Generator().manual_seed(2)
    return dict(hidden_states=torch.randn(1, side * side, 16, generator=g),
                encoder_hidden_states=torch.randn(1, n_txt, 48, generator=g), timestep=torch.tensor([0.6]),
                img_ids=ids[None], txt_ids=txt_ids[None].long(), return_dict=False)


# ---- 5. the residual, exactly ----------------------------------------------------------------------

@pytest.mark.parametrize("kind,idx", [("double", 2), ("single", 4)])
def test_delta_is_id_weight_times_ca_of_the_block_output(kind, idx):
    """PuLID: img = img + id_weight * ca(id, img): no x2, no normalisation, no gate; one slot checked."""
    tr = _transformer(n_double=3, n_single=5)
    ad = build_tiny_adapter(tr, id_dim=40, vit_dim=32, seed=4)
    with torch.no_grad():
        cond, _ = ad.id_tokens(torch.randn(1, 40), [torch.randn(1, 9, 32) for _ in range(5)])
    block = (tr.transformer_blocks if kind == "double" else tr.single_transformer_blocks)[idx]
    slot = transformer_slots(tr).index((kind, idx))
    seen = {}

    def before(m, a, out):  # registered first: sees the block's own output
        seen["raw"] = (out[1] if kind == "double" else out).clone()

    def after(m, a, out):
        seen["out"] = (out[1] if kind == "double" else out).clone()

    h = block.register_forward_hook(before)
    kw = _call()
    n_txt, n_img = kw["encoder_hidden_states"].shape[1], kw["hidden_states"].shape[1]
    with torch.no_grad(), IDInjector(tr, ad.pulid_ca, cond, None, weight=0.7):
        h2 = block.register_forward_hook(after)
        tr(**kw)
    h.remove()
    h2.remove()
    rows = slice(0, n_img) if kind == "double" else slice(n_txt, n_txt + n_img)
    raw = seen["raw"][:, rows]
    with torch.no_grad():
        expect = 0.7 * ad.pulid_ca[slot](cond, raw)
    torch.testing.assert_close(seen["out"][:, rows] - raw, expect, rtol=1e-5, atol=1e-6)


# ---- 5. the slot -> CA mapping on klein-4B -------------------------------------------------------------

def test_klein_4b_slot_to_official_ca_mapping_is_exact():
    tr = _transformer(n_double=5, n_single=20, heads=1, head_dim=8)
    assert transformer_slots(tr) == [("double", 0), ("double", 2), ("double", 4), ("single", 0), ("single", 4),
                                     ("single", 8), ("single", 12), ("single", 16)]
    # nearest relative depth: double block i of 5 -> FLUX.1 CA round(i/5 * 19/2);
    # single j of 20 -> 10 + round(j/20 * 38/4)
    assert official_ca_indices(tr) == [0, 4, 8, 10, 12, 14, 16, 18]


def test_official_file_puts_each_ca_where_the_mapping_says(tmp_path, monkeypatch):
    """A v0.9.1-layout file at toy sizes, every pulid_ca.k filled with k: each Klein slot must hold
    the CA the mapping names, and the encoder must load as-is."""
    from safetensors.torch import save_file

    enc_cfg = dict(dim=16, depth=5, dim_head=4, heads=2, num_id_token=2, num_queries=3, output_dim=8, ff_mult=2,
                   id_dim=12, vit_dim=8, hidden=16)
    ca_cfg = dict(dim=8, dim_head=4, heads=2, kv_dim=8)
    monkeypatch.setattr(adapter_mod, "OFFICIAL_ENCODER", enc_cfg)
    monkeypatch.setattr(adapter_mod, "OFFICIAL_CA", ca_cfg)
    tr = _transformer(n_double=5, n_single=20, heads=1, head_dim=8)
    state = {f"pulid_encoder.{k}": v for k, v in IDFormer(**enc_cfg).state_dict().items()}
    for k in range(20):
        state.update({f"pulid_ca.{k}.{n}": torch.full_like(v, float(k))
                      for n, v in PerceiverAttentionCA(**ca_cfg).state_dict().items()})
    path = tmp_path / "pulid_flux_v0.9.1.safetensors"
    save_file(state, str(path))
    with pytest.warns(UserWarning, match="trained on FLUX.1-dev"):
        ad = load_adapter(path, tr)
    got = [int(ca.to_q.weight[0, 0]) for ca in ad.pulid_ca]
    assert got == official_ca_indices(tr) == [0, 4, 8, 10, 12, 14, 16, 18]
    assert ad.recognition == {"file": "glintr100.onnx", "pack": "antelopev2"}


# ---- 5. EVA taps ------------------------------------------------------------------------------------------

def test_eva_hidden_states_are_the_tokens_entering_blocks_4_8_12_16_20():
    pytest.importorskip("timm", reason="timm ([infer] extra) not installed")
    from plugins.pulid.vision import build_tiny_encoder

    eva = build_tiny_encoder()
    entering = {}  # PuLID's EVA keeps x before blocks 4, 8, 12, 16, 20 = the outputs of blocks 3, 7, 11, 15, 19
    hooks = [eva.trunk.blocks[b - 1].register_forward_hook(
        lambda m, a, out, b=b: entering.__setitem__(b, out.clone())) for b in (4, 8, 12, 16, 20)]
    x = torch.randn(1, 3, 56, 56, generator=torch.Generator().manual_seed(0))
    pooled, hidden = eva(x)
    for h in hooks:
        h.remove()
    assert len(hidden) == 5 and pooled.shape == (1, eva.pooled_dim)
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(1))
    for i, b in enumerate((4, 8, 12, 16, 20)):
        assert hidden[i].shape == entering[b].shape  # CLS first, then the patch tokens
        torch.testing.assert_close(hidden[i], entering[b], rtol=0, atol=0)


# ---- 5. the official key list (fixture) --------------------------------------------------------------------

def test_modules_match_the_official_v091_key_list_fixture():
    want = {}
    for line in (DATA / "pulid_flux_v0.9.1_keys.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split()
            want[name] = tuple(int(d) for d in shape.split("x"))
    assert len(want) == 312
    with torch.device("meta"):
        enc = IDFormer(**OFFICIAL_ENCODER)
        ca = PerceiverAttentionCA(**OFFICIAL_CA)
    built = {f"pulid_encoder.{k}": tuple(v.shape) for k, v in enc.state_dict().items()}
    for k in range(20):
        built.update({f"pulid_ca.{k}.{n}": tuple(v.shape) for n, v in ca.state_dict().items()})
    assert built == want


# ---- 4. the negative uses one zero reference -------------------------------------------------------------

def test_negative_id_tokens_are_one_zero_reference_whatever_the_reference_count():
    tr = _transformer(n_double=2, n_single=2)
    ad = build_tiny_adapter(tr, id_dim=40, vit_dim=32, seed=1)
    g = torch.Generator().manual_seed(3)
    _, one = ad.id_tokens(torch.randn(1, 1, 40, generator=g), [torch.randn(1, 9, 32, generator=g) for _ in range(5)])
    cond3, three = ad.id_tokens(torch.randn(1, 3, 40, generator=g),
                                [torch.randn(1, 27, 32, generator=g) for _ in range(5)])
    with torch.no_grad():
        single = ad.pulid_encoder(torch.zeros(1, 40), [torch.zeros(1, 9, 32) for _ in range(5)])
    torch.testing.assert_close(three, one, rtol=0, atol=0)
    torch.testing.assert_close(three, single)
    assert cond3.shape == three.shape


# ---- 1. face parsing ---------------------------------------------------------------------------------------

def test_bisenet_has_facexlib_layout_and_size():
    from plugins.pulid.parsing import BiSeNet

    with torch.device("meta"):
        net = BiSeNet()
    sd = net.state_dict()
    expected = {"cp.resnet.conv1.weight": (64, 3, 7, 7), "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
                "cp.resnet.layer4.1.bn2.running_var": (512,), "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
                "cp.arm32.conv_atten.weight": (128, 128, 1, 1), "cp.arm32.bn_atten.weight": (128,),
                "cp.conv_avg.conv.weight": (128, 512, 1, 1), "cp.conv_head16.bn.bias": (128,),
                "ffm.convblk.conv.weight": (256, 256, 1, 1), "ffm.conv1.weight": (64, 256, 1, 1),
                "ffm.conv2.weight": (256, 64, 1, 1), "conv_out.conv.conv.weight": (256, 256, 3, 3),
                "conv_out.conv_out.weight": (19, 256, 1, 1), "conv_out16.conv.conv.weight": (64, 128, 3, 3),
                "conv_out32.conv_out.weight": (19, 64, 1, 1)}
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith(("cp.resnet.fc", "sp.")) for k in sd)  # facexlib has no fc / spatial path
    n = sum(v.numel() for k, v in sd.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert 12e6 < n < 14e6  # facexlib's BiSeNet: about 13 M parameters


def _aligned(seed=0, size=64):
    return (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)


def test_face_features_whiten_pulids_labels_and_grey_the_rest():
    from plugins.pulid.parsing import WHITENED_LABELS, build_tiny_parser, face_features, to_grey

    parser = build_tiny_parser()
    head = parser.conv_out.conv_out.weight
    with torch.no_grad():  # steer the head: class 1 (skin) where feature 0 beats feature 1, else 0 (background)
        head.zero_()
        head[1, 0] = 1.0
        head[0, 1] = 1.0
    img = _aligned()
    out = face_features(img, parser)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    from plugins.pulid.parsing import IMAGENET_MEAN, IMAGENET_STD, PARSING_SIZE

    inp = torch.nn.functional.interpolate((x - torch.tensor(IMAGENET_MEAN)[:, None, None])
                                          / torch.tensor(IMAGENET_STD)[:, None, None],
                                          size=(PARSING_SIZE, PARSING_SIZE), mode="bilinear", align_corners=False)
    with torch.no_grad():
        labels = parser(inp).argmax(1, keepdim=True)
    labels = torch.nn.functional.interpolate(labels.float(), size=(64, 64), mode="nearest").long()
    kept = labels == 1
    assert kept.any() and (~kept).any()
    grey = to_grey(x)
    assert torch.equal(out[kept.expand_as(out)], grey[kept.expand_as(grey)])
    assert torch.all(out[(~kept).expand_as(out)] == 1.0)  # label 0 = background -> white
    assert 0 in WHITENED_LABELS and 1 not in WHITENED_LABELS and 17 not in WHITENED_LABELS  # hair is kept
    assert set(WHITENED_LABELS) == {0, 7, 8, 9, 14, 15, 16, 18}
    # no parser: the whole crop grey (the documented fallback)
    assert torch.equal(face_features(img, None), grey)


def test_parsing_changes_what_the_id_encoder_sees():
    pytest.importorskip("timm", reason="timm ([infer] extra) not installed")
    from PIL import Image

    from plugins.pulid.adapter import encode_references
    from plugins.pulid.faces import TinyFaceModel
    from plugins.pulid.parsing import build_tiny_parser
    from plugins.pulid.vision import build_tiny_encoder

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "r.png"
        Image.fromarray(_aligned(1, 96)).save(p)
        eva, face = build_tiny_encoder(), TinyFaceModel()
        plain, vit_plain = encode_references(face, eva, [p])
        parsed, vit_parsed = encode_references(face, eva, [p], parser=build_tiny_parser())
    assert torch.equal(plain[..., :face.embedding_dim], parsed[..., :face.embedding_dim])  # ArcFace part unchanged
    assert not torch.allclose(vit_plain[0], vit_parsed[0])


def test_parser_weights_load_strictly_and_a_pickle_cannot_run_code(tmp_path):
    from safetensors.torch import save_file

    from plugins.pulid.parsing import build_tiny_parser, load_parser

    net = build_tiny_parser(seed=5)
    pth = tmp_path / "parsing_bisenet.pth"
    torch.save(net.state_dict(), pth)
    back = load_parser(pth)
    for (k, v), (k2, v2) in zip(net.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v.float(), v2.float())
    st = tmp_path / "bisenet.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(st))
    assert torch.equal(load_parser(st).cp.resnet.conv1.weight, net.cp.resnet.conv1.weight)
    with pytest.raises(KlintError, match="parsing_bisenet.pth"):
        load_parser(tmp_path / "missing.pth")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"cp.resnet.conv1.weight": Evil()}))
    with pytest.raises(KlintError, match="cannot read face parsing weights"):
        load_parser(evil)
    assert not marker.exists()
    partial = {k: v for k, v in net.state_dict().items() if not k.startswith("ffm.")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(KlintError, match="do not fit"):
        load_parser(tmp_path / "partial.pth")


# ---- 2. the recognition model must be the one the encoder was trained on ----------------------------------

@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    pytest.importorskip("insightface", reason="insightface ([infer] extra) not installed")
    from tests.infer.onnx_faces import build_pack

    root = tmp_path_factory.mktemp("packs")
    ante = build_pack(root / "antelopev2", det_name="scrfd_10g_bnkps.onnx", rec_name="glintr100.onnx", seed=1)
    buff = build_pack(root / "buffalo_l", det_name="det_10g.onnx", rec_name="w600k_r50.onnx", seed=2)
    return ante, buff


def test_official_encoder_refuses_buffalo_l_and_accepts_glintr100(packs, tmp_path):
    from plugins.pulid.faces import InsightFaceModel, file_sha256

    ante, buff = packs
    ad = build_tiny_adapter(_transformer(2, 2), id_dim=40, vit_dim=32)
    ad.recognition = dict(adapter_mod.OFFICIAL_RECOGNITION)
    b = InsightFaceModel(buff).recognition
    assert b == {"file": "w600k_r50.onnx", "sha256": file_sha256(Path(buff) / "w600k_r50.onnx")}
    with pytest.raises(KlintError, match="w600k_r50.onnx is not glintr100.onnx"):
        check_recognition(ad, b)
    check_recognition(ad, InsightFaceModel(ante).recognition)
    # a klint adapter records its recognition model by hash; another model is refused even when renamed
    tr = _transformer(2, 2)
    mine = build_tiny_adapter(tr, id_dim=40, vit_dim=32)
    mine.save(tmp_path / "a.safetensors", recognition=InsightFaceModel(ante).recognition)
    back = load_adapter(tmp_path / "a.safetensors", tr)
    assert back.recognition == InsightFaceModel(ante).recognition
    with pytest.raises(KlintError, match="is not the one this adapter was trained with"):
        check_recognition(back, {"file": "glintr100.onnx", "sha256": b["sha256"]})


def test_pulid_cli_refuses_the_wrong_recognition_model_before_generating(packs, tmp_path):
    from curate.testing import run_cli
    from plugins.klein.tiny import build_transformer
    from PIL import Image

    ante, buff = packs
    tr = build_transformer(seed=0)
    ad = build_tiny_adapter(tr, id_dim=512 + 24, vit_dim=32)
    from plugins.pulid.faces import InsightFaceModel

    path = tmp_path / "ad.safetensors"
    ad.save(path, recognition=InsightFaceModel(ante).recognition)
    ref = tmp_path / "ref.png"
    img = np.zeros((240, 320, 3), np.uint8)
    img[60:180, 100:220] = 230
    Image.fromarray(img).save(ref)
    base = ["infer", "x", "--model", "tiny", "--mode", "pulid", "--ref", ref, "--pulid-weights", path,
            "--steps", "1", "--width", "64", "--height", "64"]
    r = run_cli(base + ["--face-model", buff, "-o", tmp_path / "o1"])
    assert r.exit_code == 2 and "is not the one this adapter was trained with" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "o1").exists()
    r = run_cli(base + ["--face-model", ante, "-o", tmp_path / "o2"])
    assert r.exit_code == 0, r.stderr
    import json

    meta = json.loads(next((tmp_path / "o2").glob("*.json")).read_text())
    assert meta["face_recognition"]["file"] == "glintr100.onnx" and meta["face_parsing"] == "tiny random BiSeNet"


# ---- 6. "same model as conditioning": by recognition file, for eval-id too --------------------------------

def test_same_model_warning_compares_the_recognition_file_not_the_folder(packs, tmp_path):
    import json
    import shutil

    from curate.testing import run_cli
    from plugins.pulid.faces import same_recognition_model
    from PIL import Image

    ante, buff = packs
    copy = tmp_path / "my_copy"
    shutil.copytree(ante, copy)
    (copy / "glintr100.onnx").rename(copy / "recognition.onnx")  # same model, other folder and name
    a = {"file": "glintr100.onnx", "sha256": "ab" * 32}
    assert same_recognition_model(a, {"file": "recognition.onnx", "sha256": "ab" * 32})
    assert not same_recognition_model(a, {"file": "glintr100.onnx", "sha256": "cd" * 32})
    assert same_recognition_model({"file": "glintr100.onnx", "sha256": None}, a)
    assert not same_recognition_model({"file": "tiny", "sha256": None}, {"file": "tiny", "sha256": None})
    img = np.zeros((240, 320, 3), np.uint8)
    img[60:180, 100:220] = 230
    ref, out = tmp_path / "ref.png", tmp_path / "out"
    Image.fromarray(img).save(ref)
    out.mkdir()
    Image.fromarray(img).save(out / "pulid_s0_00.png")
    r = run_cli(["eval-id", "--ref", ref, "--face-model", copy, "--conditioning-face-model", ante,
                 out / "pulid_s0_00.png"])
    assert r.exit_code == 0 and "inflates similarity" in r.stderr, r.stderr
    # with no flag, eval-id reads the klint infer record written beside the images
    from plugins.pulid.faces import InsightFaceModel

    (out / "pulid_s0.json").write_text(json.dumps({"images": [str(out / "pulid_s0_00.png")],
                                                   "face_recognition": InsightFaceModel(ante).recognition}))
    r = run_cli(["eval-id", "--ref", ref, "--face-model", copy, out])
    assert r.exit_code == 0 and "inflates similarity" in r.stderr, r.stderr
    r = run_cli(["eval-id", "--ref", ref, "--face-model", buff, out])
    assert r.exit_code == 0 and "inflates similarity" not in r.stderr


# ---- 7. the ComfyUI "PuLID for FLUX.2" format is refused ---------------------------------------------------

def test_comfyui_pulid_flux2_format_is_refused_with_an_explanation(tmp_path):
    from safetensors.torch import save_file

    assert COMFY_FLUX2_PREFIXES == ("id_former.", "double_ca.", "single_ca.")
    p = tmp_path / "pulid_flux2_klein.safetensors"
    save_file({"id_former.latents": torch.zeros(1, 4, 32), "double_ca.0.to_q.weight": torch.zeros(4, 32),
               "single_ca.0.to_q.weight": torch.zeros(4, 32)}, str(p))
    with pytest.raises(KlintError, match="ComfyUI 'PuLID for FLUX.2'.*--mode reference"):
        load_adapter(p, _transformer(2, 2))


def test_backends_and_readme_say_native_references_are_the_trained_path():
    import json

    from curate.testing import run_cli

    r = run_cli(["backends", "--kind", "inference", "--json"])
    assert r.exit_code == 0, r.stderr
    klein = next(b for b in json.loads(r.stdout) if b["name"] == "klein")
    text = " ".join(klein["limitations"])
    assert "--mode reference" in text and "trained path" in text and "experiment" in text
    assert "parsing_bisenet.pth" in text and "ComfyUI" in text
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "native references (`--mode reference`) are the trained path" in readme
