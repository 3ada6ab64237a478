"""Kernels against their textbook closed forms, validity ranges and input checks."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from unroll._validate import NonFiniteError
from unroll.cli import main
from unroll.data.kernels import (
    KERNEL_FAMILIES,
    MATERN_ZERO_ARGUMENT,
    DampedCosine,
    GammaExponential,
    LagFunction,
    Logarithmic,
    Matern,
    Polynomial,
    kernel_from_name,
)

LAGS = np.arange(0, 40, dtype=np.float64)


@pytest.mark.parametrize(
    ("nu", "closed_form"),
    [
        (0.5, lambda r, ell: np.exp(-r / ell)),
        (1.5, lambda r, ell: (1 + math.sqrt(3) * r / ell) * np.exp(-math.sqrt(3) * r / ell)),
        (
            2.5,
            lambda r, ell: (1 + math.sqrt(5) * r / ell + 5 * r**2 / (3 * ell**2)) * np.exp(-math.sqrt(5) * r / ell),
        ),
    ],
)
@pytest.mark.parametrize("ell", [0.3, 1.0, 4.0])
def test_matern_half_integer_closed_forms(nu, closed_form, ell):
    np.testing.assert_allclose(Matern(nu=nu, ell=ell)(LAGS), closed_form(LAGS, ell), rtol=1e-12, atol=1e-300)


def test_matern_large_nu_approaches_gaussian():
    ell = 3.0
    gaussian = np.exp(-(LAGS[:10] ** 2) / (2 * ell**2))
    # The gap to the Gaussian limit shrinks like 1/nu; at nu = 100 it is about 2e-3.
    gaps = [np.max(np.abs(Matern(nu=nu, ell=ell)(LAGS[:10]) - gaussian)) for nu in (10.0, 100.0)]
    assert gaps[1] < 0.2 * gaps[0]
    assert gaps[1] < 5e-3
    assert np.all(np.isfinite(Matern(nu=100.0, ell=0.1)(LAGS)))


def test_matern_rejects_nu_above_cap():
    with pytest.raises(ValueError, match=r"nu <= 100"):
        Matern(nu=150.0, ell=1.0)


@pytest.mark.parametrize("ell", [0.5, 2.0, 7.0])
def test_gamma_exponential_at_two_is_gaussian_and_at_one_exponential(ell):
    np.testing.assert_allclose(GammaExponential(nu=2, ell=ell)(LAGS), np.exp(-((LAGS / ell) ** 2)), rtol=1e-14)
    np.testing.assert_allclose(GammaExponential(nu=1, ell=ell)(LAGS), np.exp(-LAGS / ell), rtol=1e-14)


def test_polynomial_and_logarithmic_closed_forms():
    np.testing.assert_allclose(Polynomial(nu=1.5, ell=2.0)(LAGS), (1 + LAGS / 2) ** -1.5, rtol=1e-14)
    np.testing.assert_allclose(
        Logarithmic(nu=0.7, ell=3.0)(LAGS), (1 + np.log(1 + LAGS / 3)) ** -0.7, rtol=1e-14
    )


FAMILY_AND_NU = st.one_of(
    st.tuples(st.just(GammaExponential), st.floats(0.05, 2.0)),
    st.tuples(st.just(Matern), st.floats(0.05, 100.0)),
    st.tuples(st.just(Polynomial), st.floats(0.05, 10.0)),
    st.tuples(st.just(Logarithmic), st.floats(0.05, 10.0)),
)


@given(FAMILY_AND_NU, st.floats(0.1, 20.0), st.integers(1, 48))
def test_every_family_is_normalised_decreasing_and_positive_definite(family_nu, ell, frames):
    family, nu = family_nu
    kernel = family(nu=nu, ell=ell)
    values = kernel(np.arange(frames))
    assert values[0] == 1.0
    assert np.all(np.diff(values) <= 0)
    gamma = kernel.toeplitz(frames)
    assert gamma.shape == (frames, frames)
    np.testing.assert_array_equal(gamma, gamma.T)
    # Positive definiteness holds in exact arithmetic; numerically lambda_min may sit at rounding level.
    assert np.linalg.eigvalsh(gamma)[0] > -1e-12 * frames


def test_toeplitz_layout_and_negative_lags():
    kernel = Polynomial(nu=2.0, ell=1.0)
    gamma = kernel.toeplitz(5)
    for i in range(5):
        for j in range(5):
            assert gamma[i, j] == kernel(np.array([abs(i - j)]))[0]
    np.testing.assert_array_equal(kernel(np.array([-3.0])), kernel(np.array([3.0])))


def test_torch_input_gives_torch_output():
    out = GammaExponential(nu=1, ell=2)(torch.arange(4))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64


@pytest.mark.parametrize("family", list(KERNEL_FAMILIES.values()))
@pytest.mark.parametrize("parameter", ["nu", "ell"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_parameters_are_rejected(family, parameter, bad):
    kwargs = {"nu": 1.0, "ell": 1.0, parameter: bad}
    with pytest.raises(ValueError, match=parameter):
        family(**kwargs)


def test_gamma_exponential_rejects_nu_above_two():
    with pytest.raises(ValueError, match=r"nu <= 2"):
        GammaExponential(nu=2.5, ell=1.0)


def test_kernel_from_name():
    assert kernel_from_name("matern", nu=1.5, ell=2.0) == Matern(nu=1.5, ell=2.0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernel_from_name("rbf", nu=1.0, ell=1.0)


def test_lag_function_requires_unit_value_at_zero_and_finite_values():
    kernel = LagFunction(lambda r: np.cos(0.3 * r) * np.exp(-r), name="damped-cosine")
    np.testing.assert_allclose(kernel(np.arange(3)), np.cos(0.3 * np.arange(3)) * np.exp(-np.arange(3)))
    with pytest.raises(ValueError, match=r"gamma\(0\) = 1"):
        LagFunction(lambda r: 2.0 + 0 * r)
    with pytest.raises(ValueError, match="NaN"):
        LagFunction(lambda r: np.where(r > 1, np.nan, 1.0))(np.arange(4))


def test_frames_must_be_positive():
    with pytest.raises(ValueError, match="frames"):
        Matern(nu=1.5, ell=1.0).toeplitz(0)


# ------------------------------------------------------------------------- extremes of the documented ranges
def mpmath_matern(nu: float, lag: float, ell: float) -> float:
    """Independent oracle: the Matérn correlation at 50 digits with mpmath's besselk."""
    with mpmath.workdps(50):
        z = mpmath.sqrt(2 * mpmath.mpf(nu)) * mpmath.mpf(lag) / mpmath.mpf(ell)
        if z == 0:
            return 1.0
        order = mpmath.mpf(nu)
        return float(mpmath.power(2, 1 - order) / mpmath.gamma(order) * mpmath.power(z, order)
                     * mpmath.besselk(order, z))


