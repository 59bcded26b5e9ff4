"""Latents and text embeddings, computed once and cached on disk (`<out>/cache/`).

Keys hash the input (image bytes + bucket, or prompt text) and a fingerprint of the encoder
weights, so a changed image, caption or model never reuses a stale tensor.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch


def module_fingerprint(module) -> str:
    """Cheap content hash of a module: shapes plus a few values of every parameter/buffer."""
    h = hashlib.sha256()
    for name, t in list(module.state_dict().items()):
        flat = t.detach().reshape(-1)
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        idx = torch.linspace(0, max(flat.numel() - 1, 0), steps=min(8, flat.numel())).long()
        h.update(flat[idx].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class TensorCache:
    def __init__(self, root: Path, kind: str, fingerprint: str):
        self.dir = Path(root) / kind / fingerprint
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".safetensors")

    def get(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        p = self._path(key)
        if not p.is_file():
            return None
        try:
            return load_file(str(p))["t"]
        except Exception:  # a torn write from a killed run: recompute
            return None

    def put(self, key: str, t: torch.Tensor) -> None:
        from safetensors.torch import save_file

        p = self._path(key)
        tmp = p.with_suffix(".tmp")
        save_file({"t": t.detach().cpu().contiguous()}, str(tmp))
        tmp.replace(p)
