"""Shared builders for the image-rule tests: every asset is made from a real photo."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

# photos whose short side is >= 1024, so they are clean for KL102 (labelled by eye: sharp,
# well exposed, colour)
LARGE = {
    "pengwei": "pulid-example-inputs/pengwei.jpg",
    "lifeifei": "pulid-example-inputs/lifeifei.jpg",
    "lapa": "mmpose-tests-data/lapa/10773046825_0.jpg",
    "studio": "mmpose-tests-data/mpi_inf_3dhp/S4_Seq2_Cam0_001033.jpg",
}


def real_photos(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))


def flat_name(photos: Path, path: Path) -> str:
    return path.relative_to(photos).as_posix().replace("/", "__")


def jpeg_bytes(im, **kw) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=kw.pop("quality", 92), **kw)
    return buf.getvalue()


def png_bytes(im, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **kw)
    return buf.getvalue()


def with_jpeg_comment(data: bytes, text: bytes) -> bytes:
    """The same JPEG stream with a COM segment after SOI: new bytes, identical pixels."""
    assert data[:2] == b"\xff\xd8"
    seg = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    return data[:2] + seg + data[2:]


@pytest.fixture(scope="session")
def large(photos):
    return {k: photos / v for k, v in LARGE.items()}