# (nu, ell) over the whole documented range 0 < nu <= 100, ell > 0, including the two cases:
# Matern(nu=100, ell=1000) gave [1, inf, inf, inf] and Matern(nu=1.5, ell=1e-10) NaN
MATERN_EXTREMES = [(100.0, 1000.0), (1.5, 1e-10), (100.0, 1e5), (99.99, 30.0), (37.3, 1e3), (2.5, 1e60),
                   (2.0, 1e160), (1.0, 1e200), (0.5, 1e300), (0.3, 1e250), (1e-5, 1e200), (0.01, 1e-300),
                   (100.0, 1e-300), (64.5, 0.02), (3.0, 1.7e308), (1.5, 5e-324)]


@pytest.mark.parametrize(("nu", "ell"), MATERN_EXTREMES)
def test_matern_matches_mpmath_at_the_extremes(nu, ell):
    lags = np.array([0.0, 1.0, 2.0, 3.0, 7.0, 31.0, 200.0, 4095.0, 0.37, 1e-200])
    values = Matern(nu=nu, ell=ell)(lags)
    expected = np.array([mpmath_matern(nu, lag, ell) for lag in lags])
    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values, expected, rtol=2e-13, atol=1e-300)


def test_matern_zero_beyond_the_cut_off_argument():
    """Arguments z >= MATERN_ZERO_ARGUMENT are set to 0 without evaluation: gamma has underflowed there for
    every nu <= 100 (at z = 1e4 itself, and gamma decreases in z)."""
    for nu in (1e-300, 0.01, 0.5, 1.5, 10.0, 50.0, 99.0, 100.0):
        lag_at_cut_off = MATERN_ZERO_ARGUMENT / math.sqrt(2 * nu)  # ell = 1
        assert mpmath_matern(nu, lag_at_cut_off, 1.0) == 0.0
        assert Matern(nu=nu, ell=1.0)(np.array([lag_at_cut_off, 1e300]))[0] == 0.0


