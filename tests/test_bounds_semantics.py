"""theory.bounds against formulas written out here from its docstring and docs/design.md §6–7 (mutmut survivors
of theory/bounds.py, issue 15).

The reference (:func:`reference`) is an independent, loop-based transcription of the module docstring:

* ``lambda_min(C_J) = s + a lamJ_min (mu_min if lamJ_min >= 0 else mu_max)`` (Kronecker spectrum), ``rho``, ``eta``,
  ``G = min(1 + 2 a mu_max (T_J + bias)/lambda_min(C_J), lambda_max(C)/lambda_min(C_J))``;
* the network recursion ``|e_L| <= sum_{k<L} r^k delta`` is summed term by term (not the closed geometric form),
  ``(1 + x)^L`` is an L-fold product, and the Chebyshev factor is ``T_L(1 + w) / T_L((kappa+1)/(kappa-1))`` by the
  three-term recurrence (design §7: ``max |p_L| = 1/T_L((kappa+1)/(kappa-1))``, widened by ``cosh(L acosh(1+w))
  = T_L(1+w)``), not ``cosh``/``acosh`` in logs as the module does.

Parameters are drawn directly (not through a Configuration) over the whole domain the bounds are stated for,
so that every term, floors included, dominates somewhere: ``kappa_J`` near 1 (``rho^L`` underflows and the
float64 floors are the bound), a negative ``lamJ_min`` (an indefinite ``Gamma_J`` with ``C_J`` still PD), both
branches of ``G``, and ``u`` from float64 down to bfloat16 next to ``u64``.

Tolerance: the two sides differ only by rounding: a few roundings per operation on ``O(L)``-long chains, and the
closed geometric sum ``(r^L - 1)/(r - 1)`` loses ``~ L u / |r - 1|`` relative; ``REL = 1e-9`` covers
``L <= 200`` and ``|r - 1| >= 2/(kappa_J + 1)`` with ``kappa_J <= 1e5`` (``200 * 1.1e-16 * 5e4 = 1.1e-9``, below the
margin since the series is at most one of three added terms) — and is the project's own lambdify tolerance
(tests/test_bounds.py).  A mutant moves the value by at least one term's share, far above 1e-9 where that term
matters.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import scipy.linalg
import sympy as sp
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import theory
from theory import tails
from theory.bounds import (
    BOUNDS,
    PART_BOUNDS,
    SYMBOLS,
    _gamma_n,
    _gamma_num,
    _growth_power,
    _net_cheb_common_e,
    _net_common_e,
    attach_bounds,
    bands_needed_bound,
    bounds_for_report,
    evaluate_all,
    heads_expression,
    sample_complexity,
    small_time_behaviour,
    symbol_values,
    tail_bound,
    tent_slope_expression,
)
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.verification import VerificationReport, verify

REL = 1e-9
U64 = 2.0**-53
#: unit roundoffs of float64, float32, float16, bfloat16 (theory.bounds._UNIT_ROUNDOFFS)
UNITS = [2.0**-53, 2.0**-24, 2.0**-11, 2.0**-8]


def gamma_n(count: float, unit: float) -> float:
    """``gamma_n = n u / (1 - n u)`` (Higham), ``inf`` once ``n u >= 1``."""
    return math.inf if count * unit >= 1 else count * unit / (1 - count * unit)


def power(base: float, exponent: int) -> float:
    """``base^exponent`` as an ``exponent``-fold product (``inf`` past the float range)."""
    out = 1.0
    for _ in range(int(exponent)):
        out *= base
        if math.isinf(out):
            return math.inf
    return out


def chebyshev_t(degree: int, x: float) -> tuple[float, float]:
    """``T_degree(x)`` for ``x >= 1`` by ``T_(k+1) = 2 x T_k - T_(k-1)``, as ``(mantissa, log scale)``: the value is
    ``mantissa * e^scale`` (rescaled on the way, so ``T_200(2001)`` does not overflow)."""
    previous, current, scale = 1.0, x, 0.0
    if degree == 0:
        return 1.0, 0.0
    for _ in range(degree - 1):
        previous, current = current, 2 * x * current - previous
        if current > 1e100:
            previous, current, scale = previous / current, 1.0, scale + math.log(current)
    return current, scale


def reference(v: dict[str, float]) -> dict[str, float]:
    """Every bound of ``BOUNDS`` from the module docstring, for ``lambda_min(C_J) > 0`` and ``kappa_J < inf``."""
    a, s, L, u, u64 = v["a"], v["s"], int(v["L"]), v["u"], v["u64"]
    c_min = s + a * v["lam_min"] * v["mu_min"]
    c_max = s + a * v["lam_max"] * v["mu_max"]
    lo = s + a * v["lamJ_min"] * (v["mu_min"] if v["lamJ_min"] >= 0 else v["mu_max"])
    hi = s + a * v["lamJ_max"] * v["mu_max"]  # lamJ_max mu_max >= lamJ_min mu_min whenever lamJ_max >= 0
    assert lo > 0
    kappa_t, kappa = c_max / c_min, hi / lo
    rho = (kappa - 1) / (kappa + 1)
    eta = 2 / (hi + lo)
    c_eig = v["H"] + v["d"] + 10
    G = min(1 + 2 * a * v["mu_max"] * (v["T_J"] + v["bias_J"]) / lo, c_max / lo)
    out: dict[str, float] = {"kappa_t": kappa_t, "kappa_J": kappa, "contraction": rho}
    out["trunc"] = 2 * a * v["mu_max"] * (v["T_J"] + v["bias_J"]) / lo + 2 * c_eig * u64 * (kappa_t + kappa * G)
    # the float64 reference loop: gamma_(2J+d+8) per step, over at most min(L, 1/(1-rho)) effective steps
    work = a * v["Sigma_F"] * (1 + 2 * v["S_J"]) + s  # |C_J| applied entrywise, per unit of |y|
    g_loop = gamma_n(2 * v["J"] + v["d"] + 8, u64)
    loop_floor = g_loop * min(L, 1 / (1 - rho)) * (2 * G * (1 + eta * work) + eta * c_max)
    eigen_floor = 2 * c_eig * u64 * kappa * G
    out["gd"] = min(1.0, rho + 4 * c_eig * u64 * kappa) ** L * G + eigen_floor + loop_floor
    # network, exact mode: score error of the tents, gamma_n of the head sums
    angle = 6 * v["K"] * v["omega"] * max(v["H"] - 1, 0)
    score = u * (40 * v["K"] + angle + 20 * v["c_max"] + 10)
    g_heads = gamma_n(2 * v["J"] + 1 + v["M"] + v["d"] + 8, u)
    band = (4 * score + 4 * g_heads * (2 * v["K"] + v["c_max"] + 1)) * (1 + 2 * v["S_J"]) * v["Sigma_F"]
    zero = (score + g_heads * v["c_max"]) * (v["Sigma_F"] + 1)
    growth_exact = band + zero
    delta_exact = growth_exact * (1 + v["A_pre"]) * G + (score + g_heads * v["c_max"] + u * v["c_max"]) * v["X"]
    # network, paper mode: height-1 tents times the largest time feature, three multiplier products per entry
    score_paper = u * (40 * v["K"] + angle + 30)
    growth_paper = v["phi_max"] * (4 * score_paper + 4 * g_heads * (2 * v["K"] + 2)) * (1 + 2 * v["S_J"]) * v["Sigma_F"]
    per_entry = 3 * v["h"] ** 2 / 16 + gamma_n(v["F_w"] + v["D"] + 8, u) * 40 * v["R_mult"] ** 2
    delta_paper = growth_paper * (1 + v["A_pre"]) * G + per_entry * v["root"]
    mismatch = 20 * (u + u64) * L * rho ** max(L - 1, 0) * G
    for name, growth, delta in (("net_exact", growth_exact, delta_exact), ("net_paper", growth_paper, delta_paper)):
        series = sum(power(rho + growth, k) for k in range(L))  # inf once r^k overflows: a vacuous bound
        out[name] = series * delta + loop_floor + mismatch
    out["blocks_needed"] = math.log(G / v["epsilon"]) / math.log(1 / rho) if 0 < rho else 0.0
    # Chebyshev steps
    # sqrt(kappa) - 1 as expm1(log(kappa)/2): no cancellation at kappa ~ 1
    rho_c = math.expm1(0.5 * math.log1p(kappa - 1)) / (math.sqrt(kappa) + 1)
    out["contraction_chebyshev"] = rho_c
    if kappa == 1:
        factor = 0.0  # one step 1/lambda is exact
    else:
        widened, widened_scale = chebyshev_t(L, 1 + 4 * c_eig * u64 * kappa / (kappa - 1))
        nodes, nodes_scale = chebyshev_t(L, (kappa + 1) / (kappa - 1))
        factor = widened / nodes * math.exp(widened_scale - nodes_scale)
    eta_max = 1 / lo  # the largest Chebyshev step 1/(a P_k + s) <= 1/lambda_min(C_J)
    step_work = 1 + eta_max * work
    loop_floor_c = g_loop * L * v["A_suf"] * ((1 + v["A_pre"]) * G * step_work + eta_max * c_max) * power(
        1 + v["A_all"] * g_loop * step_work, L)
    out["gd_chebyshev"] = factor * G + eigen_floor + loop_floor_c
    out.update(_G=G, _loop_floor=loop_floor, _loop_floor_C=loop_floor_c)  # parts, for the combinator test
    unit = 20 * (u + u64)
    mismatch_c = unit * L * v["A_suf"] * v["A_pre"] * kappa * power(1 + unit * v["A_all"] * kappa, L) * G
    for name, growth, delta in (("net_exact_chebyshev", growth_exact, delta_exact),
                                ("net_paper_chebyshev", growth_paper, delta_paper)):
        out[name] = v["A_suf"] * L * delta * power(1 + v["A_all"] * growth, L) + loop_floor_c + mismatch_c
    ratio = v["epsilon"] / G
    out["blocks_needed_chebyshev"] = (0.0 if ratio >= 1 or rho_c == 0 else
                                      math.log((1 + math.sqrt(1 - ratio**2)) / ratio) / math.log(1 / rho_c))
    return out


def _log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(low), math.log(high)).map(math.exp)


@st.composite
def parameters(draw: st.DrawFn, chebyshev: bool = False) -> dict[str, Any]:
    """Symbol values over the bounds' domain with ``lambda_min(C_J) > 0`` (``gd_converges``): for GD the
    schedule constants ``A_* = 1`` (every factor a contraction), for Chebyshev any ``A_* >= 1``."""
    t = draw(_log_uniform(1e-3, 5.0))
    a, s = math.exp(-t), -math.expm1(-t)
    mu_min = draw(_log_uniform(1e-3, 1e3))
    mu_max = mu_min * draw(st.one_of(st.just(1.0), _log_uniform(1.0, 1e3)))
    dim = draw(st.integers(1, 5))
    sigma_f = mu_max * math.sqrt(1 + draw(st.floats(0.0, 1.0)) * (dim - 1))
    lam_j_max = draw(_log_uniform(1e-2, 20.0))
    if draw(st.booleans()):  # Gamma_J indefinite, C_J still PD: s + a lamJ_min mu_max > 0
        lam_j_min = -draw(st.floats(0.0, 0.95)) * s / (a * mu_max)
    else:
        lam_j_min = lam_j_max * draw(st.one_of(st.just(1.0), _log_uniform(1e-6, 1.0)))
    lam_max = lam_j_max * draw(_log_uniform(0.5, 2.0))
    lam_min = lam_max * draw(st.one_of(st.just(0.0), _log_uniform(1e-8, 1.0)))
    frames = draw(st.integers(1, 5000))
    bands = draw(st.integers(0, min(frames - 1, 60)))
    u = draw(st.sampled_from(UNITS))
    amplification = (1.0, 1.0, 1.0) if not chebyshev else tuple(draw(_log_uniform(1.0, 30.0)) for _ in range(3))
    values = {
        "t": t, "a": a, "s": s, "lam_min": lam_min, "lam_max": lam_max, "lamJ_min": lam_j_min, "lamJ_max": lam_j_max,
        "mu_min": mu_min, "mu_max": mu_max, "Sigma_F": sigma_f,
        "T_J": draw(st.one_of(st.just(0.0), _log_uniform(1e-12, 5.0))),
        "bias_J": draw(st.one_of(st.just(0.0), _log_uniform(1e-12, 5.0))),
        "S_J": draw(st.one_of(st.just(0.0), _log_uniform(1e-6, 5.0))),
        "u": u, "u64": U64, "L": draw(st.integers(0, 60 if chebyshev else 200)), "J": bands, "H": frames, "d": dim,
        "M": 3 * (bands + 1), "F_w": draw(st.integers(1, 64)), "D": 2 * dim + 6,
        "K": draw(_log_uniform(1.0, 1e3)), "c_max": draw(_log_uniform(1.0, 100.0)),
        "omega": draw(st.floats(0.01, math.pi)), "X": draw(_log_uniform(0.1, 100.0)),
        "root": draw(_log_uniform(0.1, 100.0)), "h": draw(_log_uniform(1e-3, 0.5)),
        "R_mult": draw(_log_uniform(1.0, 64.0)), "phi_max": draw(_log_uniform(1.0, 100.0)),
        "epsilon": draw(_log_uniform(1e-12, 0.5)),
        "A_pre": amplification[0], "A_suf": amplification[1], "A_all": amplification[2],
    }
    lo = s + a * min(lam_j_min * mu_min, lam_j_min * mu_max)
    hi = s + a * max(lam_j_max * mu_max, lam_j_min * mu_min)
    # kappa_J = 1 exactly, or 1 + 1e-5 <= kappa_J <= 1e5: quantities of kappa_J - 1 are conditioned like
    # u kappa_J/(kappa_J - 1) (one ulp of association order in lambda(C_J) is 1e-16/(kappa_J - 1) relative)
    assume(hi == lo or 1e-5 <= hi / lo - 1 and hi / lo <= 1e5)
    # the rounding model's counts must stay below 1/u (else gamma_n is inf: tested separately)
    assume((2 * bands + 1 + values["M"] + dim + 8) * u < 0.5 and (values["F_w"] + values["D"] + 8) * u < 0.5)
    return values


GD_BOUNDS = ("kappa_t", "kappa_J", "contraction", "gd", "trunc", "net_exact", "net_paper", "blocks_needed")
CHEBYSHEV_BOUNDS = ("contraction_chebyshev", "gd_chebyshev", "net_exact_chebyshev", "net_paper_chebyshev",
                    "blocks_needed_chebyshev")

#: kappa_J = 1 exactly (Gamma_J = I, Sigma = I): rho = rho_C = 0, one step exact
WHITE = {"t": 0.5, "a": math.exp(-0.5), "s": -math.expm1(-0.5), "lam_min": 1.0, "lam_max": 1.0, "lamJ_min": 1.0,
         "lamJ_max": 1.0, "mu_min": 1.0, "mu_max": 1.0, "Sigma_F": 1.0, "T_J": 0.0, "bias_J": 0.0, "S_J": 0.0,
         "u": U64, "u64": U64, "L": 3, "J": 0, "H": 4, "d": 1, "M": 3, "F_w": 1, "D": 8, "K": 2.0, "c_max": 1.0,
         "omega": 1.0, "X": 1.0, "root": 1.0, "h": 0.1, "R_mult": 4.0, "phi_max": 1.0, "epsilon": 1e-3,
         "A_pre": 1.0, "A_suf": 1.0, "A_all": 1.0}


def _check(values: dict[str, Any], names: tuple[str, ...]) -> None:
    expected = reference(values)
    for name in names:
        numeric, symbolic = BOUNDS[name].evaluate(values), BOUNDS[name].evaluate_symbolic(values)
        assert numeric == pytest.approx(expected[name], rel=REL, abs=1e-300), (name, numeric, expected[name])
        assert symbolic == pytest.approx(expected[name], rel=REL, abs=1e-300), (name, symbolic, expected[name])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(parameters())
@example(WHITE)
def test_gd_bounds_are_their_written_out_formulas(values: dict[str, Any]) -> None:
    """kappa_t, kappa_J, rho, E_gd, E_trunc, E_net (exact, paper), blocks needed: numeric and sympy paths both equal
    the reference at random parameters (kills any changed constant, sign, operand or branch of ``_num_common``,
    ``_gd``, ``_trunc``, ``_net_common``, ``_exact_rounding``, ``_paper_rounding``, ``_angle_error``,
    ``_score_error``, ``_blocks_needed``)."""
    _check(values, GD_BOUNDS)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(parameters(chebyshev=True))
@example({**WHITE, "A_pre": 2.0, "A_suf": 3.0, "A_all": 1.5})
def test_chebyshev_bounds_are_their_written_out_formulas(values: dict[str, Any]) -> None:
    """rho_C, E_gd and E_net with Chebyshev steps, blocks needed: the reference's ``T_L`` recurrence and L-fold
    products against the module's logs and ``_growth_power`` (kills mutants of ``_chebyshev_factor``,
    ``_gd_cheb``, ``_net_cheb_common``, ``loop_floor_C``, ``_growth_power``, ``_blocks_needed_cheb``)."""
    _check(values, CHEBYSHEV_BOUNDS)


# ------------------------------------------------------------------------------------ degenerate regimes
def test_singular_or_indefinite_c_j_gives_verdicts_not_exceptions() -> None:
    """``lambda_min(C_J) <= 0`` (here exactly 0: ``s = a |lamJ_min| mu_max``, and below): every bound that needs
    ``gd_converges`` is ``inf``, rho and rho_C are 1 (no contraction), blocks needed ``inf`` — not a
    ZeroDivisionError at the boundary (kills ``<= 0`` -> ``< 0`` in every guard, and the guards' values)."""
    for lam_j_min, blocks in ((-1.0, 3), (-3.0, 3), (-1.0, 0)):  # lambda_min(C_J) = 0.5 - 0.5 |lamJ_min|: 0, -1
        # root = nan (no run): a bound whose assumption fails is inf whatever else is unknown, even at L = 0
        values = {**WHITE, "a": 0.5, "s": 0.5, "lamJ_min": lam_j_min, "lamJ_max": 2.0, "mu_max": 1.0, "mu_min": 0.5,
                  "L": blocks, "root": math.nan}
        for name in ("kappa_J", "gd", "trunc", "net_exact", "net_paper", "gd_chebyshev", "net_exact_chebyshev",
                     "net_paper_chebyshev", "blocks_needed", "blocks_needed_chebyshev"):
            assert BOUNDS[name].evaluate(values) == math.inf, name
        assert BOUNDS["contraction"].evaluate(values) == 1.0
        assert BOUNDS["contraction_chebyshev"].evaluate(values) == 1.0


def test_truncation_bound_without_a_tail_is_the_eigen_solve_floor() -> None:
    """``T_J = bias = 0``: E_trunc is only the float64 floor ``2 c_eig u (kappa_t + kappa_J G)``; with
    ``lambda_max(C) < lambda_min(C_J)`` the factor ``G = lambda_max(C)/lambda_min(C_J) < 1`` (so ``kappa_J G`` and
    ``kappa_J / G`` differ)."""
    values = {**WHITE, "lam_min": 0.5, "lam_max": 0.5, "lamJ_min": 1.0, "lamJ_max": 2.0}
    a, s = values["a"], values["s"]
    G = (s + 0.5 * a) / (s + a)
    kappa_t, kappa_j = 1.0, (s + 2 * a) / (s + a)
    expected = 2 * (values["H"] + values["d"] + 10) * U64 * (kappa_t + kappa_j * G)
    assert G < 0.7 and BOUNDS["trunc"].evaluate(values) == pytest.approx(expected, rel=1e-14, abs=0)
    assert BOUNDS["trunc"].evaluate_symbolic(values) == pytest.approx(expected, rel=1e-14, abs=0)


def test_chebyshev_factor_is_widened_by_the_eigen_solve_error() -> None:
    """A long sequence (``H = 10^6``, so ``c_eig u ~ 1e-10``), ``kappa_J = 1e4``, 200 Chebyshev steps: the factor
    ``2 rho_C^L/(1 + rho_C^(2L))`` dominates E_gd, and the widening ``T_L(1 + w)``, ``w = 4 c_eig u kappa/(kappa-1)``,
    moves it by ~``L^2 w = 2e-5``: the bound is the reference to rounding, and differs from the unwidened one."""
    values = {**WHITE, "a": 1.0, "s": 0.0, "lam_min": 1e-4, "lamJ_min": 1e-4, "L": 200, "H": 10**6}
    _check(values, ("gd_chebyshev",))
    kappa = 1e4
    nodes, scale = chebyshev_t(200, (kappa + 1) / (kappa - 1))
    unwidened = math.exp(-scale) / nodes  # G = 1
    assert BOUNDS["gd_chebyshev"].evaluate(values) > unwidened * (1 + 1e-5)


def test_singular_c_gives_an_infinite_kappa_t() -> None:
    """``lambda_min(C) = s + a lam_min mu_min = 0`` (``s = 0``, singular Gamma): ``kappa_t = inf``."""
    assert BOUNDS["kappa_t"].evaluate({**WHITE, "s": 0.0, "lam_min": 0.0}) == math.inf


def test_kappa_beyond_float_resolution_is_no_contraction() -> None:
    """``kappa_J = 1e17``: ``rho = (kappa - 1)/(kappa + 1)`` rounds to 1, so no step contracts: the effective number
    of steps is L (not ``1/(1 - rho)``, a division by zero), E_gd = G + floors, blocks needed ``inf``."""
    values = {**WHITE, "a": 1.0, "s": 1e-17, "lamJ_min": 0.0, "lamJ_max": 1.0, "lam_min": 0.0, "lam_max": 1.0,
              "L": 5}
    assert BOUNDS["contraction"].evaluate(values) == 1.0
    G = min(1.0, (1e-17 + 1.0) / 1e-17)  # T_J = bias = 0
    kappa = (1e-17 + 1.0) / 1e-17
    c_eig = values["H"] + values["d"] + 10
    eta = 2 / (1e-17 + 1.0 + 1e-17)
    loop = gamma_n(2 * 0 + 1 + 8, U64) * 5 * (2 * G * (1 + eta * (1.0 * 1.0 + 1e-17)) + eta * (1e-17 + 1.0))
    expected = G + 2 * c_eig * U64 * kappa * G + loop
    assert BOUNDS["gd"].evaluate(values) == pytest.approx(expected, rel=REL, abs=0)
    assert BOUNDS["blocks_needed"].evaluate(values) == math.inf


def test_white_noise_is_solved_in_one_step() -> None:
    """``kappa_J = 1``: rho = rho_C = 0, no block is needed, and the Chebyshev factor is 0 (the step ``1/lambda`` is
    exact) rather than ``0/0`` in the widening ``w = 4 c_eig u kappa/(kappa - 1)``."""
    assert BOUNDS["contraction"].evaluate(WHITE) == 0.0 and BOUNDS["contraction_chebyshev"].evaluate(WHITE) == 0.0
    assert BOUNDS["blocks_needed"].evaluate(WHITE) == 0.0
    assert BOUNDS["blocks_needed_chebyshev"].evaluate(WHITE) == 0.0
    expected = reference(WHITE)
    assert BOUNDS["gd_chebyshev"].evaluate(WHITE) == pytest.approx(expected["gd_chebyshev"], rel=REL, abs=0)
    floors = expected["gd_chebyshev"]  # factor 0: only the eigen-solve and loop floors remain
    assert 0 < floors < 1e-12


def test_blocks_needed_is_zero_once_the_target_exceeds_g() -> None:
    """``eps >= G``: zero Chebyshev blocks already meet the target (the formula's ``sqrt(1 - r^2)`` is undefined)."""
    for epsilon in (1.5, 50.0):  # G = 1 here: r = eps/G in (1, 2) and far beyond
        values = {**WHITE, "lamJ_min": 0.5, "epsilon": epsilon}
        assert BOUNDS["blocks_needed_chebyshev"].evaluate(values) == 0.0


def test_rounding_counts_past_one_over_u_make_the_net_bound_vacuous() -> None:
    """``gamma_n = n u/(1 - n u)`` is only a bound for ``n u < 1``; at ``n u = 1`` exactly (``n = 256``, bfloat16) and
    beyond the net bounds are ``inf``, not a ZeroDivisionError, a negative number or NaN.  (Before issue 15 the GD
    net bound was NaN here, ``(inf - 1)/(inf - 1)``: ``verify`` of a bfloat16 model with J >= 49 bands reported a
    NaN net and total bound.)"""
    for heads in (246, 400):  # 2J + 1 + M + d + 8 = M + 10 with J = 0, d = 1
        values = {**WHITE, "u": 2.0**-8, "M": heads}
        for name in ("net_exact", "net_paper", "net_exact_chebyshev", "net_paper_chebyshev"):
            assert BOUNDS[name].evaluate(values) == math.inf, (name, heads)


def test_overflowing_growth_makes_the_net_bounds_inf() -> None:
    """``(rho + g)^L`` (GD) and ``(1 + A_all g)^L`` (Chebyshev) past the float range: ``inf`` (a vacuous bound), not
    an OverflowError.  (Before issue 15 the GD net bound raised here: ``verify`` of a bfloat16 model with 200 blocks
    crashed in ``attach_bounds``.)"""
    values = {**WHITE, "u": 2.0**-8, "K": 1e3, "L": 200, "A_all": 10.0}
    for name in ("net_exact", "net_paper", "net_exact_chebyshev", "net_paper_chebyshev"):
        assert BOUNDS[name].evaluate(values) == math.inf, name


def test_geometric_series_at_ratio_one_is_its_limit() -> None:
    """``sum_{k<L} r^k`` at ``r = rho + g = 1`` exactly is ``L``, the limit of ``(r^L - 1)/(r - 1)`` (continuity from
    both sides; the closed form would divide by zero)."""
    from theory.bounds import _net_common

    v = {"L": 7, "u": U64, "u64": U64}
    c = {"rho": 0.25, "G": 1.0, "loop_floor": 0.0}
    mismatch = 20 * (2 * U64) * 7 * 0.25**6
    assert _net_common(v, c, 1.0, 0.75) == pytest.approx(7.0 + mismatch, rel=1e-15, abs=0)
    for growth in (0.75 - 1e-7, 0.75 + 1e-7):
        assert _net_common(v, c, 1.0, growth) == pytest.approx(7.0, rel=1e-5, abs=0)


# --------------------------------------------------------------------------- configuration -> symbol values
SIGMA = np.array([[0.30, 0.05], [0.05, 0.12]])  # eigenvalues ~0.11, ~0.31: P < 1, so phi_max = 1/P > 1
FRAMES, BANDS, BLOCKS, TIME = 9, 3, 5, 0.3


def _gp(frames: int = FRAMES) -> GaussianProcess:
    return GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), frames, torch.from_numpy(SIGMA))


