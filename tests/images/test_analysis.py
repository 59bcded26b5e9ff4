"""The "image" analysis itself: hashes, decode shortcuts, failure kinds."""

from __future__ import annotations

import imagehash
import pytest
from PIL import Image

from curate.analysis.image import _dhash, _phash, analyse_image, hamming, sniff_format
from tests.images.conftest import png_bytes, real_photos


def test_hashes_match_imagehash_bit_for_bit(photos):
    files = real_photos(photos)[::6]
    assert len(files) >= 10
    for path in files:
        im = Image.open(path).convert("RGB")
        assert _phash(im) == str(imagehash.phash(im)), path
        assert _dhash(im) == str(imagehash.dhash(im)), path
    a, b = (Image.open(p).convert("RGB") for p in files[:2])
    assert hamming(_phash(a), _phash(b)) == imagehash.phash(a) - imagehash.phash(b)


def test_large_jpeg_is_draft_decoded(large):
    rec = analyse_image(large["pengwei"])
    assert rec["readable"] and (rec["width"], rec["height"]) == (2160, 2880)
    assert 384 <= max(rec["decoded"]) < 2880  # never decoded at full size
    assert max(rec["work"]) <= 512
    for key in ("format", "mode", "pixel_hash", "phash", "dhash", "brightness", "lap_var_max"):
        assert key in rec
    assert rec["format"] == "JPEG" and rec["mode"] == "RGB" and "error" not in rec


def test_failure_kinds(tmp_path, large):
    png = png_bytes(Image.open(large["studio"]).convert("RGB").resize((600, 600)))
    cases = {
        "cut.png": (png[: len(png) // 2], ("truncated", "corrupt")),
        "heic.jpg": (b"\x00\x00\x00\x18ftypheic" + bytes(range(256)) * 4, ("not-image",)),
        "zero.webp": (b"", ("empty",)),
    }
    for name, (data, kinds) in cases.items():
        (tmp_path / name).write_bytes(data)
        rec = analyse_image(tmp_path / name)
        assert rec["readable"] is False and rec["error_kind"] in kinds, (name, rec)
        assert rec["error"] and "\n" not in rec["error"]
    assert "HEIC data" in analyse_image(tmp_path / "heic.jpg")["error"]


@pytest.mark.parametrize("head, fmt", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "PNG"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
    (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
    (b"hello world", None),
])
def test_sniff_format(head, fmt):
    assert sniff_format(head) == fmt


def test_near_duplicate_pair_search_paths_agree():
    """KL202's numpy scan (used from 200 images up) finds exactly the pairs the plain loop finds."""
    import random

    from lint_rules.KL202 import _close_pairs

    rng = random.Random(7)
    base = [rng.getrandbits(64) for _ in range(60)]
    # look-alikes: flip a few bits of some hashes
    hashes = base + [h ^ (1 << rng.randrange(64)) ^ (1 << rng.randrange(64)) for h in base[:30]]
    hashes += [rng.getrandbits(64) for _ in range(150)]
    assert len(hashes) >= 200
    fast = sorted(_close_pairs(hashes, 6))
    slow = sorted((i, j, (hashes[i] ^ hashes[j]).bit_count()) for i in range(len(hashes))
                  for j in range(i + 1, len(hashes)) if (hashes[i] ^ hashes[j]).bit_count() <= 6)
    assert fast == slow and len(fast) >= 30
