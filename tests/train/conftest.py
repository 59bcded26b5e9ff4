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


def _draw(path, color, offset):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (64, 64), (230, 230, 230))
    d = ImageDraw.Draw(im)
    d.ellipse((12 + offset, 8, 52, 56), fill=color)
    d.rectangle((0, 50, 64, 64), fill=(60, 120, 60))
    im.save(path)


@pytest.fixture(scope="session")
def two_images(tmp_path_factory):
    """A two-image 64x64 dataset with trigger captions (too small for lint: trainer tests use --force)."""
    root = tmp_path_factory.mktemp("ds2")
    _draw(root / "a.png", (200, 40, 40), 0)
    _draw(root / "b.png", (40, 60, 200), 8)
    (root / "a.txt").write_text("ohwx woman, red dress, studio light")
    (root / "b.txt").write_text("ohwx woman, blue dress, full-body photo")
    (root / "klint.toml").write_text('trigger = "ohwx"\nresolution = 64\n')
    return root


def make_job(root, out, **kw):
    """A TrainJob over `root`'s png files for the tiny model (framing: b.png is full-body)."""
    from curate.recipes import get_recipe
    from curate.train_job import TrainItem, TrainJob

    recipe_kw = {k: kw.pop(k) for k in ("steps", "lr", "rank", "alpha", "optimizer", "stage2_steps", "stage2_lr",
                                      "max_grad_norm")
                 if k in kw}
    recipe = get_recipe("minimal-4b", **{"steps": 6, "lr": 1e-3, "rank": 4, "alpha": 4, **recipe_kw})
    items = tuple(TrainItem(image=p.resolve(), rel=p.name, caption=p.with_suffix(".txt").read_text(),
                            framing="full-body" if p.name == "b.png" else "headshot")
                  for p in sorted(root.glob("*.png")))
    base = dict(dataset_root=root, items=items, recipe=recipe, out_dir=out, model="tiny", trigger="ohwx",
                resolution=64, sample_prompts=("ohwx woman",))
    base.update(kw)
    return TrainJob(**base)
