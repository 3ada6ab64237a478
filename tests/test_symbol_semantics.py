"""unroll.linalg.symbol against independent oracles (mutmut survivors of unroll/linalg/symbol.py, issue 15).

* The symbol ``f(theta) = g(0) + 2 sum_m g(m) cos(m theta)`` is, in ``x = cos(theta)``, the Chebyshev series
  ``p(x) = g(0) + 2 sum_m g(m) T_m(x)`` on ``[-1, 1]``; its exact extremes are ``p`` at the endpoints and at the real
  roots of ``p'`` (numpy's Chebyshev class: colleague-matrix roots, no grid, no FFT, no Newton).  Newton's
  refinement is what takes the grid value (off by ``~ max|f''| (pi/grid)^2 / 2``, ~1e-4 relative) to rounding
  level, so a tolerance of rounding size pins every part of ``symbol_extremes``.
* ``toeplitz_extremes`` up to ``DENSE_MAX_FRAMES`` is ``numpy.linalg.eigvalsh`` of the dense ``scipy.linalg.toeplitz``
  matrix, beyond it the symbol's range, which contains the spectrum for every H (Grenander–Szegő).

Tolerances: an extreme value is a sum of ``K + 1`` terms bounded by ``sum |c|`` (``c`` the Chebyshev
coefficients); both sides evaluate it in float64 with at most ``~log2(grid) + K + 10`` roundings on a path,
so they agree to ``gamma_n sum|c|`` with ``n <= 2 (K + 64)``: ``ROUNDING(c) = 2 (K + 64) u sum |c|``
(``u = 2^-53``), far below the grid-only error these tests must detect.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from unroll.linalg import symbol
from unroll.linalg.symbol import DENSE_MAX_FRAMES, symbol_extremes, toeplitz_extremes

UNIT = 2.0**-53
LAGS = st.lists(st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False), min_size=2, max_size=40)
#: (1 - cos theta)^3 = 5/2 - 15/4 cos + 3/2 cos 2 theta - 1/4 cos 3 theta: minimum 0 at theta = 0, where f' and
#: f'' both vanish exactly (dyadic coefficients: the float sums are exact) -- Newton must not divide by f'' = 0
FLAT_MINIMUM = np.array([2.5, -15.0 / 8.0, 0.75, -1.0 / 8.0])


def chebyshev_coefficients(lags: np.ndarray) -> np.ndarray:
    """``p(x) = sum_k c_k T_k(x)`` with ``p(cos theta) = f(theta)``: ``c_0 = g(0)``, ``c_m = 2 g(m)``."""
    return np.concatenate([lags[:1], 2.0 * lags[1:]])


def rounding(lags: np.ndarray) -> float:
    """``2 (K + 64) u sum |c|``: the float64 evaluation error of one symbol value, on either side (module doc)."""
    return 2.0 * (lags.shape[0] + 64) * UNIT * float(np.abs(chebyshev_coefficients(lags)).sum())


def chebyshev_extremes(lags: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` of ``p`` on ``[-1, 1]``: endpoints and the (nearly) real roots of ``p'``, clipped into range.

    Every candidate is a value of ``p`` at a point of ``[-1, 1]``, so ``min`` is ``>= min f`` and equals it once the
    minimiser is among the candidates (a root of ``p'`` or an endpoint).  Trailing coefficients below
    ``u sum |c|`` are dropped first (they move ``p`` by less than that, inside :func:`rounding`; left in, a leading
    coefficient of 1e-167 makes the colleague matrix's roots garbage)."""
    coefficients = chebyshev_coefficients(lags)
    keep = np.flatnonzero(np.abs(coefficients) > UNIT * np.abs(coefficients).sum())
    series = np.polynomial.Chebyshev(coefficients[: int(keep[-1]) + 1] if keep.size else coefficients[:1])
    roots = series.deriv().roots() if series.degree() > 1 else np.array([])
    real = np.clip(roots.real[np.abs(roots.imag) <= 1e-3], -1.0, 1.0)
    candidates = series(np.concatenate([real, [-1.0, 1.0]]))
    return float(candidates.min()), float(candidates.max())


