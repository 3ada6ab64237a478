"""GaussianProcess at larger H: the centrosymmetric (half-size) factorisation against dense oracles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential, Logarithmic, Matern, Polynomial


def random_spd(dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    return a @ a.T / dim + 0.5 * torch.eye(dim, dtype=torch.float64)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("frames", [2, 3, 64, 65, 200, 201])
@pytest.mark.parametrize("kernel", [Matern(nu=1.5, ell=6.0), Logarithmic(nu=1.0, ell=1.0)])
def test_eigen_decomposition_reconstructs_gamma(frames, kernel):
    gp = GaussianProcess(kernel, frames, torch.eye(1, dtype=torch.float64))
    lam, vectors = gp.temporal_eigen
    eye = torch.eye(frames, dtype=torch.float64)
    assert lam.shape == (frames,) and vectors.shape == (frames, frames)
    assert bool((lam[1:] >= lam[:-1]).all())
    assert float((vectors.T @ vectors - eye).abs().max()) <= 1e-12
    assert float(((vectors * lam) @ vectors.T - gp.temporal).abs().max()) <= 1e-12 * frames
    # the eigenvalues are those of one full eigh (independent LAPACK call on Gamma itself)
    reference = torch.linalg.eigvalsh(gp.temporal).clamp(min=0.0)
    assert float((lam - reference).abs().max()) <= 1e-12 * float(reference[-1])


@pytest.mark.parametrize("frames", [33, 48, 97])
def test_structured_score_matches_dense_solve(frames):
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=5.0), frames, random_spd(4, frames))
    generator = torch.Generator().manual_seed(frames)
    x = gp.noised(gp.sample(3, generator), 0.2, generator)
    times = torch.tensor([1e-3, 0.2, 4.0], dtype=torch.float64)
    assert relative_error(gp.score(x, times), gp.score_dense(x, times)) <= 1e-10
    # and against numpy's dense solve with C_t built from scratch (no code shared with unroll.data.gp)
    gamma = np.array([[np.exp(-abs(i - j) / 5.0) for j in range(frames)] for i in range(frames)])
    covariance = np.exp(-0.2) * np.kron(gamma, gp.spatial.numpy()) + (1 - np.exp(-0.2)) * np.eye(frames * 4)
    expected = -np.linalg.solve(covariance, x[1].numpy().reshape(-1)).reshape(frames, 4)
    assert relative_error(gp.score(x[1], 0.2), torch.from_numpy(expected)) <= 1e-10


def test_log_density_and_sampling_use_the_same_factors():
    gp = GaussianProcess(Polynomial(nu=2.0, ell=3.0), 41, random_spd(2, 0))
    x = gp.sample(2, torch.Generator().manual_seed(0))
    law = torch.distributions.MultivariateNormal(torch.zeros(82, dtype=torch.float64), gp.noised_covariance(0.7))
    assert float((gp.log_density(x, 0.7) - law.log_prob(x.reshape(2, -1))).abs().max()) <= 1e-9
    assert gp.lambda_min == pytest.approx(float(torch.linalg.eigvalsh(gp.temporal)[0]), abs=1e-12)


def test_non_centrosymmetric_temporal_falls_back_to_full_eigh():
    gp = GaussianProcess(Matern(nu=1.5, ell=2.0), 5, torch.eye(2, dtype=torch.float64))
    gp.temporal = random_spd(5, 3)  # symmetric positive definite, not centrosymmetric
    assert len(gp._temporal_factors) == 1
    x = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert relative_error(gp.score(x, 0.4), gp.score_dense(x, 0.4)) <= 1e-10
    lam, vectors = gp.temporal_eigen
    assert float(((vectors * lam) @ vectors.T - gp.temporal).abs().max()) <= 1e-12


@pytest.mark.slow
def test_large_sizes_never_form_the_dense_covariance():
    """H = 4096, d = 64: factorise and score; a (Hd)^2 float64 matrix would need 550 GB."""
    gp = GaussianProcess(Matern(nu=1.5, ell=16.0), 4096, random_spd(64, 1))
    x = gp.sample(2, torch.Generator().manual_seed(0))
    score = gp.score(x, 0.5)
    # check C_t (-score) = x with the Kronecker structure applied directly: alpha^2 Gamma x Sigma + sigma^2 y
    y = -score
    residual = np.exp(-0.5) * gp.temporal @ y @ gp.spatial + (1 - np.exp(-0.5)) * y - x
    assert float(residual.norm() / x.norm()) <= 1e-10
