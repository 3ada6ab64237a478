"""GaussianProcess: exact score against two independent oracles, sampling statistics, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unroll._validate import NonFiniteError
from unroll.data import diffusion
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential, LagFunction, Logarithmic, Matern, Polynomial

KERNELS = st.one_of(
    st.builds(GammaExponential, nu=st.floats(0.1, 2.0), ell=st.floats(0.2, 10.0)),
    st.builds(Matern, nu=st.floats(0.1, 10.0), ell=st.floats(0.2, 10.0)),
    st.builds(Polynomial, nu=st.floats(0.1, 6.0), ell=st.floats(0.2, 10.0)),
    st.builds(Logarithmic, nu=st.floats(0.1, 6.0), ell=st.floats(0.2, 10.0)),
)


def random_spd(dim: int, seed: int, condition: float = 4.0) -> torch.Tensor:
    """A seeded SPD matrix with eigenvalues spread log-uniformly over ``[1, condition]``."""
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    eigenvalues = condition ** torch.rand(dim, generator=generator, dtype=torch.float64)
    return (q * eigenvalues) @ q.T


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def autograd_score(gp: GaussianProcess, x: torch.Tensor, diffusion_time: float) -> torch.Tensor:
    """Gradient of the MultivariateNormal log-density of the noised data, by autograd."""
    size = gp.frames * gp.dim
    law = torch.distributions.MultivariateNormal(
        torch.zeros(size, dtype=torch.float64), covariance_matrix=gp.noised_covariance(diffusion_time)
    )
    flat = x.reshape(-1, size).clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(law.log_prob(flat).sum(), flat)
    return gradient.reshape(x.shape)


@settings(max_examples=40)
@given(
    kernel=KERNELS,
    frames=st.integers(1, 24),
    dim=st.integers(1, 4),
    diffusion_time=st.floats(1e-3, 10.0),
    seed=st.integers(0, 2**16),
)
def test_score_matches_autograd_and_dense_solve(kernel, frames, dim, diffusion_time, seed):
    gp = GaussianProcess(kernel, frames, random_spd(dim, seed))
    generator = torch.Generator().manual_seed(seed)
    x = gp.noised(gp.sample(3, generator), diffusion_time, generator)
    score = gp.score(x, diffusion_time)
    assert relative_error(score, autograd_score(gp, x, diffusion_time)) <= 1e-10
    assert relative_error(score, gp.score_dense(x, diffusion_time)) <= 1e-10


def test_per_sample_diffusion_times_match_scalar_calls():
    gp = GaussianProcess(Matern(nu=1.5, ell=2.0), 6, random_spd(3, 1))
    x = gp.sample(4, torch.Generator().manual_seed(0))
    times = torch.tensor([1e-3, 0.1, 1.0, 7.0], dtype=torch.float64)
    batched = gp.score(x, times)
    for row, t in enumerate(times.tolist()):
        assert relative_error(batched[row], gp.score(x[row], t)) <= 1e-14
        assert relative_error(batched[row], gp.score_dense(x[row : row + 1], t)[0]) <= 1e-10


def test_log_density_matches_multivariate_normal():
    gp = GaussianProcess(Polynomial(nu=2.0, ell=1.5), 5, random_spd(2, 3))
    x = gp.sample(6, torch.Generator().manual_seed(1))
    law = torch.distributions.MultivariateNormal(torch.zeros(10, dtype=torch.float64), gp.noised_covariance(0.4))
    expected = law.log_prob(x.reshape(6, -1))
    assert float((gp.log_density(x, 0.4) - expected).abs().max()) <= 1e-10 * float(expected.abs().max())


def covariance_z_scores(samples: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """Standardised errors of the empirical second moment of zero-mean Gaussian samples.

    For ``v ~ N(0, C)``, ``v_a v_b`` has variance ``C_aa C_bb + C_ab^2``; the entrywise z-score of the
    mean of n products is ``(S_ab - C_ab) / sqrt((C_aa C_bb + C_ab^2)/n)``.
    """
    flat = samples.reshape(samples.shape[0], -1)
    n = flat.shape[0]
    empirical = flat.T @ flat / n
    diagonal = torch.diagonal(covariance)
    standard_error = torch.sqrt((diagonal[:, None] * diagonal[None, :] + covariance**2) / n)
    return (empirical - covariance) / standard_error


# With (H d)^2 <= 144 entries, a max |z| above 5 has probability < 1e-4 under the null hypothesis
# (Bonferroni), while a wrong covariance (e.g. Sigma ⊗ Gamma instead of Gamma ⊗ Sigma) gives |z| ~ 100.
Z_LIMIT = 5.0


@pytest.mark.parametrize("kernel", [GammaExponential(nu=1.0, ell=2.0), Logarithmic(nu=1.0, ell=1.0)])
def test_sample_covariance_matches_kronecker_product(kernel):
    gp = GaussianProcess(kernel, 4, random_spd(3, 7))
    samples = gp.sample(40_000, torch.Generator().manual_seed(2))
    assert samples.shape == (40_000, 4, 3) and samples.dtype == torch.float64
    z = covariance_z_scores(samples, gp.covariance())
    assert float(z.abs().max()) < Z_LIMIT


def test_sample_covariance_test_detects_wrong_kronecker_order():
    """The statistic above is able to fail: samples with the factors swapped are rejected."""
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 3, random_spd(3, 7, condition=8.0))
    swapped = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 3, random_spd(3, 7, condition=8.0))
    swapped.temporal, swapped.spatial = gp.spatial.clone(), gp.temporal.clone()
    samples = swapped.sample(40_000, torch.Generator().manual_seed(2))
    assert float(covariance_z_scores(samples, gp.covariance()).abs().max()) > 10 * Z_LIMIT


def test_sampling_is_reproducible_with_a_generator():
    gp = GaussianProcess(Matern(nu=2.5, ell=2.0), 5, torch.eye(2))
    first = gp.sample(3, torch.Generator().manual_seed(11))
    second = gp.sample(3, torch.Generator().manual_seed(11))
    assert torch.equal(first, second)


def test_reverse_sde_with_exact_score_reproduces_the_covariance():
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=1.5), 4, random_spd(2, 5))
    t0 = 1e-3
    samples = diffusion.sample_reverse_sde(
        gp.score, (20_000, 4, 2), t_start=10.0, t0=t0, steps=400, generator=torch.Generator().manual_seed(3)
    )
    # The sampler targets the law of x_{t0}, C_{t0} = alpha^2 Gamma⊗Sigma + sigma^2 I (within 1e-3 of Gamma⊗Sigma).
    z = covariance_z_scores(samples, gp.noised_covariance(t0))
    assert float(z.abs().max()) < Z_LIMIT


def test_probability_flow_with_exact_score_reproduces_the_covariance():
    gp = GaussianProcess(Polynomial(nu=2.0, ell=1.0), 4, random_spd(2, 9))
    t0 = 1e-3
    samples = diffusion.sample_probability_flow(
        gp.score, (20_000, 4, 2), t_start=10.0, t0=t0, steps=200, generator=torch.Generator().manual_seed(4)
    )
    z = covariance_z_scores(samples, gp.noised_covariance(t0))
    assert float(z.abs().max()) < Z_LIMIT


# ------------------------------------------------------------------------------------ bad input
def test_bad_spatial_covariances_are_rejected():
    kernel = Matern(nu=1.5, ell=1.0)
    with pytest.raises(ValueError, match="spatial must be a square"):
        GaussianProcess(kernel, 4, torch.ones(2, 3))
    with pytest.raises(ValueError, match="spatial must be symmetric"):
        GaussianProcess(kernel, 4, torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="spatial must be positive definite"):
        GaussianProcess(kernel, 4, torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="spatial contains"):
        GaussianProcess(kernel, 4, torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]]))


def test_bad_frames_are_rejected():
    with pytest.raises(ValueError, match="frames"):
        GaussianProcess(Matern(nu=1.5, ell=1.0), 0, torch.eye(2))


def test_indefinite_user_kernel_is_rejected():
    # gamma(1) = 0.9, gamma(2) = -0.9 is not a covariance: Gamma has a negative eigenvalue.
    kernel = LagFunction(lambda r: np.select([r == 0, r == 1, r == 2], [1.0, 0.9, -0.9], 0.0))
    gp = GaussianProcess(kernel, 3, torch.eye(1))
    with pytest.raises(ValueError, match="not positive semidefinite"):
        gp.validate()


@pytest.mark.parametrize("bad_time", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_diffusion_time_is_rejected(bad_time):
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 3, torch.eye(2))
    with pytest.raises(ValueError, match="diffusion_time"):
        gp.score(torch.zeros(3, 2), bad_time)


def test_bad_samples_are_rejected():
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 3, torch.eye(2))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, d\)"):
        gp.score(torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        gp.score(torch.tensor([[0.0, float("nan")]] * 3), 1.0)
    with pytest.raises(ValueError, match="batch shape"):
        gp.score(torch.zeros(4, 3, 2), torch.ones(3))


def test_seeded_sample_does_not_depend_on_eigenvector_signs():
    gp = GaussianProcess(Matern(nu=1.5, ell=3.0), 9, torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64))
    reference = gp.sample(4, generator=torch.Generator().manual_seed(3))
    flipped = GaussianProcess(gp.kernel, gp.frames, gp.spatial)
    lam, vectors = gp.temporal_eigen
    mu, spatial_vectors = gp.spatial_eigen
    signs = torch.where(torch.arange(gp.frames) % 2 == 0, 1.0, -1.0).to(torch.float64)
    flipped.temporal_eigen = (lam, vectors * signs)  # what another LAPACK build may return
    flipped.spatial_eigen = (mu, -spatial_vectors)
    again = flipped.sample(4, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(again, reference, rtol=0, atol=1e-12)


def test_complex_input_is_refused_not_cut_to_its_real_part():
    """A Hermitian Sigma = [[2, i], [-i, 2]] became the identity-like [[2, 0], [0, 2]] before."""
    kernel = Matern(nu=1.5, ell=1.0)
    hermitian = torch.tensor([[2.0, 1j], [-1j, 2.0]], dtype=torch.complex128)
    for spatial in (hermitian, hermitian.numpy()):
        with pytest.raises(TypeError, match="spatial must be real"):
            GaussianProcess(kernel, 4, spatial)
    gp = GaussianProcess(kernel, 4, torch.eye(2))
    with pytest.raises(TypeError, match="x must be real"):
        gp.score(torch.ones(3, 4, 2, dtype=torch.complex128), 0.5)
    with pytest.raises(TypeError, match="diffusion_time must be real"):
        gp.score(torch.ones(3, 4, 2), 0.5 + 0j)
    with pytest.raises(TypeError, match="times must be real"):
        GaussianProcess(kernel, 4, torch.eye(2), times=np.arange(4) * (1 + 1j))


@pytest.mark.parametrize("method", ["score", "noised"])
@pytest.mark.parametrize("shape", [(3, 1), (1,), (1, 3), (4,)])
def test_score_and_noised_accept_the_same_diffusion_time_shapes(method, shape):
    """Documented: a scalar or one per sample (x.shape[:-2]); noised accepted (3, 1) by broadcasting while score
    raised torch's expand error."""
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 4, torch.eye(2))
    call = getattr(gp, method)
    with pytest.raises(ValueError, match=r"does not match the batch shape \(3,\)"):
        call(torch.ones(3, 4, 2), torch.full(shape, 0.5))
    assert call(torch.ones(3, 4, 2), torch.full((3,), 0.5)).shape == (3, 4, 2)


