from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
pytest.importorskip("diffusers", reason="the train extra (diffusers) is not installed")


@pytest.fixture(scope="session")
def tiny_pipe():
    """One tiny random Klein pipeline for read-only use across the train tests."""
    from plugins.klein.tiny import build_tiny_pipeline

    torch.set_num_threads(1)
    return build_tiny_pipeline(seed=0)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory, tiny_pipe):
    """The tiny pipeline saved as a diffusers folder, as a downloaded checkpoint would be."""
    path = tmp_path_factory.mktemp("tiny-klein")
    tiny_pipe.save_pretrained(path)
    return path
