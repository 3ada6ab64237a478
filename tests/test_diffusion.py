"""OU schedule, forward noising and the denoising score-matching loss."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from unroll.data import diffusion
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential


def test_schedule_matches_definition_for_floats_and_tensors():
    for t in (1e-8, 1e-3, 0.5, 10.0):
        assert diffusion.alpha(t) == pytest.approx(math.exp(-t / 2), rel=1e-15, abs=0)
        # 1 - exp(-t) in 50 digits: the float64 expression loses most of its digits to cancellation at t = 1e-8
        with mpmath.workdps(50):
            exact = float(1 - mpmath.exp(-mpmath.mpf(t)))
        assert diffusion.sigma2(t) == pytest.approx(exact, rel=1e-15, abs=0)
        assert diffusion.alpha(t) ** 2 + diffusion.sigma2(t) == pytest.approx(1.0, rel=1e-15, abs=0)
    times = torch.tensor([1e-3, 1.0])
    assert torch.allclose(diffusion.sigma(times) ** 2, 1 - torch.exp(-times))


def test_noise_has_the_forward_marginal_variance():
    x0 = torch.full((200_000, 1, 1), 2.0, dtype=torch.float64)
    x_t, z = diffusion.noise(x0, 0.7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x_t, diffusion.alpha(0.7) * x0 + diffusion.sigma(0.7) * z)
    assert float(x_t.mean()) == pytest.approx(2.0 * math.exp(-0.35), abs=5 * math.sqrt(1 / 200_000))


def test_dsm_loss_is_smallest_at_the_true_score():
    """The DSM minimiser is the true score: perturbing it raises the (common-random-number) loss."""
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 6, torch.eye(2))
    x0 = gp.sample(4000, torch.Generator().manual_seed(1))

    def loss(scale: float) -> float:
        return float(
            diffusion.dsm_loss(lambda x, t: scale * gp.score(x, t), x0, generator=torch.Generator().manual_seed(2))
        )

    true_loss = loss(1.0)
    assert true_loss < loss(0.9) and true_loss < loss(1.1)


def test_dsm_loss_checks_shapes():
    with pytest.raises(ValueError, match="x0 must have shape"):
        diffusion.dsm_loss(lambda x, t: x, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="model output"):
        diffusion.dsm_loss(lambda x, t: x[..., :1], torch.zeros(3, 4, 2))


def test_time_grid_and_sampler_arguments_are_validated():
    grid = diffusion.time_grid(10.0, 1e-3, 4)
    assert grid[0] == pytest.approx(10.0) and grid[-1] == pytest.approx(1e-3) and torch.all(grid[1:] < grid[:-1])
    with pytest.raises(ValueError, match="t0"):
        diffusion.time_grid(1.0, 2.0, 4)
    with pytest.raises(ValueError, match="t0"):
        diffusion.sample_reverse_sde(lambda x, t: -x, (2, 3, 1), t0=0.0)
    with pytest.raises(ValueError, match="steps"):
        diffusion.sample_probability_flow(lambda x, t: -x, (2, 3, 1), steps=0)


@pytest.mark.parametrize("helper", [diffusion.alpha, diffusion.sigma, diffusion.sigma2])
def test_schedule_refuses_negative_and_non_finite_times(helper):
    """t < 0 gave alpha > 1 and a negative sigma^2; t = 0 is the clean data (alpha = 1, sigma = 0)."""
    assert helper(0.0) == (1.0 if helper is diffusion.alpha else 0.0)
    for bad in (-1e-300, -1.0, float("nan"), float("inf"), torch.tensor([0.5, -0.1])):
        with pytest.raises(ValueError, match="0 <= diffusion_time < inf"):
            helper(bad)
    for bad in ("1", None, 1j, torch.tensor([1.0], dtype=torch.complex64)):
        with pytest.raises(TypeError, match="diffusion_time"):
            helper(bad)


def test_sample_diffusion_times_needs_a_floating_dtype_that_holds_the_range():
    """dtype=int64 returned zeros; float32 turned t_min = 1e-300 into 0 and t_max = 1e300 into inf."""
    for dtype in (torch.int64, torch.bool, "float64"):
        with pytest.raises(TypeError, match="dtype"):
            diffusion.sample_diffusion_times(4, dtype=dtype)
    with pytest.raises(ValueError, match="t_min and t_max must lie in"):
        diffusion.sample_diffusion_times(4, t_min=1e-300, dtype=torch.float32)
    with pytest.raises(ValueError, match="t_min and t_max must lie in"):
        diffusion.sample_diffusion_times(4, t_max=1e300, dtype=torch.float32)
    times = diffusion.sample_diffusion_times(4, t_min=1e-300, t_max=1e300, generator=torch.Generator().manual_seed(0))
    assert bool(((times >= 1e-300) & (times <= 1e300)).all())


def test_samplers_check_the_score_and_the_result():
    with pytest.raises(ValueError, match="score must return a tensor of the shape of x"):
        diffusion.sample_reverse_sde(lambda x, t: x[..., :1], (2, 3, 2), steps=2)
    with pytest.raises(ValueError, match="sample_probability_flow produced"):
        diffusion.sample_probability_flow(lambda x, t: x * float("nan"), (2, 3, 1), steps=2)
    with pytest.raises(TypeError, match="score must be callable"):
        diffusion.sample_reverse_sde(None, (2, 3, 1), steps=2)
