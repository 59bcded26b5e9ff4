"""Cheap per-image facts (PIL + numpy only): readability, size, mode, EXIF, hashes, quality.

Everything the image.* rules need comes from here, computed once per file content: the file
is opened once and decoded once at a small working size (JPEGs via `Image.draft`, so a
12-MP photo is never fully decoded), and every score is taken from that one array.
"""

from __future__ import annotations

from typing import Any

from curate.analysis.base import Analysis

# Long side of the working image every score is measured on. Scores depend on scale, so
# fixing it makes them comparable across photos of any size; 512 is half the training
# resolution, still fine enough to see the softness that shows at 1024.
WORK_SIDE = 512
# JPEGs are decoded at the smallest 1/2^k scale with a long side of at least this; measuring
# at 500 px instead of 512 (a 4000-px photo at 1/8) changes the blur score by a few percent.
DRAFT_MIN_SIDE = 384
# Blur is judged on the sharpest cell of a GRID x GRID split: a portrait with a sharp face
# and a creamy bokeh background is in focus where it matters.
GRID = 4
# centre crops (fraction of each side kept) whose hashes are stored for crop look-alikes
CROP_KEEPS = (0.9, 0.85, 0.8)
# crop windows at any position: for each kept fraction of each side, windows every
# WINDOW_STEP of the side. A hand crop is rarely centred, and pHash moves 8-14 bits when the
# window is off by 1/6 of the margin, so centre crops alone miss most of them. Grid chosen on
# 60 random unresized crops of the real photos (kept 78-95%, any position): at this density
# 57/60 came within 9 bits (pHash + dHash) of a window, the rest at 10
# (benchmarks/image_calibration.py, "crop windows")
WINDOW_KEEPS = (0.95, 0.92, 0.89, 0.86, 0.83, 0.8, 0.77)
WINDOW_STEP = 0.02

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"WEBP", 8, "WEBP"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIF"),
    (b"ftypavif", 4, "AVIF"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG2000"),
)
_LUM_LUT: list = []  # filled on first use: numpy stays out of import time
_EXT_FORMAT = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_LFS_HEAD = b"version https://git-lfs.github.com/spec/v1"


class ImageAnalysis(Analysis):
    name = "image"
    version = "6"
    scope = "image"

    def run_batch(self, items, ctx, advance):
        out = []
        for item in items:
            out.append(analyse_image(item.image))
            advance(1)
        return out


def sniff_format(head: bytes) -> str | None:
    """The container format from the first bytes, independent of the file name."""
    for magic, offset, fmt in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            if fmt == "WEBP" and head[:4] != b"RIFF":
                continue
            return fmt
    return None


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the sample
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _fail(rec: dict[str, Any], kind: str, message: str) -> dict[str, Any]:
    rec.update(readable=False, error_kind=kind, error=message)
    return rec


