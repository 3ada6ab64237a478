"""Semantic tests of ``unroll.data.kernels`` written to kill the survivors of mutation testing (issue 15).

Every expected value comes from an independent oracle: mpmath's ``besselk`` at 40 digits or scipy's unscaled
``kv`` for the Matérn family (the module evaluates the scaled ``kve`` in log form, a three-term recurrence and a
small-argument series instead), and the textbook closed forms for the other families.  The relative tolerance
2e-13 is the accuracy the ``Matern`` docstring claims over its whole range (measured worst case here: 1.0e-13).
"""

from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
import scipy.special

from unroll._validate import NonFiniteError
from unroll.data import kernels
from unroll.data.kernels import (
    DampedCosine,
    GammaExponential,
    LagFunction,
    Logarithmic,
    Matern,
    Polynomial,
    kernel_from_name,
)

#: the accuracy the Matern docstring claims (checked against mpmath) for every 0 < nu <= 100 and every lag
MATERN_RTOL = 2e-13


def matern_oracle(nu: float, z: float) -> float:
    """``2**(1-nu)/Gamma(nu) z**nu K_nu(z)`` at 40 digits with mpmath (``z`` given exactly as a float)."""
    if z == 0.0:
        return 1.0
    with mpmath.workdps(40):
        order, argument = mpmath.mpf(nu), mpmath.mpf(z)
        return float(mpmath.power(2, 1 - order) / mpmath.gamma(order) * mpmath.power(argument, order)
                     * mpmath.besselk(order, argument))


def matern_scipy(nu: float, z: np.ndarray) -> np.ndarray:
    """The same function from scipy's unscaled ``kv`` (finite only where ``K_nu(z)`` does not overflow)."""
    return 2.0 ** (1.0 - nu) / scipy.special.gamma(nu) * z**nu * scipy.special.kv(nu, z)


#: orders on both sides of every branch point of ``_matern_correlation`` (nu = 1, nu = 2, the cap 100)
MATERN_ORDERS = [0.05, 0.5, 0.999, 1.0, 1.5, 2.0, 2.5, 3.0, 7.3, 37.3, 99.5, 100.0]
#: arguments z = sqrt(2 nu) r/ell from below the tiny cut (1e-150) through the near-one and overflow ranges to the
#: zero cut (1e4)
MATERN_ARGUMENTS = [1e-300, 1e-160, 1e-149, 1e-100, 1e-30, 1e-12, 1e-8, 1e-6, 1e-4, 1e-2, 0.1, 0.5, 1.0, 2.0, 5.0,
                    10.0, 30.0, 100.0, 700.0, 5000.0]


def _no_fallback(nu: float, z: float) -> float:
    raise AssertionError(f"the mpmath fallback ran at nu={nu}, z={z}: the fast paths must cover 0 < nu <= 100")


@pytest.mark.parametrize("nu", MATERN_ORDERS)
def test_matern_fast_paths_match_mpmath_over_every_argument_range(nu, monkeypatch):
    """g_nu(z) against mpmath over z in [1e-300, 5000] with the mpmath fallback disabled.

    The docstring says the fallback is "not expected" in 0 < nu <= 100: every range of z has a float64 path (zero
    cut, near-one, small-argument series, direct log form, recurrence).  A mutant that sends points to the wrong
    path either gives a wrong value (killed by the 2e-13 comparison) or leaves a NaN that only the slow fallback
    would repair (killed by the disabled fallback)."""
    monkeypatch.setattr(kernels, "_matern_mpmath", _no_fallback)
    lags = np.array([z / math.sqrt(2.0 * nu) for z in MATERN_ARGUMENTS])  # ell = 1
    got = Matern(nu=nu, ell=1.0)(lags)
    expected = np.array([matern_oracle(nu, math.sqrt(2.0 * nu) * lag) for lag in lags])
    np.testing.assert_allclose(got, expected, rtol=MATERN_RTOL, atol=1e-300)


