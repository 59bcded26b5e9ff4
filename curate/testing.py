"""Helpers for klint's tests and for plugin authors' tests."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "photos"


def shared_photos() -> Path | None:
    """Real test photos: `$KLINT_TEST_PHOTOS`, else `../shared/photos` beside the checkout (never shipped)."""
    import os

    root = Path(os.environ.get("KLINT_TEST_PHOTOS") or PHOTOS)
    return root if root.is_dir() else None


def make_dataset(root: Path, files: Mapping[str, str | bytes | Path], config: str | None = None) -> Path:
    """Build a dataset folder: values are caption text, raw bytes, or a path to copy."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, dest)
        elif isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            dest.write_text(content, encoding="utf-8")
    if config is not None:
        (root / "klint.toml").write_text(config, encoding="utf-8")
    return root


@dataclasses.dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(args: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None,
            timeout: float = 600) -> CliResult:
    """Run `klint` in a subprocess exactly as a user would (real exit codes, real stderr)."""
    import os

    full_env = dict(os.environ)
    full_env.pop("KLINT_TRACE_PLUGINS", None)
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "curate.cli.main", *map(str, args)], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def bench_photos(n: int, prefix: str = "klint-bench-") -> Path:
    """A temp folder holding copies of the first `n` shared photos (numbered names), for benchmarks."""
    import tempfile

    photos = shared_photos()
    if photos is None:
        sys.exit("../shared/photos not found")
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))[:n]
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    for i, p in enumerate(files):
        shutil.copyfile(p, tmp / f"{i:03d}{p.suffix.lower()}")
    return tmp


# -- planted text overlays (tests and benchmarks/text_overlay_eval.py) ---------------------------

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
OVERLAY_KINDS = ("corner-watermark", "tiled-watermark", "date-stamp", "subtitle", "signature")


def _font(size: int, style: str = "bold"):
    from PIL import ImageFont

    name = {"bold": "DejaVuSans-Bold.ttf", "regular": "DejaVuSans.ttf", "italic": "DejaVuSerif-Italic.ttf",
            "mono": "DejaVuSansMono-Bold.ttf"}[style]
    try:
        return ImageFont.truetype(str(FONT_DIR / name), size)
    except OSError:  # no DejaVu here: Pillow's own scalable font (Pillow >= 10.1)
        return ImageFont.load_default(size)


def plant_text(image, kind: str, *, text: str | None = None, height: float = 0.04, opacity: float = 0.8,
               corner: str = "br"):
    """A copy of `image` (PIL) with one planted overlay of `kind` (see OVERLAY_KINDS).

    `height` is the text height as a share of the frame height; `opacity` 0..1. Returns
    (new image, list of boxes [x0, y0, x1, y1] where text was drawn).
    """
    from PIL import Image, ImageDraw

    base = image.convert("RGBA")
    w, h = base.size
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    a = int(round(255 * opacity))
    px = max(8, int(round(h * height)))
    boxes: list[list[int]] = []
    margin = int(0.025 * min(w, h))

    def place(t, font, x, y, fill, **kw):
        bb = d.textbbox((x, y), t, font=font, stroke_width=kw.get("stroke_width", 0))
        d.text((x, y), t, font=font, fill=fill, **kw)
        boxes.append([bb[0], bb[1], bb[2], bb[3]])

    def corner_xy(t, font):
        bb = d.textbbox((0, 0), t, font=font)
        tw, th = bb[2] - bb[0], bb[3] - bb[1]
        x = margin - bb[0] if corner[1] == "l" else w - margin - tw - bb[0]
        y = margin - bb[1] if corner[0] == "t" else h - margin - th - bb[1]
        return x, y

    if kind == "corner-watermark":
        t = text or "shutterstock"
        f = _font(px, "bold")
        place(t, f, *corner_xy(t, f), (255, 255, 255, a), stroke_width=max(1, px // 14),
              stroke_fill=(40, 40, 40, a // 2))
    elif kind == "signature":
        t = text or "Anna Kowalski"
        f = _font(px, "italic")
        place(t, f, *corner_xy(t, f), (250, 250, 245, a))
    elif kind == "date-stamp":
        t = text or "12/08/2016"
        f = _font(px, "mono")
        place(t, f, *corner_xy(t, f), (255, 140, 20, a))
    elif kind == "subtitle":
        t = text or "I never thought I would see you here again."
        f = _font(px, "regular")
        while d.textlength(t, font=f) > 0.9 * w and px > 8:
            px -= 1
            f = _font(px, "regular")
        tw = d.textlength(t, font=f)
        place(t, f, (w - tw) / 2, h - margin - 1.3 * px, (255, 255, 255, a), stroke_width=max(1, px // 10),
              stroke_fill=(0, 0, 0, a))
    elif kind == "tiled-watermark":
        t = text or "shutterstock"
        f = _font(px, "bold")
        tw = d.textlength(t, font=f)
        for row, y in enumerate(range(int(0.2 * h), int(0.85 * h), max(1, int(3 * px)))):
            for x in range(int(0.05 * w + (row % 2) * tw * 0.6), int(w - tw), max(1, int(tw * 1.5))):
                place(t, f, x, y, (255, 255, 255, a))
    else:
        raise ValueError(f"unknown overlay kind {kind!r}")
    return Image.alpha_composite(base, layer).convert("RGB"), boxes
