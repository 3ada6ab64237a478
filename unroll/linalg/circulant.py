"""Exact stationary Gaussian sampling by circulant embedding (Davies–Harte), O(M log M) per pair of samples.

A stationary covariance ``Gamma[i, j] = gamma(|i - j|)`` on ``H`` frames is the top-left block of the circulant
``C`` of size ``M >= 2(H - 1)`` with first column ``c_k = gamma(min(k, M - k))``, whose eigenvalues are
``lam = FFT(c)`` (real, ``C`` is symmetric).  When every ``lam_k >= 0``, ``C`` is a covariance, and with
``xi = xi_1 + i xi_2`` (independent standard normals ``(M,)``),

    w = FFT( sqrt(lam / M) * xi ),   E[w w^*] = 2 C,  E[w w^T] = 0,

so ``Re w[:H]`` and ``Im w[:H]`` are two independent exact draws of ``N(0, Gamma)``.

The minimal embedding ``M = 2(H - 1)`` can be indefinite (a smooth kernel whose correlation has not died out by
lag ``H - 1``); growing ``M`` (which reads ``gamma`` at lags up to ``M/2``) makes it non-negative definite for
every kernel that decays.  :func:`embedding_eigenvalues` grows it up to ``max_growth`` times and raises
:class:`IndefiniteEmbeddingError` (a ``ValueError``) with the smallest eigenvalue it met when that is not enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.fft
import torch

__all__ = ["IndefiniteEmbeddingError", "MAX_GROWTH", "NEGATIVE_TOLERANCE", "circulant_transform",
           "embedding_eigenvalues", "sample_stationary"]

#: an eigenvalue of the embedding above ``-NEGATIVE_TOLERANCE * lam_max`` counts as rounding of a zero (set to 0)
NEGATIVE_TOLERANCE = 1e-10
#: the embedding may grow to this many times the minimal size ``2(H - 1)``
MAX_GROWTH = 16
#: complex noise vectors per FFT batch (bounds the work space at ``16 M`` bytes times this)
PAIRS_PER_BATCH_BYTES = 64e6


class IndefiniteEmbeddingError(ValueError):
    """No circulant embedding up to the allowed size is non-negative definite."""


def _sizes(frames: int, max_growth: int) -> list[int]:
    minimal = max(2 * (frames - 1), 1)
    sizes = [minimal]
    while True:
        size = int(scipy.fft.next_fast_len(2 * sizes[-1], real=True))
        if size > max_growth * minimal:
            return sizes
        sizes.append(size)


def embedding_eigenvalues(lags: Callable[[np.ndarray], Any] | np.ndarray, frames: int, *,
                          max_growth: int = MAX_GROWTH) -> tuple[torch.Tensor, int]:
    """The eigenvalues of the smallest non-negative definite circulant embedding of ``gamma`` on ``frames`` frames.

    Args:
        lags: the covariance function ``gamma`` (called on an integer array of lags ``0..M/2``), or the lag values
            ``gamma(0..H-1)`` (then only the minimal embedding can be tried).
        frames: ``H >= 1``.
        max_growth: try sizes up to ``max_growth * 2(H - 1)``.
    Returns:
        ``(lam (M // 2 + 1,) float64, M)``: the ``rfft`` of the embedding's first column, clamped at 0.
    Raises:
        IndefiniteEmbeddingError: every embedding tried has an eigenvalue below ``-NEGATIVE_TOLERANCE * lam_max``.
    """
    frames = int(frames)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    sizes = _sizes(frames, max_growth) if callable(lags) else [max(2 * (frames - 1), 1)]
    smallest = math.inf
    for size in sizes:
        half = size // 2
        values = np.asarray(lags(np.arange(half + 1)) if callable(lags) else np.asarray(lags)[: half + 1],
                            dtype=np.float64)
        column = np.concatenate([values, values[1: size - half][::-1]])  # c_k = gamma(min(k, M - k))
        eigenvalues = torch.from_numpy(np.fft.rfft(column).real.copy())
        largest = float(eigenvalues.max())
        low = float(eigenvalues.min())
        if low >= -NEGATIVE_TOLERANCE * largest:
            return eigenvalues.clamp(min=0.0), size
        smallest = min(smallest, low / largest)
    raise IndefiniteEmbeddingError(
        f"no circulant embedding of sizes {sizes[0]}..{sizes[-1]} (up to {max_growth}x the minimal 2(H-1)) of the "
        f"temporal covariance on H={frames} frames is non-negative definite (smallest eigenvalue {smallest:.3g} of "
        "lambda_max): the kernel has not decayed within the embedding; use the eigen sampler (method='eigen') "
        "or a shorter length scale")


def circulant_transform(noise: torch.Tensor, eigenvalues: torch.Tensor, size: int, frames: int) -> torch.Tensor:
    """``Re`` and ``Im`` of ``FFT(sqrt(lam / M) * noise)[:H]``: complex ``noise (k, M)`` -> real ``(2k, H)``.

    The linear map behind :func:`sample_stationary` (module docstring), exposed so that a test can push basis
    vectors through it and compare the covariance it implies with Gamma exactly.
    """
    full = torch.cat([eigenvalues, eigenvalues[1: size - size // 2].flip(0)])  # (M,): lam_k = lam_{M-k}
    weights = (full / size).sqrt().to(torch.complex128)
    transformed = torch.fft.fft(noise * weights, dim=-1)[..., :frames]
    return torch.cat([transformed.real, transformed.imag], dim=0)


def sample_stationary(eigenvalues: torch.Tensor, size: int, frames: int, count: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """``count`` independent draws of ``N(0, Gamma)``, float64 ``(count, H)``, from the embedding's eigenvalues.

    Draws ``ceil(count / 2)`` complex normal vectors of length ``M`` in batches (at most ``PAIRS_PER_BATCH_BYTES``
    of work space each, a size that depends only on ``M``, so a seeded draw does not depend on memory settings).
    """
    pairs = (count + 1) // 2
    batch = max(1, int(PAIRS_PER_BATCH_BYTES // (16 * 4 * size)))
    out = torch.empty((2 * pairs, frames), dtype=torch.float64)
    for first in range(0, pairs, batch):
        rows = min(batch, pairs - first)
        noise = torch.randn((rows, size, 2), generator=generator, dtype=torch.float64)
        both = circulant_transform(torch.view_as_complex(noise), eigenvalues, size, frames)
        out[2 * first: 2 * first + rows] = both[:rows]
        out[2 * first + rows: 2 * (first + rows)] = both[rows:]
    return out[:count]