@pytest.mark.parametrize("ell", [1e-3, 0.37, 25.0])
def test_matern_length_scale_enters_as_r_over_ell(ell, monkeypatch):
    """gamma depends on (r, ell) only through z = sqrt(2 nu) r/ell: the same z reached with different ell gives the
    oracle's value (pins the ``- log ell`` in log z and the ``/ ell`` in z)."""
    monkeypatch.setattr(kernels, "_matern_mpmath", _no_fallback)
    for nu in (0.3, 1.5, 4.5, 60.0):
        lags = ell * np.array([1e-170, 1e-7, 0.2, 1.0, 3.0, 40.0])
        expected = [matern_oracle(nu, math.sqrt(2.0 * nu) * float(mpmath.mpf(lag) / mpmath.mpf(ell)))
                    for lag in lags]
        np.testing.assert_allclose(Matern(nu=nu, ell=ell)(lags), expected, rtol=MATERN_RTOL, atol=1e-300)


@pytest.mark.parametrize("nu", [2.3, 3.0, 5.5, 10.0, 50.25, 100.0])
def test_matern_recurrence_in_the_order_matches_scipy_kv(nu):
    """``_matern_recurrence`` (g_{m+1} = g_m + z^2 g_{m-1}/(4 m (m-1)) from orders in (0, 2]) against scipy's
    unscaled ``kv`` at arguments where K_nu is finite, i.e. where the module itself never needs the recurrence.
    The recurrence adds positive terms, so its error is at most ~(steps) eps relative: 2e-13 holds up to
    nu = 100 (99 steps)."""
    z = np.array([0.5, 1.0, 3.0, 10.0, 40.0])
    expected = matern_scipy(nu, z)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(kernels._matern_recurrence(nu, z), expected, rtol=MATERN_RTOL)
    # and down to z = 1e-150, where K_nu itself overflows: the docstring's range (kve finite for orders <= 2 and
    # z > 1.2e-152); starting the recurrence at a higher order would overflow here
    tiny = np.array([1e-150, 1e-60, 1e-8])
    np.testing.assert_allclose(kernels._matern_recurrence(nu, tiny), [matern_oracle(nu, float(v)) for v in tiny],
                               rtol=MATERN_RTOL)


@pytest.mark.parametrize("nu", [0.3, 1.0, 2.5, 17.0])
def test_matern_mpmath_fallback_matches_scipy_kv(nu):
    """The last-resort ``_matern_mpmath`` (never reached in the documented range, so only a direct test sees it)
    equals the closed form from scipy's ``kv`` where that is finite."""
    for z in (0.01, 0.7, 3.0, 25.0):
        expected = float(matern_scipy(nu, np.array([z]))[0])
        assert kernels._matern_mpmath(nu, z) == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize("nu", [1e-9, 2e-8, 1e-7, 1e-5, 1e-3, 0.3, 0.75, 0.999])
def test_matern_small_argument_series_below_one(nu):
    """``_matern_near_zero``: g = 1 - Gamma(1-nu)/Gamma(1+nu) (z/2)^(2 nu) + O(z^2) for nu < 1, checked at 60
    digits for z in [1e-300, 1e-151] (the O(z^2) remainder is below 1e-300 relative there).  For small nu, g is
    about 690 nu, so the log-gamma ratio (about 2 euler nu) must be exact to far below nu: the orders 2e-8 and 1e-7
    see a working precision that drops the bits of 1 -+ nu, and 1e-3 a series 2 euler nu used outside nu < 1e-8
    (its error 2 zeta(3) nu^3/3 is a relative 1e-9 of g there)."""
    log_z = np.log(np.array([1e-300, 1e-250, 1e-200, 1e-151]))
    with mpmath.workdps(60):
        order = mpmath.mpf(nu)
        ratio = mpmath.gamma(1 - order) / mpmath.gamma(1 + order)
        expected = [float(1 - ratio * mpmath.power(mpmath.exp(mpmath.mpf(lz)) / 2, 2 * order)) for lz in log_z]
    np.testing.assert_allclose(kernels._matern_near_zero(nu, log_z), expected, rtol=1e-13)