def cosine_sum(lags: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The symbol by its definition, one plain loop over the lags."""
    total = np.full_like(theta, lags[0])
    for m in range(1, lags.shape[0]):
        total = total + 2.0 * lags[m] * np.cos(m * theta)
    return total


def random_lags(seed: int, degree: int) -> np.ndarray:
    """Seeded normal lag values ``g(0..degree)``, decaying like ``1/(1+m)`` (a kernel-like, generic symbol)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(degree + 1) / (1.0 + np.arange(degree + 1))


@settings(max_examples=80, deadline=None)
@given(LAGS)
@example([1.0, 0.5])  # degree 1: extremes at the endpoints g0 -+ 2 g1
@example([0.0, 0.0, 0.0, 1.0])  # 2 cos(3 theta): several equal minima
@example(list(FLAT_MINIMUM))
@example([0.0, 0.0, 0.0, 0.0, 1.0, 8.205515030631753e-167])  # a negligible last lag (the oracle must trim it)
def test_symbol_extremes_are_the_chebyshev_series_extremes(values: list[float]) -> None:
    """``symbol_extremes`` = exact extremes of the symbol to rounding (kills: every sign, factor and index change in
    ``_symbol_derivatives``, the grid layout, the Newton update and the final ``sign * min``)."""
    lags = np.array(values)
    low, high = symbol_extremes(lags)
    expected_low, expected_high = chebyshev_extremes(lags)
    tolerance = rounding(lags) + 1e-300
    assert abs(low - expected_low) <= tolerance and abs(high - expected_high) <= tolerance


@pytest.mark.parametrize("degree", [1, 2, 3, 7, 20, 63])
@pytest.mark.parametrize("seed", range(4))
def test_newton_reaches_rounding_level_on_generic_symbols(seed: int, degree: int) -> None:
    """Generic (interior, non-grid) extrema: the grid alone is off by ~1e-4, Newton must reach rounding level.

    Also pins the Grenander–Szegő lower/upper property against the plain cosine sum at 4001 points."""
    lags = random_lags(seed, degree)
    low, high = symbol_extremes(lags)
    expected_low, expected_high = chebyshev_extremes(lags)
    tolerance = rounding(lags)
    assert abs(low - expected_low) <= tolerance and abs(high - expected_high) <= tolerance
    samples = cosine_sum(lags, np.linspace(0.0, np.pi, 4001))
    assert low <= samples.min() + tolerance and samples.max() <= high + tolerance


def test_grid_alone_would_not_pass_the_tolerance() -> None:
    """The tests above can fail: the best grid value (the FFT grid of ``symbol_extremes``, recomputed here from the
    plain cosine sum) misses the exact minimum of these symbols by far more than the rounding tolerance, so
    anything that disables the Newton refinement is detected."""
    for seed in range(4):
        lags = random_lags(seed, 20)
        degree = lags.shape[0] - 1
        grid = 1 << math.ceil(math.log2(symbol.GRID_PER_DEGREE * (degree + 1)))
        theta = 2.0 * np.pi * np.arange(grid // 2 + 1) / grid
        grid_values = cosine_sum(lags, theta)
        expected_low, expected_high = chebyshev_extremes(lags)
        # at least one of the two extremes is interior, off the grid (an endpoint extremum is a grid point)
        missed = max(grid_values.min() - expected_low, expected_high - grid_values.max())
        assert missed > 1e3 * rounding(lags)


def test_flat_minimum_where_the_curvature_vanishes() -> None:
    """``(1 - cos theta)^3``: ``f''(0) = 0`` exactly at the minimiser, a grid point.  Newton must leave points with
    ``sign f'' <= 0`` alone (``0/0`` there would make the result NaN, with a RuntimeWarning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = symbol_extremes(FLAT_MINIMUM)
    assert abs(low) <= rounding(FLAT_MINIMUM) and abs(high - 8.0) <= rounding(FLAT_MINIMUM)  # f(0) = 0, f(pi) = 2^3


def test_constant_symbol_and_trailing_zeros() -> None:
    """Degree 0 (only ``g(0)``, or every lag zero) is the constant ``g(0)``; trailing zero lags (a band cut)
    change nothing; a torch tensor (also one that requires grad) and a 2-D view give the same numbers."""
    assert symbol_extremes(np.array([3.0])) == (3.0, 3.0)
    assert symbol_extremes(np.array([3.0, 0.0, 0.0])) == (3.0, 3.0)
    assert symbol_extremes(np.zeros(5)) == (0.0, 0.0)
    assert symbol_extremes(np.array([-2.0, 0.0])) == (-2.0, -2.0)
    lags = random_lags(7, 9)
    padded = np.concatenate([lags, np.zeros(30)])
    expected_low, expected_high = chebyshev_extremes(lags)
    for form in (padded, torch.tensor(padded, requires_grad=True), torch.tensor(padded)[None, :]):
        low, high = symbol_extremes(form)
        assert abs(low - expected_low) <= rounding(lags) and abs(high - expected_high) <= rounding(lags)


def test_low_precision_input_is_computed_in_float64() -> None:
    """float32 lag values (numpy or torch) are widened first: the result is the float64 symbol range of the rounded
    values to float64 rounding (a float32 FFT and Newton would be off by ~1e-7)."""
    lags = random_lags(3, 12)
    rounded = lags.astype(np.float32)
    expected_low, expected_high = chebyshev_extremes(rounded.astype(np.float64))
    for form in (rounded, torch.from_numpy(rounded)):
        low, high = symbol_extremes(form)
        assert abs(low - expected_low) <= rounding(lags) and abs(high - expected_high) <= rounding(lags)


def test_degree_one_extremes_are_the_endpoint_values() -> None:
    """``g0 + 2 g1 cos theta`` has range ``[g0 - 2|g1|, g0 + 2|g1|]`` (dyadic numbers: exact)."""
    assert symbol_extremes(np.array([1.0, 0.25])) == (0.5, 1.5)
    assert symbol_extremes(np.array([1.0, -0.25])) == (0.5, 1.5)


def dense_extremes(lags: np.ndarray) -> tuple[float, float]:
    eigenvalues = np.linalg.eigvalsh(scipy.linalg.toeplitz(lags))
    return float(eigenvalues[0]), float(eigenvalues[-1])


@pytest.mark.parametrize("frames", [1, 2, 3, 8, 33])
def test_toeplitz_extremes_is_the_dense_spectrum(frames: int) -> None:
    """Below the dense limit: the extreme eigenvalues of ``toeplitz(g)`` (numpy on scipy's dense matrix), to
    ``c u ||T||`` with ``||T|| <= sum |c|``; a float32 input is solved in float64 (1e-7 would fail)."""
    lags = random_lags(frames, frames - 1)
    lags[0] += 2.0
    expected = dense_extremes(lags)
    tolerance = 64 * frames * UNIT * float(np.abs(chebyshev_coefficients(lags)).sum())
    low, high = toeplitz_extremes(torch.from_numpy(lags))
    assert abs(low - expected[0]) <= tolerance and abs(high - expected[1]) <= tolerance
    rounded = torch.from_numpy(lags).to(torch.float32)
    expected32 = dense_extremes(rounded.to(torch.float64).numpy())
    low32, high32 = toeplitz_extremes(rounded)
    assert abs(low32 - expected32[0]) <= tolerance and abs(high32 - expected32[1]) <= tolerance


def test_the_switch_to_the_symbol_is_just_after_the_dense_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """``H <= DENSE_MAX_FRAMES``: dense; ``H = DENSE_MAX_FRAMES + 1``: the symbol's range, which contains the dense
    spectrum (Grenander–Szegő) and differs from it here by far more than rounding."""
    assert DENSE_MAX_FRAMES == 2048
    monkeypatch.setattr(symbol, "DENSE_MAX_FRAMES", 24)
    lags = np.zeros(25)
    lags[:4] = [1.5, 0.4, -0.2, 0.1]
    for frames in (24, 25):
        dense = dense_extremes(lags[:frames])
        ranged = chebyshev_extremes(lags[:4])
        assert ranged[0] < dense[0] - 1e-6 and dense[1] + 1e-6 < ranged[1]
        got = toeplitz_extremes(torch.from_numpy(lags[:frames]))
        expected = dense if frames == 24 else ranged
        assert got == pytest.approx(expected, rel=0, abs=1e-13)


@settings(max_examples=40, deadline=None)
@given(LAGS, st.integers(1, 40))
def test_symbol_range_contains_every_finite_section(values: list[float], frames: int) -> None:
    """Grenander–Szegő: the spectrum of every ``T_H`` lies in ``[min f, max f]`` (a vector's Rayleigh quotient is an
    average of ``f``), up to the eigen-solve's backward error ``c u ||T||``."""
    lags = np.array(values)
    column = np.zeros(frames)
    column[: min(frames, lags.shape[0])] = lags[:frames]
    low, high = symbol_extremes(column)
    dense = dense_extremes(column)
    tolerance = 2 * rounding(column) + 1e-300
    assert low <= dense[0] + tolerance and dense[1] <= high + tolerance