def analyse_image(path) -> dict[str, Any]:
    import warnings
    from pathlib import Path

    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    rec: dict[str, Any] = {"readable": False}
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
        size = path.stat().st_size
    except OSError as exc:
        return _fail(rec, "io", f"cannot read file: {exc.strerror or exc}")
    rec["bytes"] = size
    ext = path.suffix.lower()
    rec["ext_format"] = _EXT_FORMAT.get(ext)
    sniffed = sniff_format(head)
    rec["sniffed_format"] = sniffed
    if size == 0:
        return _fail(rec, "empty", "empty file (0 bytes)")
    if head.startswith(_LFS_HEAD):
        return _fail(rec, "lfs-pointer", "Git LFS pointer, not the image (run `git lfs pull`)")
    if sniffed is None and _looks_like_text(head):
        return _fail(rec, "not-image", "not an image: the file is text")
    try:
        with warnings.catch_warnings():
            # huge-but-legal images only need a draft decode; the hard limit still raises
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            rec["format"] = im.format
            rec.update(width=im.width, height=im.height, mode=im.mode)
            rec["frames"] = int(getattr(im, "n_frames", 1) or 1)
            try:
                orient = im.getexif().get(0x0112)
            except Exception:  # a broken EXIF block is not a broken image
                orient = None
            rec["exif_orientation"] = int(orient) if isinstance(orient, int) and 1 <= orient <= 8 else 1
            rec["has_alpha"] = im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
            if im.format == "JPEG":
                scale = DRAFT_MIN_SIDE / max(im.width, im.height)
                if scale < 1:
                    # libjpeg decodes straight to 1/2, 1/4 or 1/8 scale, so a 12-MP photo costs
                    # little more than its huffman pass; pixel hashes are taken at this scale
                    im.draft("RGB", (max(1, int(im.width * scale)), max(1, int(im.height * scale))))
            im.load()
            rec["decoded"] = [im.width, im.height]
            _measure(im, rec)
    except UnidentifiedImageError:
        what = f"{sniffed} data" if sniffed else "unknown data"
        return _fail(rec, "not-image", f"not a readable image ({what})")
    except Image.DecompressionBombError as exc:
        return _fail(rec, "too-large", str(exc).splitlines()[0][:200])
    except ImportError:
        # ultralytics wraps Image.open to try optional decoders (pi_heif) once it is imported: a
        # container PIL cannot read then surfaces as a missing module, not as "unidentified"
        what = f"{sniffed} data" if sniffed else "unknown data"
        return _fail(rec, "not-image", f"not a readable image ({what})")
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        kind = "truncated" if "truncated" in msg.lower() or isinstance(exc, EOFError) else "corrupt"
        return _fail(rec, kind, f"cannot decode: {msg}")
    except Exception as exc:  # PIL plugins raise many types for hostile files
        return _fail(rec, "corrupt", f"cannot decode: {type(exc).__name__}: {exc}".splitlines()[0][:200])
    rec["readable"] = True
    return rec


