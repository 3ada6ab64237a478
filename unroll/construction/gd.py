"""Gradient descent on the score objective, written frame by frame (docs/design.md §4).

The score of the noised GP data is ``s(x, t) = -y*`` with ``y* = C_t^{-1} vec(x)``, the minimiser of

    f(y) = 1/2 y^T C_t y - vec(x)^T y,      C_t = alpha_t^2 (Gamma ⊗ Sigma) + sigma_t^2 I.

Everything here acts on ``(..., H, d)`` arrays frame by frame; ``C_t`` is never formed except in the
dense oracle ``dense_covariance`` (small sizes, tests only).  Row ``i`` of ``C_t y`` is

    (C_t y)_i = alpha_t^2 Sigma sum_j gamma(|i-j|) y_j + sigma_t^2 y_i      (= alpha^2 Gamma y Sigma + sigma^2 y).

Band truncation keeps lags ``|i-j| <= J`` (``Gamma_J``), optionally multiplied by the triangular taper
``w(m) = (1 - m/(J+1))_+``.  The taper is positive semidefinite on the integers (its Fourier series is the
Fejér kernel, >= 0), so by the Schur product theorem ``Gamma_J = Gamma ∘ W`` stays positive definite
for every J whenever Gamma is; the plain cut can be indefinite, and then gradient descent diverges for
small diffusion times.  ``check_truncation`` detects that and says what to do.

Step size: ``eta_t = 2 / (lambda_max + lambda_min)`` of ``C_{t,J}``; with ``P = {lam_i mu_a}`` (products
of the eigenvalues of Gamma_J and Sigma) ``lambda_{max/min} = alpha_t^2 max/min P + sigma_t^2``, so

    eta_t = 1 / (alpha_t^2 (P_max + P_min)/2 + sigma_t^2),

and the error contracts per step by ``(kappa - 1)/(kappa + 1)``, ``kappa = lambda_max / lambda_min``.

**Step schedules** (docs/design.md §7).  Every step may take its own size, ``y <- y - eta_k (C_{t,J} y - x)``;
after L steps ``y_L - y*_J = -p_L(C_{t,J}) y*_J`` with the residual polynomial ``p_L(lam) = prod_k (1 - eta_k lam)``.

- ``"gd"``: ``eta_k = eta_t`` for every k, ``max |p_L| = rho^L`` on the spectrum.
- ``"chebyshev"``: ``eta_k = 1 / (alpha_t^2 (P + Q cos theta_k) + sigma_t^2)``, ``theta_k = (2k+1) pi / (2L)``,
  ``P, Q`` the centre and half-width of the eigenvalue products of Gamma_J and Sigma: the roots of ``p_L`` are the
  Chebyshev nodes of ``[lambda_min, lambda_max]``, so ``max |p_L| = 1/T_L((kappa+1)/(kappa-1)) = 2 rho_C^L /
  (1 + rho_C^(2L))``, ``rho_C = (sqrt(kappa) - 1)/(sqrt(kappa) + 1)``.

The order of the Chebyshev steps does not change ``p_L`` in exact arithmetic but decides rounding: in the natural
order the partial products ``prod_{j<k} (1 - eta_j lam)`` grow like ``kappa^k`` before they shrink, and the float64
rounding error of the iterates reaches 1e8 already at L = 64 (``benchmarks/chebyshev_stability.py``, kappa = 56).
The steps here run in the **Leja order** of their nodes (Reichel 1991): each next node maximises the product of its
distances to the nodes already used, which keeps the partial products bounded
(``benchmarks/chebyshev_stability.py``: float64 rounding <= 4e-14 and peak ``|y_k| / |y*| <= 3.4`` up to L = 200,
``kappa = 1000``).  It is defined for every L, unlike the Lebedev–Finogenov orderings (L a power of 2).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unroll._validate import (
    NOT_TOEPLITZ_MESSAGE,
    InputTypeError,
    as_tensor,
    check_diffusion_time,
    check_finite,
    check_finite_result,
    check_int,
    to_real_tensor,
)
from unroll.data import diffusion
from unroll.linalg.symbol import DENSE_MAX_FRAMES, toeplitz_extremes
from unroll.linalg.toeplitz import DEFAULT_RTOL, KroneckerToeplitzSolver
from unroll.model.banded import banded_toeplitz_apply

__all__ = [
    "Factors",
    "factors",
    "truncate",
    "taper_weights",
    "check_truncation",
    "IndefiniteTruncationError",
    "schedule",
    "eigen_products",
    "product_extremes",
    "spectrum",
    "step_size",
    "condition_number",
    "contraction",
    "apply_covariance",
    "objective",
    "gradient",
    "dense_covariance",
    "fixed_point",
    "gd_iterates",
    "STEP_RULES",
    "chebyshev_order",
    "step_centers",
    "step_sizes",
    "unrolled_iterates",
    "unrolled_solution",
    "spectral_iterates",
    "residual_polynomial",
    "chebyshev_factor",
]

TAPERS = (None, "triangular")
#: step schedules of the unrolled solver: plain gradient descent, Chebyshev step sizes (module docstring)
STEP_RULES = ("gd", "chebyshev")
#: log-scores of the Leja order closer than this are ties (broken by the smallest node index)
LEJA_TIE = 1e-9
#: lambda_min(Gamma_J) <= INDEFINITE_TOLERANCE * lambda_max(Gamma_J) counts as "not positive definite"
INDEFINITE_TOLERANCE = 1e-12


class IndefiniteTruncationError(ValueError):
    """The truncated temporal covariance ``Gamma_J`` is not positive definite."""


@dataclass(frozen=True)
class Factors:
    """The two Kronecker factors: lag values ``gamma (H,)`` (``gamma[m] = gamma(m)``) and ``Sigma (d, d)``.

    Both float64 tensors; ``Gamma = toeplitz(gamma)``.
    """

    gamma: torch.Tensor
    spatial: torch.Tensor

    @property
    def frames(self) -> int:
        return int(self.gamma.shape[0])

    @property
    def dim(self) -> int:
        return int(self.spatial.shape[0])

    def toeplitz(self) -> torch.Tensor:
        """The ``(H, H)`` matrix ``Gamma[i, j] = gamma[|i - j|]``."""
        index = torch.arange(self.frames)
        return self.gamma[(index[:, None] - index[None, :]).abs()]


def _toeplitz_first_row(matrix: torch.Tensor) -> torch.Tensor:
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"temporal covariance must be (H,) lag values or an (H, H) matrix, got "
                         f"shape {tuple(matrix.shape)}")
    row = matrix[0]
    index = torch.arange(matrix.shape[0])
    if not torch.allclose(row[(index[:, None] - index[None, :]).abs()], matrix, rtol=0, atol=1e-12):
        raise ValueError(f"{NOT_TOEPLITZ_MESSAGE}: the temporal covariance matrix must be symmetric Toeplitz")
    return row


def factors(gp_or_factors: Any) -> Factors:
    """Normalise the accepted inputs to :class:`Factors`.

    Accepts a ``GaussianProcess`` (anything with ``.temporal`` (H, H) and ``.spatial`` (d, d)), a
    :class:`Factors`, or a pair ``(temporal, spatial)`` with ``temporal`` either the lag values
    ``(H,)`` or the symmetric Toeplitz matrix ``(H, H)``.

    Raises:
        ValueError: for a non-stationary GP (``gp.stationary`` false, e.g. warped frame times) or a temporal
            matrix that is not symmetric Toeplitz: everything here acts on the lag values ``gamma(m)``.
    """
    if isinstance(gp_or_factors, Factors):
        return gp_or_factors
    # ``dir`` rather than ``hasattr``: hasattr would evaluate a lazy ``temporal`` (an (H, H) matrix)
    if "spatial" in dir(gp_or_factors) and ({"temporal", "autocovariance"} & set(dir(gp_or_factors))):
        if getattr(gp_or_factors, "stationary", True) is False:
            raise ValueError(f"{NOT_TOEPLITZ_MESSAGE}; got {gp_or_factors!r}")
        # a GaussianProcess gives its lag values without building the (H, H) Gamma
        temporal = getattr(gp_or_factors, "autocovariance", None)
        temporal = gp_or_factors.temporal if temporal is None else temporal
        spatial = gp_or_factors.spatial
    elif isinstance(gp_or_factors, (tuple, list)) and len(gp_or_factors) == 2:
        temporal, spatial = gp_or_factors
    else:
        raise InputTypeError("gp must be a GaussianProcess, a Factors or a pair (temporal, spatial), got "
                        f"{type(gp_or_factors).__name__}")
    temporal = as_tensor("temporal", temporal)
    spatial = as_tensor("spatial", spatial)
    if temporal.ndim == 0 or temporal.numel() == 0:
        raise ValueError(f"temporal must be (H,) lag values or an (H, H) matrix with H >= 1, got shape "
                         f"{tuple(temporal.shape)}")
    gamma = temporal if temporal.ndim == 1 else _toeplitz_first_row(temporal)
    if spatial.ndim != 2 or spatial.shape[0] != spatial.shape[1]:
        raise ValueError(f"spatial must be a square (d, d) matrix, got shape {tuple(spatial.shape)}")
    return Factors(gamma=gamma, spatial=spatial)


def taper_weights(frames: int, bands: int, taper: str | None = None) -> torch.Tensor:
    """Weights ``w(m)``, ``m = 0..H-1``: 1 for ``m <= J`` (plain cut) or ``(1 - m/(J+1))_+`` (triangular);
    0 beyond ``J``."""
    if taper not in TAPERS:
        raise ValueError(f"taper must be None or 'triangular', got {taper!r}")
    lags = torch.arange(frames, dtype=torch.float64)
    weights = (lags <= bands).to(torch.float64)
    if taper == "triangular":
        weights = weights * (1.0 - lags / (bands + 1)).clamp(min=0.0)
    return weights


def truncate(gamma_values_or_gamma: Any, bands: int, taper: str | None = None) -> torch.Tensor:
    """Band truncation at lag ``J = bands``: ``gamma_J(m) = gamma(m) w(m)`` (``w`` from :func:`taper_weights`).

    Args:
        gamma_values_or_gamma: lag values ``(H,)`` or the Toeplitz matrix ``Gamma (H, H)``.
        bands: ``J``, ``0 <= J <= H - 1``.
        taper: ``None`` (plain cut) or ``"triangular"`` (positive definite for every J).
    Returns:
        the same kind as the input: truncated lag values ``(H,)`` or the banded matrix ``(H, H)``.
    """
    values = as_tensor("gamma_values_or_gamma", gamma_values_or_gamma)
    if values.ndim not in (1, 2) or values.numel() == 0:
        raise ValueError(f"gamma_values_or_gamma must be (H,) lag values or an (H, H) matrix, got shape "
                         f"{tuple(values.shape)}")
    gamma = values if values.ndim == 1 else _toeplitz_first_row(values)
    frames = int(gamma.shape[0])
    bands = check_int("bands", bands, minimum=0, maximum=frames - 1)
    truncated = gamma * taper_weights(frames, bands, taper)
    if values.ndim == 1:
        return truncated
    return Factors(truncated, torch.eye(1, dtype=torch.float64)).toeplitz()


def check_truncation(gamma_values: torch.Tensor, bands: int, taper: str | None = None,
                     on_indefinite: str = "raise") -> float:
    """Return ``lambda_min(Gamma_J)``; raise (or warn) if ``Gamma_J`` is not positive definite.

    ``on_indefinite``: ``"raise"`` (``IndefiniteTruncationError``, a ``ValueError``), ``"warn"``
    (``RuntimeWarning``) or ``"ignore"``.
    """
    if on_indefinite not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_indefinite must be 'raise', 'warn' or 'ignore', got {on_indefinite!r}")
    truncated = truncate(gamma_values, bands, taper)
    lam_min, lam_max = toeplitz_extremes(truncated)
    if lam_min <= INDEFINITE_TOLERANCE * abs(lam_max):
        if bands == truncated.shape[0] - 1 and taper is None:
            message = (
                f"the temporal covariance Gamma (all lags kept) is not numerically positive definite: "
                f"lambda_min(Gamma) = {lam_min:.3g} (lambda_max = {lam_max:.3g}); use a shorter length scale "
                "ell, fewer frames, or taper='triangular'."
            )
        else:
            message = (
                f"the truncated temporal covariance Gamma_J (bands J={bands}, taper={taper!r}) is not positive "
                f"definite: lambda_min(Gamma_J) = {lam_min:.3g} (lambda_max = {lam_max:.3g}); gradient "
                "descent on it diverges at small diffusion times. Use taper='triangular' (positive definite "
                "for every J) or a larger number of bands J."
            )
        if on_indefinite == "raise":
            raise IndefiniteTruncationError(message)
        if on_indefinite == "warn":
            warnings.warn(message, RuntimeWarning, stacklevel=2)
    return lam_min


def schedule(diffusion_time: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(alpha_t^2, sigma_t^2)`` as float64 tensors of the shape of ``diffusion_time`` (``unroll.data.diffusion``)."""
    t = check_diffusion_time(diffusion_time)
    return diffusion.alpha(t) ** 2, diffusion.sigma2(t)


