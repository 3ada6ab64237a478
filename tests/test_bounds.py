"""theory.bounds and theory.tails against independent oracles: brute-force partial sums over many lags,
dense matrices, the constructed model's own numbers, and sympy lambdify vs the numeric path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import sympy as sp
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import theory
from theory import tails
from theory.bounds import BOUNDS, symbol_values, tail_bound
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.testing import configurations

FAMILY_NU = st.one_of(
    st.tuples(st.just("gamma-exponential"), st.floats(0.2, 2.0)),
    st.tuples(st.just("matern"), st.floats(0.2, 4.0)),
    st.tuples(st.just("polynomial"), st.floats(0.3, 4.0)),
    st.tuples(st.just("logarithmic"), st.floats(0.3, 4.0)),
)
ELL = st.floats(0.3, 20.0)


@settings(max_examples=60, deadline=None)
@given(FAMILY_NU, ELL, st.integers(2, 300), st.integers(0, 310))
def test_tail_bound_above_brute_force_partial_sum(family_nu, ell, frames, bands):
    family, nu = family_nu
    kernel = kernel_from_name(family, nu=nu, ell=ell)
    lags = np.arange(bands + 1, frames, dtype=np.float64)
    brute = float(sum(float(kernel(np.array([m]))[0]) for m in lags))  # plain loop over the kernel object
    bound = tails.tail_bound(family, nu, ell, bands, frames)
    assert brute <= bound * (1 + 1e-12) + 1e-300


@settings(max_examples=40, deadline=None)
@given(FAMILY_NU, ELL, st.integers(0, 60))
def test_infinite_tail_bound_above_long_partial_sum(family_nu, ell, bands):
    family, nu = family_nu
    if not tails.summable(family, nu):
        assert tails.bands_needed(family, nu, ell, 1e-3) is None
        return
    kernel = kernel_from_name(family, nu=nu, ell=ell)
    partial = float(np.sum(kernel(np.arange(bands + 1, 200_000, dtype=np.float64))))
    assert partial <= tails.family_tail_bound(family, nu, ell, bands) * (1 + 1e-12)


def test_matern_monotonicity_lemma_used_by_the_tail_bound():
    x = np.linspace(0.01, 80.0, 20000)
    for nu in (0.1, 0.3, 0.49, 0.5, 0.7, 1.5, 2.5, 6.0):
        g = np.sqrt(x) * scipy.special.kve(nu, x)  # sqrt(x) e^x K_nu(x)
        steps = np.diff(g)
        if nu >= 0.5:
            assert np.all(steps <= 1e-14)
        else:
            assert np.all(steps >= -1e-14) and g[-1] <= math.sqrt(math.pi / 2)


@settings(max_examples=40, deadline=None)
@given(FAMILY_NU, ELL, st.integers(2, 200), st.integers(0, 200))
# nu = 1 is where the polynomial/logarithmic tails switch to their log form; the other branch divides by 1 - nu
@example(("polynomial", 1.0), 1.0, 31, 3)
@example(("logarithmic", 1.0), 2.0, 31, 3)
def test_tail_expression_lambdify_equals_numeric(family_nu, ell, frames, bands):
    family, nu = family_nu
    bound = tail_bound(family)
    values = {"nu": nu, "ell": ell, "J": bands, "H": frames}
    numeric, symbolic = bound.evaluate(values), bound.evaluate_symbolic(values)
    assert symbolic == pytest.approx(numeric, rel=1e-9, abs=0) or (math.isinf(numeric) and math.isinf(symbolic))


@settings(max_examples=30, deadline=None)
@given(FAMILY_NU, ELL, st.floats(1e-6, 0.5), st.integers(2, 400))
def test_bands_needed_is_the_smallest_j(family_nu, ell, epsilon, frames):
    family, nu = family_nu
    j = tails.bands_needed(family, nu, ell, epsilon, frames)
    assert j is not None and 0 <= j <= frames - 1
    assert tails.tail_bound(family, nu, ell, j, frames) <= epsilon
    if j > 0:
        assert tails.tail_bound(family, nu, ell, j - 1, frames) > epsilon


def test_polynomial_bands_needed_matches_closed_form():
    for nu, ell, epsilon in [(2.0, 1.0, 1e-3), (3.5, 4.0, 1e-5), (1.5, 0.5, 1e-2)]:
        closed = float(tails.bands_needed_expression("polynomial").subs(
            {tails.nu: nu, tails.ell: ell, tails.eps: epsilon}))
        assert tails.bands_needed("polynomial", nu, ell, epsilon) == max(0, math.ceil(closed - 1e-9))


@settings(max_examples=30, deadline=None)
@given(configurations(frames=(2, 10), satisfying_assumptions=False, modes=("exact", "paper")))
def test_every_bound_lambdify_equals_numeric(drawn):
    values = symbol_values(drawn.config, x_ratio=1.5, root=0.7)
    values.update(h=0.01, R_mult=16.0, epsilon=1e-3)
    table = drawn.assumptions
    for name, bound in BOUNDS.items():
        if not table.holds(*[n for n in bound.needs if n in ("gamma_pd", "gd_converges")]):
            value = bound.evaluate(values)  # a verdict, never NaN: inf (or rho = 1: no contraction)
            assert math.isinf(value) or (name in ("contraction", "contraction_chebyshev") and value == 1.0)
            continue
        numeric, symbolic = bound.evaluate(values), bound.evaluate_symbolic(values)
        assert symbolic == pytest.approx(numeric, rel=1e-9, abs=1e-300), name


@settings(max_examples=25, deadline=None)
@given(configurations(frames=(2, 8), dim=(1, 3)))
def test_truncation_bound_dominates_exact_operator_norm(drawn):
    """E_trunc <= ||C_J^-1 (C - C_J)||_2 <= bound, the middle term from dense matrices."""
    t = drawn.diffusion_time
    dense = gd.dense_covariance(drawn.gp, t)
    dense_j = gd.dense_covariance(drawn.gp, t, drawn.bands, drawn.taper)
    exact = float(torch.linalg.matrix_norm(torch.linalg.solve(dense_j, dense - dense_j), ord=2))
    assert exact <= BOUNDS["trunc"].evaluate(drawn.config) * (1 + 1e-12)


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_heads_and_tent_slope_match_the_construction(mode):
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 12, torch.eye(2, dtype=torch.float64) * 2)
    for bands in (0, 3, 11):
        model = construct_unrolled(gp, blocks=2, bands=bands, mode=mode, taper="triangular", paper_knots=17)
        size = model.size()
        heads = theory.heads_expression(mode).subs(theory.bounds.J, bands)
        assert size["M"] == int(heads)
        values = symbol_values(theory.Configuration.from_model(gp, model, 0.5))
        slope = float(theory.tent_slope_expression(mode).subs({theory.bounds.H: 12, theory.bounds.J: bands,
                                                                theory.bounds.c_max: values["c_max"]}))
        assert slope == pytest.approx(model.construction.tent_slope, rel=1e-12, abs=0)
        assert size["B"] >= slope * (1 - 1e-12)


def test_small_time_behaviour_upper_bounds_kappa_and_leads_like_one_over_t():
    small = theory.small_time_behaviour()
    lam_max, mu_max, t = theory.bounds.lam_max, theory.bounds.mu_max, theory.bounds.t
    assert sp.simplify(small["kappa_leading"] - lam_max * mu_max / t) == 0
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=2.0, ell=3.0), 16, torch.eye(1))
    upper = sp.lambdify((lam_max, mu_max, t), small["kappa_upper"])
    for time in (1e-4, 1e-2, 1.0):
        config = theory.Configuration.from_gp(gp, bands=15, blocks=1, diffusion_time=time)
        assert config.kappa_t <= upper(config.temporal_spectrum[1], 1.0, time) * (1 + 1e-9)


def test_sample_complexity_rate_is_minus_one_half():
    assert theory.sample_complexity()["rate_exponent"] == sp.Rational(-1, 2)


def test_printing_gives_text_and_latex_with_named_symbols():
    bound = BOUNDS["trunc"]
    assert "T_J" in str(bound) and "needs" in str(bound)
    assert "T_{J}" in bound.latex() and "\\lambda" in bound.latex() or "lambda" in bound.latex()


def test_check_holds_and_slack():
    assert theory.check(2.0, 1.0).holds and theory.check(2.0, 1.0).slack == 2.0
    assert not theory.check(1.0, 2.0).holds
    assert theory.check(1.0, 0.0).slack == math.inf
    with pytest.raises(ValueError, match="measured"):
        theory.check(1.0, -1.0)


def test_check_refuses_a_negative_bound_and_expressions_an_unknown_mode():
    with pytest.raises(ValueError, match="bound must be >= 0"):
        theory.check(-1e-3, 0.5)
    assert theory.check(math.inf, 0.5).holds and not theory.check(None, 0.5).holds
    with pytest.raises(TypeError, match="measured"):
        theory.check(1.0, "0.5")
    for expression in (theory.heads_expression, theory.tent_slope_expression):
        with pytest.raises(ValueError, match="mode must be 'exact' or 'paper', got 'foo'"):
            expression("foo")
