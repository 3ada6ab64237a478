"""The plug-in reference for sample complexity: the closed-form score with a maximum-likelihood covariance.

From ``n`` clean samples ``X_1..X_n`` (``(n, H, d)``, mean known to be 0) estimate the data covariance
``Gamma ⊗ Sigma`` by maximum likelihood and use the exact score formula (docs/design.md §3) with the
estimate:

    s_hat(x, t) = -(alpha_t^2 Gamma_hat ⊗ Sigma_hat + sigma_t^2 I)^{-1} vec(x).

The model has ``H(H+1)/2 + d(d+1)/2 - 1`` parameters, so the estimate, and with it the score error, has the
parametric rate ``n^(-1/2)``: the reference a learned score's sample complexity can be held against.

**Flip-flop** (Dutilleul 1999; Lu & Zimmerman 2005).  The log-likelihood per sample,

    l(Gamma, Sigma) = -1/2 [H d log 2 pi + d log det Gamma + H log det Sigma
                            + (1/n) sum_k tr(Gamma^{-1} X_k Sigma^{-1} X_k^T)],

is maximised in ``Gamma`` for fixed ``Sigma`` by ``Gamma = (1/(n d)) sum_k X_k Sigma^{-1} X_k^T`` and in
``Sigma`` for fixed ``Gamma`` by ``Sigma = (1/(n H)) sum_k X_k^T Gamma^{-1} X_k``; alternating the two
(from ``Sigma = I``) never decreases ``l``.  Only the product is identified (``(c Gamma) ⊗ (Sigma / c)`` is
the same covariance): after each sweep the scale is fixed by ``mean(diag(Gamma_hat)) = 1``, the convention
of the GP data (``gamma(0) = 1``), so ``Gamma_hat -> Gamma`` and ``Sigma_hat -> Sigma`` themselves.  The
iteration stops when both factors change by less than ``tolerance`` (relative Frobenius).

**Existence.**  Each update is positive definite only if its sum has full rank: ``n d >= H`` for
``Gamma_hat`` and ``n H >= d`` for ``Sigma_hat`` (checked; fewer samples raise).  These are necessary, not
sufficient: the exact sample sizes at which the MLE exists, and exists uniquely, with probability one depend
on ``H`` and ``d`` in a more complicated way (Drton, Kuriki & Hoff 2021, "Existence and uniqueness of the
Kronecker covariance MLE").  Near the threshold the iteration can drift towards a singular factor, so every
update is checked (Cholesky and an eigenvalue ratio below ``CONDITION_LIMIT``) and a failure raises with what
to do.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch

from unroll._validate import (
    as_tensor,
    check_diffusion_time,
    check_finite,
    check_finite_result,
    check_int,
    check_positive,
    check_spd,
    to_real_tensor,
)
from unroll.data import diffusion

__all__ = ["fit_kronecker", "kronecker_log_likelihood", "PluginScore", "plugin_score", "STRUCTURES"]

STRUCTURES = ("general", "toeplitz")

#: a factor whose eigenvalue ratio falls below this is treated as singular (the MLE does not exist)
CONDITION_LIMIT = 1e12


def _check_data(data: Any) -> torch.Tensor:
    tensor = to_real_tensor("data", data)
    if tensor.ndim != 3 or min(tensor.shape) < 1:
        raise ValueError(f"data must have shape (n, H, d) with n, H, d >= 1, got {tuple(tensor.shape)}")
    return check_finite("data", tensor.detach().to(torch.float64))


def _inverse_spd(name: str, matrix: torch.Tensor, samples: int) -> torch.Tensor:
    """``matrix^{-1}`` via Cholesky; raise if ``matrix`` is not (numerically) positive definite."""
    eigenvalues = torch.linalg.eigvalsh(matrix)
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) != 0 or not float(eigenvalues[0]) > float(eigenvalues[-1]) / CONDITION_LIMIT:
        raise ValueError(
            f"the maximum-likelihood {name} is singular (eigenvalues {float(eigenvalues[0]):.3g} .. "
            f"{float(eigenvalues[-1]):.3g}) with n={samples} samples: the Kronecker estimate does not exist for "
            f"this data; use more samples")
    return torch.cholesky_inverse(factor)


def _toeplitz_projection(matrix: torch.Tensor) -> torch.Tensor:
    """The nearest symmetric Toeplitz matrix in Frobenius norm: each pair of diagonals replaced by its mean."""
    size = matrix.shape[0]
    lag = (torch.arange(size)[:, None] - torch.arange(size)[None, :]).abs()
    sums = torch.zeros(size, dtype=matrix.dtype).scatter_add_(0, lag.reshape(-1), matrix.reshape(-1))
    counts = torch.bincount(lag.reshape(-1), minlength=size).to(matrix.dtype)
    return (sums / counts)[lag]


def kronecker_log_likelihood(data: Any, temporal: Any, spatial: Any) -> float:
    """Average log-density ``(1/n) sum_k log N(vec X_k; 0, Gamma ⊗ Sigma)`` of ``data (n, H, d)`` (module
    docstring), from the two factors (``temporal = Gamma (H, H)``, ``spatial = Sigma (d, d)``, both SPD)."""
    x = _check_data(data)
    n, frames, dim = x.shape
    gamma = check_spd("temporal", as_tensor("temporal", temporal))
    sigma = check_spd("spatial", as_tensor("spatial", spatial))
    if gamma.shape[0] != frames or sigma.shape[0] != dim:
        raise ValueError(f"temporal must be ({frames}, {frames}) and spatial ({dim}, {dim}) for data of shape "
                         f"{tuple(x.shape)}, got {tuple(gamma.shape)} and {tuple(sigma.shape)}")
    quadratic = torch.einsum("kia,ij,kjb,ab->", x, torch.linalg.inv(gamma), x, torch.linalg.inv(sigma)) / n
    log_det = dim * torch.linalg.slogdet(gamma)[1] + frames * torch.linalg.slogdet(sigma)[1]
    return float(-0.5 * (frames * dim * math.log(2 * math.pi) + log_det + quadratic))


def fit_kronecker(data: Any, *, iterations: int = 100, tolerance: float = 1e-10, structure: str = "general"
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood ``(Gamma_hat (H, H), Sigma_hat (d, d))`` of ``vec(X) ~ N(0, Gamma ⊗ Sigma)`` from
    ``data (n, H, d)`` by the flip-flop algorithm (module docstring), scaled so that ``mean(diag Gamma_hat) = 1``.

    Args:
        data: ``n`` clean samples ``(n, H, d)``, mean known to be 0.
        iterations: at most this many sweeps (one ``Gamma`` and one ``Sigma`` update each), ``>= 1``.
        tolerance: stop when both factors change by less than this (relative Frobenius) in one sweep.
        structure: ``"general"`` (the MLE over all SPD factors) or ``"toeplitz"``: after each ``Gamma`` update
            replace it by its nearest symmetric Toeplitz matrix (mean of each pair of diagonals), the
            stationary model's structure.  That projected iteration is a heuristic, not the constrained MLE:
            it may lower the likelihood and its fixed point is not a stationary point of ``l``.
    Returns:
        ``(Gamma_hat, Sigma_hat)``, float64, symmetric positive definite.  A ``RuntimeWarning`` says when
        ``iterations`` sweeps did not reach ``tolerance``.
    Raises:
        ValueError: ``data`` not ``(n, H, d)`` or not finite; ``n d < H`` or ``n H < d``; a factor singular
            along the way (the MLE does not exist for this data); bad ``iterations``/``tolerance``/``structure``.
    """
    x = _check_data(data)
    iterations = check_int("iterations", iterations, minimum=1)
    tolerance = check_positive("tolerance", tolerance)
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    n, frames, dim = x.shape
    if n * dim < frames or n * frames < dim:
        raise ValueError(f"fit_kronecker needs n d >= H and n H >= d for the estimate to exist, got n={n} samples "
                         f"of shape (H, d) = ({frames}, {dim}); draw at least "
                         f"{math.ceil(max(frames / dim, dim / frames))} samples")
    by_frame = x.permute(1, 0, 2).reshape(frames, n * dim)  # columns: (sample, feature)
    by_feature = x.reshape(n * frames, dim)  # rows: (sample, frame)
    gamma = torch.eye(frames, dtype=torch.float64)
    sigma = torch.eye(dim, dtype=torch.float64)
    sigma_inverse = sigma
    converged = False
    for _ in range(iterations):
        previous = gamma, sigma
        whitened = (x @ sigma_inverse).permute(1, 0, 2).reshape(frames, n * dim)  # X_k Sigma^{-1}
        gamma = whitened @ by_frame.T / (n * dim)
        gamma = 0.5 * (gamma + gamma.T)
        if structure == "toeplitz":
            gamma = _toeplitz_projection(gamma)
        gamma_inverse = _inverse_spd("Gamma_hat", gamma, n)
        sigma = by_feature.T @ (gamma_inverse @ x).reshape(n * frames, dim) / (n * frames)
        sigma = 0.5 * (sigma + sigma.T)
        scale = float(torch.diagonal(gamma).mean())
        gamma, sigma = gamma / scale, sigma * scale
        sigma_inverse = _inverse_spd("Sigma_hat", sigma, n)
        change = max(float((gamma - previous[0]).norm() / gamma.norm()),
                     float((sigma - previous[1]).norm() / sigma.norm()))
        if change < tolerance:
            converged = True
            break
    _inverse_spd("Gamma_hat", gamma, n)
    if not converged:
        warnings.warn(f"fit_kronecker: {iterations} sweeps did not reach tolerance={tolerance:g} "
                      f"(last relative change {change:.3g}); raise iterations", RuntimeWarning, stacklevel=2)
    return gamma, sigma


