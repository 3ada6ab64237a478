"""Distribution estimation: the exact Gaussian law of the sampler for a linear score, against Monte Carlo."""

from __future__ import annotations

import pytest
import torch

from unroll import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments import distribution as dist


def _gp(frames: int = 5) -> GaussianProcess:
    spatial = torch.tensor([[1.0, 0.3], [0.3, 0.5]], dtype=torch.float64)
    return GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), frames, spatial)


def test_gaussian_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    p, q = a @ a.T + 0.5 * torch.eye(4), b @ b.T + 0.5 * torch.eye(4)
    oracle = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(torch.zeros(4), p),
        torch.distributions.MultivariateNormal(torch.zeros(4), q))
    assert dist.gaussian_kl(p, q) == pytest.approx(float(oracle), rel=1e-10, abs=0)
    assert dist.gaussian_kl(p, p) == pytest.approx(0.0, abs=1e-12)


def test_linear_score_matrix_of_exact_score_is_minus_precision_and_nonlinear_is_rejected():
    gp = _gp()
    matrix = dist.linear_score_matrix(gp.score, 5, 2, 0.3)
    assert torch.allclose(matrix, -torch.linalg.inv(gp.noised_covariance(0.3)), atol=1e-10)
    with pytest.raises(ValueError, match="not linear"):
        dist.linear_score_matrix(lambda x, t: torch.tanh(x), 5, 2, 0.3)


def test_exact_law_of_sampler_agrees_with_monte_carlo_for_constructed_score():
    gp = _gp()
    model = construct_unrolled(gp, blocks=4, bands=4)

    def score(x, t):
        with torch.no_grad():
            return model(x, t)

    kwargs = dict(t_start=4.0, t0=0.05, steps=12)
    law = dist.sampler_gaussian_law(score, 5, 2, **kwargs)
    samples = dist.sample_with_score(score, 6000, 5, 2, generator=torch.Generator().manual_seed(1), **kwargs)
    target = gp.covariance()
    exact_kl = dist.gaussian_kl(law, target)
    estimate, error = dist.monte_carlo_kl(samples, law, target)
    assert exact_kl > 0.01  # 4 blocks, 12 steps: far from the data law, so the check is not vacuous
    assert abs(estimate - exact_kl) < 4 * error, (estimate, exact_kl, error)
    # second moments: the sampler's empirical covariance matches P within a few noise floors
    floor = dist.covariance_noise_floor(law, 6000)
    assert dist.covariance_error(samples, law) < 3 * floor
    # and a wrong law (the data law itself) is clearly rejected by the same statistics
    assert dist.covariance_error(samples, target) > 3 * dist.covariance_noise_floor(target, 6000)


def test_exact_score_sampler_gets_close_to_the_early_stopped_law():
    gp = _gp()
    law = dist.sampler_gaussian_law(gp.score, 5, 2, t_start=8.0, t0=0.05, steps=200)
    coarse = dist.sampler_gaussian_law(gp.score, 5, 2, t_start=8.0, t0=0.05, steps=20)
    target = gp.noised_covariance(0.05)
    # Euler–Maruyama with the exact score: the discretisation error shrinks with the number of steps
    assert dist.gaussian_kl(law, target) < dist.gaussian_kl(coarse, target)
    assert dist.gaussian_kl(law, target) < 0.05


def test_covariance_noise_floor_matches_simulation():
    gp = _gp(frames=3)
    target = gp.covariance()
    gen = torch.Generator().manual_seed(2)
    errors = torch.tensor([dist.covariance_error(gp.sample(200, generator=gen), target) for _ in range(300)])
    rms = float(errors.pow(2).mean().sqrt())
    assert rms == pytest.approx(dist.covariance_noise_floor(target, 200), rel=0.1, abs=0)


def test_linear_score_sampler_matches_network_sampler_up_to_rounding():
    gp = _gp(frames=4)
    model = construct_unrolled(gp, blocks=3, bands=3)

    def score(x, t):
        with torch.no_grad():
            return model(x, t)

    kwargs = dict(t_start=3.0, t0=0.1, steps=6)
    direct = dist.sample_with_score(score, 50, 4, 2, generator=torch.Generator().manual_seed(4), **kwargs)
    cached = dist.sample_with_score(dist.LinearScore(score, 4, 2), 50, 4, 2,
                                    generator=torch.Generator().manual_seed(4), **kwargs)
    assert torch.allclose(direct, cached, rtol=1e-9, atol=1e-9)