def _by_hand(frames: int, bands: int, taper: str | None, t: float) -> dict[str, Any]:
    """The configuration numbers from scipy's dense Toeplitz matrices and numpy, by their definitions."""
    gamma = kernel_from_name("matern", nu=1.5, ell=2.0)(np.arange(frames, dtype=np.float64))
    lags = np.arange(frames)
    weights = (lags <= bands) * (np.clip(1 - lags / (bands + 1), 0, None) if taper == "triangular" else 1.0)
    lam = scipy.linalg.eigvalsh(scipy.linalg.toeplitz(gamma))
    lam_j = scipy.linalg.eigvalsh(scipy.linalg.toeplitz(gamma * weights))
    mu = np.linalg.eigvalsh(SIGMA)
    products = np.outer(lam_j, mu)
    return {"gamma": gamma, "weights": weights, "lam": lam, "lam_j": lam_j, "mu": mu,
            "p_min": products.min(), "p_max": products.max(), "a": math.exp(-t), "s": -math.expm1(-t),
            "T_J": float(np.abs(gamma[bands + 1:]).sum()),
            "bias_J": float((np.abs(gamma[1:bands + 1]) * (1 - weights[1:bands + 1])).sum()),
            "S_J": float(np.abs((gamma * weights)[1:bands + 1]).sum())}


