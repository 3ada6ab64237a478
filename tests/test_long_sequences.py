"""At length: the score, sampling and the constructed network at H = 65,536 frames (about 4 s in all on 2 cores)."""

from __future__ import annotations

import math

import numpy as np
import torch

from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import Matern
from unroll.linalg.toeplitz import toeplitz_matmul

FRAMES = 65536


def test_the_score_at_length_solves_c_t():
    spatial = torch.diag(torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64))
    gp = GaussianProcess(Matern(nu=1.0, ell=4.0), FRAMES, spatial)
    x = torch.randn(2, FRAMES, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    score = gp.score(x, 0.01)
    assert gp.score_path() == "toeplitz" and "temporal" not in gp.__dict__
    a2, s2 = (float(value) for value in gd.schedule(0.01))
    for feature, mu in enumerate((0.1, 1.0, 10.0)):  # Sigma diagonal: each feature is one Toeplitz system
        column = a2 * mu * gp.autocovariance
        column[0] += s2
        residual = toeplitz_matmul(column, -score[:, :, feature]) - x[:, :, feature]
        assert float((residual.norm(dim=-1) / x[:, :, feature].norm(dim=-1)).max()) <= 1e-10


def test_samples_at_length_have_the_autocovariance_of_the_kernel():
    kernel = Matern(nu=1.0, ell=4.0)
    gp = GaussianProcess(kernel, FRAMES, torch.eye(4, dtype=torch.float64))
    x = gp.sample(8, torch.Generator().manual_seed(1))
    assert gp.sample_path() == "circulant"
    columns = x.transpose(1, 2).reshape(-1, FRAMES)  # 32 independent draws of N(0, Gamma)
    gamma = kernel(np.arange(FRAMES, dtype=np.float64))
    energy = float(gamma[0] ** 2 + 2 * (gamma[1:] ** 2).sum())
    for lag in range(0, 33):
        estimate = float((columns[:, : FRAMES - lag] * columns[:, lag:]).mean())
        # the lag-averaged estimate from N columns of length H - m has variance <= 2 sum_k gamma(k)^2 / (N (H - m))
        sigma = math.sqrt(2 * energy / (columns.shape[0] * (FRAMES - lag)))
        assert abs(estimate - gamma[lag]) <= 5 * sigma, f"lag {lag}: {estimate} vs {gamma[lag]} (sigma {sigma:.2g})"


def test_the_constructed_network_at_length_is_gradient_descent():
    bands, blocks, diffusion_time = 16, 4, 0.5
    spatial = torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64))
    gp = GaussianProcess(Matern(nu=1.0, ell=4.0), FRAMES, spatial)
    generator = torch.Generator().manual_seed(2)
    x = gp.noised(gp.sample(1, generator), diffusion_time, generator)
    model = construct_unrolled(gp, bands=bands, blocks=blocks, taper="triangular")
    with torch.no_grad():
        network = -model(x, diffusion_time)
    reference = gd.unrolled_solution(gp, x, diffusion_time, blocks, bands, "triangular")
    fixed = gd.fixed_point(gp, x, diffusion_time, bands, "triangular")
    scale = float(gp.precision_apply(x, diffusion_time).norm())
    rho = float(gd.contraction(gp, diffusion_time, bands, "triangular"))
    # the network is the GD iterate up to rounding (which grows about linearly in H: the frame angle omega i), and
    # the GD iterate is within rho^L of the truncated fixed point
    assert float((network - reference).norm()) / scale <= 1e-9
    assert float((reference - fixed).norm()) <= rho**blocks * float(fixed.norm()) * (1 + 1e-9)