def _measure(im, rec: dict[str, Any]) -> None:
    """Fill hashes and quality scores from the decoded (possibly draft-scaled) image."""
    import hashlib

    import numpy as np
    from PIL import Image

    if not _LUM_LUT:
        levels = np.arange(256, dtype=np.float32) / 255.0
        _LUM_LUT.extend(np.float32(w) * levels * levels for w in (0.241, 0.691, 0.068))

    # pixel identity: decoded pixels plus mode and size, so re-saved metadata (EXIF, ICC,
    # PNG chunks) leaves it alone and any pixel change does not. sha1, not md5: same job,
    # twice as fast with SHA instructions, which counts for a 12-MP PNG (36 MB of pixels)
    h = hashlib.sha1(f"{im.mode}:{im.width}x{im.height}:".encode())
    h.update(im.tobytes())
    rec["pixel_hash"] = h.hexdigest()

    alpha = None
    if rec["has_alpha"]:
        a_img = im.convert("RGBA").getchannel("A") if im.mode not in ("RGBA", "LA") else im.getchannel("A")
        a = np.asarray(a_img)
        alpha = a
        rec["alpha_min"] = int(a.min())
        rec["alpha_used"] = round(float(np.count_nonzero(a < 255)) / a.size, 4)

    gray_mode = im.mode in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # scale by the format's full range, not the image's own maximum: a mid-grey 16-bit
        # frame (30000/65535) must stay mid-grey, not be stretched to white
        arr = np.asarray(im, dtype=np.float32)
        im = Image.fromarray(np.clip(arr * (255.0 / full_range(im.mode, arr)), 0, 255).astype(np.uint8), "L")
    rgb = im.convert("RGB")
    long_side = max(rgb.width, rgb.height)
    if long_side > WORK_SIDE:
        f = WORK_SIDE / long_side
        rgb = rgb.resize((max(1, round(rgb.width * f)), max(1, round(rgb.height * f))), Image.BILINEAR,
                         reducing_gap=2.0)
        if alpha is not None:
            alpha = np.asarray(Image.fromarray(alpha).resize(rgb.size, Image.BILINEAR))
    rec["work"] = [rgb.width, rgb.height]
    a8 = np.asarray(rgb)
    r, g, b = (a8[..., i].reshape(-1) for i in range(3))
    if alpha is not None:
        shown = alpha.reshape(-1) > 0
        if shown.any():
            r, g, b = r[shown], g[shown], b[shown]

    # brightness as cleanvision measures it (perceived luminance, 0..1); per-channel
    # look-up tables keep this to three gathers and a sqrt
    lum = np.sqrt(_LUM_LUT[0][r] + _LUM_LUT[1][g] + _LUM_LUT[2][b])
    p = np.percentile(lum, [1, 5, 50, 95, 99])
    rec["brightness"] = {k: round(float(v), 4) for k, v in zip(("p1", "p5", "p50", "p95", "p99"), p)}
    rec["clip_dark"] = round(float(np.count_nonzero(lum <= 0.02)) / lum.size, 4)
    rec["clip_light"] = round(float(np.count_nonzero(lum >= 0.98)) / lum.size, 4)

    # colourfulness: the largest channel spread per pixel. A black-and-white photo saved
    # as RGB keeps a few levels of JPEG/palette tint (a real scan measured mean 4.9, p99 14);
    # the least colourful real colour photo measured mean 5.0 but p99 70
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    rec["chroma_p99"] = round(float(np.percentile(spread, 99)), 2)
    rec["chroma_mean"] = round(float(spread.mean()), 2)
    rec["grayscale"] = bool(gray_mode or (rec["chroma_p99"] <= 24.0 and rec["chroma_mean"] <= 6.0))

    gray = np.asarray(rgb.convert("L"), dtype=np.float32)
    rec.update(_sharpness(gray))
    rec.update(_tones(lum.reshape(rgb.height, rgb.width) if alpha is None else None, gray))
    rec["phash"] = _phash(rgb)
    rec["dhash"] = _dhash(rgb)
    mirror = rgb.transpose(Image.FLIP_LEFT_RIGHT)
    rec["phash_mirror"] = _phash(mirror)
    rec["dhash_mirror"] = _dhash(mirror)
    # hashes of the centre at 90%, 85% and 80% of each side: a cropped copy matches its source's
    # centre hash closely although whole-image hashes drift 8-14 bits apart (as far as
    # distinct shots from one studio)
    crops = []
    for keep in CROP_KEEPS:
        mx, my = round(rgb.width * (1 - keep) / 2), round(rgb.height * (1 - keep) / 2)
        centre = rgb.crop((mx, my, rgb.width - mx, rgb.height - my))
        crops.append([_phash(centre), _dhash(centre)])
    rec["crop_hashes"] = crops
    rec.update(crop_windows(gray))


def _box_means(integral, x0, y0, x1, y1, nx: int, ny: int):
    """Mean grey level of an ny x nx grid of boxes over each window (arrays of corners).

    Area averaging from one integral image: hundreds of windows cost one gather each, where a
    LANCZOS resize per window would cost a resample of the whole crop.
    """
    import numpy as np

    fx, fy = np.linspace(0.0, 1.0, nx + 1), np.linspace(0.0, 1.0, ny + 1)
    xs = np.rint(x0[:, None] + (x1 - x0)[:, None] * fx).astype(np.intp)
    ys = np.rint(y0[:, None] + (y1 - y0)[:, None] * fy).astype(np.intp)
    corner = integral[ys[:, :, None], xs[:, None, :]]
    tot = corner[:, 1:, 1:] - corner[:, :-1, 1:] - corner[:, 1:, :-1] + corner[:, :-1, :-1]
    area = np.maximum(1, np.diff(ys))[:, :, None] * np.maximum(1, np.diff(xs))[:, None, :]
    return tot / area


def _box_hashes(integral, x0, y0, x1, y1) -> list[bytes]:
    """pHash + dHash (16 bytes, pHash first) of each window, both from area-averaged grids."""
    import numpy as np

    m = _dct_matrix(32)
    low = (m @ _box_means(integral, x0, y0, x1, y1, 32, 32) @ m.T)[:, :8, :8].reshape(len(x0), 64)
    pbits = low > np.median(low, axis=1)[:, None]
    d = _box_means(integral, x0, y0, x1, y1, 9, 8)
    dbits = (d[:, :, 1:] > d[:, :, :-1]).reshape(len(x0), 64)
    packed = np.packbits(np.concatenate([pbits, dbits], axis=1), axis=1)
    return [row.tobytes() for row in packed]