@pytest.mark.parametrize("bad_time", ["0.5", None, True])
def test_diffusion_time_of_the_wrong_type_is_a_type_error(bad_time):
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 3, torch.eye(2))
    with pytest.raises(TypeError, match="diffusion_time"):
        gp.score(torch.zeros(3, 2), bad_time)


def test_finite_x_that_overflows_is_an_error_naming_the_method():
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 3, torch.eye(2))
    with pytest.raises(NonFiniteError, match=r"GaussianProcess\.precision_apply produced .*max \|x\| = 1e\+308"):
        gp.score(torch.full((3, 2), 1e308), 1e-3)


def test_frames_beyond_the_memory_are_refused_before_allocating():
    # a stationary GP keeps only its lag values: building it is O(H); its dense Gamma is refused on first use
    gp = GaussianProcess(Matern(nu=1.5, ell=1.0), 10**6, torch.eye(2))
    assert gp.autocovariance.shape == (10**6,)
    with pytest.raises(ValueError, match=r"frames=1000000 needs about 32 TB of memory, more than the"):
        _ = gp.temporal
    with pytest.raises(ValueError, match=r"frames=1000000 needs about 32 TB of memory, more than the"):
        GaussianProcess(Matern(nu=1.5, ell=1.0), 10**6, torch.eye(2), times=np.arange(10**6) * 1.5)
