"""Distribution estimation: sample with each score, compare the samples' law with the data law.

The sampler is ``unroll.data.diffusion.sample_reverse_sde`` (Euler–Maruyama on the reverse SDE): on the
grid ``t_0 = t_start > t_1 > ... > t_K = t0``, ``h_k = t_k - t_{k+1}``,

    x <- x + h_k (x/2 + s(x, t_k)) + sqrt(h_k) xi_k,      x_start ~ N(0, I).

For a score that is linear in ``x``, ``s(x, t) = A_t vec(x)`` (the constructed network: every block is
linear in the y and x slots, and the heads depend only on frame embeddings and t), the output is
exactly Gaussian, ``N(0, P_K)``, with

    P_0 = I,   P_{k+1} = M_k P_k M_k^T + h_k I,   M_k = (1 + h_k/2) I + h_k A_{t_k},

so its KL to the data law ``N(0, Gamma ⊗ Sigma)`` is available in closed form:
``KL(N(0,P) || N(0,S)) = (tr(S^-1 P) - n + log det S - log det P) / 2``. ``monte_carlo_kl`` estimates the
same number from sampler output, ``mean(log N(x; 0, P) - log N(x; 0, S))``, as an independent check.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from unroll.data.diffusion import sample_reverse_sde, time_grid

__all__ = ["linear_score_matrix", "sampler_gaussian_law", "gaussian_kl", "gaussian_log_density",
           "monte_carlo_kl", "covariance_error", "covariance_noise_floor", "sample_with_score",
           "empirical_second_moment", "LinearScore"]


@torch.no_grad()
def linear_score_matrix(score: Any, frames: int, dim: int, diffusion_time: float, *,
                        check_tolerance: float = 1e-8, generator: torch.Generator | None = None) -> torch.Tensor:
    """The matrix ``A_t`` (``(H d, H d)`` float64) with ``vec(score(x, t)) = A_t vec(x)``.

    Columns are the score of the basis samples. Raises ``ValueError`` if ``score`` is not linear: the
    relative gap between ``score(x)`` and ``A_t x`` on random ``x`` must be below ``check_tolerance``.
    """
    size = frames * dim
    basis = torch.eye(size, dtype=torch.float64).reshape(size, frames, dim)
    times = torch.full((size,), float(diffusion_time), dtype=torch.float64)
    matrix = score(basis, times).to(torch.float64).reshape(size, size).T.contiguous()
    probe = torch.randn(4, frames, dim, generator=generator, dtype=torch.float64)
    expected = (probe.reshape(4, size) @ matrix.T).reshape(probe.shape)
    got = score(probe, times[:4]).to(torch.float64)
    gap = float((got - expected).norm() / got.norm().clamp_min(1e-300))
    if not gap <= check_tolerance:
        raise ValueError(f"score is not linear in x at diffusion_time={diffusion_time}: relative gap {gap:.3g} "
                         f"> check_tolerance={check_tolerance}; the exact Gaussian law needs a linear score")
    return matrix


def sampler_gaussian_law(score: Any, frames: int, dim: int, *, t_start: float = 8.0, t0: float = 1e-2,
                         steps: int = 200, spacing: str = "geometric") -> torch.Tensor:
    """Covariance ``P_K`` (``(H d, H d)`` float64) of ``sample_reverse_sde``'s output for a linear score."""
    grid = time_grid(t_start, t0, steps, spacing=spacing)
    size = frames * dim
    identity = torch.eye(size, dtype=torch.float64)
    covariance = identity.clone()
    matrix = score.matrix if isinstance(score, LinearScore) else (
        lambda t: linear_score_matrix(score, frames, dim, t))
    for k in range(steps):
        t_now, h = float(grid[k]), float(grid[k] - grid[k + 1])
        step = (1 + 0.5 * h) * identity + h * matrix(t_now)
        covariance = step @ covariance @ step.T + h * identity
        covariance = 0.5 * (covariance + covariance.T)
    return covariance


