"""Semantic tests of ``unroll.data.gp`` that a sampled mutation run (``make mutate MUTATE_FILES=unroll/data/gp.py
MUTATE_ARGS="--sample 50 --seed 0"``, then the whole file) found missing: the symmetry tolerance of ``from_temporal``,
the checks of ``log_density``, ``score_dense`` and ``noised_covariance`` naming what they refuse, the memory estimates
the constructors ask for, and the repr of warped frame times.
"""

from __future__ import annotations

import pytest
import torch

import unroll.data.gp as gp_module
from unroll import GaussianProcess
from unroll._validate import InputTypeError, NonFiniteError
from unroll.data.gp import power_warp
from unroll.data.kernels import Matern

FRAMES, DIM = 6, 2


@pytest.fixture(scope="module")
def gp() -> GaussianProcess:
    return GaussianProcess(Matern(nu=1.5, ell=2.0), FRAMES, torch.eye(DIM, dtype=torch.float64))


def _with_asymmetry(scale: float, asymmetry: float) -> torch.Tensor:
    matrix = scale * torch.eye(3, dtype=torch.float64)
    matrix[0, 1] += asymmetry
    return matrix


@pytest.mark.parametrize("scale, asymmetry, accepted", [
    (1.0, 0.5e-12, True), (1.0, 1.5e-12, False),        # largest entry 1: the tolerance is 1e-12 absolute
    (1e-3, 0.5e-12, True), (1e-3, 1.5e-12, False),      # below 1 the floor max(., 1) keeps it 1e-12 absolute
    (100.0, 50e-12, True), (100.0, 150e-12, False),     # above 1 it is 1e-12 of the largest entry
])
def test_from_temporal_symmetry_tolerance_is_1e12_of_the_largest_entry_floored_at_1(scale, asymmetry, accepted):
    """``from_temporal`` refuses ``Gamma`` whose ``max |Gamma - Gamma^T|`` exceeds ``1e-12 max(max |Gamma|, 1)``.
    Each pair sits a factor 1.5 on either side of the threshold, so a different constant or floor fails one."""
    matrix = _with_asymmetry(scale, asymmetry)
    if accepted:
        gp = GaussianProcess.from_temporal(matrix, torch.eye(DIM, dtype=torch.float64))
        assert torch.equal(gp.temporal, gp.temporal.T)  # symmetrised
    else:
        with pytest.raises(ValueError, match="temporal must be symmetric"):
            GaussianProcess.from_temporal(matrix, torch.eye(DIM, dtype=torch.float64))


def test_from_temporal_names_a_bad_spatial_covariance():
    with pytest.raises(ValueError, match=r"^spatial must be positive definite"):
        GaussianProcess.from_temporal(torch.eye(3, dtype=torch.float64), -torch.eye(DIM, dtype=torch.float64))


@pytest.mark.parametrize("method", ["log_density", "score_dense"])
def test_per_sample_diffusion_times_must_match_the_batch(gp, method):
    """A ``(2,)`` time for a batch of 3 is refused, not broadcast or truncated."""
    x = torch.ones(3, FRAMES, DIM, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"diffusion_time of shape \(2,\) does not match the batch shape \(3,\)"):
        getattr(gp, method)(x, torch.full((2,), 0.3, dtype=torch.float64))
    per_sample = getattr(gp, method)(x, torch.tensor([0.1, 0.3, 0.9], dtype=torch.float64))
    one_by_one = torch.stack([getattr(gp, method)(x[i], t) for i, t in enumerate((0.1, 0.3, 0.9))])
    torch.testing.assert_close(per_sample, one_by_one, rtol=1e-12, atol=0.0)


def test_log_density_names_its_input_and_its_overflow(gp):
    with pytest.raises(ValueError, match=r"^x contains 12 NaN or infinite value"):
        gp.log_density(torch.full((FRAMES, DIM), float("nan"), dtype=torch.float64), 0.3)
    with pytest.raises(NonFiniteError, match=r"^GaussianProcess\.log_density produced 1 NaN or infinite"):
        gp.log_density(torch.full((FRAMES, DIM), 1e200, dtype=torch.float64), 0.3)


def test_asymmetry_exactly_at_the_tolerance_is_accepted():
    """The docstring's bound is inclusive (``max |Gamma - Gamma^T| <= 1e-12 max(max |Gamma|, 1)``): an asymmetry of
    exactly 1e-12 (``1e-12 - 0`` has no rounding) with largest entry 1 passes."""
    matrix = torch.eye(3, dtype=torch.float64)
    matrix[0, 1] = 1e-12
    assert float((matrix - matrix.T).abs().max()) == 1e-12
    gp = GaussianProcess.from_temporal(matrix, torch.eye(DIM, dtype=torch.float64))
    assert gp.frames == 3 and gp.dim == DIM


def test_from_temporal_names_a_spatial_covariance_that_is_not_an_array():
    with pytest.raises(InputTypeError, match=r"^spatial must be a real array or tensor, got str"):
        GaussianProcess.from_temporal(torch.eye(3, dtype=torch.float64), "not a matrix")