def test_symbol_values_are_the_configurations_numbers_by_definition() -> None:
    """Every value ``symbol_values`` hands to the bounds, against its definition (dense eigenvalues, the Frobenius
    norm, the tail and band sums, the largest time feature ``max(1, 1/P)``, the default tent slope
    ``K = c_max/(1 - cos(pi/W))``, the class sizes ``M = 3(J+1)``, ``D = 2d + 6``, ``X = lambda_max(C)``)."""
    config = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular")
    v = symbol_values(config)
    hand = _by_hand(FRAMES, BANDS, "triangular", TIME)
    tight = {"rel": 1e-12, "abs": 1e-15}
    assert v["t"] == TIME and v["a"] == pytest.approx(hand["a"], rel=1e-15, abs=0)
    assert v["s"] == pytest.approx(hand["s"])
    assert v["lam_min"] == pytest.approx(max(hand["lam"][0], 0.0), **tight)
    assert v["lam_max"] == pytest.approx(hand["lam"][-1], **tight)
    assert v["lamJ_min"] == pytest.approx(hand["lam_j"][0], **tight)
    assert v["lamJ_max"] == pytest.approx(hand["lam_j"][-1], **tight)
    assert (v["mu_min"], v["mu_max"]) == pytest.approx((hand["mu"][0], hand["mu"][-1]), rel=1e-13, abs=0)
    assert v["Sigma_F"] == pytest.approx(np.linalg.norm(SIGMA, "fro"), rel=1e-13, abs=0)
    for name in ("T_J", "bias_J", "S_J"):
        assert v[name] == pytest.approx(hand[name], rel=1e-13, abs=0) and v[name] > 0, name
    assert v["u"] == v["u64"] == 2.0**-53
    assert (v["L"], v["J"], v["H"], v["d"]) == (BLOCKS, BANDS, FRAMES, 2)
    assert (v["nu"], v["ell"]) == (1.5, 2.0)
    centre = 0.5 * (hand["p_min"] + hand["p_max"])
    assert centre < 1 and v["phi_max"] == pytest.approx(1 / centre, rel=1e-12, abs=0)
    assert (v["A_pre"], v["A_suf"], v["A_all"]) == (1.0, 1.0, 1.0)  # GD: every factor a contraction
    window = min(FRAMES, BANDS + 2)
    assert v["c_max"] == pytest.approx(1 / centre, rel=1e-12, abs=0)  # exact mode: c_max = max(1, 1/P)
    assert v["K"] == pytest.approx(v["c_max"] / (1 - math.cos(math.pi / window)), rel=1e-12)
    assert v["omega"] == pytest.approx(math.pi / window, rel=1e-15, abs=0)
    assert (v["M"], v["F_w"], v["D"]) == (3 * (BANDS + 1), 1, 2 * 2 + 6)
    assert v["X"] == pytest.approx(hand["s"] + hand["a"] * hand["lam"][-1] * hand["mu"][-1], rel=1e-12, abs=0)
    assert all(math.isnan(v[name]) for name in ("root", "h", "R_mult"))
    given_values = symbol_values(config, unit_roundoff=2.0**-24, x_ratio=3.5, root=0.25)
    assert (given_values["u"], given_values["u64"], given_values["X"], given_values["root"]) == (
        2.0**-24, 2.0**-53, 3.5, 0.25)


