"""End to end on plugins.klein.tiny's random Flux2KleinPipeline (CPU): modes, LoRA, reference KV cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from plugins.pulid.backend import generate
from plugins.pulid.job import InferJob


@pytest.fixture(scope="module")
def pipe():
    from plugins.klein.tiny import build_tiny_pipeline

    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    d = tmp_path_factory.mktemp("refs")
    rng = np.random.default_rng(0)
    out = []
    for i in range(2):
        p = d / f"ref{i}.png"
        Image.fromarray((rng.random((80, 64, 3)) * 255).astype("uint8")).save(p)
        out.append(p)
    return out


@pytest.fixture(scope="module")
def lora(tmp_path_factory):
    from diffusers import Flux2KleinPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from plugins.klein.tiny import build_transformer

    tr = build_transformer(seed=0)
    torch.manual_seed(7)
    tr.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                              init_lora_weights=False))  # B != 0: a LoRA that does something
    d = tmp_path_factory.mktemp("lora")
    Flux2KleinPipeline.save_lora_weights(d, transformer_lora_layers=get_peft_model_state_dict(tr))
    return d / "pytorch_lora_weights.safetensors"


@pytest.fixture(scope="module")
def none_image(pipe):
    return _run(pipe, mode="none")[0]


def _run(pipe, **kw):
    base = dict(prompt="sks person, portrait", model="tiny", out=Path("unused"), width=32, height=32, steps=2,
                cfg=2.0, seed=3)
    base.update(kw)
    images, info = generate(InferJob(**base), pipe, output_type="np")
    return np.stack(images), info


def test_pulid_weight_zero_equals_none_and_weight_one_changes_output(pipe, refs, none_image):
    none = none_image
    zero, info0 = _run(pipe, mode="pulid", refs=refs, id_weight=0.0)
    one, info1 = _run(pipe, mode="pulid", refs=refs, id_weight=1.0)
    assert np.array_equal(none, zero)
    assert info0["id_injections"] == 0
    assert info1["id_injections"] == 2 * 2 * 2  # steps x (cond, uncond) x slots {double 0, single 0}
    assert np.abs(one - none).max() > 1e-3


def test_lora_applies_and_survives_pulid_hooks(pipe, refs, lora, none_image):
    none = none_image
    with_lora, info = _run(pipe, mode="none", lora=lora)
    assert info["lora"] and np.abs(with_lora - none).max() > 1e-3
    zero_lora, _ = _run(pipe, mode="pulid", refs=refs, id_weight=0.0, lora=lora)
    assert np.array_equal(zero_lora, with_lora)
    half, _ = _run(pipe, mode="none", lora=lora, lora_scale=0.0)
    assert np.array_equal(half, none)  # scale 0 = no LoRA: the scale reaches the PEFT layers
    assert not any("lora" in n for n, _ in pipe.transformer.named_parameters())  # removed after the run


def test_native_references_condition_the_output(pipe, refs, none_image):
    one_ref, _ = _run(pipe, mode="reference", refs=refs[:1])
    two_refs, _ = _run(pipe, mode="reference", refs=refs)
    # a random tiny model moves little, but references must reach the noisy tokens
    assert np.abs(one_ref - none_image).max() > 1e-5 and np.abs(two_refs - one_ref).max() > 1e-5
    # pulid + native references together: hooks still touch only the noisy tokens
    both, info = _run(pipe, mode="pulid", refs=refs, with_reference=True, id_weight=0.0)
    assert np.array_equal(both, two_refs) and info["id_injections"] == 0


def test_ref_cache_on_is_refused_on_a_base_checkpoint_because_it_changes_the_image(pipe, refs):
    """On base weights the KV pipeline is another model (references first, t = 0, self-only
    attention), not a cache: compare it with `--ref-cache off` and see it differ, so klint refuses."""
    from curate.errors import KlintError
    from plugins.pulid.backend import BASE_CACHE_REFUSAL, _kv_pipeline

    with pytest.raises(KlintError, match="not the KV variant"):
        _run(pipe, mode="reference", refs=refs, ref_cache="on", cfg=1.0, steps=3)
    off, info = _run(pipe, mode="reference", refs=refs, ref_cache="off", cfg=1.0, steps=3)
    assert "ref_cache" not in info
    none, _ = _run(pipe, mode="none", cfg=1.0, steps=3)
    kv, _ = generate(InferJob(prompt="sks person, portrait", model="tiny", out=Path("unused"), width=32, height=32,
                              steps=3, seed=3, mode="reference", refs=refs), _kv_pipeline(pipe), output_type="np")
    kv = np.stack(kv)
    # the KV semantics move the image by a sizeable fraction of the references' whole effect
    assert np.abs(kv - off).max() > 0.05 * np.abs(off - none).max()
    assert "t = 0 modulation" in BASE_CACHE_REFUSAL


def test_kv_checkpoint_cache_equals_recomputing_references_every_step(refs):
    """On a KV checkpoint (`tiny-kv`), caching reference K/V on step 0 equals recomputing them at
    every step under the same KV semantics: the cache itself loses nothing."""
    from plugins.pulid.backend import load_pipeline

    kv_pipe = load_pipeline("tiny-kv", "cpu", torch.float32)
    cached, info = _run(kv_pipe, model="tiny-kv", mode="reference", refs=refs, cfg=1.0, steps=3)
    assert info["ref_cache"] is True
    tr = kv_pipe.transformer
    orig = tr.forward
    seen = {}

    def recompute(*args, **kw):
        if kw.get("kv_cache_mode") == "extract":
            seen["ref"] = (kw["hidden_states"][:, :kw["num_ref_tokens"]], kw["img_ids"][:, :kw["num_ref_tokens"]])
            seen["calls"] = seen.get("calls", 0) + 1
        elif kw.get("kv_cache_mode") == "cached":
            ref_h, ref_ids = seen["ref"]
            kw = dict(kw, hidden_states=torch.cat([ref_h, kw["hidden_states"]], dim=1),
                      img_ids=torch.cat([ref_ids, kw["img_ids"]], dim=1), kv_cache=None, kv_cache_mode="extract",
                      num_ref_tokens=ref_h.shape[1])
            seen["calls"] += 1
            return (orig(*args, **kw)[0],)
        return orig(*args, **kw)

    tr.forward = recompute
    try:
        uncached, _ = _run(kv_pipe, model="tiny-kv", mode="reference", refs=refs, cfg=1.0, steps=3)
    finally:
        del tr.forward
    assert seen["calls"] == 3  # every step recomputed the reference tokens
    np.testing.assert_allclose(cached, uncached, atol=1e-5)
    from curate.errors import KlintError

    with pytest.raises(KlintError, match="always caches"):
        _run(kv_pipe, model="tiny-kv", mode="reference", refs=refs, ref_cache="off", cfg=1.0)


def test_tiny_model_says_its_output_is_noise_and_json_records_the_references(tmp_path, refs):
    import hashlib
    import json

    from curate.testing import run_cli

    r = run_cli(["infer", "x", "--model", "tiny", "--mode", "reference", "--ref", refs[0], "--ref", refs[1],
                 "--steps", "1", "--width", "64", "--height", "64", "-o", tmp_path / "o"])
    assert r.exit_code == 0, r.stderr
    assert "random weights" in r.stderr and "noise" in r.stderr
    meta = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    assert meta["random_weights"] is True
    assert meta["references"] == [{"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                                  for p in refs]


def test_bad_inputs_are_one_line_errors(tmp_path, refs):
    from curate.testing import run_cli

    r = run_cli(["infer", "x", "--model", "tiny", "--mode", "pulid", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "needs at least one --ref" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(["infer", "x", "--model", "tiny", "--mode", "reference", "--ref", tmp_path / "nope.png",
                 "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "reference image not found" in r.stderr
    r = run_cli(["infer", "x", "--model", "tiny", "--id-weight", "7", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "--id-weight" in r.stderr
    assert not (tmp_path / "o").exists()
