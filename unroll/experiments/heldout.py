"""Held-out score error: the comparison's GPs, a fixed held-out set, and the error of a score model on it.

``heldout_set(gp, n, times, seed)`` draws ``n`` clean samples once and noises them at each diffusion time with a
fixed generator, so every model is scored on the same ``(x_t, s(x_t, t))`` pairs; ``score_error(score, held)``
is the relative Frobenius error over the whole batch at each time, ``e(t) = |s_model - s|_F / |s|_F``, evaluated
in float64, and its mean over the times.  ``make_gp`` is the GP of the comparison (a named kernel,
``Sigma[a, b] = rho^|a-b|``), ``white_gp`` its temporally uncorrelated control.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from unroll.data.gp import GaussianProcess
from unroll.data.kernels import LagFunction, kernel_from_name

__all__ = ["HeldOut", "heldout_set", "score_error", "float64_score", "make_gp", "white_gp"]


@dataclass
class HeldOut:
    """Held-out noised samples: per diffusion time ``x_t (n, H, d)`` and the exact score there (float64)."""

    times: tuple[float, ...]
    noised: list[torch.Tensor] = field(default_factory=list)
    scores: list[torch.Tensor] = field(default_factory=list)


def make_gp(kernel: str, nu: float, ell: float, frames: int, dim: int, spatial_correlation: float = 0.5
            ) -> GaussianProcess:
    """GP with ``Gamma`` from the named kernel and ``Sigma[a, b] = rho^|a-b|``."""
    index = torch.arange(dim, dtype=torch.float64)
    spatial = spatial_correlation ** (index[:, None] - index[None, :]).abs()
    return GaussianProcess(kernel_from_name(kernel, nu=nu, ell=ell), frames, spatial).validate()


def white_gp(gp: GaussianProcess) -> GaussianProcess:
    """Same frames and ``Sigma`` with ``Gamma = I``: temporally uncorrelated data (the control)."""
    kernel = LagFunction(lambda lags: (np.asarray(lags) == 0).astype(np.float64), name="white")
    return GaussianProcess(kernel, gp.frames, gp.spatial).validate()


def heldout_set(gp: GaussianProcess, n: int, times: tuple[float, ...], seed: int) -> HeldOut:
    """Draw ``n`` clean samples and noise them at each time (generator seeded by ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    x0 = gp.sample(n, generator=generator)
    held = HeldOut(times=tuple(float(t) for t in times))
    for t in held.times:
        x_t = gp.noised(x0, t, generator=generator)
        held.noised.append(x_t)
        held.scores.append(gp.score(x_t, t))
    return held


def float64_score(model: torch.nn.Module) -> Any:
    """A float64, CPU, eval-mode copy of ``model`` as a ``score(x, t)`` callable without autograd."""
    copy64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()

    def score(x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        with torch.no_grad():
            return copy64(x.to(torch.float64), diffusion_time)

    score.model = copy64  # type: ignore[attr-defined]
    return score


@torch.no_grad()
def score_error(score: Any, held: HeldOut, chunk: int = 512) -> dict:
    """``{"per_time": {t: e(t)}, "score_error": mean_t e(t)}`` (relative Frobenius error per time)."""
    per_time = {}
    for t, x_t, exact in zip(held.times, held.noised, held.scores, strict=True):
        estimate = torch.cat([score(x_t[i: i + chunk], t) for i in range(0, x_t.shape[0], chunk)])
        if not bool(torch.isfinite(estimate).all()):
            per_time[t] = float("inf")
            continue
        per_time[t] = float((estimate.to(torch.float64) - exact).norm() / exact.norm())
    mean = float(np.mean(list(per_time.values())))
    return {"per_time": {str(t): v for t, v in per_time.items()}, "score_error": mean}