def test_symbol_values_of_the_paper_mode_and_of_a_single_frame() -> None:
    """Paper mode without a model: tents of height 1 (``c_max = 1``), ``M = 3J + 1``; one frame (no lag gap):
    ``K = c_max``; ``W = J + 2 < H`` and ``W = H`` both give ``omega = pi/W``."""
    paper = symbol_values(theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=TIME,
                                                       mode="paper"))
    window = min(FRAMES, BANDS + 2)
    assert paper["c_max"] == 1.0 and paper["K"] == pytest.approx(1 / (1 - math.cos(math.pi / window)), rel=1e-12)
    assert paper["M"] == 3 * BANDS + 1
    full = symbol_values(theory.Configuration.from_gp(_gp(), bands=FRAMES - 1, blocks=1, diffusion_time=TIME))
    assert full["omega"] == pytest.approx(math.pi / FRAMES, rel=1e-15, abs=0)
    single = symbol_values(theory.Configuration.from_gp(_gp(1), bands=0, blocks=1, diffusion_time=TIME))
    assert single["K"] == single["c_max"] and single["omega"] == pytest.approx(math.pi, rel=1e-15, abs=0)


def test_phi_max_of_chebyshev_steps_and_of_no_blocks() -> None:
    """``phi_max = max(1, 1/min_k P_k)``: Chebyshev centres ``P_k = P + Q cos((2k+1) pi/(2L))`` reach down to
    ``P - Q cos(pi/(2L))``; with ``L = 0`` blocks, the GD centre ``P``; with a large Sigma (``P > 1``): 1."""
    hand = _by_hand(FRAMES, BANDS, None, TIME)
    centre, half = 0.5 * (hand["p_max"] + hand["p_min"]), 0.5 * (hand["p_max"] - hand["p_min"])
    chebyshev = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=TIME,
                                             steps="chebyshev")
    smallest = centre - half * math.cos(math.pi / (2 * BLOCKS))
    assert symbol_values(chebyshev)["phi_max"] == pytest.approx(1 / smallest, rel=1e-10, abs=0)
    none = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=0, diffusion_time=TIME)
    assert symbol_values(none)["phi_max"] == pytest.approx(1 / centre, rel=1e-12, abs=0)
    big = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), FRAMES, torch.from_numpy(40 * SIGMA))
    assert symbol_values(theory.Configuration.from_gp(big, bands=BANDS, blocks=BLOCKS,
                                                      diffusion_time=TIME))["phi_max"] == 1.0


