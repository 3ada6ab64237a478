"""Every assumption's verdict read both ways: one configuration where it holds and one where it fails, each
against a truth computed here from dense matrices and plain loops (not from ``theory.Configuration``).

``lags_separated`` is read both ways in ``tests/test_assumptions.py``; ``multiplier_in_range`` (paper mode, it needs
the peak of a verify run) is not read both ways yet.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

import theory
from theory.assumptions import check_assumptions
from unroll.data.kernels import GammaExponential, Logarithmic, Polynomial

SIGMA = np.diag([1.0, 2.0])


def _config(kernel, frames=16, bands=3, t=0.3, **kwargs):
    return theory.Configuration.from_kernel(kernel, frames, SIGMA, bands=bands, blocks=10, diffusion_time=t, **kwargs)


def _plain_cut(gamma, bands):
    cut = np.array(gamma, dtype=np.float64)
    cut[bands + 1:] = 0.0
    return scipy.linalg.toeplitz(cut)


def _gamma_pd_truth(gamma, **_):
    return np.linalg.eigvalsh(scipy.linalg.toeplitz(gamma))[0] > 0


def _gd_converges_truth(gamma, bands, t, **_):
    covariance = math.exp(-t) * np.kron(_plain_cut(gamma, bands), SIGMA) + -math.expm1(-t) * np.eye(len(gamma) * 2)
    return np.linalg.eigvalsh(covariance)[0] > 0


def _diagonal_dominance_truth(gamma, bands, **_):
    return 2 * sum(abs(gamma[m]) for m in range(1, bands + 1)) < 1


def _indefinite_gamma(frames=8):
    gamma = np.zeros(frames)
    gamma[:3] = [1.0, 0.9, -0.6]
    assert np.linalg.eigvalsh(scipy.linalg.toeplitz(gamma))[0] < 0  # the oracle: indeed not a covariance
    return gamma


def _from_gamma(gamma, bands=2, t=0.3):
    return theory.Configuration(gamma=gamma, spatial_eigenvalues=np.linalg.eigvalsh(SIGMA), bands=bands, blocks=10,
                                diffusion_time=t)


CASES = {
    # name: (configuration where it holds, where it fails, truth function or None for a statement's own reading)
    "gamma_pd": (lambda: _from_gamma(GammaExponential(nu=1.0, ell=2.0)(np.arange(8.0))),
                 lambda: _from_gamma(_indefinite_gamma()), _gamma_pd_truth),
    "gd_converges": (lambda: _config(GammaExponential(nu=1.0, ell=2.0)),
                     lambda: _config(Polynomial(nu=0.5, ell=4.0), frames=32, bands=3, t=0.01), _gd_converges_truth),
    "diagonal_dominance": (lambda: _config(GammaExponential(nu=1.0, ell=0.5)),
                           lambda: _config(GammaExponential(nu=1.0, ell=2.0)), _diagonal_dominance_truth),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_agrees_with_a_dense_truth_both_ways(name):
    holds, fails, truth = CASES[name]
    for build, expected in ((holds, True), (fails, False)):
        config = build()
        verdict = check_assumptions(config)[name]
        assert truth(gamma=config.gamma, bands=config.bands, t=config.diffusion_time) == expected
        assert verdict.holds == expected and (verdict.margin > 0) == expected, (name, expected, verdict)


def test_spatial_bounded_both_ways():
    def config(eigenvalues):
        return theory.Configuration(gamma=GammaExponential(nu=1.0, ell=2.0)(np.arange(8.0)),
                                    spatial_eigenvalues=np.asarray(eigenvalues), bands=2, blocks=10,
                                    diffusion_time=0.3, max_condition=100.0)

    assert check_assumptions(config([1.0, 99.0]))["spatial_bounded"].holds  # kappa 99 <= 100
    failed = check_assumptions(config([0.01, 2.0]))["spatial_bounded"]  # kappa 200 > 100
    assert not failed.holds and math.isclose(failed.margin, 100.0 - 200.0)


def test_time_after_t0_and_tail_summable_hold_where_they_should():
    table = check_assumptions(_config(GammaExponential(nu=1.0, ell=2.0), t=0.3, t0=1e-3))
    assert table["time_after_t0"].holds and math.isclose(table["time_after_t0"].margin, 0.3 - 1e-3)
    assert table["tail_summable"].holds
    assert check_assumptions(_config(Polynomial(nu=2.0, ell=1.0)))["tail_summable"].holds  # nu > 1
    assert not check_assumptions(_config(Polynomial(nu=1.0, ell=1.0)))["tail_summable"].holds  # nu = 1: harmonic
    assert not check_assumptions(_config(Logarithmic(nu=3.0, ell=1.0)))["tail_summable"].holds


def test_truncation_informative_both_ways():
    kept_all = check_assumptions(_config(GammaExponential(nu=1.0, ell=1.0), frames=12, bands=11))
    assert kept_all["truncation_informative"].holds  # nothing removed: the bound is 0
    slow = check_assumptions(_config(Polynomial(nu=0.5, ell=4.0), frames=32, bands=3, t=0.1, taper="triangular"))
    assert not slow["truncation_informative"].holds and slow["truncation_informative"].margin < 0
