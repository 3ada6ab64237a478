"""Semantic tests of ``unroll.data.gp`` that a sampled mutation run (``make mutate MUTATE_FILES=unroll/data/gp.py
MUTATE_ARGS="--sample 50 --seed 0"``) found missing: the symmetry tolerance of ``from_temporal``, and the checks of
``log_density`` and ``score_dense`` naming what they refuse.
"""

from __future__ import annotations

import pytest
import torch

from unroll import GaussianProcess
from unroll._validate import NonFiniteError
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
