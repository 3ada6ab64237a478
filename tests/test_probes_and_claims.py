"""Layer probes, the statistics that decide claims, the no-position DiT and the input-dependence probe.

Oracles: the constructed network holds GD iterate b in its y slot after block b (so the probe must find it);
intervals against scipy written out by hand; a map that ignores its input against one that does not.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from unroll import construct_unrolled
from unroll.experiments import attention
from unroll.experiments.claims import (
    fit_loglog,
    mean_interval,
    normalised_profile_distance,
    paired_difference,
    verdict_for_difference,
    verdict_for_slope,
)
from unroll.experiments.compare import make_gp
from unroll.experiments.models import DiT
from unroll.experiments.probes import layer_probes, residual_streams


@pytest.fixture(scope="module")
def gp():
    return make_gp("gamma-exponential", 1.0, 4.0, 10, 2)


def test_probes_find_iterate_b_in_block_b_of_the_construction(gp):
    model = construct_unrolled(gp, blocks=8, bands=gp.frames - 1)
    result = layer_probes(model, gp, 0.5, probe=192, heldout=96, iterates=12)
    for block in range(2, 9):
        assert result.best_iterate["gd"][block] == block
        assert result.best_error["gd"][block] <= 1e-5
        others = [e for k, e in zip(result.iterates, result.errors["gd"][block], strict=True) if k != block]
        assert min(others) > 1e-3  # the match is specific: no other iterate is held
    # before any block the stream holds only the input frame: nothing beyond the frame-local map
    assert min(result.errors["gd"][0]) > 0.9
    assert result.errors_fixed_point[-1] < result.errors_fixed_point[2] < result.errors_fixed_point[0]


def test_probe_of_a_network_that_ignores_its_neighbours(gp):
    """A score that never mixes frames (-x) holds no iterate beyond y_1: every normalised error is ~1."""
    model = DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2).double()
    with torch.no_grad():  # zero attention outputs: the stream stays frame-local
        for block in model.blocks:
            block.attn.proj.weight.zero_()
            block.attn.proj.bias.zero_()
    result = layer_probes(model, gp, 0.5, probe=192, heldout=96, iterates=6)
    assert min(min(row) for row in result.errors["gd"]) > 0.9


def test_residual_streams_of_each_model_kind(gp):
    x = gp.sample(3, generator=torch.Generator().manual_seed(0))
    dit = DiT(gp.frames, gp.dim, width=16, blocks=3, heads=2).double()
    assert [tuple(s.shape) for s in residual_streams(dit, x, 0.3)] == [(3, gp.frames, 16)] * 4
    built = construct_unrolled(gp, blocks=2, bands=2, taper="triangular")
    assert len(residual_streams(built, x, 0.3)) == 3
    with pytest.raises(ValueError, match="residual streams"):
        residual_streams(torch.nn.Linear(2, 2), x, 0.3)
    with pytest.raises(ValueError, match="iterates"):
        layer_probes(built, gp, 0.3, iterates=1)


def test_no_position_dit_is_permutation_equivariant(gp):
    model = DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2, position="none").double()
    with torch.no_grad():  # leave the zero initialisation of the read-out, so the output is not trivially 0
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3), dtype=p.dtype))
    x = gp.sample(2, generator=torch.Generator().manual_seed(1))
    order = torch.randperm(gp.frames, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(model(x[:, order], 0.4), model(x, 0.4)[:, order], atol=1e-12)
    positioned = DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2).double()
    assert positioned.position is not None and model.position is None
    with pytest.raises(ValueError, match="position"):
        DiT(gp.frames, gp.dim, position="learned")


def test_no_position_dit_starts_from_the_same_weights_as_the_dit_of_its_seed(gp):
    from unroll.experiments.trainer import seeded_model

    with_position = seeded_model(lambda: DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2), 5)
    without = seeded_model(lambda: DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2, position="none"), 5)
    theirs = dict(with_position.named_parameters())
    for name, value in without.named_parameters():
        assert torch.equal(value, theirs[name]), name
    assert set(theirs) - dict(without.named_parameters()).keys() == {"position.weight"}


def test_input_dependence_tells_a_positional_bias_from_a_computed_pattern(gp):
    x = gp.noised(gp.sample(16, generator=torch.Generator().manual_seed(0)), 0.5)
    # the construction's heads see only frame embeddings and t: its maps do not depend on the input
    built = construct_unrolled(gp, blocks=2, bands=3, taper="triangular")
    fixed = attention.input_dependence(built, x, 0.5)
    assert fixed["zero"] <= 1e-12 and fixed["white"] <= 1e-12
    model = DiT(gp.frames, gp.dim, width=16, blocks=2, heads=2, position="none").double()
    computed = attention.input_dependence(model, x, 0.5)
    assert computed["zero"] > 1e-3 and computed["white"] > 1e-3


# ------------------------------------------------------------------ statistics
def test_mean_interval_matches_the_t_formula():
    values = [0.3, 0.5, 0.2, 0.45, 0.35]
    interval = mean_interval(values)
    half = stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / math.sqrt(5)
    assert interval.mean == pytest.approx(np.mean(values))
    assert interval.low == pytest.approx(np.mean(values) - half)
    assert interval.high == pytest.approx(np.mean(values) + half)
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, float("nan")])
    with pytest.raises(ValueError, match="pair"):
        paired_difference([1.0, 2.0], [1.0])



def test_fit_loglog_against_the_normal_equations():
    """Slope, intercept, se(slope) and the t-interval of a noisy power law against the dense normal equations
    ``(X^T X) beta = X^T log y``, ``se(b)^2 = s^2 [(X^T X)^{-1}]_{11}``, ``s^2 = |r|^2 / (k - 2)``."""
    rng = np.random.default_rng(3)
    x = np.array([16.0, 32, 64, 128, 256, 512])
    y = 2.0 * x ** -0.5 * np.exp(0.1 * rng.standard_normal(x.size))
    design = np.stack([np.ones(x.size), np.log(x)], axis=1)
    gram = design.T @ design
    beta = np.linalg.solve(gram, design.T @ np.log(y))
    residual = np.log(y) - design @ beta
    se = math.sqrt(residual @ residual / (x.size - 2) * np.linalg.inv(gram)[1, 1])
    half = stats.t.ppf(0.975, x.size - 2) * se
    fit = fit_loglog(list(x), list(y))
    assert fit["points"] == 6
    assert fit["slope"] == pytest.approx(beta[1], rel=1e-12, abs=0)
    assert fit["intercept"] == pytest.approx(beta[0], rel=1e-12, abs=0)
    assert fit["slope_se"] == pytest.approx(se, rel=1e-10, abs=0) and se > 0.01
    assert fit["slope_ci95"] == pytest.approx([beta[1] - half, beta[1] + half], rel=1e-10, abs=0)
    exact = fit_loglog(x, 3.0 * x ** 1.5)  # an exact power law: slope 1.5, log 3, no spread
    assert exact["slope"] == pytest.approx(1.5, rel=1e-12, abs=0) and exact["intercept"] == pytest.approx(math.log(3.0))
    assert exact["slope_se"] < 1e-12


@pytest.mark.parametrize("x, y, message", [([1, 2], [1, 2], "length >= 3"), ([1, 2, 3], [1, 2], "same length"),
                                           ([1, 2, 3], [1, 0, 2], "> 0"), ([1, 2, 4], [1, math.inf, 2], "finite"),
                                           ([2, 2, 2], [1, 2, 3], "distinct")])
def test_fit_loglog_refuses_what_it_cannot_fit(x, y, message):
    with pytest.raises(ValueError, match=message):
        fit_loglog(x, y)


def test_seeds_to_decide_uses_the_t_quantile_of_the_new_count():
    interval = paired_difference([0.5, 0.1, 0.4, 0.0, 0.3], [0.2, 0.3, 0.1, 0.3, 0.2])
    needed = verdict_for_difference(interval)["seeds_to_decide"]
    half = lambda n: stats.t.ppf(0.975, n - 1) * interval.sd / math.sqrt(n)  # noqa: E731
    assert half(needed) < abs(interval.mean) <= half(needed - 1)


def test_verdicts_read_the_interval():
    clear = paired_difference([0.5, 0.6, 0.55, 0.58, 0.52], [0.1, 0.12, 0.09, 0.11, 0.13])
    assert verdict_for_difference(clear)["verdict"] == "supported"
    assert verdict_for_difference(clear, predicted_sign=-1)["verdict"] == "not supported"
    noisy = paired_difference([0.5, 0.1, 0.4, 0.0, 0.3], [0.2, 0.3, 0.1, 0.3, 0.2])
    verdict = verdict_for_difference(noisy)
    assert verdict["verdict"] == "undecided" and verdict["seeds_to_decide"] > 5
    assert verdict_for_slope(mean_interval([-0.52, -0.48, -0.55]))["verdict"] == "supported"
    assert verdict_for_slope(mean_interval([-0.1, -0.12, -0.08]))["verdict"] == "not supported"
    assert verdict_for_slope(mean_interval([-0.6, 0.1, -0.3]))["verdict"] == "undecided"


def test_normalised_profile_distance_is_scale_aware():
    gamma = np.exp(-np.arange(8) / 2.0)
    assert normalised_profile_distance(3.0 * gamma, gamma) == pytest.approx(0.0, abs=1e-15)
    flat = 1.0 - 0.03 * np.arange(8) / 7  # moves 3% over the lags: correlates perfectly, but is far
    assert np.corrcoef(flat[1:], gamma[1:])[0, 1] > 0.9
    expected = math.sqrt(np.mean((flat[1:] / flat[0] - gamma[1:]) ** 2))
    assert normalised_profile_distance(flat, gamma) == pytest.approx(expected)
    assert expected > 0.5


def test_construction_shape_control_starts_as_the_construction_with_closed_residual_branches(gp):
    from unroll.experiments.run import _build

    options = dict(blocks=3, bands=2)
    shape, _ = _build("relu_transformer", gp.frames, gp.dim, options, 5, "construction-shape", gp)
    constructed, _ = _build("relu_transformer", gp.frames, gp.dim, options, 5, "construction", gp)
    shape_state, constructed_state = shape.state_dict(), constructed.state_dict()
    assert not torch.equal(shape_state["blocks.0.query"], constructed_state["blocks.0.query"])
    closed = {k: (torch.zeros_like(v) if k.rsplit(".", 1)[-1] in ("output", "ffn_out", "ffn_out_bias") else v)
              for k, v in constructed_state.items()}
    constructed.load_state_dict(closed)  # the construction with every residual branch closed: block 0 read out
    x = gp.noised(gp.sample(8, generator=torch.Generator().manual_seed(0)), 0.3,
                  generator=torch.Generator().manual_seed(1)).float()
    t = torch.full((8,), 0.3)
    with torch.no_grad():
        out = shape(x, t)
        assert torch.isfinite(out).all()
        assert torch.equal(out, constructed(x, t))
