"""Extreme eigenvalues of a symmetric Toeplitz matrix: dense while H is small, the symbol's range beyond.

``T[i, j] = g(|i - j|)`` (``H x H``) has the symbol ``f(theta) = g(0) + 2 sum_{m=1}^{H-1} g(m) cos(m theta)``, and for
every unit vector ``v``, ``v^T T v = (1/2 pi) int f(theta) |v_hat(theta)|^2 d theta``, so the whole spectrum of ``T``
lies in ``[min f, max f]`` for every H (Grenander–Szegő), and ``lambda_min(T_H) -> min f`` as ``H -> infinity`` (for
a smooth f, at the rate ``1/H^2``).  Beyond ``DENSE_MAX_FRAMES`` frames (an ``H x H`` eigensolve is O(H^3): 3 s at
H = 4096, impossible at H = 65,536), :func:`toeplitz_extremes` returns the symbol's range: bounds that contain the
spectrum and differ from its ends by ``O(1/H^2)`` (``tests/test_toeplitz.py`` measures the gap where both run).

Used as the spectrum in a gradient-descent step size, the bounds keep every guarantee (the step is convergent, the
contraction bound computed from them holds), and are conservative about definiteness: ``min f <= 0`` is reported
for a ``T_H`` whose own smallest eigenvalue may still be (barely) positive.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["DENSE_MAX_FRAMES", "symbol_extremes", "toeplitz_extremes"]

#: up to this H the extremes come from a dense eigensolve (exact up to rounding)
DENSE_MAX_FRAMES = 2048
#: grid points per unit of the symbol's degree before Newton refinement
GRID_PER_DEGREE = 32


def _symbol_derivatives(lags: np.ndarray, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``f, f', f''`` at ``theta`` (any shape) for lag values ``lags (K + 1,)`` (``f`` of degree ``K``)."""
    orders = np.arange(1, lags.shape[0], dtype=np.float64)
    angles = np.multiply.outer(theta, orders)
    weights = 2.0 * lags[1:]
    value = lags[0] + (np.cos(angles) * weights).sum(-1)
    slope = -(np.sin(angles) * (weights * orders)).sum(-1)
    curvature = -(np.cos(angles) * (weights * orders**2)).sum(-1)
    return value, slope, curvature


def symbol_extremes(lag_values: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """``(min f, max f)`` of ``f(theta) = g(0) + 2 sum_{m>=1} g(m) cos(m theta)``, ``theta`` in ``[0, pi]``.

    Trailing zero lags (a band truncation) are dropped first, so the cost is that of the symbol's degree ``K``:
    a grid of ``GRID_PER_DEGREE (K + 1)`` points by one FFT, then Newton steps on ``f' = 0`` from the best grid
    points (the result is never worse than the best grid value).

    Args:
        lag_values: ``(H,)`` values ``g(0), ..., g(H-1)``.
    """
    lags = np.asarray(lag_values.detach().cpu().numpy() if isinstance(lag_values, torch.Tensor) else lag_values,
                      dtype=np.float64).reshape(-1)
    nonzero = np.flatnonzero(lags)
    lags = lags[: (int(nonzero[-1]) + 1 if nonzero.size else 1)]
    degree = lags.shape[0] - 1
    if degree == 0:
        return float(lags[0]), float(lags[0])
    grid = 1 << int(np.ceil(np.log2(GRID_PER_DEGREE * (degree + 1))))
    coefficients = np.zeros(grid)
    coefficients[: degree + 1] = lags
    coefficients[grid - degree:] = lags[1:][::-1]
    values = np.fft.rfft(coefficients).real  # f at theta_k = 2 pi k / grid, k = 0..grid/2 (covers [0, pi])
    theta_grid = 2.0 * np.pi * np.arange(values.shape[0]) / grid
    extremes = []
    for sign in (1.0, -1.0):  # minimum of sign * f
        start = theta_grid[np.argsort(sign * values)[:4]]
        theta = start.copy()
        for _ in range(30):
            _, slope, curvature = _symbol_derivatives(lags, theta)
            usable = sign * curvature > 0
            step = np.where(usable, slope / np.where(usable, curvature, 1.0), 0.0)
            theta = np.clip(theta - step, 0.0, np.pi)
        refined = _symbol_derivatives(lags, np.concatenate([theta, start, [0.0, np.pi]]))[0]
        extremes.append(float(sign * min((sign * refined).min(), (sign * values).min())))
    return extremes[0], extremes[1]


def toeplitz_extremes(lag_values: torch.Tensor) -> tuple[float, float]:
    """``(lambda_min, lambda_max)`` of ``T = toeplitz(lag_values)`` for ``H <= DENSE_MAX_FRAMES`` (dense ``eigvalsh``),
    else the symbol's range ``(min f, max f)`` (module docstring), which contains the spectrum.

    Args:
        lag_values: ``(H,)`` float64.
    """
    frames = int(lag_values.shape[0])
    if frames <= DENSE_MAX_FRAMES:
        index = torch.arange(frames)
        matrix = lag_values.to(torch.float64)[(index[:, None] - index[None, :]).abs()]
        eigenvalues = torch.linalg.eigvalsh(matrix)
        return float(eigenvalues[0]), float(eigenvalues[-1])
    return symbol_extremes(lag_values)