def test_matern_tiny_order_and_tiny_arguments_against_the_series():
    """nu < 1 and z < 1e-150, where scipy's kve returns inf: g = 1 - Gamma(1-nu)/Gamma(1+nu) (z/2)^(2 nu) + O(z^2)
    evaluated independently at 400 digits."""
    for nu, z in ((1e-300, 1e-306), (1e-12, 1e-200), (0.01, 1e-306), (0.3, 1e-160), (0.999, 1e-300)):
        with mpmath.workdps(400):
            order, argument = mpmath.mpf(nu), mpmath.mpf(z)
            expected = float(1 - mpmath.gamma(1 - order) / mpmath.gamma(1 + order) * (argument / 2) ** (2 * order))
        lag = z / math.sqrt(2 * nu)  # ell = 1
        got = Matern(nu=nu, ell=1.0)(np.array([lag]))[0]
        assert got == pytest.approx(expected, rel=1e-13, abs=0), (nu, z)


def test_polynomial_and_logarithmic_keep_tiny_lag_ratios():
    """(1 + r/ell)**-nu with r/ell = 1e-300 and nu = 1e300 is e^-1, not 1 (1 + 1e-300 rounds to 1)."""
    assert Polynomial(nu=1e300, ell=1e300)(np.array([1.0]))[0] == pytest.approx(math.exp(-1.0), rel=1e-15, abs=0)
    assert Logarithmic(nu=1e300, ell=1e300)(np.array([1.0]))[0] == pytest.approx(math.exp(-1.0), rel=1e-15, abs=0)
    assert Polynomial(nu=2.0, ell=5e-324)(np.array([1.0]))[0] == 0.0


def test_damped_cosine_with_a_period_far_below_the_lag():
    """2 pi r/period overflowed to NaN for period = 5e-324; the phase is exact (fmod) for every period."""
    lags = np.arange(5.0)
    np.testing.assert_allclose(DampedCosine(ell=1.0, period=5e-324)(lags), np.exp(-lags), rtol=1e-15)
    period = 1e-3  # not exactly representable: r/period is not an integer, the oracle works at 60 digits
    with mpmath.workdps(60):
        expected = [float(mpmath.exp(-r) * mpmath.cos(2 * mpmath.pi * mpmath.mpf(r) / mpmath.mpf(period)))
                    for r in lags]
    np.testing.assert_allclose(DampedCosine(ell=1.0, period=period)(lags), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("lags", [np.array([1.0 + 2j]), torch.tensor([1.0, 2.0], dtype=torch.complex64),
                                  np.array(["1"]), None, "3"])
def test_lags_must_be_real(lags):
    with pytest.raises(TypeError, match="lags"):
        Matern(nu=1.5, ell=1.0)(lags)


@pytest.mark.parametrize(("function", "error", "match"), [
    (lambda r: np.exp(-r) + 0j, TypeError, "real"),
    (lambda r: "one", TypeError, "lag function"),
    (lambda r: np.ones(3), ValueError, "shape"),
])
def test_lag_function_values_must_be_real_and_of_the_lag_shape(function, error, match):
    with pytest.raises(error, match=match):
        LagFunction(function)(np.arange(4.0))


def test_a_non_finite_kernel_value_is_an_error_naming_the_kernel(monkeypatch):
    kernel = Matern(nu=1.5, ell=1.0)
    monkeypatch.setattr(Matern, "_values", lambda self, lags: np.full(lags.shape, np.nan))
    with pytest.raises(NonFiniteError, match=r"Matern\(nu=1.5, ell=1\) produced 3 NaN"):
        kernel(np.arange(3.0))


def test_cli_verify_matern_at_nu_100_ell_1000(capsys):
    """Gamma is finite now; with the plain cut Gamma_J is indefinite, and the refusal says so in one line."""
    code = main(["verify", "--kernel", "matern", "--nu", "100", "--ell", "1000", "--blocks", "5"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "Gamma_J" in err and "not positive definite" in err and "lambda_min(Gamma_J) = -" in err
    assert main(["verify", "--kernel", "matern", "--nu", "100", "--ell", "1000", "--blocks", "5",
                 "--taper", "triangular"]) == 0
    assert "Matern(nu=100, ell=1000)" in capsys.readouterr().out
