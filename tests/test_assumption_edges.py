"""The assumption verdicts issue 15 found unread: ``multiplier_in_range`` both ways (paper mode, against a peak computed
here from a plain GD loop), and ``truncated_pd`` agreeing with the constructor near its tolerance
(``lambda_min(Gamma_J) > 1e-12 lambda_max``) on a smooth kernel whose Gamma is nearly singular, the truth from a
60-digit eigen-solve."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from plain_loop import plain_gd_loop, truncated_toeplitz

import theory
from theory.assumptions import check_assumptions
from theory.bounds import bounds_for_report
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential, Polynomial, kernel_from_name
from unroll.verification import verify

SIGMA = np.diag([1.0, 2.0])


def _paper_setup(paper_range):
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 8, torch.from_numpy(SIGMA))
    t, bands, blocks = 0.5, 7, 6
    model = construct_unrolled(gp, blocks=blocks, bands=bands, mode="paper", paper_knots=129, paper_range=paper_range)
    generator = torch.Generator().manual_seed(3)
    x = gp.noised(gp.sample(2, generator=generator), t, generator=generator)
    return gp, model, x, t, bands, blocks


def _peak_truth(gp, x, t, bands, blocks):
    """``max_k [max(eta a, eta s, eta) + max(|Gamma_J Y_k Sigma|, |Y_k|, |x|)]`` over the blocks ``k < L``: the
    largest ``|c| + |v|`` the paper-mode FFN multiplies, from the plain loop (the network follows it to ~h^2)."""
    gamma = gd.factors(gp).gamma.numpy()
    a, s = math.exp(-t), -math.expm1(-t)
    products = np.outer(np.linalg.eigvalsh(truncated_toeplitz(gamma, bands)), np.linalg.eigvalsh(SIGMA))
    eta = 1.0 / (a * 0.5 * (products.min() + products.max()) + s)
    features = max(eta * a, eta * s, eta)
    iterates = plain_gd_loop(gamma, SIGMA, x.numpy(), t, blocks, bands)
    band = truncated_toeplitz(gamma, bands)
    peaks = [features + max(np.abs(band @ y @ SIGMA).max(), np.abs(y).max(), float(x.abs().max()))
             for y in iterates[:blocks]]
    return max(peaks), features + float(x.abs().max())


def test_multiplier_in_range_holds_inside_the_range():
    gp, model, x, t, bands, blocks = _paper_setup(paper_range=16.0)
    truth, _ = _peak_truth(gp, x, t, bands, blocks)
    report = verify(gp, model, t, x=x)
    assert report.multiplier_peak == pytest.approx(truth, rel=1e-3, abs=0)
    config = theory.Configuration.from_model(gp, model, t, multiplier_peak=report.multiplier_peak)
    verdict = check_assumptions(config)["multiplier_in_range"]
    assert truth < 16.0 and verdict.holds and verdict.margin == pytest.approx(16.0 - truth, rel=1e-3, abs=0)
    assert math.isfinite(bounds_for_report(report, gp, model, t)["net"])


def test_multiplier_in_range_fails_outside_the_range():
    # block 1 alone already feeds max phi + max |x| to the multiplier: above a range of half that
    gp, model0, x, t, bands, blocks = _paper_setup(paper_range=16.0)
    _, first_block = _peak_truth(gp, x, t, bands, blocks)
    small = 0.5 * first_block
    model = construct_unrolled(gp, blocks=blocks, bands=bands, mode="paper", paper_knots=129, paper_range=small)
    report = verify(gp, model, t, x=x)
    assert report.multiplier_peak >= first_block * (1 - 1e-12)
    config = theory.Configuration.from_model(gp, model, t, multiplier_peak=report.multiplier_peak)
    verdict = check_assumptions(config)["multiplier_in_range"]
    assert not verdict.holds and verdict.margin < 0
    assert bounds_for_report(report, gp, model, t)["net"] == math.inf  # the bound needs the assumption


def test_multiplier_in_range_without_a_run_or_a_multiplier():
    gp, model, x, t, bands, blocks = _paper_setup(paper_range=16.0)
    unknown = check_assumptions(theory.Configuration.from_model(gp, model, t))["multiplier_in_range"]
    assert not unknown.holds and math.isnan(unknown.margin)  # paper mode, peak unknown: not assumed
    exact = construct_unrolled(gp, blocks=blocks, bands=bands)
    assert check_assumptions(theory.Configuration.from_model(gp, exact, t))["multiplier_in_range"].holds


def _ratio_truth(gamma: np.ndarray) -> float:
    """``lambda_min / lambda_max`` of ``toeplitz(gamma)`` from a 60-digit symmetric eigen-solve."""
    with mpmath.workdps(60):
        size = gamma.size
        matrix = mpmath.matrix([[mpmath.mpf(float(gamma[abs(i - j)])) for j in range(size)] for i in range(size)])
        eigenvalues = sorted(float(e) for e in mpmath.eigsy(matrix, eigvals_only=True))
    return eigenvalues[0] / eigenvalues[-1]


@pytest.mark.parametrize(("ell", "positive_definite"), [(8.0, True), (9.0, True), (10.0, False), (12.0, False)])
def test_theory_and_constructor_agree_on_positive_definiteness_near_the_tolerance(ell, positive_definite):
    """Gaussian kernel (gamma-exponential nu = 2), H = 8, all lags kept: lambda_min / lambda_max = 6e-12, 1.1e-12,
    2.5e-13, 1.9e-14 for ell = 8, 9, 10, 12: positive, and on both sides of the 1e-12 tolerance."""
    kernel = GammaExponential(nu=2.0, ell=ell)
    gamma = np.asarray(kernel(np.arange(8.0)), dtype=np.float64)
    ratio = _ratio_truth(gamma)
    assert ratio > 0 and (ratio > gd.INDEFINITE_TOLERANCE) == positive_definite
    gp = GaussianProcess(kernel, 8, torch.from_numpy(SIGMA))
    config = theory.Configuration.from_gp(gp, bands=7, blocks=4, diffusion_time=0.5)
    assert check_assumptions(config)["truncated_pd"].holds == positive_definite
    if positive_definite:
        construct_unrolled(gp, blocks=4, bands=7)
    else:
        with pytest.raises(gd.IndefiniteTruncationError):
            construct_unrolled(gp, blocks=4, bands=7)


def _lag_config(lag_values, bands=3):
    gamma = GammaExponential(nu=1.0, ell=2.0)(np.arange(8.0))
    return theory.Configuration(gamma=gamma, spatial_eigenvalues=np.array([1.0, 2.0]), bands=bands, blocks=4,
                                diffusion_time=0.5, lag_values=np.asarray(lag_values, dtype=np.float64))


def test_lags_separated_looks_at_lags_zero_to_j_plus_one_only():
    """The windowed tents see lags 0..J+1: an inversion at lag J+2 is harmless, one at J+1 is not."""
    bands = 3
    decreasing = [1.0, 0.8, 0.5, 0.1, -0.3]  # lags 0..J+1 = 0..4
    harmless = np.array(decreasing + [0.9, 0.95, 0.99])  # c_5 > c_4: beyond the window
    result = check_assumptions(_lag_config(harmless, bands))["lags_separated"]
    assert result.holds and result.margin == pytest.approx(0.2)  # min_m (c_m - c_(m+1)) over lags 0..4
    harmful = np.array([1.0, 0.8, 0.5, 0.1, 0.2, 0.0, -0.5, -0.9])  # c_4 > c_3 at lag J+1
    result = check_assumptions(_lag_config(harmful, bands))["lags_separated"]
    assert not result.holds and result.margin == pytest.approx(-0.1)


def test_boundary_cases_hold_with_margin_zero():
    """t = t0 and kappa(Sigma) = max_condition are inside the assumptions (``>=`` and ``<=``)."""
    gamma = GammaExponential(nu=1.0, ell=2.0)(np.arange(8.0))
    config = theory.Configuration(gamma=gamma, spatial_eigenvalues=np.array([0.5, 5.0]), bands=3, blocks=4,
                                  diffusion_time=0.01, t0=0.01, max_condition=10.0)
    table = check_assumptions(config)
    assert table["time_after_t0"].holds and table["time_after_t0"].margin == 0.0
    assert table["spatial_bounded"].holds and table["spatial_bounded"].margin == pytest.approx(0.0, abs=1e-12)
    assert table.holds("time_after_t0", "spatial_bounded")


def test_table_lookup_failed_and_required_lists():
    config = theory.Configuration.from_kernel(Polynomial(nu=0.5, ell=4.0), 32, np.diag([1.0, 2.0]), bands=3,
                                              blocks=10, diffusion_time=1e-4, t0=1e-3)
    table = check_assumptions(config)
    expected_failed = [name for name in ("truncated_pd", "diagonal_dominance", "gd_converges", "time_after_t0",
                                         "tail_summable", "truncation_informative") if not table[name].holds]
    assert table.failed == [r.name for r in table if not r.holds] and set(expected_failed) <= set(table.failed)
    sufficient = {a.name for a in theory.ASSUMPTIONS if a.sufficient_only}
    assert sufficient == {"diagonal_dominance", "tail_summable", "truncation_informative"}
    assert table.failed_required == [name for name in table.failed if name not in sufficient]
    assert "time_after_t0" in table.failed_required and "tail_summable" not in table.failed_required
    assert not table.holds() and not table.holds("time_after_t0") and table.holds("gamma_pd", "spatial_bounded")
    with pytest.raises(KeyError, match="no assumption 'nope'"):
        table["nope"]
    subset = check_assumptions(config, names=("gamma_pd", "time_after_t0"))
    assert [r.name for r in subset] == ["gamma_pd", "time_after_t0"] and subset.failed == ["time_after_t0"]
    assert theory.assumptions.get("gamma_pd").name == "gamma_pd"
    with pytest.raises(ValueError, match="unknown assumption 'nope'"):
        theory.assumptions.get("nope")
    rows = table.to_markdown().splitlines()
    assert len(rows) == 2 + len(theory.ASSUMPTIONS) and "| time_after_t0 | FAILS |" in table.to_markdown()
    assert "time_after_t0            FAILS" in str(table)


def _exact_config(gamma, t=0.5):
    return theory.Configuration(gamma=np.asarray(gamma, dtype=np.float64), spatial_eigenvalues=np.array([1.0]),
                                bands=len(gamma) - 1, blocks=2, diffusion_time=t)


def test_strict_inequalities_fail_on_their_boundary():
    """Margins exactly 0 in floating point: the strict inequalities of the statements fail there.

    ``[[1, 1], [1, 1]]`` has eigenvalues exactly 0 and 2 (semidefinite, not definite); at ``t = ln 2``,
    ``a = s = 1/2`` exactly, so ``Gamma = [[1, 2], [2, 1]]`` (eigenvalues -1, 3) gives ``lambda_min(C_tJ) = s - a =
    0``; ``gamma = [1, 1/2]`` gives ``2 sum_(m>=1) |gamma(m)| = 1``; the zero process has ``Gamma = 0``."""
    semidefinite = check_assumptions(_exact_config([1.0, 1.0]))["gamma_pd"]
    assert not semidefinite.holds and semidefinite.margin == 0.0
    boundary = theory.Configuration(gamma=np.array([1.0, 2.0]), spatial_eigenvalues=np.array([1.0]), bands=1,
                                    blocks=2, diffusion_time=math.log(2.0))
    assert boundary.a == boundary.s == 0.5
    converges = check_assumptions(boundary)["gd_converges"]
    assert not converges.holds and converges.margin == 0.0
    dominance = check_assumptions(_exact_config([1.0, 0.5]))["diagonal_dominance"]
    assert not dominance.holds and dominance.margin == 0.0
    zero = check_assumptions(_exact_config([0.0, 0.0, 0.0]))
    assert not zero["truncated_pd"].holds and not zero["gamma_pd"].holds


def test_default_lag_values_use_the_sequence_frequency_without_bands():
    from theory.assumptions import default_lag_values

    np.testing.assert_allclose(default_lag_values(8), np.cos(np.pi * np.arange(8) / 8), rtol=0, atol=1e-15)
    np.testing.assert_allclose(default_lag_values(8, 3), np.cos(np.pi * np.arange(8) / 5), rtol=0, atol=1e-15)
    assert default_lag_values(8).dtype == np.float64


def test_markdown_table_rows():
    table = check_assumptions(_exact_config([1.0, 0.5]))
    rows = table.to_markdown().split("\n")
    assert rows[:2] == ["| assumption | verdict | margin | statement | numbers |", "|---|---|---|---|---|"]
    assert rows[2].startswith("| gamma_pd | holds | ") and len(rows) == 2 + len(theory.ASSUMPTIONS)


def test_lags_separated_on_two_frames_one_frame_and_a_tie():
    two = check_assumptions(_lag_config_frames([1.0, 1.0]))["lags_separated"]  # c_0 = c_1: not separated
    assert not two.holds and two.margin == 0.0 and "(model)" in two.detail
    separated = check_assumptions(_lag_config_frames([1.0, -1.0]))["lags_separated"]
    assert separated.holds and separated.margin == 2.0
    one = check_assumptions(_lag_config_frames([1.0]))["lags_separated"]
    assert one.holds and one.margin == math.inf and one.detail == "one frame: no lags to separate"
    tie = check_assumptions(_lag_config([1.0, 0.5, 0.5, 0.1, -0.3, -0.5, -0.7, -0.9]))["lags_separated"]
    assert not tie.holds and tie.margin == 0.0
    default = check_assumptions(theory.Configuration(gamma=np.array([1.0, 0.5, 0.2]), spatial_eigenvalues=np.ones(1),
                                                     bands=1, blocks=2, diffusion_time=0.5))["lags_separated"]
    assert default.holds and "(default cos(pi m/min(H, J+2)))" in default.detail


def _lag_config_frames(lag_values):
    frames = len(lag_values)
    return theory.Configuration(gamma=np.r_[1.0, np.full(frames - 1, 0.2)], spatial_eigenvalues=np.ones(1),
                                bands=frames - 1, blocks=2, diffusion_time=0.5, lag_values=np.asarray(lag_values))


def test_multiplier_in_range_at_the_boundary_and_its_details():
    gp, model, x, t, bands, blocks = _paper_setup(paper_range=16.0)
    at_range = check_assumptions(theory.Configuration.from_model(gp, model, t, multiplier_peak=16.0))
    assert at_range["multiplier_in_range"].holds and at_range["multiplier_in_range"].margin == 0.0
    above = check_assumptions(theory.Configuration.from_model(gp, model, t, multiplier_peak=16.5))
    assert not above["multiplier_in_range"].holds and above["multiplier_in_range"].margin == -0.5
    unknown = check_assumptions(theory.Configuration.from_model(gp, model, t))["multiplier_in_range"]
    assert unknown.detail == "paper mode: peak |c|+|v| of a run unknown (run unroll.verify)"
    exact = construct_unrolled(gp, blocks=blocks, bands=bands)
    exact_result = check_assumptions(theory.Configuration.from_model(gp, exact, t))["multiplier_in_range"]
    assert exact_result.margin == math.inf and exact_result.detail == "exact mode: no multiplier"
    # paper mode without a construction: no multiplier to check (its bound is inf without one anyway)
    bare = theory.Configuration.from_gp(gp, bands=bands, blocks=blocks, diffusion_time=t, mode="paper")
    assert check_assumptions(bare)["multiplier_in_range"].holds
    assert theory.evaluate_all(bare)["net"] == math.inf


def test_tail_summable_margins_and_details():
    def result(kernel_or_gamma):
        if isinstance(kernel_or_gamma, np.ndarray):
            config = theory.Configuration(gamma=kernel_or_gamma, spatial_eigenvalues=np.ones(1), bands=1, blocks=2,
                                          diffusion_time=0.5)
        else:
            config = theory.Configuration.from_kernel(kernel_or_gamma, 8, np.eye(1), bands=2, blocks=2,
                                                      diffusion_time=0.5)
        return check_assumptions(config)["tail_summable"]

    polynomial = result(Polynomial(nu=2.5, ell=1.0))
    assert polynomial.holds and polynomial.margin == 1.5
    user = result(np.array([1.0, 0.5, 0.25]))  # lag values without a family: unknown, so not assumed
    assert not user.holds and math.isnan(user.margin) and "sum over H lags = 1.75" in user.detail
    damped = result(kernel_from_name("damped-cosine", ell=2.0, period=6.0))
    assert damped.holds and damped.detail == "damped-cosine: |gamma(m)| <= exp(-m/ell), summable for every period"
    exponential = result(GammaExponential(nu=1.0, ell=2.0))
    assert exponential.holds and exponential.detail == "gamma-exponential: exponential decay, summable"


def test_truncation_informative_value_against_a_dense_truth():
    """``2 a mu_max (T_J + taper bias) / lambda_min(C_tJ)`` with ``T_J`` summed and ``lambda_min`` from the dense
    matrix here; exactly 1 (not informative) at ``t = ln 2`` for ``gamma = [1, 0, 1]``, ``J = 1``."""
    kernel, frames, bands, t = Polynomial(nu=2.5, ell=2.0), 12, 4, 0.4
    spatial = np.diag([0.5, 3.0])
    gamma = np.asarray(kernel(np.arange(float(frames))))
    config = theory.Configuration.from_kernel(kernel, frames, spatial, bands=bands, blocks=4, diffusion_time=t)
    a = math.exp(-t)
    lowest = np.linalg.eigvalsh(a * np.kron(truncated_toeplitz(gamma, bands), spatial) - math.expm1(-t) * np.eye(24))[0]
    value = 2 * a * 3.0 * np.abs(gamma[bands + 1:]).sum() / lowest
    result = check_assumptions(config)["truncation_informative"]
    assert 1.0 < value < 2.0 and not result.holds and result.margin == pytest.approx(1.0 - value, rel=1e-10, abs=0)
    boundary = theory.Configuration(gamma=np.array([1.0, 0.0, 1.0]), spatial_eigenvalues=np.ones(1), bands=1,
                                    blocks=2, diffusion_time=math.log(2.0))
    at_one = check_assumptions(boundary)["truncation_informative"]
    assert not at_one.holds and at_one.margin == 0.0
    singular = theory.Configuration(gamma=np.array([1.0, 2.0]), spatial_eigenvalues=np.ones(1), bands=1, blocks=2,
                                    diffusion_time=math.log(2.0))  # lambda_min(C_tJ) = 0 exactly
    no_bound = check_assumptions(singular)["truncation_informative"]
    assert not no_bound.holds and no_bound.margin == -math.inf


def test_multiplier_in_range_reads_a_construction_without_a_multiplier_as_exact():
    """``Configuration.from_model`` reads its construction duck-typed (``getattr`` with defaults): one with no
    ``multiplier`` attribute at all is an exact construction, not an error."""
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 8, torch.from_numpy(SIGMA))
    config = theory.Configuration.from_gp(gp, bands=7, blocks=6, diffusion_time=0.5, construction=object())
    verdict = check_assumptions(config)["multiplier_in_range"]
    assert verdict.holds and verdict.margin == math.inf
