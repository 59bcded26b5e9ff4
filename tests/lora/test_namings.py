"""Must-show 1: each trainer's naming detected, keys that load per loader (diffusers checked against itself)."""
from __future__ import annotations

import functools

import pytest

from curate.lora import lint_file
from curate.lora.model import diffusers_modules
from tests.lora import makers as M

# 4B, rank 2: 5 double blocks x 8 BFL modules + 20 single x 2 = 80 fused modules; 100 split ones
CASES = {
    # maker: (family, source, keys, diffusers loads, ComfyUI loads)
    "klint_like_bfl": (M.bfl_file, "bfl", "diffusion-pipe or ai-toolkit", 160, 160, 160),
    "ai_toolkit": (M.ai_toolkit_file, "bfl", "ai-toolkit", 160, 160, 160),
    "comfy_kohya_suffix": (M.comfy_kohya_suffix_file, "bfl", "ComfyUI-style", 240, 0, 240),
    "musubi": (M.musubi_file, "kohya", "musubi-tuner", 240, 240, 240),
    "diffusers": (M.diffusers_file, "diffusers", "diffusers or SimpleTuner", 200, 200, 200),
    "simpletuner_fused": (lambda p: M.diffusers_file(p, fused=True, metadata={"software": "SimpleTuner"}),
                          "diffusers", "SimpleTuner", 160, 140, 140),
    "onetrainer": (M.onetrainer_file, "onetrainer", "OneTrainer", 300, 0, 300),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("namings")
    return {name: case[0](d / f"{name}.safetensors") for name, case in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_naming_detected_with_keys_per_loader(files, name):
    _, family, source, keys, n_diffusers, n_comfy = CASES[name]
    rep, diags = lint_file(files[name])
    assert rep.error is None
    assert rep.parsed.family == family and rep.parsed.source == source
    assert rep.spec == "klein-4b"
    assert len(rep.keys) == keys
    assert len(rep.loads["diffusers"].loaded) == n_diffusers
    assert len(rep.loads["comfyui"].loaded) == n_comfy
    codes = {d.code for d in diags if d.severity != "info"}
    assert ("KL803" in codes) == (n_diffusers < keys or n_comfy < keys)


@functools.lru_cache(maxsize=None)
def _real_linears(spec):
    import torch
    from diffusers import Flux2Transformer2DModel

    cfg = {"klein-4b": dict(num_layers=5, num_single_layers=20, num_attention_heads=24, joint_attention_dim=7680),
           "klein-9b": dict(num_layers=8, num_single_layers=24, num_attention_heads=32, joint_attention_dim=12288)}
    with torch.device("meta"):
        t = Flux2Transformer2DModel(**cfg[spec], attention_head_dim=128, in_channels=128,
                                    axes_dims_rope=(32, 32, 32, 32), guidance_embeds=False)
    return {n: (m.in_features, m.out_features) for n, m in t.named_modules() if isinstance(m, torch.nn.Linear)}


@pytest.mark.parametrize("spec", ["klein-4b", "klein-9b"])
def test_module_table_is_the_real_transformer(spec):
    pytest.importorskip("diffusers", reason="diffusers not installed")
    assert _real_linears(spec) == diffusers_modules(spec)


def _real_diffusers_modules(path):
    """diffusers' own Flux2 loader logic: its converter, then the modules a real 4B transformer has."""
    from diffusers import Flux2KleinPipeline
    from safetensors.torch import load_file

    sd = load_file(str(path))
    try:
        conv = Flux2KleinPipeline.lora_state_dict(sd)
    except ValueError:
        return None
    if not all("lora" in k for k in conv):
        return None
    names = set(_real_linears("klein-4b"))
    return {k[len("transformer."):].rsplit(".lora_", 1)[0] for k in conv if k.startswith("transformer.")} & names


@pytest.mark.parametrize("name", list(CASES))
def test_diffusers_counts_match_diffusers_itself(files, name):
    pytest.importorskip("diffusers", reason="diffusers not installed")
    rep, _ = lint_file(files[name])
    real = _real_diffusers_modules(files[name])
    ours = rep.loads["diffusers"]
    if real is None:
        assert ours.fatal is not None
    else:
        assert set(ours.modules) == real


def test_alpha_keys_make_diffusers_refuse_a_bfl_file(tmp_path):
    import numpy as np

    from safetensors.numpy import load_file, save_file

    p = M.bfl_file(tmp_path / "a.safetensors")
    sd = load_file(str(p))
    sd["diffusion_model.single_blocks.0.linear2.alpha"] = np.array(2.0, dtype=np.float32)
    save_file(sd, str(p))
    rep, diags = lint_file(p)
    assert rep.loads["diffusers"].fatal and "ValueError" in rep.loads["diffusers"].fatal
    assert len(rep.loads["comfyui"].loaded) == 161
    assert _real_diffusers_modules(p) is None  # diffusers itself raises


def test_wrong_separator_keys_do_not_load(tmp_path):
    import numpy as np

    p = M.write(tmp_path / "x.safetensors", {
        "diffusion_model.double_blocks.0.img_attn_qkv.lora_A.weight": np.zeros((2, 3072), np.float32),
        "diffusion_model.double_blocks.0.img_attn_qkv.lora_B.weight": np.zeros((9216, 2), np.float32),
    })
    rep, diags = lint_file(p)
    assert {d.name for d in diags} >= {"lora.unknown-naming"}
    assert rep.parsed.family is None
