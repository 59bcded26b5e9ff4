"""Training-time sigma sampling: logit-normal with a resolution-dependent shift.

mu rises linearly from 0.5 at 256 image tokens to 1.15 at 4096 (musubi `flux2_shift`,
OneTrainer's preset); shift = exp(mu). Not the inference `compute_empirical_mu`, which is
tuned for few-step sampling and shifts far too much for training.
"""

from __future__ import annotations

import math

import torch

BASE_TOKENS, MAX_TOKENS = 256, 4096
BASE_MU, MAX_MU = 0.5, 1.15


def shift_for_tokens(n_tokens: int) -> float:
    slope = (MAX_MU - BASE_MU) / (MAX_TOKENS - BASE_TOKENS)
    return math.exp(BASE_MU + slope * (n_tokens - BASE_TOKENS))


def shift_sigmas(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * sigma / (1 + (shift - 1) * sigma)


def sample_sigmas(n: int, n_tokens: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """`n` sigmas in (0, 1) for images of `n_tokens` latent tokens (fp32, CPU)."""
    u = torch.randn(n, generator=generator, dtype=torch.float32)
    return shift_sigmas(torch.sigmoid(u), shift_for_tokens(n_tokens))