class PluginScore:
    """The closed-form score with given Kronecker factors: ``s(x, t) = -(alpha_t^2 Gamma ⊗ Sigma +
    sigma_t^2 I)^{-1} vec(x)``.

    With ``Gamma = U diag(lam) U^T``, ``Sigma = V diag(mu) V^T`` (computed once),

        s(x, t) = -U [ (U^T x V) / (alpha_t^2 lam_i mu_a + sigma_t^2) ] V^T.

    Args:
        temporal: ``Gamma_hat`` ``(H, H)``, symmetric positive definite.
        spatial: ``Sigma_hat`` ``(d, d)``, symmetric positive definite.
    ``score(x, t)`` (also ``__call__``) takes ``x (..., H, d)`` and ``t`` a positive scalar or one per
    sample (shape ``x.shape[:-2]``), like ``GaussianProcess.score``; it is differentiable in ``x``.
    """

    def __init__(self, temporal: Any, spatial: Any) -> None:
        self.temporal = check_spd("temporal", as_tensor("temporal", temporal).clone())
        self.spatial = check_spd("spatial", as_tensor("spatial", spatial).clone())
        self.frames, self.dim = int(self.temporal.shape[0]), int(self.spatial.shape[0])
        self.temporal_eigen = torch.linalg.eigh(self.temporal)
        self.spatial_eigen = torch.linalg.eigh(self.spatial)

    def __repr__(self) -> str:
        return f"PluginScore(frames={self.frames}, dim={self.dim})"

    def covariance(self) -> torch.Tensor:
        """The dense ``(H d, H d)`` ``kron(Gamma_hat, Sigma_hat)`` (small sizes and tests only)."""
        return torch.kron(self.temporal, self.spatial)

    def score(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """``s_hat(x, t)``, shape of ``x`` ``(..., H, d)``, float64."""
        x = to_real_tensor("x", x)
        if x.ndim < 2 or tuple(x.shape[-2:]) != (self.frames, self.dim):
            raise ValueError(f"x must have shape (..., H, d) = (..., {self.frames}, {self.dim}), "
                             f"got {tuple(x.shape)}")
        x = check_finite("x", x.to(torch.float64))
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        lam, temporal_vectors = self.temporal_eigen
        mu, spatial_vectors = self.spatial_eigen
        a2, s2 = diffusion.alpha(t) ** 2, diffusion.sigma2(t)
        denominator = a2[..., None, None] * (lam[:, None] * mu[None, :]) + s2[..., None, None]
        rotated = temporal_vectors.T @ x @ spatial_vectors
        return check_finite_result("PluginScore.score", -(temporal_vectors @ (rotated / denominator)
                                                          @ spatial_vectors.T), "x overflows float64 there")

    __call__ = score


def plugin_score(data: Any, **options: Any) -> PluginScore:
    """``PluginScore(*fit_kronecker(data, **options))``: the plug-in score fitted to ``data (n, H, d)``."""
    return PluginScore(*fit_kronecker(data, **options))
