"""safetensors read/write with numpy only. A LoRA file is untrusted: every size is bounded before use.

Layout: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__},
then the tensor bytes. Pickle checkpoints (.pt/.ckpt/.bin/.pth) are refused without being opened.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from curate.errors import KlintError

MAX_HEADER = 16 * 1024 * 1024  # a 9B rank-32 LoRA header is ~20 KiB; the library allows 100 MiB
MAX_TENSOR_BYTES = 512 * 1024 * 1024  # larger than any LoRA factor: not read into memory
MAX_RANK = 4096
MAX_TENSORS = 200_000
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}
DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4, "I16": 2,
          "I8": 1, "U8": 1, "BOOL": 1}
FLOATS = {"F64", "F32", "F16", "BF16"}
_NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
       "I8": "i1", "U8": "u1", "BOOL": "u1"}


class LoraFileError(KlintError):
    """The file is not a readable safetensors LoRA; `reason` is one line."""


class Tensor:
    __slots__ = ("name", "dtype", "shape", "start", "end")

    def __init__(self, name, dtype, shape, start, end):
        self.name, self.dtype, self.shape, self.start, self.end = name, dtype, tuple(shape), start, end

    @property
    def nbytes(self) -> int:
        return self.end - self.start


class SafeTensors:
    """Header parsed eagerly, tensor bytes memory-mapped on first use."""

    def __init__(self, path: Path, tensors: dict[str, Tensor], metadata: dict[str, str], data_start: int):
        self.path, self.tensors, self.metadata, self.data_start = path, tensors, metadata, data_start
        self._map = None

    def array(self, name: str) -> np.ndarray:
        """The tensor as float32 (bf16/f16/f64 converted); integer dtypes as stored."""
        t = self.tensors[name]
        if t.dtype not in _NP:
            raise LoraFileError(f"{name}: dtype {t.dtype} cannot be read without torch")
        if self._map is None:
            self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        raw = self._map[self.data_start + t.start:self.data_start + t.end]
        a = np.frombuffer(raw, dtype=_NP[t.dtype]).reshape(t.shape)
        if t.dtype == "BF16":
            out = np.empty(t.shape, dtype=np.uint32)
            np.left_shift(a, 16, out=out, dtype=np.uint32)  # bf16 is a float32's high half: one pass
            return out.view(np.float32)
        if t.dtype in FLOATS:
            return a.astype(np.float32)
        return a


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise LoraFileError(f"{path.suffix} is a pickle checkpoint: klint never unpickles (loading one can run "
                            f"code); ask for a .safetensors export")


def read(path: Path | str) -> SafeTensors:
    path = Path(path)
    refuse_pickle(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise LoraFileError(f"{size} bytes: too short for a safetensors file")
            if head[:1] == b"\x80" or head[:4] == b"PK\x03\x04":
                raise LoraFileError("this is a pickle / torch.save checkpoint, not safetensors: refused unread")
            n = int.from_bytes(head, "little")
            if n > MAX_HEADER or n > size - 8:
                raise LoraFileError(f"header length {n} is beyond the file ({size} bytes) or the "
                                    f"{MAX_HEADER // 2**20} MiB limit: not a safetensors file")
            raw = fh.read(n)
    except OSError as exc:
        raise LoraFileError(f"cannot read: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise LoraFileError("header is not valid JSON: not a safetensors file") from None
    if not isinstance(header, dict):
        raise LoraFileError("header is not a JSON object: not a safetensors file")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise LoraFileError("__metadata__ must map strings to strings")
    if len(header) > MAX_TENSORS:
        raise LoraFileError(f"{len(header)} tensors: more than any LoRA ({MAX_TENSORS})")
    data_len = size - 8 - n
    tensors: dict[str, Tensor] = {}
    for name, info in header.items():
        shown = name[:120]
        if not isinstance(info, dict):
            raise LoraFileError(f"tensor {shown!r}: entry is not an object")
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPES:
            raise LoraFileError(f"tensor {shown!r}: unknown dtype {str(dtype)[:20]!r}")
        if (not isinstance(shape, list) or len(shape) > 8
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**40 for s in shape)):
            raise LoraFileError(f"tensor {shown!r}: bad shape")
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise LoraFileError(f"tensor {shown!r}: bad data_offsets")
        start, end = offs
        if not 0 <= start <= end <= data_len:
            raise LoraFileError(f"tensor {shown!r}: data_offsets {offs} outside the {data_len} data bytes")
        if end - start != math.prod(shape) * DTYPES[dtype]:
            raise LoraFileError(f"tensor {shown!r}: {end - start} bytes do not hold {dtype} {shape}")
        tensors[name] = Tensor(name, dtype, shape, start, end)
    spans = sorted((t.start, t.end) for t in tensors.values() if t.end > t.start)
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
        raise LoraFileError("tensor byte ranges overlap: not a valid safetensors file")
    return SafeTensors(path, tensors, meta, 8 + n)


def to_bf16_bits(a: np.ndarray) -> np.ndarray:
    """float32 -> bf16 bit patterns, round to nearest even (NaN kept NaN)."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(a), np.uint16(0x7FC0), rounded)


def _encode(a: np.ndarray, dtype: str) -> bytes:
    if dtype == "BF16":
        return to_bf16_bits(a).tobytes()
    return np.ascontiguousarray(a, dtype=_NP[dtype]).tobytes()


def write(path: Path | str, tensors: dict[str, tuple[np.ndarray, str]], metadata: dict[str, str],
          *, protect: Path | None = None) -> None:
    """Write atomically (temp file + fsync + rename); never onto `protect` (the input file)."""
    path = Path(path)
    if protect is not None and path.exists() and path.resolve() == Path(protect).resolve():
        raise KlintError(f"{path}: refusing to overwrite the input file")
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    blobs, off = [], 0
    for name in sorted(tensors):
        arr, dtype = tensors[name]
        b = _encode(arr, dtype)
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(len(hb).to_bytes(8, "little"))
            fh.write(hb)
            for b in blobs:
                fh.write(b)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