def test_chebyshev_schedule_constants_are_its_sub_product_maxima() -> None:
    """``A_pre``, ``A_suf``, ``A_all`` are the largest prefix / suffix / any-range products of ``|1 - eta_j lam|`` over
    the spectrum: at least their maxima over 2001 sampled ``lam`` and at most 5% above (certified within
    ``1/cos(pi/16)`` plus the widening), and these three differ here, so each lands in its own slot."""
    config = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=0.02, steps="chebyshev")
    v = symbol_values(config)
    hand = _by_hand(FRAMES, BANDS, None, 0.02)
    lam = hand["s"] + hand["a"] * np.linspace(hand["p_min"], hand["p_max"], 2001)
    centres = 1 / config.step_sizes  # a P_k + s, in the schedule's order
    factors = np.abs(1 - lam[None, :] / centres[:, None])  # (L, lam)
    ranges = [np.prod(factors[i:j], axis=0).max() for i in range(BLOCKS) for j in range(i + 1, BLOCKS + 1)]
    prefix = max(np.prod(factors[:j], axis=0).max() for j in range(1, BLOCKS + 1))
    suffix = max(np.prod(factors[i:], axis=0).max() for i in range(BLOCKS))
    for name, sampled in (("A_pre", prefix), ("A_suf", suffix), ("A_all", max(ranges))):
        assert sampled <= v[name] <= 1.05 * max(sampled, 1.0), name
    assert len({round(v[name], 6) for name in ("A_pre", "A_suf", "A_all")}) == 3


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_symbol_values_read_the_constructed_model(mode: str) -> None:
    """With a model: its tents (``K``, ``c_max``, ``omega``: the hand formulas of docs/design.md §5), the multiplier's
    knot spacing ``h = 2R/(N-1)`` and range ``R`` (paper mode), and the class sizes ``M``, ``F_w``, ``D`` of
    ``model.size()``."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, mode=mode, taper="triangular", paper_range=32.0,
                               paper_knots=65)
    v = symbol_values(theory.Configuration.from_model(gp, model, TIME))
    hand = _by_hand(FRAMES, BANDS, "triangular", TIME)
    height = 1 / (0.5 * (hand["p_min"] + hand["p_max"])) if mode == "exact" else 1.0
    window = min(FRAMES, BANDS + 2)
    assert v["c_max"] == pytest.approx(height, rel=1e-10, abs=0)
    assert v["K"] == pytest.approx(height / (1 - math.cos(math.pi / window)), rel=1e-10)
    assert v["omega"] == pytest.approx(math.pi / window, rel=1e-15, abs=0)
    size = model.size()
    assert (v["M"], v["D"]) == (size["M"], size["D"]) and v["M"] == (3 * (BANDS + 1) if mode == "exact"
                                                                    else 3 * BANDS + 1)
    if mode == "paper":
        assert v["R_mult"] == 32.0 and v["h"] == pytest.approx(2 * 32.0 / 64, rel=1e-15, abs=0)
        assert v["F_w"] == size["ffn_width"] > 1
    else:
        assert math.isnan(v["h"]) and math.isnan(v["R_mult"])


# ------------------------------------------------------------------------------ evaluate_all and the report
@pytest.mark.parametrize(("mode", "steps"), [("exact", "gd"), ("exact", "chebyshev"), ("paper", "gd"),
                                             ("paper", "chebyshev")])
def test_evaluate_all_reports_the_schedules_parts_and_their_sum(mode: str, steps: str) -> None:
    """``evaluate_all``: the bounds of the configuration's own schedule and mode only (the other schedule's, the
    other mode's and the blocks-needed counts left out), ``gd``/``net`` aliases of them, ``total = gd + trunc +
    net`` (docs/design.md §6, triangle inequality), the paper-mode net ``inf`` without a run's ``|y*|``, and the
    family tail bound beside the exact tail ``sum_{m>J} |gamma(m)|`` that it bounds."""
    config = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=TIME,
                                          taper="triangular", mode=mode, steps=steps)
    out = evaluate_all(config)
    v = symbol_values(config)
    gd_name, exact_name, paper_name = PART_BOUNDS[steps]
    own_net = exact_name if mode == "exact" else paper_name
    always = {"kappa_t", "kappa_J", "contraction", "contraction_chebyshev", "trunc"}
    assert set(out) == always | {gd_name, own_net, "gd", "net", "total", "tail_family", "tail_exact"}
    for name in always | {gd_name}:
        assert out[name] == BOUNDS[name].evaluate(v), name
    assert out["gd"] == out[gd_name]
    if mode == "exact":
        assert out["net"] == out[own_net] == BOUNDS[own_net].evaluate(v) and math.isfinite(out["net"])
    else:
        assert out["net"] == out[own_net] == math.inf
    assert out["total"] == out["gd"] + out["trunc"] + out["net"]
    hand = _by_hand(FRAMES, BANDS, "triangular", TIME)
    assert out["tail_exact"] == pytest.approx(hand["T_J"], rel=1e-13, abs=0)
    assert out["tail_family"] == tails.tail_bound("matern", 1.5, 2.0, BANDS, FRAMES) >= out["tail_exact"]
    # near the end of the sequence the finite-H tail bound (H - 1 - J) gamma(J + 1) is the smaller one: the family
    # tail is that of these H frames, not of an infinite sequence
    late = evaluate_all(theory.Configuration.from_gp(_gp(), bands=FRAMES - 2, blocks=BLOCKS, diffusion_time=TIME,
                                                     taper="triangular", mode=mode, steps=steps))
    finite = tails.tail_bound("matern", 1.5, 2.0, FRAMES - 2, FRAMES)
    assert late["tail_family"] == finite < tails.tail_bound("matern", 1.5, 2.0, FRAMES - 2)
    assert late["tail_exact"] <= finite
    with_run = evaluate_all(config, root=0.5, x_ratio=2.0)  # paper mode still lacks the multiplier's spacing
    assert with_run["net"] == (math.inf if mode == "paper" else
                               BOUNDS[own_net].evaluate(symbol_values(config, root=0.5, x_ratio=2.0)))


def test_evaluate_all_of_a_paper_model_with_a_run_is_finite() -> None:
    """Paper mode with a construction (``h``, ``R``) and ``|y*|`` (``root``): the paper net bound, finite; a user lag
    function has no family tail."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, mode="paper", taper="triangular", paper_range=32.0)
    config = theory.Configuration.from_model(gp, model, TIME)
    out = evaluate_all(config, root=0.5, x_ratio=2.0)
    assert out["net"] == BOUNDS["net_paper"].evaluate(symbol_values(config, root=0.5, x_ratio=2.0))
    assert math.isfinite(out["net"]) and out["total"] == out["gd"] + out["trunc"] + out["net"]
    user = GaussianProcess.from_temporal(torch.from_numpy(scipy.linalg.toeplitz(_by_hand(6, 2, None, 1.0)["gamma"])),
                                         torch.eye(1))
    assert "tail_family" not in evaluate_all(theory.Configuration.from_gp(user, bands=2, blocks=2, diffusion_time=1.0))


def _report(model: Any, dtype: str = "float64", norm: float = 2.0, peak: float | None = None,
            batch: int = 3) -> SimpleNamespace:
    """A stand-in for ``unroll.verify``'s report: the fields ``bounds_for_report`` reads."""
    x = torch.full((batch, FRAMES, 2), 0.5, dtype=torch.float64)
    return SimpleNamespace(bands=BANDS, blocks=BLOCKS, taper="triangular", dtype=dtype, solution_norm=norm, x=x,
                           batch=batch, multiplier_peak=peak,
                           parts={name: SimpleNamespace(bound=None) for name in ("gd", "trunc", "net", "total")},
                           other_schedule_gd_bound={})


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16", "int8"])
def test_bounds_for_report_uses_the_reports_dtype_norm_and_inputs(dtype: str) -> None:
    """The report's bounds are the bounds at ``u`` of its dtype (``eps/2``; an unknown name: float64's),
    ``X = |x|/|y*|``, ``root = sqrt(batch H d)/|y*|``; ``total`` is their sum and ``gd[chebyshev]`` the gd bound of the
    same configuration built with Chebyshev steps."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    report = _report(model, dtype=dtype)
    out = bounds_for_report(report, gp, model, TIME)
    unit = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}.get(dtype, 2.0**-53)
    config = theory.Configuration.from_model(gp, model, TIME)
    x_ratio = 0.5 * math.sqrt(3 * FRAMES * 2) / 2.0
    v = symbol_values(config, unit_roundoff=unit, x_ratio=x_ratio, root=math.sqrt(3 * FRAMES * 2) / 2.0)
    assert out["gd"] == BOUNDS["gd"].evaluate(v) and out["trunc"] == BOUNDS["trunc"].evaluate(v)
    assert out["net"] == BOUNDS["net_exact"].evaluate(v)
    assert out["total"] == out["gd"] + out["trunc"] + out["net"]
    other = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular",
                                         steps="chebyshev")
    assert out["gd[chebyshev]"] == pytest.approx(BOUNDS["gd_chebyshev"].evaluate(other), rel=1e-12, abs=0)
    assert set(out) == {"gd", "trunc", "net", "total", "gd[chebyshev]"}


def test_a_report_without_a_dtype_is_bounded_in_float64() -> None:
    """``bounds_for_report`` reads the report duck-typed: one with no ``dtype`` field gets float64's bounds, not an
    ``AttributeError``."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    typed, untyped = _report(model), _report(model)
    del untyped.dtype
    assert bounds_for_report(untyped, gp, model, TIME) == bounds_for_report(typed, gp, model, TIME)


