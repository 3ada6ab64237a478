"""The damped cosine exp(-m/ell) cos(2 pi m/period): formula, the proven lambda_min bound, names, its tail bound
against brute-force sums, and the construction / verify / CLI on a damped-cosine GP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory import tails
from theory.bounds import tail_bound
from unroll.cli import main
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import KERNEL_FAMILIES, NAMED_KERNELS, DampedCosine, Matern, kernel_from_name
from unroll.testing import configurations
from unroll.verification import verify

LOG_ELL = st.floats(math.log(0.1), math.log(50.0)).map(math.exp)
LOG_PERIOD = st.floats(math.log(0.5), math.log(50.0)).map(math.exp)


def poisson_minimum(ell: float) -> float:
    """``min_w (1 - q^2)/(1 - 2 q cos w + q^2) = (1 - q)/(1 + q)`` (at w = pi), ``q = exp(-1/ell)``."""
    q = math.exp(-1.0 / ell)
    return (1.0 - q) / (1.0 + q)


def test_values_follow_the_formula_and_oscillate():
    kernel = DampedCosine(ell=4.0, period=6.0)
    lags = np.arange(0, 40, dtype=np.float64)
    expected = np.array([math.exp(-m / 4.0) * math.cos(2 * math.pi * m / 6.0) for m in lags])
    np.testing.assert_allclose(kernel(lags), expected, rtol=1e-14, atol=1e-300)
    assert kernel(np.zeros(1))[0] == 1.0
    np.testing.assert_array_equal(kernel(-lags), kernel(lags))
    values = kernel(lags)
    assert values[3] < 0 < values[6]  # a half period gives the first negative lobe, a full period a positive one
    assert np.any(np.diff(values) > 0)  # not monotone in the lag
    assert isinstance(kernel(torch.arange(3)), torch.Tensor)


@settings(max_examples=60, deadline=None)
@given(ell=LOG_ELL, period=LOG_PERIOD, frames=st.integers(1, 160))
def test_toeplitz_matrix_obeys_the_schur_bound(ell, period, frames):
    """lambda_min(Gamma) >= (1-q)/(1+q) and lambda_max(Gamma) <= (1+q)/(1-q) for every H (class docstring)."""
    kernel = DampedCosine(ell=ell, period=period)
    eigenvalues = torch.linalg.eigvalsh(torch.from_numpy(kernel.toeplitz(frames))).numpy()
    bound = poisson_minimum(ell)
    assert eigenvalues[0] >= bound - 1e-10
    assert eigenvalues[-1] <= 1.0 / bound + 1e-10
    assert kernel.lambda_min_bound() == pytest.approx(bound, rel=1e-14, abs=0)


def test_schur_bound_is_sharp():
    """period = 2: cos(pi m) = (-1)^m, Gamma = D A D with D = diag((-1)^i), so lambda_min(Gamma) = lambda_min(A)
    -> (1-q)/(1+q) as H grows.  A larger claimed bound would fail the test above."""
    ell = 1.0
    smallest = float(torch.linalg.eigvalsh(torch.from_numpy(DampedCosine(ell=ell, period=2.0).toeplitz(200)))[0])
    assert smallest == pytest.approx(poisson_minimum(ell), rel=1e-4, abs=0)  # measured gap 4.8e-5 at H = 200


@pytest.mark.parametrize("parameter", ["ell", "period"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "six"])
def test_bad_parameters_are_rejected(parameter, bad):
    kwargs = {"ell": 1.0, "period": 6.0, parameter: bad}
    with pytest.raises(TypeError if isinstance(bad, str) else ValueError, match=parameter):
        DampedCosine(**kwargs)


def test_names_params_and_round_trip():
    kernel = DampedCosine(ell=4.0, period=6.0)
    assert repr(kernel) == "DampedCosine(ell=4, period=6)"
    assert kernel.params() == {"ell": 4.0, "period": 6.0}
    assert math.isnan(kernel.nu)
    assert kernel_from_name("damped-cosine", ell=4.0, period=6.0) == kernel
    assert hash(kernel_from_name("damped-cosine", ell=4.0, period=6.0)) == hash(kernel)
    assert kernel != DampedCosine(ell=4.0, period=5.0)
    assert "damped-cosine" in NAMED_KERNELS and "damped-cosine" not in KERNEL_FAMILIES
    for name, cls in NAMED_KERNELS.items():
        built = cls(period=3.0, ell=2.0) if name == "damped-cosine" else cls(nu=0.7, ell=2.0)
        assert kernel_from_name(name, **built.params()) == built


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("damped-cosine", {"ell": 1.0}, "needs period"),
    ("damped-cosine", {"ell": 1.0, "period": 6.0, "nu": 1.0}, "no decay exponent nu"),
    ("damped-cosine", {"ell": 1.0, "period": -6.0}, "period"),
    ("matern", {"ell": 1.0}, "needs a decay exponent nu"),
    ("matern", {"ell": 1.0, "nu": 1.5, "period": 6.0}, "period applies only"),
    ("cosine", {"ell": 1.0, "nu": 1.5}, "kernel must be one of"),
])
def test_kernel_from_name_rejects_missing_and_foreign_parameters(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernel_from_name(name, **kwargs)


def test_existing_family_calls_still_work():
    assert kernel_from_name("matern", nu=1.5, ell=2.0) == Matern(nu=1.5, ell=2.0)


# ------------------------------------------------------------------------------ theory: the tail bound
@settings(max_examples=60, deadline=None)
@given(ell=LOG_ELL, period=LOG_PERIOD, frames=st.integers(2, 300), bands=st.integers(0, 310))
def test_tail_bound_above_brute_force_sum_of_absolute_values(ell, period, frames, bands):
    kernel = DampedCosine(ell=ell, period=period)
    brute = sum(abs(float(kernel(np.array([m]))[0])) for m in range(bands + 1, frames))  # plain loop
    bound = tails.tail_bound("damped-cosine", math.nan, ell, bands, frames)
    assert brute <= bound * (1 + 1e-12) + 1e-300
    assert tails.tail_sum("damped-cosine", math.nan, ell, bands, frames, period=period) == pytest.approx(
        brute, rel=1e-12, abs=1e-300)
    if bands < frames - 1:  # the geometric bound is the envelope's exact sum, so it is reached when cos = +-1
        envelope = sum(math.exp(-m / ell) for m in range(bands + 1, frames))
        assert bound == pytest.approx(envelope, rel=1e-12, abs=0)


@settings(max_examples=40, deadline=None)
@given(ell=st.floats(0.2, 20.0), period=LOG_PERIOD, bands=st.integers(0, 80))
def test_infinite_tail_bound_above_long_partial_sum(ell, period, bands):
    values = DampedCosine(ell=ell, period=period)(np.arange(bands + 1, 20_000, dtype=np.float64))
    assert float(np.sum(np.abs(values))) <= tails.family_tail_bound("damped-cosine", math.nan, ell, bands) * (
        1 + 1e-12)


@settings(max_examples=25, deadline=None)
@given(ell=st.floats(0.2, 20.0), frames=st.integers(2, 200), bands=st.integers(0, 200), epsilon=st.floats(1e-8, 0.5))
def test_tail_expression_bands_needed_and_closed_form(ell, frames, bands, epsilon):
    bound = tail_bound("damped-cosine")
    values = {"nu": math.nan, "ell": ell, "J": bands, "H": frames}
    assert bound.evaluate_symbolic(values) == pytest.approx(bound.evaluate(values), rel=1e-9, abs=1e-300)
    j = tails.bands_needed("damped-cosine", math.nan, ell, epsilon)
    assert tails.tail_bound("damped-cosine", math.nan, ell, j) <= epsilon
    if j > 0:
        assert tails.tail_bound("damped-cosine", math.nan, ell, j - 1) > epsilon
    closed = float(tails.bands_needed_expression("damped-cosine").subs({tails.ell: ell, tails.eps: epsilon}))
    assert j == max(0, math.ceil(closed - 1e-9))


def test_theory_lag_values_match_the_kernel_and_need_a_period():
    lags = np.arange(30, dtype=np.float64)
    np.testing.assert_allclose(tails.lag_values("damped-cosine", math.nan, 3.0, lags, period=5.0),
                               DampedCosine(ell=3.0, period=5.0)(lags), rtol=1e-14, atol=1e-300)
    with pytest.raises(ValueError, match="needs period"):
        tails.lag_values("damped-cosine", math.nan, 3.0, lags)
    with pytest.raises(ValueError, match="ell"):
        tails.tail_bound("damped-cosine", math.nan, -1.0, 2, 10)


def test_configuration_carries_family_and_period():
    gp = GaussianProcess(DampedCosine(ell=4.0, period=6.0), 16, random_spatial_covariance(2, 0))
    config = theory.Configuration.from_gp(gp, bands=5, blocks=10, diffusion_time=0.5)
    assert config.family == "damped-cosine" and config.period == 6.0 and config.ell == 4.0
    assert "damped-cosine(ell=4, period=6)" in config.describe()
    exact = float(np.sum(np.abs(DampedCosine(ell=4.0, period=6.0)(np.arange(6, 16)))))
    assert config.tail == pytest.approx(exact, rel=1e-14, abs=0)
    assert config.tail <= config.family_tail_bound
    table = theory.check_assumptions(config)
    assert table["tail_summable"].holds and table["gamma_pd"].holds


# --------------------------------------------------------------------- construction, verify and CLI
def damped_gp(frames=16, dim=2, ell=4.0, period=6.0, seed=0):
    return GaussianProcess(DampedCosine(ell=ell, period=period), frames, random_spatial_covariance(dim, seed))


@pytest.mark.parametrize(("bands", "taper"), [(7, None), (15, None), (3, "triangular")])
def test_constructed_block_k_equals_gd_iterate_k(bands, taper):
    gp = damped_gp()
    t, blocks = 0.3, 8
    model = construct_unrolled(gp, blocks=blocks, bands=bands, taper=taper)
    generator = torch.Generator().manual_seed(1)
    x = gp.noised(gp.sample(3, generator=generator), t, generator=generator)
    with torch.no_grad():
        network = model.iterates(x, t)
    oracle = gd.gd_iterates(gp, x, t, blocks, bands, taper)
    gaps = [float((network[k] - oracle[k]).norm() / oracle[k].norm()) for k in range(1, blocks + 1)]
    assert max(gaps) <= 1e-10


@pytest.mark.parametrize(("bands", "taper", "mode"), [(7, None, "exact"), (8, "triangular", "exact"),
                                                      (7, None, "paper")])
def test_verify_parts_below_bounds(bands, taper, mode):
    gp = damped_gp(frames=20 if mode == "exact" else 12, dim=3 if mode == "exact" else 2)
    model = construct_unrolled(gp, blocks=30 if mode == "exact" else 12, bands=bands, taper=taper, mode=mode,
                               paper_knots=65)
    report = verify(gp, model, 0.4, generator=torch.Generator().manual_seed(0), batch=4)
    for name, result in theory.check_report(report).items():
        assert result.holds, (name, str(result))
        assert math.isfinite(report.parts[name].bound)
    assert report.parts["trunc"].measured > 1e-6  # the cut matters: the comparison is not trivially 0 <= bound


@settings(max_examples=12, deadline=None)
@given(configurations(families=["damped-cosine"], frames=(2, 12), blocks=(1, 12), ell=(0.5, 8.0),
                      period=(1.5, 16.0)))
def test_drawn_damped_cosine_configurations_parts_below_bounds(drawn):
    assert drawn.gp.kernel.name == "damped-cosine"
    for name, result in theory.check_report(drawn.verify()).items():
        assert result.holds, (name, str(result), repr(drawn))


def test_plain_cut_can_be_indefinite_and_is_refused():
    """The plain cut of an oscillating gamma can be indefinite (ell = 4, period = 6, H = 16: at J = 2, 3 and 5,
    not at 4 or >= 6): the constructor refuses rather than diverge; the triangular taper is always PD."""
    frames, bands = 16, 2
    gp = damped_gp(frames=frames, dim=1)
    cut = gd.truncate(gd.factors(gp).gamma, bands)
    assert float(torch.linalg.eigvalsh(torch.from_numpy(scipy.linalg.toeplitz(cut.numpy())))[0]) < 0
    with pytest.raises(gd.IndefiniteTruncationError):
        construct_unrolled(gp, blocks=3, bands=bands)
    construct_unrolled(gp, blocks=3, bands=bands, taper="triangular")


def test_cli_verify_and_bounds(capsys):
    common = ["--kernel", "damped-cosine", "--period", "6", "--ell", "3", "--frames", "16", "--dim", "2"]
    assert main(["verify", *common, "--bands", "6", "--blocks", "10", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "DampedCosine(ell=3, period=6)" in out and "BOUND VIOLATED" not in out
    assert main(["bounds", *common, "--bands", "6"]) == 0
    out = capsys.readouterr().out
    assert "damped-cosine(ell=3, period=6)" in out and "family bound" in out
    assert main(["verify", "--kernel", "damped-cosine", "--nu", "2"]) == 2
    assert main(["verify", "--kernel", "matern", "--period", "6"]) == 2
    assert "period applies only" in capsys.readouterr().err
