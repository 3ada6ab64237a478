"""Gaussian-process sequence data ``vec(x) ~ N(0, Gamma ⊗ Sigma)`` and its exact diffusion score.

Shapes: a sample is ``(H, d)`` (H frames, d features per frame); batches are ``(..., H, d)``.  Row-major
flattening ``x.reshape(-1)`` gives ``vec(x)``, whose covariance is ``kron(Gamma, Sigma)``.

The score of the noised data at diffusion time ``t`` is ``s(x, t) = -C_t^{-1} vec(x)`` with
``C_t = alpha_t^2 (Gamma ⊗ Sigma) + sigma_t^2 I``.  With ``Gamma = U diag(lam) U^T`` and
``Sigma = V diag(mu) V^T``,

    C_t^{-1} vec(x) = vec( U [ (U^T x V) / (alpha_t^2 lam_i mu_a + sigma_t^2) ] V^T ),

which costs O(H^3 + d^3) once (cached) and O(H^2 d + H d^2) per sample; ``C_t`` is formed only by the
dense oracle ``score_dense`` for tests at small sizes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import torch

from unroll import diffusion
from unroll._validate import (
    as_tensor,
    check_diffusion_time,
    check_finite,
    check_int,
    check_sample_shape,
    check_spd,
)
from unroll.kernels import Kernel

__all__ = ["GaussianProcess"]

#: an eigenvalue of Gamma below -INDEFINITE_TOLERANCE * lambda_max means Gamma is not positive semidefinite
INDEFINITE_TOLERANCE = 1e-10


class GaussianProcess:
    """Sequences of ``frames`` frames of dimension ``d`` with covariance ``Gamma ⊗ Sigma``.

    Args:
        kernel: temporal covariance ``gamma`` (``unroll.kernels``); ``Gamma[i, j] = gamma(|i - j|)``.
        frames: number of frames ``H >= 1``.
        spatial: ``Sigma``, a symmetric positive-definite ``(d, d)`` matrix (array-like or tensor).

    Raises:
        ValueError: ``frames < 1``, ``spatial`` not square / symmetric / positive definite / finite, or
            ``Gamma`` indefinite (possible only for a user-supplied ``LagFunction``).
    """

    def __init__(self, kernel: Kernel, frames: int, spatial: Any) -> None:
        if not isinstance(kernel, Kernel):
            raise ValueError(f"kernel must be an unroll.kernels.Kernel, got {type(kernel).__name__}")
        self.kernel = kernel
        self.frames = check_int("frames", frames, minimum=1)
        self.spatial = check_spd("spatial", as_tensor("spatial", spatial))
        self.dim = int(self.spatial.shape[0])
        self.temporal = torch.from_numpy(kernel.toeplitz(self.frames))

    def __repr__(self) -> str:
        return f"GaussianProcess({self.kernel!r}, frames={self.frames}, dim={self.dim})"

    # ----------------------------------------------------------------- factorisations (cached)
    @cached_property
    def temporal_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam, U)``: eigenvalues (ascending, ``(H,)``) and eigenvectors (``(H, H)``) of Gamma.

        Eigenvalues in ``[-1e-10 lambda_max, 0]`` (rounding of a semidefinite Gamma) are set to 0.
        """
        lam, vectors = torch.linalg.eigh(self.temporal)
        if float(lam[0]) < -INDEFINITE_TOLERANCE * float(lam[-1]):
            raise ValueError(
                f"temporal covariance Gamma of {self.kernel!r} with frames={self.frames} is not positive "
                f"semidefinite: lambda_min(Gamma) = {float(lam[0]):.3g} (lambda_max = {float(lam[-1]):.3g})"
            )
        return lam.clamp(min=0.0), vectors

    @cached_property
    def spatial_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, V)``: eigenvalues (ascending, ``(d,)``) and eigenvectors (``(d, d)``) of Sigma."""
        return torch.linalg.eigh(self.spatial)

    @property
    def lambda_min(self) -> float:
        """Smallest eigenvalue of Gamma as computed (before clamping); may be at rounding level."""
        return float(torch.linalg.eigvalsh(self.temporal)[0])

    def validate(self) -> GaussianProcess:
        """Factorise now (instead of on first use) so that an indefinite Gamma raises here."""
        _ = self.temporal_eigen, self.spatial_eigen
        return self

    # ----------------------------------------------------------------- covariance and sampling
    def covariance(self) -> torch.Tensor:
        """The dense ``(H d, H d)`` covariance ``kron(Gamma, Sigma)`` — for small sizes and tests only."""
        return torch.kron(self.temporal, self.spatial)

    def noised_covariance(self, diffusion_time: float) -> torch.Tensor:
        """The dense ``C_t = alpha_t^2 kron(Gamma, Sigma) + sigma_t^2 I`` — small sizes and tests only."""
        t = float(check_diffusion_time(diffusion_time))
        size = self.frames * self.dim
        return diffusion.alpha(t) ** 2 * self.covariance() + diffusion.sigma2(t) * torch.eye(
            size, dtype=torch.float64
        )

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` sequences, ``(n, H, d)`` float64, as ``x = A Z B^T`` with ``A = U diag(sqrt(lam))``,
        ``B = V diag(sqrt(mu))`` and ``Z`` standard normal, so ``Cov(vec x) = A A^T ⊗ B B^T = Gamma ⊗ Sigma``.
        """
        n = check_int("n", n, minimum=1)
        lam, temporal_vectors = self.temporal_eigen
        mu, spatial_vectors = self.spatial_eigen
        temporal_root = temporal_vectors * lam.sqrt()
        spatial_root = spatial_vectors * mu.sqrt()
        z = torch.randn((n, self.frames, self.dim), generator=generator, dtype=torch.float64)
        return temporal_root @ z @ spatial_root.T

    def noised(
        self, x0: torch.Tensor, diffusion_time: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``x_t = alpha_t x0 + sigma_t z`` for ``x0`` of shape ``(..., H, d)`` (see ``unroll.diffusion``)."""
        x0 = self._check_x("x0", x0)
        return diffusion.noise(x0, diffusion_time, generator=generator)[0]

    # ----------------------------------------------------------------- scores
    def _check_x(self, name: str, x: Any) -> torch.Tensor:
        tensor = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
        check_sample_shape(name, tensor, self.frames, self.dim)
        return check_finite(name, tensor.to(torch.float64))

    def _denominator(self, diffusion_time: torch.Tensor) -> torch.Tensor:
        """``alpha_t^2 lam_i mu_a + sigma_t^2`` with shape ``t.shape + (H, d)``."""
        lam, _ = self.temporal_eigen
        mu, _ = self.spatial_eigen
        a2 = diffusion.alpha(diffusion_time) ** 2
        s2 = diffusion.sigma2(diffusion_time)
        outer = lam[:, None] * mu[None, :]
        return a2[..., None, None] * outer + s2[..., None, None]

    def precision_apply(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """``C_t^{-1} vec(x)`` reshaped to ``x``'s shape ``(..., H, d)`` (the GD fixed point ``y*``)."""
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        _, temporal_vectors = self.temporal_eigen
        _, spatial_vectors = self.spatial_eigen
        rotated = temporal_vectors.T @ x @ spatial_vectors
        return temporal_vectors @ (rotated / self._denominator(t)) @ spatial_vectors.T

    def score(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """Exact score ``s(x, t) = -C_t^{-1} vec(x)`` for ``x`` of shape ``(..., H, d)``.

        ``diffusion_time`` is a positive scalar or one per sample (shape ``x.shape[:-2]``).
        """
        return -self.precision_apply(x, diffusion_time)

    def score_dense(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """Dense oracle: solve with the ``(H d, H d)`` matrix ``C_t`` (small sizes and tests only)."""
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        batch_shape = tuple(x.shape[:-2])
        flat = x.reshape(-1, self.frames * self.dim)
        times = t.expand(batch_shape).reshape(-1) if t.ndim else t.repeat(flat.shape[0])
        out = torch.empty_like(flat)
        for row, time in enumerate(times.tolist()):
            out[row] = -torch.linalg.solve(self.noised_covariance(time), flat[row])
        return out.reshape(x.shape)

    def log_density(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """``log p_t(x)`` of the noised data, shape ``x.shape[:-2]``, via the Kronecker eigenvalues."""
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        denominator = self._denominator(t)
        quadratic = (x * self.precision_apply(x, t)).sum(dim=(-2, -1))
        log_det = torch.log(denominator).sum(dim=(-2, -1))
        size = self.frames * self.dim
        return -0.5 * (quadratic + log_det + size * float(np.log(2 * np.pi)))