def crop_windows(gray) -> dict[str, Any]:
    """`box_hash` of the whole image (hex) and `crop_windows`: {kept fraction: base64 of the
    windows' 16-byte hashes, one after another}.

    Both come from the same area-averaged hashing, so a crop's whole-image hash compares with
    its source's window hash bit for bit when the window is the crop. base64, not hex: the
    506 windows are the bulk of an image's cache entry (about 11 KB instead of 16).
    """
    import base64

    import numpy as np

    h, w = gray.shape
    if min(h, w) < 32:
        return {}
    integral = np.zeros((h + 1, w + 1))
    integral[1:, 1:] = gray.astype(np.float64).cumsum(0).cumsum(1)
    one = np.array([0.0])
    whole = _box_hashes(integral, one, one, one + w, one + h)[0].hex()
    windows = {}
    for keep in WINDOW_KEEPS:
        n = max(1, round((1 - keep) / WINDOW_STEP))
        f = np.arange(n + 1) / n
        fy, fx = (a.reshape(-1) for a in np.meshgrid(f, f, indexing="ij"))
        x0, y0 = fx * w * (1 - keep), fy * h * (1 - keep)
        packed = b"".join(_box_hashes(integral, x0, y0, x0 + w * keep, y0 + h * keep))
        windows[f"{keep:g}"] = base64.b64encode(packed).decode("ascii")
    return {"box_hash": whole, "crop_windows": windows}