def eigen_products(gp_or_factors: Any, bands: int | None = None, taper: str | None = None) -> torch.Tensor:
    """All products ``lam_i(Gamma_J) mu_a(Sigma)``, shape ``(H, d)`` (``bands=None``: no truncation)."""
    f = factors(gp_or_factors)
    gamma = f.gamma if bands is None else truncate(f.gamma, bands, taper)
    lam = torch.linalg.eigvalsh(Factors(gamma, f.spatial).toeplitz())
    mu = torch.linalg.eigvalsh(f.spatial)
    return lam[:, None] * mu[None, :]


def product_extremes(gp_or_factors: Any, bands: int | None = None, taper: str | None = None) -> tuple[float, float]:
    """``(min, max)`` of the products ``lam_i(Gamma_J) mu_a(Sigma)`` from the extremes of each factor (the products
    of a bilinear form's extremes are at its corners), without all ``H d`` of them.

    Gamma_J's extremes are exact (dense) up to ``unroll.linalg.symbol.DENSE_MAX_FRAMES`` frames and its symbol's range
    beyond: bounds containing the spectrum, ``O(1/H^2)`` from its ends (``unroll.linalg.symbol``).
    """
    f = factors(gp_or_factors)
    gamma = f.gamma if bands is None else truncate(f.gamma, bands, taper)
    lam_min, lam_max = toeplitz_extremes(gamma)
    mu = torch.linalg.eigvalsh(f.spatial)
    corners = [lam * float(value) for lam in (lam_min, lam_max) for value in (mu[0], mu[-1])]
    return min(corners), max(corners)


