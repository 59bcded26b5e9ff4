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
