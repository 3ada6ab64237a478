"""Non-stationary GPs: a stationary kernel on warped frame times (and a given temporal matrix).  The exact score
against a dense solve and autograd, sampling statistics, p = 1 reproduces the stationary GP exactly, bad input,
and the Toeplitz-only consumers refusing with a clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.construction.softmax import construct_softmax
from unroll.data.gp import GaussianProcess, power_warp
from unroll.data.kernels import DampedCosine, GammaExponential, LagFunction, Logarithmic, Matern, Polynomial

NOT_TOEPLITZ = r"Gamma is not Toeplitz \(non-stationary GP\): the banded construction needs a stationary kernel"

# every family here is positive definite on the real line (each class's positive_definite_reason)
KERNELS = st.one_of(
    st.builds(GammaExponential, nu=st.floats(0.1, 2.0), ell=st.floats(0.3, 6.0)),
    st.builds(Matern, nu=st.floats(0.3, 4.0), ell=st.floats(0.3, 6.0)),
    st.builds(Polynomial, nu=st.floats(0.2, 4.0), ell=st.floats(0.3, 6.0)),
    st.builds(Logarithmic, nu=st.floats(0.2, 4.0), ell=st.floats(0.3, 6.0)),
    st.builds(DampedCosine, ell=st.floats(0.3, 6.0), period=st.floats(1.0, 20.0)),
)


def autograd_score(gp: GaussianProcess, x: torch.Tensor, diffusion_time: float) -> torch.Tensor:
    """Gradient of the MultivariateNormal log-density of the noised data (covariance built here), by autograd."""
    size = gp.frames * gp.dim
    covariance = math.exp(-diffusion_time) * torch.kron(gp.temporal, gp.spatial) - math.expm1(
        -diffusion_time) * torch.eye(size, dtype=torch.float64)
    law = torch.distributions.MultivariateNormal(torch.zeros(size, dtype=torch.float64), covariance_matrix=covariance)
    flat = x.reshape(-1, size).clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(law.log_prob(flat).sum(), flat)
    return gradient.reshape(x.shape)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def plain_kernel_matrix(kernel, times) -> np.ndarray:
    """``k(|tau_i - tau_j|)`` entry by entry (the oracle for the vectorised construction)."""
    size = len(times)
    return np.array([[float(kernel(np.array([abs(times[i] - times[j])]))[0]) for j in range(size)]
                     for i in range(size)])


# ------------------------------------------------------------------------------------ frame times
def test_power_warp():
    np.testing.assert_array_equal(power_warp(7, 1.0), np.arange(7, dtype=np.float64))
    times = power_warp(9, 2.0)
    np.testing.assert_allclose(times, 8.0 * (np.arange(9) / 8.0) ** 2, rtol=1e-15)
    assert times[0] == 0.0 and times[-1] == pytest.approx(8.0, rel=1e-15, abs=0) and np.all(np.diff(times) > 0)
    np.testing.assert_array_equal(power_warp(1, 3.0), [0.0])
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="power"):
            power_warp(5, bad)
    with pytest.raises(ValueError, match="frames"):
        power_warp(0, 2.0)


@pytest.mark.parametrize(("times", "match"), [
    ([0.0, 1.0, 1.0, 2.0], "strictly increasing"),
    ([0.0, 2.0, 1.0, 3.0], "strictly increasing"),
    ([3.0, 2.0, 1.0, 0.0], "strictly increasing"),
    ([0.0, 1.0, 2.0], r"shape \(frames,\) = \(4,\)"),
    ([0.0, 1.0, float("nan"), 3.0], "finite"),
    ([0.0, 1.0, float("inf"), 3.0], "finite"),
])
def test_bad_times_are_rejected(times, match):
    with pytest.raises(ValueError, match=match):
        GaussianProcess(Matern(nu=1.5, ell=2.0), 4, torch.eye(2), times=times)


def test_temporal_matrix_is_the_kernel_on_the_times():
    kernel = DampedCosine(ell=3.0, period=5.0)
    times = power_warp(8, 1.7)
    gp = GaussianProcess(kernel, 8, torch.eye(1), times=times)
    np.testing.assert_allclose(gp.temporal.numpy(), plain_kernel_matrix(kernel, times), rtol=1e-14, atol=1e-300)
    assert torch.equal(gp.temporal, gp.temporal.T)
    assert not gp.stationary and not gp.unit_frame_times
    assert len(gp._temporal_factors) == 1  # not centrosymmetric: the full eigh, not the split
    assert "times=[0, " in repr(gp)


# -------------------------------------------------------------------------------- the exact score
@settings(max_examples=40, deadline=None)
@given(kernel=KERNELS, frames=st.integers(1, 16), dim=st.integers(1, 3), power=st.floats(0.4, 2.5),
       diffusion_time=st.floats(1e-3, 5.0), seed=st.integers(0, 2**16))
def test_warped_score_matches_dense_solve_and_autograd(kernel, frames, dim, power, diffusion_time, seed):
    gp = GaussianProcess(kernel, frames, random_spatial_covariance(dim, seed), times=power_warp(frames, power))
    generator = torch.Generator().manual_seed(seed)
    x = gp.noised(gp.sample(3, generator), diffusion_time, generator)
    score = gp.score(x, diffusion_time)
    assert relative_error(score, autograd_score(gp, x, diffusion_time)) <= 1e-10
    assert relative_error(score, gp.score_dense(x, diffusion_time)) <= 1e-10


@settings(max_examples=30, deadline=None)
@given(kernel=KERNELS, gaps=st.lists(st.floats(0.05, 3.0), min_size=1, max_size=12), start=st.floats(-5.0, 5.0))
def test_families_are_positive_definite_on_arbitrary_increasing_times(kernel, gaps, start):
    """The real-line claim of each positive_definite_reason: Gamma on any increasing times is PSD (to rounding)."""
    times = start + np.concatenate([[0.0], np.cumsum(gaps)])
    gp = GaussianProcess(kernel, len(times), torch.eye(1), times=times).validate()
    assert gp.lambda_min > -1e-12 * len(times)


def test_log_density_and_covariance_of_a_warped_gp():
    gp = GaussianProcess(Matern(nu=1.5, ell=2.0), 6, random_spatial_covariance(2, 3), times=power_warp(6, 2.0))
    x = gp.sample(5, torch.Generator().manual_seed(1))
    covariance = gp.noised_covariance(0.4)
    law = torch.distributions.MultivariateNormal(torch.zeros(12, dtype=torch.float64), covariance)
    expected = law.log_prob(x.reshape(5, -1))
    assert float((gp.log_density(x, 0.4) - expected).abs().max()) <= 1e-10 * float(expected.abs().max())
    assert torch.allclose(gp.covariance(), torch.kron(gp.temporal, gp.spatial), rtol=0, atol=0)


def covariance_z_scores(samples: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """``(S_ab - C_ab) / sqrt((C_aa C_bb + C_ab^2)/n)``: entrywise z-scores of the empirical second moment of
    ``n`` zero-mean Gaussian samples (``v_a v_b`` has variance ``C_aa C_bb + C_ab^2``)."""
    flat = samples.reshape(samples.shape[0], -1)
    n = flat.shape[0]
    empirical = flat.T @ flat / n
    diagonal = torch.diagonal(covariance)
    return (empirical - covariance) / torch.sqrt((diagonal[:, None] * diagonal[None, :] + covariance**2) / n)


# (H d)^2 = 100 entries: under the null, P(max |z| > 5) <= 100 * 5.7e-7 < 1e-4 (Bonferroni); a covariance off
# by 0.05 in an entry of size ~1 gives |z| ~ 0.05 sqrt(40000 / 2) ~ 7.
Z_LIMIT = 5.0


def test_samples_have_the_warped_covariance():
    kernel, frames = Matern(nu=1.5, ell=2.0), 5
    gp = GaussianProcess(kernel, frames, random_spatial_covariance(2, 7), times=power_warp(frames, 2.0))
    samples = gp.sample(40_000, torch.Generator().manual_seed(2))
    assert float(covariance_z_scores(samples, gp.covariance()).abs().max()) < Z_LIMIT
    # the statistic can fail: the same samples are far from the stationary (unwarped) covariance
    stationary = GaussianProcess(kernel, frames, gp.spatial)
    assert float(covariance_z_scores(samples, stationary.covariance()).abs().max()) > 10 * Z_LIMIT


# -------------------------------------------------------------------------- p = 1 is the stationary GP
@pytest.mark.parametrize("kernel", [Matern(nu=1.5, ell=2.0), DampedCosine(ell=4.0, period=6.0),
                                    Logarithmic(nu=1.0, ell=1.0)])
def test_unit_power_reproduces_the_stationary_gp_exactly(kernel):
    spatial = random_spatial_covariance(2, 4)
    stationary = GaussianProcess(kernel, 9, spatial)
    warped = GaussianProcess(kernel, 9, spatial, times=power_warp(9, 1.0))
    assert torch.equal(warped.temporal, stationary.temporal)
    assert warped.stationary and warped.unit_frame_times and repr(warped) == repr(stationary)
    x = stationary.sample(3, torch.Generator().manual_seed(5))
    assert torch.equal(warped.sample(3, torch.Generator().manual_seed(5)), x)
    assert torch.equal(warped.score(x, 0.3), stationary.score(x, 0.3))
    assert torch.equal(gd.factors(warped).gamma, gd.factors(stationary).gamma)
    config = theory.Configuration.from_gp(warped, bands=3, blocks=4, diffusion_time=0.3)
    assert config.family == kernel.name


# ------------------------------------------------------------------ Toeplitz-only consumers refuse
def test_toeplitz_consumers_raise_the_clear_error():
    gp = GaussianProcess(Matern(nu=1.5, ell=2.0), 8, random_spatial_covariance(2, 0), times=power_warp(8, 2.0))
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        gd.factors(gp)
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        gd.gd_iterates(gp, torch.zeros(1, 8, 2), 0.5, 3)
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        construct_unrolled(gp, blocks=3, bands=2)
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        construct_softmax(gp, blocks=3)
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        theory.Configuration.from_gp(gp, bands=2, blocks=3, diffusion_time=0.5)
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        gd.factors((gp.temporal, gp.spatial))  # the raw matrix too


def test_verify_refuses_a_non_stationary_gp():
    from unroll.verification import verify

    stationary = GaussianProcess(Matern(nu=1.5, ell=2.0), 8, random_spatial_covariance(2, 0))
    model = construct_unrolled(stationary, blocks=3, bands=2, taper="triangular")
    warped = GaussianProcess(stationary.kernel, 8, stationary.spatial, times=power_warp(8, 2.0))
    with pytest.raises(ValueError, match=NOT_TOEPLITZ):
        verify(warped, model, 0.5)


def test_scaled_frame_times_are_stationary_but_not_the_unit_lag_kernel():
    """tau_i = 2 i: Gamma is Toeplitz (the construction works) with lag values k(2 m), so theory takes the lag
    values from Gamma and drops the family (whose tail bounds are for k(m))."""
    kernel = GammaExponential(nu=1.0, ell=3.0)
    gp = GaussianProcess(kernel, 10, torch.eye(2), times=2.0 * np.arange(10))
    assert gp.stationary and not gp.unit_frame_times
    np.testing.assert_allclose(gd.factors(gp).gamma.numpy(), kernel(2.0 * np.arange(10)), rtol=1e-15)
    config = theory.Configuration.from_gp(gp, bands=3, blocks=4, diffusion_time=0.5)
    assert config.family is None and math.isnan(config.family_tail_bound)
    np.testing.assert_allclose(config.gamma, kernel(2.0 * np.arange(10)), rtol=1e-15)


# ------------------------------------------------------------------------------------- lag profile
def test_lag_profile():
    kernel = Polynomial(nu=2.0, ell=1.5)
    stationary = GaussianProcess(kernel, 12, torch.eye(1))
    np.testing.assert_allclose(stationary.lag_profile().numpy(), kernel(np.arange(12)), rtol=1e-14)
    warped = GaussianProcess(kernel, 12, torch.eye(1), times=power_warp(12, 1.8))
    gamma = warped.temporal.numpy()
    expected = [np.mean([gamma[i, i + m] for i in range(12 - m)]) for m in range(12)]  # plain loop
    np.testing.assert_allclose(warped.lag_profile().numpy(), expected, rtol=1e-14)
    assert not np.allclose(expected, kernel(np.arange(12)), rtol=1e-3)  # the warp changes the profile


# ------------------------------------------------------------------------- a given temporal matrix
def random_correlation(frames: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    factor = torch.randn(frames, frames + 2, generator=generator, dtype=torch.float64)
    matrix = factor @ factor.T
    scale = torch.diagonal(matrix).rsqrt()
    return scale[:, None] * matrix * scale[None, :]


@pytest.mark.parametrize("frames", [1, 2, 5, 8])
def test_from_temporal_score_matches_dense_solve_and_autograd(frames):
    gp = GaussianProcess.from_temporal(random_correlation(frames, frames), random_spatial_covariance(3, 1))
    assert gp.kernel is None and gp.times is None and "matrix" in repr(gp)
    x = gp.noised(gp.sample(4, torch.Generator().manual_seed(0)), 0.2, torch.Generator().manual_seed(1))
    score = gp.score(x, 0.2)
    assert relative_error(score, autograd_score(gp, x, 0.2)) <= 1e-10
    assert relative_error(score, gp.score_dense(x, 0.2)) <= 1e-10
    if frames > 2:
        with pytest.raises(ValueError, match=NOT_TOEPLITZ):
            gd.factors(gp)


@pytest.mark.parametrize("frames", [5, 6])
def test_centrosymmetric_non_toeplitz_matrix_uses_the_split_and_is_exact(frames):
    base = random_correlation(frames, 3)
    centro = 0.5 * (base + base.flip(0, 1))  # P Gamma P = Gamma, symmetric, not Toeplitz
    gp = GaussianProcess.from_temporal(centro, torch.eye(2))
    assert len(gp._temporal_factors) == 2 and not gp.stationary
    x = gp.sample(3, torch.Generator().manual_seed(0))
    assert relative_error(gp.score(x, 0.1), gp.score_dense(x, 0.1)) <= 1e-10
    lam, vectors = gp.temporal_eigen
    assert torch.allclose(vectors @ torch.diag(lam) @ vectors.T, centro, rtol=0, atol=1e-13)


def test_from_temporal_of_a_toeplitz_matrix_is_stationary():
    kernel = Matern(nu=2.5, ell=2.0)
    gp = GaussianProcess.from_temporal(kernel.toeplitz(9), torch.eye(2))
    assert gp.stationary
    config = theory.Configuration.from_gp(gp, bands=3, blocks=4, diffusion_time=0.5)
    assert config.family is None
    np.testing.assert_array_equal(config.gamma, kernel(np.arange(9)))
    construct_unrolled(gp, blocks=2, bands=3, taper="triangular")


def test_bad_temporal_matrices_are_rejected():
    with pytest.raises(ValueError, match="square"):
        GaussianProcess.from_temporal(torch.ones(2, 3), torch.eye(1))
    with pytest.raises(ValueError, match="symmetric"):
        GaussianProcess.from_temporal(torch.tensor([[1.0, 0.5], [0.0, 1.0]]), torch.eye(1))
    with pytest.raises(ValueError, match="temporal contains"):
        GaussianProcess.from_temporal(torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]), torch.eye(1))
    indefinite = GaussianProcess.from_temporal(torch.tensor([[1.0, 2.0], [2.0, 1.0]]), torch.eye(1))
    with pytest.raises(ValueError, match="not positive semidefinite"):
        indefinite.validate()


def test_kernel_indefinite_on_the_warped_times_is_rejected():
    """A lag function that is not positive definite on the line: on times (0, 1, 2.5) its Gamma has
    v^T Gamma v = 3 - 4 (0.95) - 2 (0.95) < 0 for v = (1, -1, 1)."""
    kernel = LagFunction(lambda r: np.where(r == 0, 1.0, np.where(r <= 1.5, 0.95, -0.95)))
    gp = GaussianProcess(kernel, 3, torch.eye(1), times=[0.0, 1.0, 2.5])
    with pytest.raises(ValueError, match="not positive semidefinite"):
        gp.validate()
