"""Input checks shared by the toolkit: each raises ``ValueError`` naming the parameter and its range."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

#: the error of the consumers that need a stationary (Toeplitz) temporal covariance (``unroll.gd``, the constructor,
#: ``theory``) when given a non-stationary GP
NOT_TOEPLITZ_MESSAGE = ("Gamma is not Toeplitz (non-stationary GP): the banded construction needs a stationary "
                        "kernel")


def check_positive(name: str, value: float, *, upper: float | None = None, closed_upper: bool = True) -> float:
    """Return ``value`` as a float if ``0 < value`` (and ``value <= upper``), else raise ``ValueError``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {value!r}") from None
    allowed = f"0 < {name}" if upper is None else f"0 < {name} {'<=' if closed_upper else '<'} {upper:g}"
    too_large = upper is not None and (number > upper or (not closed_upper and number == upper))
    if not math.isfinite(number) or number <= 0 or too_large:
        raise ValueError(f"{name} must satisfy {allowed}, got {name}={value!r}")
    return number


def check_int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` as an int if ``minimum <= value (<= maximum)``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    number = int(value)
    if number < minimum or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" <= {maximum}"
        raise ValueError(f"{name} must satisfy {minimum} <= {name}{upper}, got {name}={number}")
    return number


def check_finite(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Raise ``ValueError`` if ``tensor`` holds NaN or inf."""
    if not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); all entries must be finite")
    return tensor


def as_tensor(name: str, value: Any, dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """Convert array-like ``value`` to a tensor (float64 by default) and check it is finite."""
    if isinstance(value, torch.Tensor):
        tensor = value if dtype is None else value.to(dtype)
    else:
        tensor = torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=dtype or torch.float64)
    return check_finite(name, tensor)


def check_sample_shape(name: str, tensor: torch.Tensor, frames: int, dim: int) -> None:
    """Require ``tensor`` to have shape ``(..., frames, dim)``."""
    if tensor.ndim < 2 or tuple(tensor.shape[-2:]) != (frames, dim):
        raise ValueError(
            f"{name} must have shape (..., H, d) = (..., {frames}, {dim}), got {tuple(tensor.shape)}"
        )


def check_diffusion_time(diffusion_time: Any, batch_shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Validate a diffusion time: a positive scalar, or one per sample broadcastable to ``batch_shape``.

    Returns a float64 tensor (0-d for a scalar).
    """
    tensor = torch.as_tensor(diffusion_time, dtype=torch.float64)
    if not bool(torch.isfinite(tensor).all()) or bool((tensor <= 0).any()):
        raise ValueError(
            f"diffusion_time must satisfy 0 < diffusion_time < inf, got {diffusion_time!r}"
        )
    if batch_shape is not None and tensor.ndim > 0:
        try:
            torch.broadcast_shapes(tensor.shape, batch_shape)
        except RuntimeError:
            raise ValueError(
                f"diffusion_time of shape {tuple(tensor.shape)} does not match the batch shape "
                f"{batch_shape}; pass a scalar or one diffusion time per sample"
            ) from None
    return tensor


def check_spd(name: str, matrix: torch.Tensor, *, relative_tolerance: float = 1e-12) -> torch.Tensor:
    """Require a square, symmetric, positive-definite matrix; returns it (float64)."""
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {tuple(matrix.shape)}")
    if matrix.shape[0] < 1:
        raise ValueError(f"{name} must be at least 1x1")
    scale = float(matrix.abs().max())
    if not torch.allclose(matrix, matrix.T, rtol=0.0, atol=1e-12 * max(scale, 1.0)):
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = "
                         f"{float((matrix - matrix.T).abs().max()):.3g}")
    eigenvalues = torch.linalg.eigvalsh(matrix)
    smallest, largest = float(eigenvalues[0]), float(eigenvalues[-1])
    if largest <= 0 or smallest <= relative_tolerance * largest:
        raise ValueError(
            f"{name} must be positive definite; its smallest eigenvalue is {float(eigenvalues[0]):.3g} "
            f"(largest {float(eigenvalues[-1]):.3g})"
        )
    return matrix