def test_noised_covariance_takes_one_scalar_time(gp):
    """A ``(1,)`` tensor is refused like any batch of times (``C_t`` is one matrix), not silently read as a scalar."""
    with pytest.raises(ValueError, match=r"diffusion_time of shape \(1,\) does not match the batch shape \(\)"):
        gp.noised_covariance(torch.tensor([0.3], dtype=torch.float64))


def test_score_dense_names_its_input_and_its_overflow(gp):
    with pytest.raises(ValueError, match=r"^x contains 12 NaN or infinite value"):
        gp.score_dense(torch.full((FRAMES, DIM), float("nan"), dtype=torch.float64), 0.3)
    # alternating signs load Gamma's smallest eigenvalues: C_t^{-1} x exceeds float64 at t = 1e-3
    x = torch.full((FRAMES, DIM), 1e308, dtype=torch.float64)
    x[1::2] *= -1
    with pytest.raises(NonFiniteError, match=r"^GaussianProcess\.score_dense produced 12 NaN or infinite value.*"
                       r"max \|x\| = 1e\+308"):
        gp.score_dense(x, 1e-3)


def test_memory_estimates_are_four_float64_matrices_of_gamma(monkeypatch):
    """Each constructor path that builds ``Gamma`` asks ``check_memory`` for ``GAMMA_BYTES_PER_ENTRY H^2`` bytes,
    the constant being four ``(H, H)`` float64 matrices (``Gamma``, its eigenvectors, its square root and the
    eigensolver's work space), and names the frames."""
    asked: list[tuple[str, float]] = []
    monkeypatch.setattr(gp_module, "check_memory", lambda what, nbytes: asked.append((what, nbytes)))
    assert gp_module.GAMMA_BYTES_PER_ENTRY == 4 * 8
    spatial = torch.eye(DIM, dtype=torch.float64)
    GaussianProcess.from_temporal(torch.eye(5, dtype=torch.float64), spatial)
    GaussianProcess(Matern(nu=1.5, ell=2.0), 7, spatial, times=[0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0])
    _ = GaussianProcess(Matern(nu=1.5, ell=2.0), 9, spatial).temporal  # the cached property builds Gamma
    assert [nbytes for _, nbytes in asked] == [32.0 * 25, 32.0 * 49, 32.0 * 81]
    assert [what.endswith(f"frames={frames}") for (what, _), frames in zip(asked, (5, 7, 9), strict=True)] == [True] * 3


def test_repr_shows_warped_times_whole_up_to_three_frames_and_elided_beyond():
    kernel = Matern(nu=1.5, ell=2.0)
    spatial = torch.eye(DIM, dtype=torch.float64)
    assert repr(GaussianProcess(kernel, 3, spatial, times=[0.0, 0.5, 2.0])) == (
        "GaussianProcess(Matern(nu=1.5, ell=2), frames=3, dim=2, times=[0, 0.5, 2])")
    assert repr(GaussianProcess(kernel, 4, spatial, times=[0.0, 0.5, 2.0, 3.25])) == (
        "GaussianProcess(Matern(nu=1.5, ell=2), frames=4, dim=2, times=[0, 0.5, ..., 3.25])")
    assert repr(GaussianProcess(kernel, 4, spatial)) == "GaussianProcess(Matern(nu=1.5, ell=2), frames=4, dim=2)"


def test_times_that_stop_increasing_are_refused_at_the_first_offending_step():
    """Steps 0.5, 1.5, 0, -1: the first step that is not positive is the third (times[2] >= times[3]), not the
    first negative one (times[3] >= times[4]) or the first below 1 (times[0], times[1]); the times print as plain
    floats (numpy 2 would print ``np.float64(2.0)``)."""
    with pytest.raises(ValueError, match=r"^times must be strictly increasing, got times\[2\] = 2\.0 >= "
                       r"times\[3\] = 2\.0$"):
        GaussianProcess(Matern(nu=1.5, ell=2.0), 5, torch.eye(DIM, dtype=torch.float64),
                        times=[0.0, 0.5, 2.0, 2.0, 1.0])


def test_power_warp_names_what_it_refuses():
    with pytest.raises(ValueError, match=r"^frames must satisfy 1 <= frames, got frames=0"):
        power_warp(0, 2.0)
    with pytest.raises(ValueError, match=r"^power must satisfy 0 < power"):
        power_warp(5, -1.0)


@pytest.mark.parametrize("method", ["eigen", "circulant"])
def test_sample_names_its_overflow_on_both_paths(method):
    """``Gamma`` and ``Sigma`` near the float64 maximum: each path's draws overflow, and the error says where."""
    huge = GaussianProcess.from_temporal(1.7e308 * torch.eye(3, dtype=torch.float64),
                                         1.7e308 * torch.eye(DIM, dtype=torch.float64))
    with pytest.raises(NonFiniteError, match=r"^GaussianProcess\.sample produced .*Sigma too large for float64"):
        huge.sample(4, torch.Generator().manual_seed(0), method=method)


def test_circulant_sampling_needs_a_stationary_gp():
    warped = GaussianProcess(Matern(nu=1.5, ell=2.0), 4, torch.eye(DIM, dtype=torch.float64),
                             times=[0.0, 0.5, 2.0, 3.0])
    assert warped.sample_path() == "eigen"
    with pytest.raises(ValueError, match=r"method='circulant' needs a stationary GP"):
        warped.sample_path("circulant")
