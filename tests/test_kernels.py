"""Kernels against their textbook closed forms, validity ranges and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from unroll.kernels import (
    KERNEL_FAMILIES,
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