def spectrum(gp_or_factors: Any, diffusion_time: Any, bands: int | None = None,
             taper: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(lambda_min, lambda_max)`` of ``C_{t,J} = alpha_t^2 Gamma_J ⊗ Sigma + sigma_t^2 I`` (tensors of t's shape)."""
    product_min, product_max = product_extremes(gp_or_factors, bands, taper)
    a2, s2 = schedule(diffusion_time)
    return a2 * product_min + s2, a2 * product_max + s2


def step_size(gp_or_factors: Any, diffusion_time: Any, bands: int | None = None,
              taper: str | None = None) -> torch.Tensor:
    """``eta_t = 2 / (lambda_max + lambda_min)`` of ``C_{t,J}`` (tensor of the shape of ``diffusion_time``)."""
    lam_min, lam_max = spectrum(gp_or_factors, diffusion_time, bands, taper)
    return 2.0 / (lam_max + lam_min)


def condition_number(gp_or_factors: Any, diffusion_time: Any, bands: int | None = None,
                     taper: str | None = None) -> torch.Tensor:
    """``kappa_t = lambda_max / lambda_min`` of ``C_{t,J}`` (inf if ``C_{t,J}`` is not positive definite)."""
    lam_min, lam_max = spectrum(gp_or_factors, diffusion_time, bands, taper)
    return torch.where(lam_min > 0, lam_max / lam_min, torch.full_like(lam_min, math.inf))


def contraction(kappa_or_gp: Any, diffusion_time: Any = None, bands: int | None = None,
                taper: str | None = None) -> Any:
    """``rho = (kappa - 1)/(kappa + 1)``: the per-step error factor of GD with step ``eta_t``.

    Call as ``contraction(kappa)`` (a float or tensor) or ``contraction(gp, diffusion_time, bands, taper)``.
    """
    if diffusion_time is None:
        kappa = kappa_or_gp
    else:
        kappa = condition_number(kappa_or_gp, diffusion_time, bands, taper)
    if isinstance(kappa, torch.Tensor):
        return torch.where(torch.isinf(kappa), torch.ones_like(kappa), (kappa - 1) / (kappa + 1))
    kappa = float(kappa)
    return 1.0 if math.isinf(kappa) else (kappa - 1) / (kappa + 1)


def _per_sample(value: torch.Tensor, like: torch.Tensor, trailing: int) -> torch.Tensor:
    """Reshape a 0-d or batch-shaped tensor to broadcast against ``like`` with ``trailing`` dims after batch."""
    value = value.to(like.dtype)
    return value.reshape(value.shape + (1,) * trailing) if value.ndim else value


def apply_covariance(y: torch.Tensor, gamma_values: torch.Tensor, spatial: torch.Tensor,
                     diffusion_time: Any) -> torch.Tensor:
    """``C_t y`` frame-wise: ``alpha^2 Gamma y Sigma + sigma^2 y`` for ``y (..., H, d)`` (Sigma symmetric)."""
    a2, s2 = schedule(diffusion_time)
    gamma_matrix = Factors(gamma_values.to(torch.float64), spatial).toeplitz().to(y.dtype)
    return (_per_sample(a2, y, 2) * (gamma_matrix @ y @ spatial.to(y.dtype))
            + _per_sample(s2, y, 2) * y)


def objective(y: torch.Tensor, x: torch.Tensor, gamma_values: torch.Tensor, spatial: torch.Tensor,
              diffusion_time: Any) -> torch.Tensor:
    """``f(y) = 1/2 <y, C_t y> - <x, y>`` per sample (shape ``y.shape[:-2]``)."""
    cy = apply_covariance(y, gamma_values, spatial, diffusion_time)
    return (0.5 * y * cy - x * y).sum(dim=(-2, -1))


def gradient(y: torch.Tensor, x: torch.Tensor, gamma_values: torch.Tensor, spatial: torch.Tensor,
             diffusion_time: Any) -> torch.Tensor:
    """``grad f(y) = C_t y - x``, shape ``(..., H, d)``."""
    return apply_covariance(y, gamma_values, spatial, diffusion_time) - x


def dense_covariance(gp_or_factors: Any, diffusion_time: float, bands: int | None = None,
                     taper: str | None = None) -> torch.Tensor:
    """Dense oracle ``C_{t,J}`` of size ``(H d, H d)`` — small sizes and tests only."""
    f = factors(gp_or_factors)
    gamma = f.gamma if bands is None else truncate(f.gamma, bands, taper)
    a2, s2 = schedule(diffusion_time)
    size = f.frames * f.dim
    return a2 * torch.kron(Factors(gamma, f.spatial).toeplitz(), f.spatial) + s2 * torch.eye(
        size, dtype=torch.float64)


def fixed_point(gp_or_factors: Any, x: torch.Tensor, diffusion_time: Any, bands: int | None = None,
                taper: str | None = None, *, rtol: float = DEFAULT_RTOL) -> torch.Tensor:
    """``C_{t,J}^{-1} vec(x)`` reshaped to ``(..., H, d)``.

    Up to ``unroll.linalg.symbol.DENSE_MAX_FRAMES`` frames via the eigendecompositions of Gamma_J and Sigma; beyond, by
    the Gohberg–Semencul Toeplitz solves of ``unroll.linalg.toeplitz`` (relative residual ``rtol`` per feature system;
    raises ``ToeplitzSolveError`` if ``C_{t,J}`` is not positive definite or ``rtol`` cannot be reached).
    """
    f = factors(gp_or_factors)
    gamma = f.gamma if bands is None else truncate(f.gamma, bands, taper)
    x = _check_iterate_input(x, f)
    t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
    mu, v = torch.linalg.eigh(f.spatial)
    if f.frames > DENSE_MAX_FRAMES:
        solver = KroneckerToeplitzSolver(gamma, (mu, v), cache_size=1)
        return _checked("fixed_point", solver.solve(x, t, rtol), x)
    lam, u = torch.linalg.eigh(Factors(gamma, f.spatial).toeplitz())
    a2, s2 = schedule(t)
    denominator = _per_sample(a2, x, 2) * (lam[:, None] * mu[None, :]) + _per_sample(s2, x, 2)
    return _checked("fixed_point", u @ ((u.T @ x @ v) / denominator) @ v.T, x)


def _check_iterate_input(x: Any, f: Factors) -> torch.Tensor:
    """``x`` as a finite float64 tensor ``(..., H, d)`` matching the factors."""
    x = to_real_tensor("x", x).to(torch.float64)
    if x.ndim < 2 or tuple(x.shape[-2:]) != (f.frames, f.dim):
        raise ValueError(f"x must have shape (..., H, d) = (..., {f.frames}, {f.dim}), got {tuple(x.shape)}")
    return check_finite("x", x)


def _checked(what: str, result: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if bool(torch.isfinite(result).all()):
        return result
    return check_finite_result(f"unroll.construction.gd.{what}", result,
                               f"the input x (max |x| = {float(x.abs().max()):.3g}) overflows float64 there; rescale x")


def gd_iterates(gp_or_factors: Any, x: torch.Tensor, diffusion_time: Any, steps: int,
                bands: int | None = None, taper: str | None = None,
                on_indefinite: str = "raise") -> torch.Tensor:
    """Plain gradient descent on ``f`` from ``y_0 = 0``: :func:`unrolled_iterates` with ``steps="gd"``.

    Returns float64 ``(steps + 1, ..., H, d)``: ``y_0 = 0, y_1, ..., y_L`` (``steps`` is the number of steps L).
    """
    return unrolled_iterates(gp_or_factors, x, diffusion_time, check_int("steps", steps, minimum=0), bands, taper,
                             steps="gd", on_indefinite=on_indefinite)


def _check_rule(steps: str) -> str:
    if steps not in STEP_RULES:
        raise ValueError(f"steps must be one of {STEP_RULES}, got {steps!r}")
    return steps


def chebyshev_order(blocks: int) -> torch.Tensor:
    """Leja order of the ``L`` Chebyshev nodes ``cos theta_k``, ``theta_k = (2k+1) pi / (2L)``: ``(L,)`` long.

    Entry ``j`` is the node index ``k`` used at step ``j``.  The first node is the one of largest ``|cos theta_k|``
    (``k = 0``); each next one maximises ``sum_{used i} log |cos theta_k - cos theta_i|``.  The nodes are symmetric
    about 0, so exact ties are the rule: scores within ``LEJA_TIE`` of the best count as tied, and the smallest k
    wins, so that rounding does not pick the order.
    """
    blocks = check_int("blocks", blocks, minimum=1)
    nodes = np.cos((2 * np.arange(blocks) + 1) * np.pi / (2 * blocks))
    order = [0]
    used = np.zeros(blocks, dtype=bool)
    used[0] = True
    with np.errstate(divide="ignore"):  # log 0 = -inf at the nodes already used, which are masked anyway
        score = np.log(np.abs(nodes - nodes[0]))
        for _ in range(blocks - 1):
            candidates = np.where(used, -np.inf, score)
            k = int(np.flatnonzero(candidates >= candidates.max() - LEJA_TIE)[0])
            order.append(k)
            used[k] = True
            score = score + np.log(np.abs(nodes - nodes[k]))
    return torch.tensor(order, dtype=torch.long)


def step_centers(gp_or_factors: Any, blocks: int, bands: int | None = None, taper: str | None = None,
                 steps: str = "gd") -> torch.Tensor:
    """The per-step products ``P_k`` with ``eta_k(t) = 1 / (alpha_t^2 P_k + sigma_t^2)``: ``(L,)`` float64.

    ``"gd"``: ``P_k = P = (p_max + p_min)/2`` for every k; ``"chebyshev"``: ``P_k = P + Q cos theta_{o(j)}`` in the
    Leja order ``o`` (:func:`chebyshev_order`), ``Q = (p_max - p_min)/2``; ``p`` the eigenvalue products of
    Gamma_J and Sigma (:func:`eigen_products`).  Because ``alpha_t^2 + sigma_t^2 = 1`` is never used, ``eta_k`` is an
    exact rational function of ``[alpha_t^2, sigma_t^2, 1]`` for every t.
    """
    _check_rule(steps)
    blocks = check_int("blocks", blocks, minimum=1)
    p_min, p_max = product_extremes(gp_or_factors, bands, taper)
    center, half = 0.5 * (p_max + p_min), 0.5 * (p_max - p_min)
    if steps == "gd":
        return torch.full((blocks,), center, dtype=torch.float64)
    theta = (2 * chebyshev_order(blocks).to(torch.float64) + 1) * math.pi / (2 * blocks)
    return center + half * torch.cos(theta)


def step_sizes(gp_or_factors: Any, diffusion_time: Any, blocks: int, bands: int | None = None,
               taper: str | None = None, steps: str = "gd") -> torch.Tensor:
    """Step sizes ``eta_k(t) = 1/(alpha_t^2 P_k + sigma_t^2)`` of the schedule, shape ``t.shape + (L,)`` (float64).

    ``steps="gd"`` gives ``eta_t = 2/(lambda_max + lambda_min)`` of ``C_{t,J}`` L times (= :func:`step_size`).
    """
    centers = step_centers(gp_or_factors, blocks, bands, taper, steps)
    a2, s2 = schedule(diffusion_time)
    return 1.0 / (a2[..., None] * centers + s2[..., None])


def _unrolled_setup(gp_or_factors: Any, x: Any, diffusion_time: Any, blocks: int, bands: int | None,
                    taper: str | None, steps: str, on_indefinite: str
                    ) -> tuple[Factors, torch.Tensor, int, int, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The checked inputs of :func:`unrolled_iterates` and :func:`unrolled_solution`: ``(factors, x, L, J,
    gamma_J (H,), eta (t.shape + (L,)), t)``, after the truncation check."""
    f = factors(gp_or_factors)
    frames = f.frames
    x = _check_iterate_input(x, f)
    _check_rule(steps)
    blocks = check_int("blocks", blocks, minimum=0)
    bands = frames - 1 if bands is None else check_int("bands", bands, minimum=0, maximum=frames - 1)
    t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
    check_truncation(f.gamma, bands, taper, on_indefinite)
    etas = step_sizes(f, t, max(blocks, 1), bands, taper, steps)  # t.shape + (L,)
    return f, x, blocks, bands, truncate(f.gamma, bands, taper), etas, t


def unrolled_iterates(gp_or_factors: Any, x: torch.Tensor, diffusion_time: Any, blocks: int,
                      bands: int | None = None, taper: str | None = None, *, steps: str = "gd",
                      on_indefinite: str = "raise") -> torch.Tensor:
    """The iterates of the unrolled solver from ``y_0 = 0``: the readable reference oracle.

    Written as an ordinary loop over steps k, frames ``i`` and lags ``j`` (vectorised only over the batch and
    the d features of one frame):

        y_i <- y_i - eta_k(t) ( alpha_t^2 Sigma sum_{|i-j| <= J} gamma_J(|i-j|) y_j + sigma_t^2 y_i - x_i )

    with ``eta_k(t)`` from :func:`step_sizes` (``steps="gd"``: constant; ``"chebyshev"``: Leja-ordered
    Chebyshev steps).

    Args:
        gp_or_factors: a ``GaussianProcess`` or ``(temporal, spatial)`` (see :func:`factors`).
        x: ``(..., H, d)``.
        diffusion_time: scalar, or one per sample (shape ``x.shape[:-2]``).
        blocks: number of steps ``L >= 0``.
        bands: ``J`` (``None`` = all lags ``H - 1``); taper: ``None`` or ``"triangular"``.
        steps: the schedule, one of :data:`STEP_RULES`.
        on_indefinite: what to do if ``Gamma_J`` is not positive definite (see :func:`check_truncation`).
    Returns:
        float64 tensor ``(L + 1, ..., H, d)``: ``y_0 = 0, y_1, ..., y_L``.
    """
    f, x, blocks, bands, gamma, etas, t = _unrolled_setup(gp_or_factors, x, diffusion_time, blocks, bands, taper,
                                                          steps, on_indefinite)
    frames = f.frames
    a2, s2 = schedule(t)
    a2, s2 = _per_sample(a2, x, 1), _per_sample(s2, x, 1)
    spatial = f.spatial
    iterates = [torch.zeros_like(x)]
    for k in range(blocks):
        eta = _per_sample(etas[..., k], x, 1)
        y = iterates[-1]
        new = torch.empty_like(y)
        for i in range(frames):
            band_sum = torch.zeros_like(y[..., i, :])
            for j in range(max(0, i - bands), min(frames, i + bands + 1)):
                band_sum = band_sum + gamma[abs(i - j)] * y[..., j, :]
            grad_i = a2 * (band_sum @ spatial) + s2 * y[..., i, :] - x[..., i, :]
            new[..., i, :] = y[..., i, :] - eta * grad_i
        iterates.append(new)
    return _checked("unrolled_iterates", torch.stack(iterates), x)


def unrolled_solution(gp_or_factors: Any, x: torch.Tensor, diffusion_time: Any, blocks: int,
                      bands: int | None = None, taper: str | None = None, *, steps: str = "gd",
                      on_indefinite: str = "raise") -> torch.Tensor:
    """The last iterate ``y_L`` of :func:`unrolled_iterates`, vectorised for long sequences.

    The same recursion, ``y <- y - eta_k(t) (alpha_t^2 (Gamma_J y) Sigma + sigma_t^2 y - x)``, with ``Gamma_J y`` by
    ``2J + 1`` shifted sums (``unroll.model.banded.banded_toeplitz_apply``): O(L H J d) time and O(H d) memory, where
    :func:`unrolled_iterates` loops over frames and lags in Python and stores every iterate.

    Args and shapes as :func:`unrolled_iterates`; returns float64 ``(..., H, d)``.
    """
    f, x, blocks, bands, gamma, etas, t = _unrolled_setup(gp_or_factors, x, diffusion_time, blocks, bands, taper,
                                                          steps, on_indefinite)
    lag_values = gamma[: bands + 1]
    a2, s2 = schedule(t)
    a2, s2 = _per_sample(a2, x, 2), _per_sample(s2, x, 2)
    y = torch.zeros_like(x)
    for k in range(blocks):
        gradient_k = a2 * (banded_toeplitz_apply(lag_values, y) @ f.spatial) + s2 * y - x
        y = y - _per_sample(etas[..., k], x, 2) * gradient_k
    return _checked("unrolled_solution", y, x)


def residual_polynomial(step_sizes: torch.Tensor, eigenvalues: torch.Tensor) -> torch.Tensor:
    """``p_k(lam) = prod_{j<k} (1 - eta_j lam)`` for ``k = 0..L``: ``(L + 1,) + eigenvalues.shape`` (float64).

    ``step_sizes (L,)``; ``y_k - y*_J = -p_k(C_{t,J}) y*_J`` for iterates from ``y_0 = 0``.
    """
    eigenvalues = torch.as_tensor(eigenvalues, dtype=torch.float64)
    factors_ = 1.0 - torch.as_tensor(step_sizes, dtype=torch.float64).reshape((-1,) + (1,) * eigenvalues.ndim) \
        * eigenvalues
    return torch.cat([torch.ones((1,) + eigenvalues.shape, dtype=torch.float64), torch.cumprod(factors_, dim=0)])


def spectral_iterates(gp_or_factors: Any, x: torch.Tensor, diffusion_time: float, blocks: int,
                      bands: int | None = None, taper: str | None = None, steps: str = "gd") -> torch.Tensor:
    """The same iterates as :func:`unrolled_iterates`, computed in the eigenbases of Gamma_J and Sigma:

        y_k = U [ (1 - p_k(lam_i mu_a a + s)) (U^T x V) / (a lam_i mu_a + s) ] V^T,

    an independent oracle (no loop over steps in the matrix space) and cheap for large L.  Scalar t only.
    Returns float64 ``(L + 1, ..., H, d)``.
    """
    f = factors(gp_or_factors)
    x = _check_iterate_input(x, f)
    blocks = check_int("blocks", blocks, minimum=0)
    t = check_diffusion_time(diffusion_time)
    if t.ndim:
        raise ValueError(f"diffusion_time must be a scalar for spectral_iterates, got shape {tuple(t.shape)}")
    gamma = f.gamma if bands is None else truncate(f.gamma, bands, taper)
    lam, u = torch.linalg.eigh(Factors(gamma, f.spatial).toeplitz())
    mu, v = torch.linalg.eigh(f.spatial)
    a2, s2 = schedule(t)
    eigenvalues = a2 * (lam[:, None] * mu[None, :]) + s2  # (H, d)
    etas = step_sizes(f, t, max(blocks, 1), bands, taper, steps)[:blocks]
    residual = residual_polynomial(etas, eigenvalues)  # (L+1, H, d)
    rotated = u.T @ x @ v  # (..., H, d)
    coefficient = (1.0 - residual) / eigenvalues  # (L+1, H, d)
    coefficient = coefficient.reshape((blocks + 1,) + (1,) * (x.ndim - 2) + tuple(eigenvalues.shape))
    return _checked("spectral_iterates", u @ (coefficient * rotated) @ v.T, x)


def chebyshev_factor(kappa: Any, blocks: int) -> Any:
    """``max |p_L|`` of the Chebyshev schedule on ``[lambda_min, lambda_max]``: ``1/T_L((kappa+1)/(kappa-1)) =
    2 rho_C^L / (1 + rho_C^(2L))``, ``rho_C = (sqrt(kappa) - 1)/(sqrt(kappa) + 1)`` (float or tensor)."""
    blocks = check_int("blocks", blocks, minimum=0)
    if isinstance(kappa, torch.Tensor):
        rho = (kappa.sqrt() - 1) / (kappa.sqrt() + 1)
        return torch.where(torch.isinf(kappa), torch.ones_like(kappa), 2 * rho**blocks / (1 + rho ** (2 * blocks)))
    value = float(kappa)
    if math.isinf(value):
        return 1.0
    rho_value = (math.sqrt(value) - 1) / (math.sqrt(value) + 1)
    return 2 * rho_value**blocks / (1 + rho_value ** (2 * blocks))
