"""The identities of docs/design.md §5–§7 and theory/bounds.py stated directly, each against a value computed here
(dense eigenvalues, numpy's float constants, plain trigonometry), not read back from the code under test.

Before issue 15 four of these were pinned only by the numbers the docs pages print: the total bound's composition,
the unit roundoff, the contraction formula and the cos/sin order of the embeddings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from plain_loop import dense_truncated_covariance

import theory
from theory.bounds import (
    _UNIT_ROUNDOFFS,
    BOUNDS,
    PART_BOUNDS,
    SYMBOLS,
    bounds_for_report,
    evaluate_all,
    symbol_values,
)
from theory.configuration import UNIT_ROUNDOFF
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.model.transformer import Transformer
from unroll.verification import verify

SIGMA = np.array([[1.5, 0.3], [0.3, 0.7]])
T, FRAMES, BANDS, BLOCKS = 0.2, 10, 3, 7


def _gp(family="matern", nu=1.5, ell=1.5):
    return GaussianProcess(kernel_from_name(family, nu=nu, ell=ell), FRAMES, torch.from_numpy(SIGMA))


def _dense_condition(gp, t, bands, taper=None):
    """``kappa(C_{t,J})`` from the dense matrix's eigenvalues, and the extremes."""
    eigenvalues = np.linalg.eigvalsh(dense_truncated_covariance(gd.factors(gp).gamma.numpy(), SIGMA, t, bands, taper))
    return eigenvalues[-1] / eigenvalues[0], eigenvalues[0], eigenvalues[-1]