class LinearScore:
    """A linear score ``x -> A_t vec(x)`` whose matrices ``A_t`` are computed once per diffusion time
    from ``score`` (``linear_score_matrix``, linearity checked) and cached.

    ``sample_reverse_sde(LinearScore(model, H, d), ...)`` runs the same recursion as with ``model``
    (same generator draws), with each network evaluation replaced by its exact matrix: the output differs
    only by rounding, and a large network (the construction with many blocks) is evaluated ``H d + 4``
    times per step instead of once per sample.
    """

    def __init__(self, score: Any, frames: int, dim: int) -> None:
        self.score, self.frames, self.dim = score, frames, dim
        self.matrices: dict[float, torch.Tensor] = {}

    def matrix(self, diffusion_time: float) -> torch.Tensor:
        key = float(diffusion_time)
        if key not in self.matrices:
            self.matrices[key] = linear_score_matrix(self.score, self.frames, self.dim, key)
        return self.matrices[key]

    def __call__(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        times = torch.as_tensor(diffusion_time, dtype=torch.float64).reshape(-1)
        if not bool((times == times[0]).all()):
            raise ValueError("LinearScore needs one diffusion time for the whole batch")
        flat = x.to(torch.float64).reshape(x.shape[0], -1)
        return (flat @ self.matrix(float(times[0])).T).reshape(x.shape)


def _cholesky(name: str, matrix: torch.Tensor) -> torch.Tensor:
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) != 0:
        raise ValueError(f"{name} must be positive definite (Cholesky failed at column {int(info)})")
    return factor


def gaussian_kl(covariance_p: torch.Tensor, covariance_q: torch.Tensor) -> float:
    """``KL(N(0, P) || N(0, Q))`` in nats (float64, via Cholesky factors)."""
    p = covariance_p.to(torch.float64)
    q = covariance_q.to(torch.float64)
    lp, lq = _cholesky("covariance_p", p), _cholesky("covariance_q", q)
    solved = torch.linalg.solve_triangular(lq, lp, upper=False)  # Lq^-1 Lp
    trace = float((solved**2).sum())
    logdet = 2 * float(torch.log(torch.diagonal(lq)).sum() - torch.log(torch.diagonal(lp)).sum())
    return 0.5 * (trace - p.shape[0] + logdet)


def gaussian_log_density(x: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """``log N(vec(x); 0, covariance)`` for ``x (n, H, d)`` -> ``(n,)`` float64."""
    flat = x.to(torch.float64).reshape(x.shape[0], -1)
    factor = _cholesky("covariance", covariance.to(torch.float64))
    white = torch.linalg.solve_triangular(factor, flat.T, upper=False)
    logdet = 2 * torch.log(torch.diagonal(factor)).sum()
    return -0.5 * ((white**2).sum(dim=0) + logdet + flat.shape[1] * math.log(2 * math.pi))


def monte_carlo_kl(samples: torch.Tensor, covariance_p: torch.Tensor, covariance_q: torch.Tensor
                   ) -> tuple[float, float]:
    """``(estimate, standard error)`` of ``KL(p || q) = E_p[log p - log q]`` from samples of ``p``."""
    ratio = gaussian_log_density(samples, covariance_p) - gaussian_log_density(samples, covariance_q)
    return float(ratio.mean()), float(ratio.std() / math.sqrt(ratio.numel()))


def empirical_second_moment(samples: torch.Tensor) -> torch.Tensor:
    """``X^T X / n`` of ``vec`` of the samples (``(H d, H d)``; the data mean is known to be 0)."""
    flat = samples.to(torch.float64).reshape(samples.shape[0], -1)
    return flat.T @ flat / flat.shape[0]


def covariance_error(samples_or_covariance: torch.Tensor, target: torch.Tensor) -> float:
    """Relative Frobenius error ``|C - S|_F / |S|_F``; ``C`` is given, or the second moment of ``(n, H, d)`` samples."""
    c = samples_or_covariance
    if c.ndim == 3:
        c = empirical_second_moment(c)
    target = target.to(torch.float64)
    return float((c.to(torch.float64) - target).norm() / target.norm())


def covariance_noise_floor(target: torch.Tensor, samples: int) -> float:
    """Root-mean-square of ``covariance_error`` for ``samples`` exact draws from ``N(0, S)``:
    ``E|C - S|_F^2 = ((tr S)^2 + |S|_F^2) / n`` (Isserlis), divided by ``|S|_F``."""
    s = target.to(torch.float64)
    return float(np.sqrt((float(torch.trace(s)) ** 2 + float((s**2).sum())) / samples) / float(s.norm()))


@torch.no_grad()
def sample_with_score(score: Any, count: int, frames: int, dim: int, *, t_start: float = 8.0, t0: float = 1e-2,
                      steps: int = 200, generator: torch.Generator | None = None, chunk: int = 1024
                      ) -> torch.Tensor:
    """``count`` samples ``(count, H, d)`` float64 from ``sample_reverse_sde`` with ``score`` (in chunks)."""
    parts = []
    done = 0
    while done < count:
        size = min(chunk, count - done)
        parts.append(sample_reverse_sde(score, (size, frames, dim), t_start=t_start, t0=t0, steps=steps,
                                        generator=generator))
        done += size
    return torch.cat(parts)
