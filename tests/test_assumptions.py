"""theory.assumptions: each assumption against an independent oracle (dense matrices, plain loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings

import theory
from theory.assumptions import ASSUMPTIONS, check_assumptions
from unroll.construction import gd
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential, Logarithmic, Polynomial
from unroll.testing import configurations


def _config(kernel, frames=16, dim=2, bands=3, blocks=10, t=0.3, taper=None, **kwargs):
    sigma = np.diag(np.linspace(1.0, 2.0, dim))
    return theory.Configuration.from_kernel(kernel, frames, sigma, bands=bands, blocks=blocks, diffusion_time=t,
                                            taper=taper, **kwargs)


def test_table_lists_every_assumption_with_statement():
    table = check_assumptions(_config(GammaExponential(nu=1.0, ell=2.0)))
    assert [r.name for r in table] == [a.name for a in ASSUMPTIONS]
    text = str(table)
    for assumption in ASSUMPTIONS:
        assert assumption.name in text and assumption.statement in text
    assert "| assumption |" in table.to_markdown()


def test_slow_kernel_plain_cut_fails_with_margin_and_taper_repairs_it():
    kernel = Polynomial(nu=0.5, ell=4.0)
    plain = check_assumptions(_config(kernel, frames=32, bands=3, t=0.1))
    assert not plain["truncated_pd"].holds and plain["truncated_pd"].margin < 0
    assert not plain["tail_summable"].holds and not plain["diagonal_dominance"].holds
    assert "truncated_pd" in plain.failed_required
    # the constructor's own check agrees (independent code path)
    with pytest.raises(gd.IndefiniteTruncationError):
        gd.check_truncation(torch.from_numpy(kernel(np.arange(32.0))), 3, None)
    tapered = check_assumptions(_config(kernel, frames=32, bands=3, t=0.1, taper="triangular"))
    assert tapered["truncated_pd"].holds and tapered["gd_converges"].holds


def test_logarithmic_tail_never_summable_and_time_before_t0_fails():
    table = check_assumptions(_config(Logarithmic(nu=3.0, ell=1.0), t=1e-4, t0=1e-3))
    assert not table["tail_summable"].holds
    assert not table["time_after_t0"].holds and math.isclose(table["time_after_t0"].margin, 1e-4 - 1e-3)


def test_diagonal_dominance_margin_matches_plain_loop():
    kernel = GammaExponential(nu=1.0, ell=1.5)
    config = _config(kernel, bands=4)
    total = 0.0
    for m in range(1, 5):
        total += abs(math.exp(-((m / 1.5) ** 1.0)))
    assert math.isclose(check_assumptions(config)["diagonal_dominance"].margin, 1 - 2 * total, rel_tol=1e-12)


def test_unknown_assumption_name_is_a_value_error():
    with pytest.raises(ValueError, match="unknown assumption"):
        check_assumptions(_config(GammaExponential()), names=("nope",))


def test_configuration_rejects_bad_input():
    with pytest.raises(ValueError, match="bands"):
        _config(GammaExponential(), frames=4, bands=4)
    with pytest.raises(ValueError, match="taper"):
        _config(GammaExponential(), taper="hann")
    with pytest.raises(ValueError, match="diffusion_time"):
        _config(GammaExponential(), t=0.0)


@settings(max_examples=25, deadline=None)
@given(configurations(frames=(2, 8), dim=(1, 3), satisfying_assumptions=False))
def test_spectra_match_dense_oracle(drawn):
    """lambda_min/max of C_t and C_tJ from the Kronecker formula vs eigvalsh of the dense matrices."""
    config = drawn.config
    t = drawn.diffusion_time
    dense = torch.linalg.eigvalsh(gd.dense_covariance(drawn.gp, t))
    dense_j = torch.linalg.eigvalsh(gd.dense_covariance(drawn.gp, t, drawn.bands, drawn.taper))
    scale = float(dense.abs().max())
    lo, hi = config.c_spectrum
    assert abs(lo - float(dense[0])) <= 1e-10 * scale and abs(hi - float(dense[-1])) <= 1e-10 * scale
    lo_j, hi_j = config.cj_spectrum
    assert abs(lo_j - float(dense_j[0])) <= 1e-10 * scale and abs(hi_j - float(dense_j[-1])) <= 1e-10 * scale
    table = check_assumptions(config)
    assert table["gd_converges"].holds == (float(dense_j[0]) > 0) or abs(float(dense_j[0])) < 1e-10 * scale


def test_lag_separation_uses_model_lag_values():
    from unroll.construction.constructor import construct_unrolled

    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 8, torch.eye(2, dtype=torch.float64))
    for frame_frequency, period in (("window", 5), ("sequence", 8)):  # w = pi/min(H, J+2) or pi/H
        model = construct_unrolled(gp, blocks=2, bands=3, frame_frequency=frame_frequency)
        config = theory.Configuration.from_model(gp, model, 0.5)
        result = check_assumptions(config)["lags_separated"]
        values = np.cos(np.pi * np.arange(8) / period)
        np.testing.assert_allclose(model.construction.lag_values.numpy(), values, rtol=0, atol=1e-15)
        seen = values[:5]  # lags 0..J+1: the windowed tents see no further
        assert result.holds and math.isclose(result.margin, float(np.min(seen[:-1] - seen[1:])))
        assert "model" in result.detail


def test_lag_separation_fails_when_a_lag_inside_the_window_aliases():
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 8, torch.eye(2, dtype=torch.float64))
    aliased = np.cos(np.pi * np.arange(8) / 3)  # w = pi/3: c_3 = -1 and c_4 = c_2 inside lags 0..J+1 = 0..4
    config = theory.Configuration.from_gp(gp, bands=3, blocks=2, diffusion_time=0.5, lag_values=aliased)
    result = check_assumptions(config)["lags_separated"]
    assert not result.holds and result.margin < 0


@pytest.mark.parametrize("function", [theory.tails.tail_sum, theory.tails.taper_bias_sum])
def test_the_exact_tail_sums_need_a_number_of_frames(function):
    """They used to accept ``frames=None`` and fail on ``None - 1``."""
    with pytest.raises(TypeError, match="frames must be an integer"):
        function("gamma-exponential", 1.0, 2.0, 3, None)