def test_a_minimal_report_gets_the_defaults_of_each_field_it_lacks() -> None:
    """A report with only the fields ``bounds_for_report`` needs (bands, blocks, taper, solution norm, batch): no
    ``x`` means ``X``'s default, no ``dtype`` float64, and in paper mode no ``multiplier_peak`` an unknown peak, so
    no network bound."""
    gp = _gp()
    minimal = SimpleNamespace(bands=BANDS, blocks=BLOCKS, taper="triangular", solution_norm=2.0, batch=3)
    exact = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    full = _report(exact)
    full.x = None
    assert bounds_for_report(minimal, gp, exact, TIME) == bounds_for_report(full, gp, exact, TIME)
    paper = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular", mode="paper")
    assert bounds_for_report(minimal, gp, paper, TIME)["net"] == math.inf


@pytest.mark.parametrize("norm", [0.5, 1.0, 2.0])
def test_the_input_ratio_and_root_use_any_positive_solution_norm(norm: float) -> None:
    """``X = |x|/|y*|`` and ``root = sqrt(batch H d)/|y*|`` for every ``|y*| > 0``, below 1 as well."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    config = theory.Configuration.from_model(gp, model, TIME)
    root = math.sqrt(3 * FRAMES * 2)
    expected = BOUNDS["net_exact"].evaluate(symbol_values(config, x_ratio=0.5 * root / norm, root=root / norm))
    assert bounds_for_report(_report(model, norm=norm), gp, model, TIME)["net"] == expected
    paper = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, mode="paper", taper="triangular", paper_range=32.0)
    paper_config = theory.Configuration.from_model(gp, paper, TIME)  # net_paper reads root, net_exact X
    expected = BOUNDS["net_paper"].evaluate(symbol_values(paper_config, x_ratio=0.5 * root / norm, root=root / norm))
    assert bounds_for_report(_report(paper, norm=norm, peak=1.0), gp, paper, TIME)["net"] == expected


def test_bounds_for_report_without_inputs_or_norm_and_of_a_chebyshev_model() -> None:
    """No ``x`` in the report: ``X`` takes its default ``lambda_max(C)``; ``|y*| = 0``: ``X`` default and
    ``root = inf``; a Chebyshev model's own gd bound is ``gd_chebyshev`` and the other one ``gd[gd]``."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    config = theory.Configuration.from_model(gp, model, TIME)
    for norm, x in ((2.0, None), (0.0, "keep")):
        report = _report(model, norm=norm)
        if x is None:
            report.x = None
        expected = BOUNDS["net_exact"].evaluate(symbol_values(config))  # X = s + a lam_max mu_max
        assert bounds_for_report(report, gp, model, TIME)["net"] == expected
    cheb = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular", steps="chebyshev")
    out = bounds_for_report(_report(cheb), gp, cheb, TIME)
    cheb_config = theory.Configuration.from_model(gp, cheb, TIME)
    assert out["gd"] == BOUNDS["gd_chebyshev"].evaluate(cheb_config)
    plain = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular")
    assert out["gd[gd]"] == pytest.approx(BOUNDS["gd"].evaluate(plain), rel=1e-12, abs=0) and "gd[chebyshev]" not in out


@pytest.mark.parametrize(("peak", "inside"), [(None, False), (10.0, True), (32.0, True), (32.5, False)])
def test_paper_net_bound_needs_the_multiplier_inside_its_range(peak: float | None, inside: bool) -> None:
    """Paper mode: the net bound holds only if every product fed to the multiplier stayed in ``[-R, R]`` (peak
    ``<= R``; at ``R`` itself still inside); otherwise, or with no peak measured, ``inf``."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, mode="paper", taper="triangular", paper_range=32.0)
    out = bounds_for_report(_report(model, peak=peak), gp, model, TIME)
    config = theory.Configuration.from_model(gp, model, TIME)
    root = math.sqrt(3 * FRAMES * 2) / 2.0
    expected = BOUNDS["net_paper"].evaluate(symbol_values(config, x_ratio=0.5 * root, root=root))
    assert out["net"] == (expected if inside else math.inf) and math.isfinite(expected)


def test_a_model_without_construction_has_no_net_bound() -> None:
    """A trained (not constructed) model: the gd and trunc bounds of the report's own J, L and taper, net ``inf``."""
    gp = _gp()
    out = bounds_for_report(_report(None), gp, SimpleNamespace(), TIME)
    config = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular")
    assert out["gd"] == BOUNDS["gd"].evaluate(config) and out["trunc"] == BOUNDS["trunc"].evaluate(config)
    assert out["net"] == math.inf == out["total"]


