"""Image -> Klein latents exactly as `Flux2KleinPipeline` encodes them, plus 16-px aspect buckets.

VAE mode (argmax, not a sample) -> 2x2 patchify (channel = 4c + 2dy + dx) -> normalise with
the VAE's BatchNorm running statistics (no scale/shift factor) -> pack row-major to tokens.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

BUCKET_STEP = 16  # px: VAE /8 times the 2x2 patch


def bucket_for(width: int, height: int, resolution: int, step: int = BUCKET_STEP,
               max_ratio: float = 2.5) -> tuple[int, int]:
    """(w, h): multiples of `step`, at most resolution**2 pixels, aspect ratio closest to the image's."""
    ratio = min(max(width / height, 1 / max_ratio), max_ratio)
    area = resolution * resolution
    best = (step, step)
    best_key = (float("inf"), 0)
    for bw in range(step, int(math.sqrt(area * max_ratio)) + step, step):
        max_h = (area // bw) // step * step
        if max_h < step:
            break
        # the tallest h at or below the wanted aspect, and the next one up
        want = max(step, min(max_h, int(bw / ratio) // step * step))
        for bh in {want, min(max_h, want + step)}:
            # closest aspect first (within ~1 %), then the larger area
            key = (round(abs(math.log((bw / bh) / ratio)), 2), -bw * bh)
            if key < best_key:
                best, best_key = (bw, bh), key
    return best


def load_image(path: Path | str, size: tuple[int, int]) -> torch.Tensor:
    """(1, 3, h, w) in [-1, 1]: EXIF-rotated, RGB, resized to cover `size`, centre-cropped."""
    import numpy as np
    from PIL import Image, ImageOps

    w, h = size
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = max(w / im.width, h / im.height)
        rw, rh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
        im = im.resize((rw, rh), Image.Resampling.LANCZOS)
        left, top = (rw - w) // 2, (rh - h) // 2
        im = im.crop((left, top, left + w, top + h))
        arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def patchify(z: torch.Tensor) -> torch.Tensor:
    b, c, h, w = z.shape
    return z.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, c * 4, h // 2, w // 2)


def unpatchify(z: torch.Tensor) -> torch.Tensor:
    b, c, h, w = z.shape
    return z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c // 4, h * 2, w * 2)


def _bn_stats(vae, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = vae.bn.running_mean.view(1, -1, 1, 1).to(like.device, like.dtype)
    std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps).to(like.device, like.dtype)
    return mean, std


@torch.no_grad()
def encode(vae, pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> normalised patchified latents (B, 4*C, H/16, W/16)."""
    pixels = pixels.to(vae.device, vae.dtype)
    z = vae.encode(pixels).latent_dist.mode()
    z = patchify(z)
    mean, std = _bn_stats(vae, z)
    return (z - mean) / std


@torch.no_grad()
def decode(vae, z: torch.Tensor) -> torch.Tensor:
    """Inverse of `encode` (through the VAE decoder): (B, 4*C, h, w) -> (B, 3, 16h, 16w) in [-1, 1]."""
    z = z.to(vae.device, vae.dtype)
    mean, std = _bn_stats(vae, z)
    return vae.decode(unpatchify(z * std + mean), return_dict=False)[0]


def pack(z: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C), row-major."""
    b, c, h, w = z.shape
    return z.reshape(b, c, h * w).permute(0, 2, 1)


def image_ids(h: int, w: int, batch: int = 1, t: int = 0) -> torch.Tensor:
    """4-axis (T, H, W, L) ids of a target image: (B, h*w, 4), T = 0 for the generated image."""
    hh, ww = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ids = torch.stack([torch.full_like(hh, t), hh, ww, torch.zeros_like(hh)], -1).reshape(1, h * w, 4)
    return ids.expand(batch, -1, -1)
