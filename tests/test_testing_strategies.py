"""unroll.testing strategies: drawn objects respect the requested ranges and assumption filters."""

from __future__ import annotations

import pytest
import torch
from hypothesis import find, given, settings

from unroll.data.kernels import Kernel
from unroll.testing import REQUIRED_ASSUMPTIONS, configurations, kernels, spatial_covariances


@settings(max_examples=40, deadline=None)
@given(kernels(families=["gamma-exponential", "polynomial"], nu=(0.5, 3.0), ell=(1.0, 4.0)))
def test_kernels_respect_families_and_ranges(kernel):
    assert isinstance(kernel, Kernel) and kernel.name in ("gamma-exponential", "polynomial")
    assert 1.0 <= kernel.ell <= 4.0
    upper = 2.0 if kernel.name == "gamma-exponential" else 3.0
    assert 0.5 <= kernel.nu <= upper


@settings(max_examples=40, deadline=None)
@given(spatial_covariances(dim=(1, 5), max_condition=50.0))
def test_spatial_covariances_spd_with_bounded_condition(sigma):
    assert sigma.dtype == torch.float64 and torch.equal(sigma, sigma.T)
    mu = torch.linalg.eigvalsh(sigma)
    assert float(mu[0]) > 0 and float(mu[-1] / mu[0]) <= 50.0 * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(configurations(frames=(2, 10)))
def test_satisfying_configurations_meet_required_assumptions(drawn):
    assert drawn.assumptions.holds(*REQUIRED_ASSUMPTIONS)
    assert 0 <= drawn.bands <= drawn.gp.frames - 1


def test_unrestricted_configurations_reach_the_failure_region():
    drawn = find(configurations(families=["polynomial"], nu=(0.2, 0.6), frames=(8, 12), bands=(1, 2),
                                tapers=(None,), satisfying_assumptions=False),
                 lambda d: "truncated_pd" in d.failed)
    outcome = drawn.run()
    assert outcome.report is None and "positive definite" in outcome.error


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"nu": (2.0, 1.0)}, "nu"), ({"ell": (0.0, 1.0)}, "ell"), ({"families": ["gauss"]}, "families"),
])
def test_bad_strategy_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernels(**kwargs).example()


def test_bad_condition_raises():
    with pytest.raises(ValueError, match="max_condition"):
        spatial_covariances(max_condition=0.5).example()
