"""Semi-synthetic moving-ball video: a non-Gaussian check of what attention learns.

A sample is a clip of ``H`` frames, each an ``S x S`` grey image flattened to ``d = S*S`` pixels, so a
batch has the toolkit's usual shape ``(n, H, d)``. The ball centre follows a smooth random trajectory:
each coordinate is a sum of random sinusoids with periods of about ``period`` frames, squashed into the
image by ``tanh``; the frame shows a Gaussian blob of radius ``radius`` pixels at that centre:

    frame_i[u, v] = exp(-((u - c_i^u)^2 + (v - c_i^v)^2) / (2 radius^2)).

Consecutive frames are strongly correlated and the correlation decays with the lag, but the law is not
Gaussian, so nothing guarantees attention finds a Toeplitz structure: ``temporal_correlation`` measures
the empirical one to compare with.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from unroll._validate import check_int, check_positive

__all__ = ["moving_ball_video", "temporal_correlation", "lag_profile_of_matrix"]


def moving_ball_video(
    n: int,
    frames: int = 16,
    size: int = 8,
    *,
    radius: float = 1.2,
    period: float = 12.0,
    harmonics: int = 3,
    standardise: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return ``n`` clips of a ball moving smoothly, shape ``(n, frames, size*size)``, float64.

    Trajectory per coordinate: ``c(i) = (size-1)/2 * (1 + 0.8 tanh(sum_k a_k sin(2 pi i / P_k + phase_k)))``
    with ``P_k = period * 2**(k/2)`` and ``a_k ~ N(0, 1/harmonics)``. With ``standardise`` the pixels are
    centred and scaled by the empirical mean and standard deviation over the batch (per pixel, pooled
    over frames), as one would before training a diffusion model.
    """
    n = check_int("n", n, minimum=1)
    frames = check_int("frames", frames, minimum=1)
    size = check_int("size", size, minimum=2, maximum=64)
    harmonics = check_int("harmonics", harmonics, minimum=1)
    radius = check_positive("radius", radius)
    period = check_positive("period", period)
    g = generator
    index = torch.arange(frames, dtype=torch.float64)
    periods = period * 2.0 ** (torch.arange(harmonics, dtype=torch.float64) / 2.0)
    amplitude = torch.randn(n, 2, harmonics, generator=g, dtype=torch.float64) / math.sqrt(harmonics)
    phase = 2 * math.pi * torch.rand(n, 2, harmonics, generator=g, dtype=torch.float64)
    # (n, 2, harmonics, frames)
    waves = torch.sin(2 * math.pi * index / periods[:, None] + phase[..., None])
    raw = (amplitude[..., None] * waves).sum(dim=2)  # (n, 2, frames)
    centre = (size - 1) / 2 * (1 + 0.8 * torch.tanh(raw))
    grid = torch.arange(size, dtype=torch.float64)
    du = grid[None, None, :] - centre[:, 0, :, None]  # (n, frames, size)
    dv = grid[None, None, :] - centre[:, 1, :, None]
    image = torch.exp(-(du[..., :, None] ** 2 + dv[..., None, :] ** 2) / (2 * radius**2))
    video = image.reshape(n, frames, size * size)
    if standardise:
        mean = video.mean(dim=(0, 1), keepdim=True)
        std = video.std(dim=(0, 1), keepdim=True).clamp_min(1e-12)
        video = (video - mean) / std
    return video


def temporal_correlation(video: torch.Tensor) -> torch.Tensor:
    """Empirical temporal correlation ``R[i, j]`` (H x H) of a batch ``(n, H, d)``, float64.

    Centres each (frame, pixel) over the batch, then ``R[i, j] = sum x_i . x_j / sqrt(sum |x_i|^2 sum |x_j|^2)``
    with sums over samples and pixels: the analogue of ``Gamma`` when ``Cov(x_i, x_j) = gamma(|i-j|) Sigma``.
    """
    if video.ndim != 3 or video.shape[0] < 2:
        raise ValueError(f"video must have shape (n, H, d) with n >= 2, got {tuple(video.shape)}")
    x = video.to(torch.float64)
    x = x - x.mean(dim=0, keepdim=True)
    gram = torch.einsum("nid,njd->ij", x, x)
    scale = torch.sqrt(torch.diagonal(gram)).clamp_min(1e-300)
    return gram / (scale[:, None] * scale[None, :])


def lag_profile_of_matrix(matrix: torch.Tensor | np.ndarray) -> np.ndarray:
    """Mean of a square matrix along each pair of diagonals: ``p(m) = mean_{|i-j|=m} A[i, j]``, m = 0..H-1."""
    a = np.asarray(matrix, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"matrix must be square (H, H), got shape {a.shape}")
    size = a.shape[0]
    profile = np.empty(size)
    for lag in range(size):
        values = np.concatenate([np.diagonal(a, lag), np.diagonal(a, -lag)]) if lag else np.diagonal(a)
        profile[lag] = values.mean()
    return profile