@pytest.mark.parametrize(("mode", "steps"), [("exact", "gd"), ("exact", "chebyshev"), ("paper", "gd")])
def test_total_bound_is_the_sum_of_its_three_parts(mode, steps):
    """``total = gd + trunc + net`` (triangle inequality), each part the bound of its own schedule and mode."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, mode=mode, steps=steps, paper_range=32.0)
    report = verify(gp, model, T)
    parts = report.parts
    assert parts["total"].bound == parts["gd"].bound + parts["trunc"].bound + parts["net"].bound
    names = {"gd": ("gd", "net_exact", "net_paper"),
             "chebyshev": ("gd_chebyshev", "net_exact_chebyshev", "net_paper_chebyshev")}
    gd_name, exact_name, paper_name = names[steps]
    assert PART_BOUNDS[steps] == (gd_name, exact_name, paper_name)
    config = theory.Configuration.from_model(gp, model, T)
    values = evaluate_all(config)
    net_name = exact_name if mode == "exact" else paper_name
    direct = symbol_values(config)
    assert values["gd"] == BOUNDS[gd_name].evaluate(direct)
    if mode == "exact":
        assert values["net"] == BOUNDS[net_name].evaluate(direct)
    else:  # the paper-mode bound needs |y*| of a run: unknown without one
        assert values["net"] == math.inf
    assert values["total"] == values["gd"] + values["trunc"] + values["net"]
    assert math.isfinite(parts["total"].bound) and parts["total"].measured <= parts["total"].bound


@pytest.mark.parametrize(("name", "dtype"), [("float64", torch.float64), ("float32", torch.float32),
                                             ("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_unit_roundoffs_are_half_the_machine_epsilon(name, dtype):
    assert _UNIT_ROUNDOFFS[name] == torch.finfo(dtype).eps / 2
    assert UNIT_ROUNDOFF == np.finfo(np.float64).eps / 2
    values = symbol_values(theory.Configuration.from_gp(_gp(), bands=BANDS, blocks=BLOCKS, diffusion_time=T))
    assert values["u"] == values["u64"] == UNIT_ROUNDOFF


def test_float32_report_uses_the_float32_unit_roundoff():
    gp = _gp()
    model = construct_unrolled(gp, blocks=BLOCKS, bands=BANDS)
    report64 = verify(gp, model, T)
    report32 = verify(gp, construct_unrolled(gp, blocks=BLOCKS, bands=BANDS, dtype=torch.float32), T)
    config = theory.Configuration.from_model(gp, model, T)
    x_ratio = float(report32.x.norm()) / report32.solution_norm
    expected = BOUNDS["net_exact"].evaluate(symbol_values(config, unit_roundoff=2.0**-24, x_ratio=x_ratio))
    assert bounds_for_report(report32, gp, model, T)["net"] == pytest.approx(expected, rel=1e-12, abs=0)
    assert report32.parts["net"].bound > 1e6 * report64.parts["net"].bound  # u32 / u64 = 2^29


@pytest.mark.parametrize("t", [0.01, 0.2, 3.0])
def test_condition_numbers_and_contraction_formulas_against_dense_eigenvalues(t):
    gp = _gp()
    config = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=t)
    values = symbol_values(config)
    kappa, low, high = _dense_condition(gp, t, BANDS)
    gamma = gd.factors(gp).gamma.numpy()
    full = np.linalg.eigvalsh(math.exp(-t) * np.kron(scipy.linalg.toeplitz(gamma), SIGMA)
                              - math.expm1(-t) * np.eye(FRAMES * 2))
    assert BOUNDS["kappa_J"].evaluate(values) == pytest.approx(kappa, rel=1e-10, abs=0)
    assert BOUNDS["kappa_t"].evaluate(values) == pytest.approx(full[-1] / full[0], rel=1e-10, abs=0)
    rho = (kappa - 1) / (kappa + 1)
    for path in (BOUNDS["contraction"].evaluate, BOUNDS["contraction"].evaluate_symbolic):
        assert path(values) == pytest.approx(rho, rel=1e-10, abs=0)
    assert float(gd.contraction(gp, t, BANDS)) == pytest.approx(rho, rel=1e-10, abs=0)
    assert float(gd.step_size(gp, t, BANDS)) == pytest.approx(2 / (low + high), rel=1e-10, abs=0)
    chebyshev = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    for path in (BOUNDS["contraction_chebyshev"].evaluate, BOUNDS["contraction_chebyshev"].evaluate_symbolic):
        assert path(values) == pytest.approx(chebyshev, rel=1e-10, abs=0)
    # blocks_needed: the L with rho^L G = eps (exact arithmetic)
    blocks = BOUNDS["blocks_needed"].evaluate({**values, "epsilon": 1e-6})
    assert rho**blocks * _g_factor(values, low, full[-1]) == pytest.approx(1e-6, rel=1e-8, abs=0)


def _g_factor(values, low, high):
    """``G = min(1 + 2 a mu_max (T_J + bias) / lambda_min(C_J), lambda_max(C) / lambda_min(C_J))``."""
    return min(1 + 2 * values["a"] * values["mu_max"] * (values["T_J"] + values["bias_J"]) / low, high / low)


def test_blocks_needed_chebyshev_solves_its_own_inequality():
    """``2 q / (1 + q^2) G = eps`` at ``q = rho_C^L``, ``L`` = blocks_needed_chebyshev."""
    t = 0.05
    gp = _gp()
    config = theory.Configuration.from_gp(gp, bands=BANDS, blocks=BLOCKS, diffusion_time=t)
    values = {**symbol_values(config), "epsilon": 1e-6}
    kappa, low, _ = _dense_condition(gp, t, BANDS)
    gamma = gd.factors(gp).gamma.numpy()
    high = np.linalg.eigvalsh(math.exp(-t) * np.kron(scipy.linalg.toeplitz(gamma), SIGMA)
                              - math.expm1(-t) * np.eye(FRAMES * 2))[-1]
    q = ((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)) ** BOUNDS["blocks_needed_chebyshev"].evaluate(values)
    assert 2 * q / (1 + q**2) * _g_factor(values, low, high) == pytest.approx(1e-6, rel=1e-7, abs=0)


def test_tent_slope_and_head_count_formulas():
    """``K = c_max / (1 - cos(pi/W))``, ``W = min(H, J+2)``, ``c_max = max(1, 1/P)``; ``M = 3(J+1)`` / ``3J+1``."""
    gp = _gp()
    for bands in (0, 3, FRAMES - 2, FRAMES - 1):
        model = construct_unrolled(gp, blocks=2, bands=bands)
        gamma = gd.factors(gp).gamma.numpy()
        cut = scipy.linalg.toeplitz(np.where(np.arange(FRAMES) <= bands, gamma, 0.0))
        products = np.outer(np.linalg.eigvalsh(cut), np.linalg.eigvalsh(SIGMA))
        centre = 0.5 * (products.min() + products.max())
        window = min(FRAMES, bands + 2)
        slope = max(1.0, 1.0 / centre) / (1 - math.cos(math.pi / window))
        assert model.construction.tent_slope == pytest.approx(slope, rel=1e-10, abs=0)
        assert model.config["heads"] == 3 * (bands + 1)
        assert float(theory.tent_slope_expression("exact").subs(
            {SYMBOLS["c_max"]: max(1.0, 1.0 / centre), SYMBOLS["H"]: FRAMES, SYMBOLS["J"]: bands})
        ) == pytest.approx(slope, rel=1e-10, abs=0)
        if bands:
            paper = construct_unrolled(gp, blocks=2, bands=bands, mode="paper")
            assert paper.config["heads"] == 3 * bands + 1
            assert paper.construction.tent_slope == pytest.approx(1 / (1 - math.cos(math.pi / window)), rel=1e-10)


def test_frame_embeddings_are_cos_then_sin_and_time_features_sin_then_cos():
    """``e(i) = [cos(w i), sin(w i)]`` (so ``e_i . e_j = cos(w (i-j))``) and the sinusoidal time features
    ``[sin(f log t), cos(f log t)]``: the order matters to a trained model's weights and to the layout."""
    model = Transformer(dim=2, width=8, blocks=1, heads=1, frequencies=2, frame_scale=5.0,
                        time_embedding="sinusoidal", time_features=4, dtype=torch.float64)
    frames = 7
    w = np.pi / (5.0 * 2.0 ** np.arange(2))
    angles = np.arange(frames)[:, None] * w
    expected = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    embeddings = model.frame_embeddings(frames).numpy()
    np.testing.assert_allclose(embeddings, expected, rtol=0, atol=1e-15)
    gram = embeddings[:, [0, 2]] @ embeddings[:, [0, 2]].T
    lags = np.subtract.outer(np.arange(frames), np.arange(frames))
    np.testing.assert_allclose(gram, np.cos(w[0] * lags), rtol=0, atol=1e-15)
    t = torch.tensor([0.05, 0.7, 4.0], dtype=torch.float64)
    f = 2.0 ** np.linspace(-2.0, 2.0, 2)
    log_angles = np.log(t.numpy())[:, None] * f
    np.testing.assert_allclose(model.time_features(t).numpy(),
                               np.concatenate([np.sin(log_angles), np.cos(log_angles)], axis=1), rtol=0, atol=1e-15)
