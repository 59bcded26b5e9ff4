from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from curate.config import load_config
from curate.dataset.scan import scan
from curate.recipes import get_recipe
from curate.train_job import TrainItem, TrainJob

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "export_dataset"
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
TOOLS = ("ai-toolkit", "diffusion-pipe", "musubi-tuner", "diffsynth", "simpletuner")
# one model path per tool, in the form that tool reads (see `klint backends`)
MODELS = {
    "ai-toolkit": "/models/black-forest-labs/FLUX.2-klein-base-9B",
    "diffusion-pipe": "/models/comfyui/diffusion_models/flux-2-klein-base-9b.safetensors",
    "musubi-tuner": "/models/bfl/flux-2-klein-base-9b.safetensors",
    "diffsynth": "/models/black-forest-labs/FLUX.2-klein-base-4B",
    "simpletuner": "/models/black-forest-labs/FLUX.2-klein-base-9B",
}
RECIPE = {"ai-toolkit": "standard", "diffusion-pipe": "standard", "musubi-tuner": "standard", "diffsynth": "minimal-4b",
          "simpletuner": "standard"}


def framing_from_name(rel: str) -> str:
    """The fixture names say the framing (its images are too small for the pose model)."""
    name = Path(rel).name
    return {"close": "headshot", "half": "half-body", "full": "full-body"}[name.split("_")[0]]


def make_job(root: Path, out: Path, tool: str, *, recipe: str | None = None, two_stage: bool = True,
             dry_run: bool = True, model: str | None = None, options: dict | None = None, **overrides: Any):
    cfg = load_config(root)
    ds = scan(root)
    items = tuple(
        TrainItem(image=it.image.resolve(), rel=it.rel_image, caption=(it.caption_text or "").strip(),
                  framing=framing_from_name(it.rel_image), repeats=int(cfg.repeats.get(it.rel_image, 1)))
        for it in ds.images)
    r = get_recipe(recipe or RECIPE[tool], **overrides)
    return TrainJob(dataset_root=root.resolve(), items=items, recipe=r, out_dir=out, model=model or MODELS[tool],
                      trigger=cfg.trigger, resolution=cfg.resolution, two_stage=two_stage, dry_run=dry_run,
                      base_dtype=overrides.get("base_dtype") or r.base_dtype,
                      sample_prompts=(), options=options or {})


@pytest.fixture()
def dataset(tmp_path) -> Path:
    """A private copy of the fixture dataset (tests compare it before/after)."""
    root = tmp_path / "jane"
    shutil.copytree(FIXTURE, root)
    return root


def snapshot(root: Path) -> dict[str, tuple[bool, bytes]]:
    """Every path under root with its bytes (and whether it is a link): detects any change."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = (p.is_symlink(), b"" if p.is_dir() else p.read_bytes())
    return out


def fake_safetensors(path: Path, width: int = 4096, dtype: str = "BF16") -> Path:
    """A real safetensors file (header + zero bytes) with a DiT's img_in.weight of the given width."""
    import json
    import struct

    header = {"img_in.weight": {"dtype": dtype, "shape": [width, 4], "data_offsets": [0, width * 8]}}
    blob = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + bytes(width * 8))
    return path
