"""The DSM loss of the exact score has a closed form: ``1 - sigma_t^2 tr(C_t^{-1}) / (H d)`` at a fixed ``t``.

With ``x_t = alpha_t x_0 + sigma_t z`` and ``s(x_t) = -C_t^{-1} vec(x_t)``:
``E||sigma_t s + z||^2 = Hd - 2 sigma_t^2 tr(C_t^{-1}) + sigma_t^2 tr(C_t^{-1})`` (``Cov(x_t, z) = sigma_t I``), so
the loss's weighting and normalisation are pinned, not only where its minimum lies. The oracle is a dense
``C_t = alpha_t^2 Gamma (x) Sigma + sigma_t^2 I`` built here, independent of ``GaussianProcess.score``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unroll.data.diffusion import dsm_loss
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential


@pytest.mark.parametrize("diffusion_time", [0.05, 0.4, 2.0])
def test_dsm_loss_of_the_exact_score_matches_its_closed_form(diffusion_time):
    frames, dim = 6, 2
    spatial = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)  # eigenvalues on both sides of 1
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), frames, spatial)
    alpha2, sigma2 = math.exp(-diffusion_time), -math.expm1(-diffusion_time)  # OU: alpha_t = exp(-t/2)
    covariance = alpha2 * np.kron(gp.temporal.numpy(), spatial.numpy()) + sigma2 * np.eye(frames * dim)
    precision = torch.from_numpy(np.linalg.inv(covariance))
    expected = 1 - sigma2 * float(np.trace(np.linalg.inv(covariance))) / (frames * dim)

    def exact_score(x, t):
        return -(x.reshape(x.shape[0], -1) @ precision.T).reshape(x.shape)

    generator = torch.Generator().manual_seed(11)
    chunk_means = []
    for _ in range(40):  # the spread of 40 chunk means gives the Monte-Carlo standard error
        x0 = gp.sample(5000, generator=generator)
        times = torch.full((x0.shape[0],), diffusion_time, dtype=torch.float64)
        chunk_means.append(float(dsm_loss(exact_score, x0, diffusion_time=times, generator=generator)))
    mean = float(np.mean(chunk_means))
    standard_error = float(np.std(chunk_means, ddof=1) / math.sqrt(len(chunk_means)))
    assert abs(mean - expected) < 5 * standard_error, (mean, expected, standard_error)
    assert 5 * standard_error < 0.02 * expected  # sharp enough to tell a constant factor or a lost weight
