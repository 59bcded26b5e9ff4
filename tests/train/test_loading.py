"""--model resolution: tiny, diffusers folder, offline hub id, single-file checkpoint."""
from __future__ import annotations

import pytest
import torch

from curate.errors import KlintError
from plugins.klein.loading import load_pipeline, looks_distilled, model_size


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("KLINT_KLEIN_BASE", raising=False)


def test_diffusers_folder_loads_same_weights(tiny_dir, tiny_pipe):
    warnings = []
    pipe = load_pipeline(str(tiny_dir), warn=warnings.append)
    a = dict(pipe.transformer.named_parameters())
    b = dict(tiny_pipe.transformer.named_parameters())
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert warnings == [] and model_size(pipe.transformer) == "tiny"


def test_distilled_checkpoint_warns(tiny_dir, tmp_path):
    link = tmp_path / "FLUX.2-klein-9B"
    link.symlink_to(tiny_dir, target_is_directory=True)
    warnings = []
    load_pipeline(str(link), warn=warnings.append)
    assert len(warnings) == 1 and "distilled" in warnings[0] and "base" in warnings[0]
    assert looks_distilled("black-forest-labs/FLUX.2-klein-4B")
    assert not looks_distilled("black-forest-labs/FLUX.2-klein-base-4B")


def test_folder_without_model_index(tmp_path):
    with pytest.raises(KlintError, match="model_index.json"):
        load_pipeline(str(tmp_path))


def test_uncached_hub_id_is_refused_offline():
    with pytest.raises(KlintError, match="local Hugging Face cache"):
        load_pipeline("klint-test-nonexistent/FLUX.2-klein-base-4B")


def test_single_file_checks(tmp_path):
    from safetensors.torch import save_file

    bad = tmp_path / "other.safetensors"
    save_file({"foo.weight": torch.zeros(2, 2)}, str(bad))
    with pytest.raises(KlintError, match="not a FLUX.2 transformer"):
        load_pipeline(str(bad))
    bfl = tmp_path / "klein4b.safetensors"
    save_file({"model.diffusion_model.img_in.weight": torch.zeros(3072, 2)}, str(bfl))
    with pytest.raises(KlintError, match="KLINT_KLEIN_BASE"):
        load_pipeline(str(bfl))
    txt = tmp_path / "x.ckpt"
    txt.write_text("x")
    with pytest.raises(KlintError, match=".safetensors"):
        load_pipeline(str(txt))


def _to_bfl_checkpoint(sd, prefix="model.diffusion_model."):
    """A diffusers Flux2 transformer state dict in BFL/ComfyUI naming (what single-file users have)."""
    rename = {"x_embedder": "img_in", "context_embedder": "txt_in",
              "time_guidance_embed.timestep_embedder.linear_1": "time_in.in_layer",
              "time_guidance_embed.timestep_embedder.linear_2": "time_in.out_layer",
              "double_stream_modulation_img.linear": "double_stream_modulation_img.lin",
              "double_stream_modulation_txt.linear": "double_stream_modulation_txt.lin",
              "single_stream_modulation.linear": "single_stream_modulation.lin", "proj_out": "final_layer.linear"}
    double = {"attn.norm_q.weight": "img_attn.norm.query_norm.scale", "attn.norm_k.weight": "img_attn.norm.key_norm.scale",
              "attn.norm_added_q.weight": "txt_attn.norm.query_norm.scale",
              "attn.norm_added_k.weight": "txt_attn.norm.key_norm.scale",
              "attn.to_out.0.weight": "img_attn.proj.weight", "attn.to_add_out.weight": "txt_attn.proj.weight",
              "ff.linear_in.weight": "img_mlp.0.weight", "ff.linear_out.weight": "img_mlp.2.weight",
              "ff_context.linear_in.weight": "txt_mlp.0.weight", "ff_context.linear_out.weight": "txt_mlp.2.weight"}
    single = {"attn.to_qkv_mlp_proj.weight": "linear1.weight", "attn.to_out.weight": "linear2.weight",
              "attn.norm_q.weight": "norm.query_norm.scale", "attn.norm_k.weight": "norm.key_norm.scale"}
    out = {}
    for k, v in sd.items():
        if k.startswith("transformer_blocks."):
            _, i, rest = k.split(".", 2)
            if rest in double:
                out[f"double_blocks.{i}.{double[rest]}"] = v
            elif rest == "attn.to_q.weight":
                out[f"double_blocks.{i}.img_attn.qkv.weight"] = torch.cat(
                    [sd[f"transformer_blocks.{i}.attn.to_{x}.weight"] for x in "qkv"])
            elif rest == "attn.add_q_proj.weight":
                out[f"double_blocks.{i}.txt_attn.qkv.weight"] = torch.cat(
                    [sd[f"transformer_blocks.{i}.attn.add_{x}_proj.weight"] for x in "qkv"])
        elif k.startswith("single_transformer_blocks."):
            _, i, rest = k.split(".", 2)
            out[f"single_blocks.{i}.{single[rest]}"] = v
        elif k == "norm_out.linear.weight":
            scale, shift = v.chunk(2, 0)
            out["final_layer.adaLN_modulation.1.weight"] = torch.cat([shift, scale])  # BFL order is (shift, scale)
        else:
            for a, b in rename.items():
                k = k.replace(a, b)
            out[k] = v
    return {prefix + k: v.contiguous() for k, v in out.items()}


@pytest.mark.parametrize("prefix", ["model.diffusion_model.", ""])  # ComfyUI file, BFL release file
def test_single_file_bfl_checkpoint_with_local_base(tiny_dir, tiny_pipe, tmp_path, monkeypatch, prefix):
    from safetensors.torch import save_file

    sd = {k: v.detach().clone() for k, v in tiny_pipe.transformer.state_dict().items()}
    ckpt = tmp_path / "klein-base-tiny.safetensors"
    save_file(_to_bfl_checkpoint(sd, prefix), str(ckpt))
    monkeypatch.setenv("KLINT_KLEIN_BASE", str(tiny_dir))
    pipe = load_pipeline(str(ckpt))
    got = pipe.transformer.state_dict()
    assert got.keys() == sd.keys()
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    assert pipe.vae is not None and pipe.text_encoder is not None