def test_attach_bounds_fills_the_reports_parts_and_the_other_schedule() -> None:
    """``attach_bounds`` writes each part's bound and the other schedule's gd bound into the report (a report
    without ``other_schedule_gd_bound`` is left without it), and touches no other part."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, taper="triangular")
    report = _report(model)
    report.parts["extra"] = SimpleNamespace(bound="untouched")
    attach_bounds(report, gp, model, TIME)
    expected = bounds_for_report(_report(model), gp, model, TIME)
    for name in ("gd", "trunc", "net", "total"):
        assert report.parts[name].bound == expected[name] and isinstance(report.parts[name].bound, float)
    assert report.other_schedule_gd_bound == {"chebyshev": expected["gd[chebyshev]"]}
    assert report.parts["extra"].bound == "untouched"
    bare = _report(model)
    del bare.other_schedule_gd_bound
    attach_bounds(bare, gp, model, TIME)
    assert bare.parts["gd"].bound == expected["gd"] and not hasattr(bare, "other_schedule_gd_bound")


# -------------------------------------------------------------------------------------- the Bound object
def test_bound_evaluates_a_configuration_like_its_symbol_values() -> None:
    """``evaluate``/``evaluate_symbolic`` of a Configuration are those of ``symbol_values(config)``; the free
    symbols are listed sorted by name; a missing value is named in a ValueError."""
    config = theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular")
    v = symbol_values(config)
    for name in ("gd", "trunc", "net_exact", "contraction"):
        bound = BOUNDS[name]
        assert bound.evaluate(config) == bound.evaluate(v)
        assert bound.evaluate_symbolic(config) == bound.evaluate_symbolic(v)
        names = [symbol.name for symbol in bound.symbols]
        assert names == sorted(names) and set(names) == {s.name for s in bound.expression.free_symbols}
    with pytest.raises(ValueError, match=r"'u64'"):
        BOUNDS["gd"].evaluate_symbolic({k: value for k, value in v.items() if k != "u64"})


def test_symbolic_evaluation_is_silent_on_discarded_branches() -> None:
    """At ``kappa_J = 1`` the Chebyshev factor's other Piecewise branch divides by ``kappa_J - 1`` (and multiplies the
    resulting inf by 0): numpy evaluates it and discards it, with no RuntimeWarning (so no error under ``-W error``)
    and the exact-branch value 0; a power past the float range is ``inf``, silently, too."""
    overflowing = {**WHITE, "u": 2.0**-8, "K": 1e3, "L": 200, "A_all": 10.0}  # (1 + A_all g)^L overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = BOUNDS["gd_chebyshev"].evaluate_symbolic(WHITE)
        vacuous = BOUNDS["net_exact_chebyshev"].evaluate_symbolic(overflowing)
    assert value == pytest.approx(reference(WHITE)["gd_chebyshev"], rel=REL, abs=0) and vacuous == math.inf


def test_printed_forms_name_the_shared_quantities() -> None:
    """``compact`` replaces the shared sub-expressions by their names (rho, kappa_J, G, lambda_min(C_J), ...), and
    ``str(bound)`` is ``name <= formula`` then ``(description; needs: ...)``, ``none`` without assumptions."""
    fresh = {name: dataclasses.replace(BOUNDS[name]) for name in BOUNDS}  # compact is cached: compute it here
    assert fresh["contraction"].compact == sp.Symbol("rho")
    assert fresh["kappa_J"].compact == sp.Symbol("kappa_J")
    assert fresh["kappa_t"].compact == sp.Symbol("kappa_t")
    assert fresh["contraction_chebyshev"].compact == sp.Symbol("rho_C")
    gd = fresh["gd"]
    names = {symbol.name for symbol in gd.compact.free_symbols}
    assert {"rho_eff", "G", "kappa_J", "lambda_min(C_J)", "lambda_max(C_J)"} <= names
    assert gd.text() == sp.sstr(gd.compact) and gd.latex() == sp.latex(gd.compact)
    assert str(gd) == f"gd <= {gd.text()}\n    ({gd.description}; needs: gd_converges)"
    trunc = fresh["trunc"]
    assert str(trunc).endswith("; needs: gamma_pd, gd_converges)")
    log_tail = tail_bound("logarithmic")
    assert str(log_tail).endswith("; needs: none)") and log_tail.needs == ()


@pytest.mark.parametrize("family", ["gamma-exponential", "matern", "polynomial", "logarithmic"])
def test_tail_bound_object_is_the_family_bound_above_the_brute_force_tail(family: str) -> None:
    """``tail_bound(family)``: its numeric path is ``theory.tails.tail_bound`` at integer ``J, H`` and lies above the
    tail summed lag by lag; it needs ``tail_summable`` except for the (finite-H only) logarithmic family."""
    bound = tail_bound(family)
    assert bound.name == f"tail[{family}]" and family in bound.description
    assert bound.needs == (() if family == "logarithmic" else ("tail_summable",))
    assert isinstance(bound.inequalities, str) and bound.inequalities  # printed by `unroll bounds` as "uses: ..."
    kernel = kernel_from_name(family, nu=1.5, ell=2.0)
    for bands, frames in ((2, 30), (5, 12)):
        values = {"nu": 1.5, "ell": 2.0, "J": float(bands), "H": float(frames)}
        brute = float(sum(kernel(np.array([float(m)]))[0] for m in range(bands + 1, frames)))
        assert bound.evaluate(values) == tails.tail_bound(family, 1.5, 2.0, bands, frames) >= brute


def test_heads_and_tent_slope_expressions_default_to_exact_mode() -> None:
    """``M(J) = 3(J+1)`` and ``K = c_max/(1 - cos(pi/min(H, J+2)))`` by default (exact mode); paper mode's tents have
    height 1 whatever ``c_max`` is: ``M = 3J + 1``, ``K = 1/(1 - cos(pi/W))``."""
    J, H, c_max = SYMBOLS["J"], SYMBOLS["H"], SYMBOLS["c_max"]
    point = {J: 3, H: 9, c_max: 2.5}
    gap = 1 - math.cos(math.pi / 5)
    assert heads_expression().subs(point) == 12 and heads_expression("paper").subs(point) == 10
    assert float(tent_slope_expression().subs(point)) == pytest.approx(2.5 / gap, rel=1e-14, abs=0)
    assert float(tent_slope_expression("exact").subs(point)) == pytest.approx(2.5 / gap, rel=1e-14, abs=0)
    assert float(tent_slope_expression("paper").subs(point)) == pytest.approx(1 / gap, rel=1e-14, abs=0)


def test_bands_needed_bound_is_the_tails_expression() -> None:
    for family in ("gamma-exponential", "matern", "polynomial"):
        assert bands_needed_bound(family) == tails.bands_needed_expression(family)


# ------------------------------------------------------------------------- small t and the sample size
def test_small_time_behaviour_expressions_by_hand() -> None:
    """Each expression of ``small_time_behaviour`` at numbers, against its formula in the docstring:
    ``kappa_t <= 1 + lam_max mu_max/(e^t - 1)``, leading ``lam_max mu_max/t``, blocks ``kappa/2 log(1/eps)``
    leading ``lam_max mu_max log(1/eps)/(2t)``, score scale ``1/(1 - e^-t)`` leading ``1/t``, and the truncation
    bound's ``t -> 0`` limit ``2 mu_max (T_J + bias)/(lamJ_min min(mu_min, mu_max))``."""
    small = small_time_behaviour()
    point = {"lam_max": 3.0, "mu_max": 2.0, "mu_min": 0.5, "t": 0.01, "epsilon": 1e-4, "T_J": 0.2, "bias_J": 0.1,
             "lamJ_min": 0.4}
    subs = {SYMBOLS[name]: value for name, value in point.items()}

    def at(name: str) -> float:
        return float(small[name].subs(subs))

    assert at("kappa_upper") == pytest.approx(1 + 6.0 / math.expm1(0.01), rel=1e-12, abs=0)
    assert at("kappa_leading") == pytest.approx(6.0 / 0.01, rel=1e-12, abs=0)
    assert at("blocks_leading") == pytest.approx(6.0 * math.log(1e4) / (2 * 0.01), rel=1e-12, abs=0)
    assert at("score_scale") == pytest.approx(1 / -math.expm1(-0.01), rel=1e-12, abs=0)
    assert at("score_scale_leading") == pytest.approx(1 / 0.01, rel=1e-12, abs=0)
    assert at("trunc_limit") == pytest.approx(2 * 2.0 * 0.3 / (0.4 * 0.5), rel=1e-12, abs=0)


def test_sample_complexity_expressions_by_hand() -> None:
    """``log N = C_N L M D^2 log(n L B R)``, ``err^2 = C_1 R^2/t0 log N / n + err_approx^2``, ``TV = C_2 sqrt(T err^2)
    + C_3 e^-T + C_4 sqrt(t0 H d)``, statistical term ``C_2 sqrt(T C_1 R^2/t0 log N/n)``, at numbers."""
    out = sample_complexity()
    names = {"C_1": 1.5, "C_2": 0.7, "C_3": 2.0, "C_4": 0.3, "C_N": 1.1, "t_0": 0.01, "T": 4.0, "B": 50.0,
             "R": 3.0, "err_approx": 0.02}
    free = set().union(*(expression.free_symbols for expression in out.values() if hasattr(expression, "free_symbols")))
    by_name = {symbol.name: symbol for symbol in free}
    point = {**names, "n": 1e4, "L": 6, "M": 12, "D": 10, "H": 16, "d": 2}
    subs = {by_name[name]: value for name, value in point.items()}
    log_n = 1.1 * 6 * 12 * 100 * math.log(1e4 * 6 * 50.0 * 3.0)
    score = 1.5 * 9.0 / 0.01 * log_n / 1e4 + 0.02**2
    assert float(out["log_covering"].subs(subs)) == pytest.approx(log_n, rel=1e-12, abs=0)
    assert float(out["score_error_squared"].subs(subs)) == pytest.approx(score, rel=1e-12, abs=0)
    tv = 0.7 * math.sqrt(4.0 * score) + 2.0 * math.exp(-4.0) + 0.3 * math.sqrt(0.01 * 16 * 2)
    assert float(out["total_variation"].subs(subs)) == pytest.approx(tv, rel=1e-12, abs=0)
    statistical = 0.7 * math.sqrt(4.0 * 1.5 * 9.0 / 0.01 * log_n / 1e4)
    assert float(out["statistical_term"].subs(subs)) == pytest.approx(statistical, rel=1e-12, abs=0)
    assert out["rate_exponent"] == sp.Rational(-1, 2)
    # with positive symbols the statistical term is a plain product of powers, each parameter's rate readable off
    # it (n^(-1/2), R^1, t0^(-1/2), C_1^(1/2), T^(1/2)), not buried in one sqrt(R^2 T .../t0)
    powers = out["statistical_term"].as_powers_dict()
    half = sp.Rational(1, 2)
    assert (powers[by_name["n"]], powers[by_name["R"]], powers[by_name["t_0"]]) == (-half, 1, -half)
    assert (powers[by_name["C_1"]], powers[by_name["C_N"]], powers[by_name["T"]], powers[by_name["D"]]) == (
        half, half, half, 1)


# --------------------------------------------------------------------- helpers used to build the expressions
def test_gamma_n_helpers_are_highams_constant() -> None:
    """``gamma_n = n u/(1 - n u)`` in sympy (building the expressions at import) and in floats (``inf`` at
    ``n u >= 1``)."""
    assert sp.simplify(_gamma_n(sp.Integer(3), sp.Rational(1, 10)) - sp.Rational(3, 7)) == 0
    n, unit = sp.symbols("n unit", positive=True)
    assert sp.simplify(_gamma_n(n, unit) - n * unit / (1 - n * unit)) == 0
    assert _gamma_num(3, 0.1) == pytest.approx(3 / 7, rel=1e-15, abs=0)
    assert _gamma_num(10, 0.1) == math.inf and _gamma_num(20, 0.1) == math.inf