def _tones(lum, gray) -> dict[str, Any]:
    """Tonal facts that need the pixel layout: the subject's highlights and the grey-level entropy."""
    import numpy as np

    out: dict[str, Any] = {}
    hist = np.bincount(gray.astype(np.uint8).reshape(-1), minlength=256).astype(np.float64)
    prob = hist[hist > 0] / hist.sum()
    out["entropy"] = round(float(-(prob * np.log2(prob)).sum()), 3)
    if lum is None or min(lum.shape) < 16:
        return out
    h, w = lum.shape
    ring = max(1, min(h, w) // 20)
    border = np.concatenate([lum[:ring].reshape(-1), lum[-ring:].reshape(-1), lum[:, :ring].reshape(-1),
                             lum[:, -ring:].reshape(-1)])
    centre = lum[h // 10:h * 8 // 10, w // 5:w * 4 // 5].reshape(-1)
    out["border_clip"] = round(float(np.count_nonzero(border >= 0.98)) / border.size, 4)
    out["centre_clip"] = round(float(np.count_nonzero(centre >= 0.98)) / centre.size, 4)
    kept = centre[centre < 0.98]
    out["centre_rest_p50"] = round(float(np.median(kept)), 4) if kept.size >= 0.02 * centre.size else 1.0
    out["centre_rest_p10"] = round(float(np.percentile(kept, 10)), 4) if kept.size >= 0.02 * centre.size else 1.0
    return out


def full_range(mode: str, arr) -> float:
    """White level of a high-bit-depth mode: 16-bit PNGs decode as I;16 (or I), floats as 0..1."""
    hi = float(arr.max()) if arr.size else 0.0
    if mode.startswith("I;16"):
        return 65535.0
    if mode == "I":
        return 65535.0 if hi <= 65535 else max(hi, 1.0)
    # mode F: 0..1 when the data fits, else the 8-bit scale, else the data's own maximum
    return 1.0 if hi <= 1.0 else 255.0 if hi <= 255.0 else hi


def _sharpness(gray) -> dict[str, Any]:
    """Variance of the 4-neighbour Laplacian, over the whole image and its sharpest cells."""
    h, w = gray.shape
    if h < 3 or w < 3:
        return {"lap_var": 0.0, "lap_var_max": 0.0, "lap_var_2nd": 0.0}
    lap = (gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1])
    out = {"lap_var": round(float(lap.var()), 2)}
    lh, lw = lap.shape
    g = GRID if min(lh, lw) >= GRID * 8 else 1
    cells = []
    for i in range(g):
        for j in range(g):
            cell = lap[i * lh // g:(i + 1) * lh // g, j * lw // g:(j + 1) * lw // g]
            cells.append(float(cell.var()))
    cells.sort()
    out["lap_var_max"] = round(cells[-1], 2)
    # the second-sharpest cell guards against one noisy or text-filled corner
    out["lap_var_2nd"] = round(cells[-2] if len(cells) > 1 else cells[-1], 2)
    # direction of the remaining detail: second differences along four directions over the
    # four sharpest cells. Motion blur averages along its streak, which flattens the second
    # difference along it far more than across it, so the weakest direction's energy falls
    # to a few percent of the strongest (clean photos kept >= 10%)
    c = gray[1:-1, 1:-1]
    dirs = (gray[1:-1, :-2] + gray[1:-1, 2:] - 2 * c, gray[:-2, 1:-1] + gray[2:, 1:-1] - 2 * c,
            gray[:-2, :-2] + gray[2:, 2:] - 2 * c, gray[:-2, 2:] + gray[2:, :-2] - 2 * c)
    energy = []
    for i in range(g):
        for j in range(g):
            sl = (slice(i * lh // g, (i + 1) * lh // g), slice(j * lw // g, (j + 1) * lw // g))
            e = [float((d[sl] * d[sl]).mean()) for d in dirs]
            energy.append((sum(e), e))
    energy.sort(key=lambda x: -x[0])
    top = [sum(e[k] for _, e in energy[:max(1, len(energy) // 4)]) for k in range(4)]
    out["direction_ratio"] = round(min(top) / max(top), 4) if max(top) > 0 else 1.0
    return out


def _bits_hex(bits) -> str:
    """Row-major bits as hex, the way imagehash prints a hash."""
    flat = [bool(b) for b in bits.reshape(-1)]
    value = int("".join("1" if b else "0" for b in flat), 2)
    return f"{value:0{(len(flat) + 3) // 4}x}"


_DCT_CACHE: dict[int, Any] = {}


def _dct_matrix(n: int):
    import numpy as np

    m = _DCT_CACHE.get(n)
    if m is None:
        k = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        m = 2.0 * np.cos(np.pi * k * (2 * x + 1) / (2 * n))
        _DCT_CACHE[n] = m
    return m


def _phash(rgb, hash_size: int = 8, factor: int = 4) -> str:
    """imagehash.phash, bit for bit, without importing scipy (a DCT-II is one matrix product)."""
    import numpy as np
    from PIL import Image

    n = hash_size * factor
    px = np.asarray(rgb.convert("L").resize((n, n), Image.LANCZOS), dtype=np.float64)
    m = _dct_matrix(n)
    dct = m @ px @ m.T
    low = dct[:hash_size, :hash_size]
    return _bits_hex(low > np.median(low))


def _dhash(rgb, hash_size: int = 8) -> str:
    """imagehash.dhash (row gradients), bit for bit."""
    import numpy as np
    from PIL import Image

    px = np.asarray(rgb.convert("L").resize((hash_size + 1, hash_size), Image.LANCZOS))
    return _bits_hex(px[:, 1:] > px[:, :-1])


def full_pixel_hash(path) -> str | None:
    """The pixel hash of a full-resolution decode (no draft scaling), None when it cannot be decoded.

    Only the exact-duplicate check calls it, for the few files whose draft-scale facts already
    match another file's: a JPEG and a PNG re-save of it then compare pixel for pixel.
    """
    import hashlib
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                h = hashlib.sha1(f"{im.mode}:{im.width}x{im.height}:".encode())
                h.update(im.tobytes())
                return h.hexdigest()
    except Exception:  # an undecodable file is KL101's, never an exact copy
        return None


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
