"""Toeplitz test systems and dense oracles shared by tests/test_toeplitz.py and tests/test_toeplitz_semantics.py."""

from __future__ import annotations

import scipy.linalg
import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def spd_columns(frames: int) -> torch.Tensor:
    """Three SPD Toeplitz columns ``(3, H)``: Matérn-like decays scaled by 0.5 / 4 / 10 plus a nugget (the shape of
    ``alpha_t^2 mu_a gamma + sigma_t^2 e_0``), condition numbers from ~10 to ~2e3; the first has Strang eigenvalues
    below 1."""
    lags = torch.arange(frames, dtype=torch.float64)
    base = torch.exp(-lags / 3.0) * (1.0 + lags / 3.0)
    nugget = (lags == 0).to(torch.float64)
    return torch.stack([0.5 * base + 0.01 * nugget, 4.0 * base + 0.01 * nugget, 10.0 * base + nugget])


def dense(column: torch.Tensor) -> torch.Tensor:
    """``T[i, j] = column[|i - j|]`` as a dense matrix (scipy)."""
    return torch.from_numpy(scipy.linalg.toeplitz(column.numpy()))