def test_growth_power_is_the_power_or_inf() -> None:
    """``(1 + rate)^exponent`` (to rounding), ``inf`` past the float range instead of an OverflowError."""
    assert _growth_power(0.5, 3) == pytest.approx(3.375, rel=1e-15, abs=0)
    assert _growth_power(0.0, 7) == 1.0 and _growth_power(1e-3, 0) == 1.0
    assert _growth_power(1.0, 2000) == math.inf


_TEST_B, _TEST_G = sp.Symbol("b_test", positive=True), sp.Symbol("g_test", positive=True)


def _combinators() -> tuple[list[sp.Symbol], Any, Any]:
    """``_net_common_e(b, g)`` and ``_net_cheb_common_e(b, g)`` rebuilt now and lambdified.  Not cached across
    tests: a mutant of the builders must be live when they run (mutmut forks its workers from a process that has
    already run every test once)."""
    gd_form, cheb_form = _net_common_e(_TEST_B, _TEST_G), _net_cheb_common_e(_TEST_B, _TEST_G)
    symbols = sorted(gd_form.free_symbols | cheb_form.free_symbols, key=lambda symbol: symbol.name)
    return (symbols, sp.lambdify(symbols, gd_form, modules=["scipy", "numpy"]),
            sp.lambdify(symbols, cheb_form, modules=["scipy", "numpy"]))


#: (shrink, growth, delta, L, J, t): the ratio r = rho + g = 1 exactly (the Piecewise branch L), kappa_J ~ 1e6 (the
#: mismatch's (1 + unit A_all kappa_J)^L matters), then 30 seeded draws
_COMBINATOR_CASES = [(0.5, 0.5, 1.0, 3, 0, 0.5), (0.999, 1e-3, 1.0, 40, 2, 1e-6), (0.0, 0.1, 2.0, 0, 0, 1.0)] + [
    (float(rng.uniform(0, 0.999)), float(rng.uniform(1e-6, 0.5)), float(rng.uniform(1e-3, 10)),
     int(rng.integers(0, 41)), int(rng.integers(0, 41)), float(math.exp(rng.uniform(math.log(1e-6), 0.0))))
    for rng in [np.random.default_rng(15)] for _ in range(30)]


def test_symbolic_net_combinators_are_the_recursions_sums() -> None:
    """``_net_common_e(b, g)`` (GD: ``sum_{k<L} (rho + g)^k b`` + loop floor + mismatch) and
    ``_net_cheb_common_e(b, g)`` (``A_suf L b (1 + A_all g)^L`` + floor + mismatch), rebuilt inside this test and
    evaluated at numbers, against the sums written as loops (they build ``net_*_e`` at import, where no test would
    otherwise see them).  The floors are checked alone too (``b = 0``), as the main term would hide them."""
    symbols, gd_form, cheb_form = _combinators()
    for shrink, growth, delta, blocks, bands, t in _COMBINATOR_CASES:
        values = {**WHITE, "L": blocks, "lamJ_min": 1.0 - shrink, "A_pre": 1.5, "A_suf": 2.0, "A_all": 1e3,
                  "J": bands, "H": bands + 1, "b_test": delta, "g_test": growth, "t": t, "a": math.exp(-t),
                  "s": -math.expm1(-t), "T_J": 0.3, "bias_J": 0.1}  # a tail, so that G != 1
        if shrink == 0.5 and growth == 0.5:  # lambda(C_J) in [1/4, 3/4]: kappa_J = 3, rho = 1/2, rho + g = 1
            values.update(s=0.0, a=1.0, lamJ_min=0.25, lamJ_max=0.75)
        c = reference(values)
        rho, unit = c["contraction"], 20 * (2 * U64)
        series = sum((rho + growth) ** k for k in range(blocks))
        mismatch = unit * blocks * rho ** max(blocks - 1, 0) * c["_G"]
        cheb_mismatch = (unit * blocks * 2.0 * 1.5 * c["kappa_J"] * (1 + unit * 1e3 * c["kappa_J"]) ** blocks
                         * c["_G"])
        for block_error in (delta, 0.0):
            values["b_test"] = block_error
            args = [np.int64(values[sym.name]) if sym.is_integer else np.float64(values[sym.name]) for sym in symbols]
            gd_expected = series * block_error + c["_loop_floor"] + mismatch
            cheb_expected = (2.0 * blocks * block_error * (1 + 1e3 * growth) ** blocks + c["_loop_floor_C"]
                             + cheb_mismatch)
            with np.errstate(divide="ignore", invalid="ignore"):
                assert float(gd_form(*args)) == pytest.approx(gd_expected, rel=REL, abs=1e-300), values
                assert float(cheb_form(*args)) == pytest.approx(cheb_expected, rel=REL, abs=1e-300), values


# ------------------------------------------------- regressions: vacuous rounding models through verify
def _bfloat16_report(frames: int, bands: int, blocks: int, dim: int, t: float) -> VerificationReport:
    """``verify`` of the bfloat16 construction for a Matérn(1.5, 1.5) GP with ``Sigma = I_dim``, plain band cut."""
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=1.5), frames, torch.eye(dim, dtype=torch.float64))
    model = construct_unrolled(gp, blocks=blocks, bands=bands, dtype=torch.bfloat16)
    return verify(gp, model, t, batch=2)


def test_bfloat16_verify_with_many_bands_reports_an_infinite_not_a_nan_net_bound() -> None:
    """bfloat16 (``u = 2^-8``) with ``J = 49`` bands: the rounding count ``2J + 1 + M + d + 8 = 5J + 13 = 258 >= 1/u``
    makes ``gamma_n`` vacuous, so the GD net bound is ``inf`` (a verdict).  It was NaN (``(inf - 1)/(inf - 1)`` in the
    geometric series), and so was the total: a NaN bound is neither held nor failed."""
    report = _bfloat16_report(50, 49, 1, dim=1, t=0.5)
    assert report.parts["net"].bound == math.inf and report.parts["total"].bound == math.inf
    assert math.isfinite(report.parts["gd"].bound) and math.isfinite(report.parts["trunc"].bound)


def test_bfloat16_verify_with_many_blocks_reports_an_infinite_net_bound() -> None:
    """bfloat16, 200 blocks: ``(rho + g)^L`` overflows the float range, so the GD net bound is ``inf``; it raised
    OverflowError out of ``verify`` (``attach_bounds``)."""
    report = _bfloat16_report(10, 3, 200, dim=2, t=0.2)
    assert report.parts["net"].bound == math.inf


@pytest.mark.parametrize(("steps", "dtype", "blocks"), [("chebyshev", torch.float64, 12),
                                                        ("chebyshev", torch.float32, 6), ("gd", torch.bfloat16, 4),
                                                        ("gd", torch.float64, 30)])
def test_every_measured_part_is_below_its_bound(steps: str, dtype: torch.dtype, blocks: int) -> None:
    """The bounds are bounds: on constructed networks (Chebyshev steps, float32 and bfloat16 too) every measured part
    of ``verify`` is at most its bound, and no bound is NaN (a bound below its measurement is a bug in one of them)."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=blocks, bands=BANDS, taper="triangular", steps=steps, dtype=dtype)
    report = verify(gp, model, TIME, batch=2)
    for name, result in theory.check_report(report).items():
        assert result.holds and not math.isnan(result.bound), (name, str(result))


def test_symbol_values_of_a_construction_without_a_multiplier() -> None:
    """``Configuration.construction`` is read duck-typed: one that has the tent slope, the largest height and the
    frame frequency but no ``multiplier`` (an exact-mode construction of one's own) gives those values and no
    multiplier spacing or range."""
    gp = _gp()
    construction = SimpleNamespace(tent_slope=3.0, height_max=0.5, frequency=0.25)
    config = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=TIME, taper="triangular",
                                          construction=construction)
    values = symbol_values(config)
    assert (values["K"], values["c_max"], values["omega"]) == (3.0, 0.5, 0.25)
    assert math.isnan(values["h"]) and math.isnan(values["R_mult"])


def test_chebyshev_bound_where_the_reference_loops_growth_matters() -> None:
    """200 blocks, ``A_all = 1e3``, ``||Sigma||_F = 1e6``: the Chebyshev term is ``rho_C^200 ~ 0`` and the reference
    loop's rounding floor, with its growth ``(1 + A_all g step_work)^L`` (about 1.004 here), is the bound; the
    drawn configurations never make that factor matter (a mutant writing ``g / step_work`` passed them)."""
    values = dict(WHITE)
    values.update({"lamJ_min": 0.5, "lamJ_max": 1.5, "lam_min": 0.5, "lam_max": 1.5, "L": 200, "A_all": 1e3,
                   "Sigma_F": 1e6, "J": 2, "H": 8})
    _check(values, ("gd_chebyshev",))