def test_kernel_evaluation_is_silent_at_the_extremes():
    """Valid lags never raise a floating-point warning: lag 0 (log 0 is not taken), (r/ell)**nu or nu log1p
    overflowing to inf (exp(-inf) = 0 is the intended limit), Matérn arguments that under- or overflow.  The
    ``np.errstate`` blocks and the ``lags > 0`` mask are what keep these silent."""
    lags = np.array([0.0, 5e-324, 1e-300, 1.0, 1e200, 1.7e308])
    cases = [GammaExponential(nu=2.0, ell=1e-200), GammaExponential(nu=0.5, ell=1.0), Matern(nu=0.3, ell=1e-300),
             Matern(nu=1.5, ell=1e300), Matern(nu=100.0, ell=1.0), Polynomial(nu=1e307, ell=1.0),
             Logarithmic(nu=1e300, ell=1e-300), DampedCosine(ell=1e-300, period=3.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kernel in cases:
            values = kernel(lags)
            assert values[0] == 1.0 and np.all(np.isfinite(values)), kernel
            assert values[-1] == 0.0, kernel  # every tail has underflowed at r = 1.7e308


def test_documented_defaults_and_parameter_names_in_errors():
    """The signatures' defaults (rendered in the API docs) and the parameter each range error names."""
    assert GammaExponential() == GammaExponential(nu=1.0, ell=1.0)
    assert Matern() == Matern(nu=1.5, ell=1.0)
    assert Polynomial() == Polynomial(nu=2.0, ell=1.0)
    assert Logarithmic() == Logarithmic(nu=1.0, ell=1.0)
    assert DampedCosine(period=3.0) == DampedCosine(ell=1.0, period=3.0)
    for family in (GammaExponential, Matern, Polynomial, Logarithmic):
        with pytest.raises(ValueError, match=r"^nu must satisfy 0 < nu"):
            family(nu=-1.0, ell=1.0)
        with pytest.raises(ValueError, match=r"^ell must satisfy 0 < ell"):
            family(nu=1.0, ell=-1.0)
    with pytest.raises(ValueError, match=r"^ell must satisfy 0 < ell"):
        DampedCosine(ell=-1.0, period=3.0)
    with pytest.raises(ValueError, match=r"^period must satisfy 0 < period"):
        DampedCosine(ell=1.0, period=-3.0)


def test_equality_is_by_type_and_parameters_and_hash_agrees():
    """Two kernels are equal iff they are of one class with equal parameters; equal kernels hash alike."""
    assert Matern(nu=1.5, ell=2.0) == Matern(nu=1.5, ell=2.0)
    assert hash(Matern(nu=1.5, ell=2.0)) == hash(Matern(nu=1.5, ell=2.0))
    assert Matern(nu=1.5, ell=2.0) != Matern(nu=1.5, ell=3.0)
    assert Matern(nu=1.5, ell=2.0) != Matern(nu=2.5, ell=2.0)
    assert Polynomial(nu=1.5, ell=2.0) != Logarithmic(nu=1.5, ell=2.0)
    assert Matern(nu=1.5, ell=2.0) != "Matern(nu=1.5, ell=2)"
    assert len({Matern(nu=1.5, ell=2.0), Matern(nu=1.5, ell=2.0), GammaExponential(nu=1.5, ell=2.0)}) == 2
    function = LagFunction(lambda r: np.exp(-r))
    assert function == function and function != LagFunction(lambda r: np.exp(-r))
    assert len({function, function}) == 1


def test_a_non_finite_value_is_reported_at_its_first_lag(monkeypatch):
    """The error names the first lag whose value is not finite (here lag 2.0, the NaNs at 2 and 3)."""
    monkeypatch.setattr(Polynomial, "_values", lambda self, lags: np.where(lags >= 2.0, np.nan, 1.0))
    message = r"produced 2 NaN or infinite value\(s\), first at lag (np\.float64\()?2\.0"
    with pytest.raises(NonFiniteError, match=message):
        Polynomial(nu=1.0, ell=1.0)(np.arange(4.0))


def test_lag_function_broadcasts_a_constant_and_returns_a_writable_array():
    """A function returning one number for all lags is broadcast to the lags' shape (a fresh, writable array)."""
    kernel = LagFunction(lambda r: 1.0, name="constant")
    values = kernel(np.zeros((2, 3)))
    assert values.shape == (2, 3) and np.all(values == 1.0)
    values[0, 0] = 5.0  # the caller owns the result
    assert kernel.name == "constant"
    assert LagFunction(lambda r: np.exp(-r)).name == "lag-function"


def test_kernel_from_name_builds_every_named_kernel_with_its_values():
    """kernel_from_name gives the kernel of that name with those parameters: compared by values at lags against
    the closed forms, not only by equality."""
    lags = np.array([0.0, 0.5, 2.0, 7.0])
    cases = {
        "gamma-exponential": lambda r: np.exp(-((r / 2.0) ** 0.7)),
        "polynomial": lambda r: (1 + r / 2.0) ** -0.7,
        "logarithmic": lambda r: (1 + np.log1p(r / 2.0)) ** -0.7,
        "matern": lambda r: matern_scipy(0.7, math.sqrt(1.4) * np.maximum(r, 1e-300) / 2.0),
    }
    for name, closed_form in cases.items():
        np.testing.assert_allclose(kernel_from_name(name, nu=0.7, ell=2.0)(lags), closed_form(lags), rtol=1e-13)
    expected = np.exp(-lags / 2.0) * np.cos(2 * np.pi * lags / 3.0)
    np.testing.assert_allclose(kernel_from_name("damped-cosine", ell=2.0, period=3.0)(lags), expected,
                               rtol=1e-13, atol=1e-16)


def test_lag_function_value_at_zero_tolerance_and_reporting_parameters():
    """gamma(0) = 1 is required to 1e-12 absolute: a value one rounding away from 1 ((0.1 + 0.2)/0.3 =
    1 + 2.2e-16) is accepted, 1 + 1e-10 is not (a relative 1e-9, which math.isclose's default would pass).  nu and
    ell are carried for reporting, checked as real numbers under their own names."""
    rounded = LagFunction(lambda r: np.exp(-r) * ((0.1 + 0.2) / 0.3), name="rounded", nu=0.5, ell=2.0)
    assert rounded.params() == {"nu": 0.5, "ell": 2.0} and rounded.name == "rounded"
    with pytest.raises(ValueError, match=r"gamma\(0\) = 1"):
        LagFunction(lambda r: np.exp(-r) * (1.0 + 1e-10))
    with pytest.raises(TypeError, match=r"^nu must be a real number"):
        LagFunction(lambda r: np.exp(-r), nu="half")
    with pytest.raises(TypeError, match=r"^ell must be a real number"):
        LagFunction(lambda r: np.exp(-r), ell="two")


@pytest.mark.parametrize(("nu", "ell"), [(0.3, 1e-300), (0.3, 1.0), (1.5, 1e300), (1.5, 1.0), (2.5, 1e60),
                                         (1e-5, 1e200), (100.0, 1.0), (100.0, 1e3)])
def test_matern_never_raises_a_floating_point_exception(nu, ell, monkeypatch):
    """Matérn expects z = sqrt(2 nu) r/ell and gamma itself to under- or overflow and handles both (np.errstate in
    ``Matern._values`` and ``_matern_direct``): even with numpy's errors set to raise, every lag evaluates, to the
    values of the default mode."""
    monkeypatch.setattr(kernels, "_matern_mpmath", _no_fallback)
    lags = np.array([0.0, 5e-324, 1e-300, 1e-8, 0.3, 1.0, 7.0, 1e4, 1e200, 1.7e308])
    kernel = Matern(nu=nu, ell=ell)
    relaxed = kernel(lags)
    with np.errstate(all="raise"):
        strict = kernel(lags)
    np.testing.assert_array_equal(strict, relaxed)


def test_bad_lags_are_refused_by_name():
    """Complex, string and missing lags are refused with a message that starts with the argument's name."""
    for lags, message in ((np.array([1 + 2j]), r"^lags must be real"), (np.array(["1"]), r"^lags must hold real"),
                          (None, r"^lags must be a real array")):
        with pytest.raises(TypeError, match=message):
            Matern(nu=1.5, ell=1.0)(lags)
    with pytest.raises(ValueError, match=r"^frames must satisfy 1 <= frames"):
        Matern(nu=1.5, ell=1.0).toeplitz(0)
