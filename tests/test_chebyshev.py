"""Accelerated unrolling: Chebyshev step schedules (Leja order), their construction, their bounds, and the looped
(weight-shared) GD construction.

Oracles: a dense iteration written here (the dense ``C_{t,J}``, its eigenvalues from ``torch.linalg.eigvalsh`` and the
Chebyshev nodes of their interval), the frame-by-frame loop ``unroll.construction.gd.unrolled_iterates``, the eigenbasis
formula ``unroll.construction.gd.spectral_iterates``, and a brute-force Leja ordering.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from plain_loop import leja_order

import theory
from theory.schedules import subproduct_bounds
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.model.transformer import Transformer
from unroll.testing import configurations


def make_gp(name="gamma-exponential", nu=1.0, ell=2.0, frames=10, dim=2, seed=0):
    return GaussianProcess(kernel_from_name(name, nu=nu, ell=ell), frames, random_spatial_covariance(dim, seed))


def sample_x(gp, t, batch=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return gp.noised(gp.sample(batch, generator=g), t, generator=g)


def dense_chebyshev_iterates(gp, x, t, blocks, bands, taper=None):
    """``y <- y - eta_k (C_J y - x)`` with the dense ``C_J`` and ``eta_k = 1/(c + h cos theta_{o(k)})``, ``c, h``
    the centre and half-width of ``C_J``'s eigenvalue interval (from the dense matrix)."""
    dense = gd.dense_covariance(gp, t, bands, taper)
    eigenvalues = torch.linalg.eigvalsh(dense)
    center = 0.5 * float(eigenvalues[-1] + eigenvalues[0])
    half = 0.5 * float(eigenvalues[-1] - eigenvalues[0])
    order = gd.chebyshev_order(blocks)
    flat = x.reshape(x.shape[0], -1)
    y = torch.zeros_like(flat)
    out = [y]
    for k in range(blocks):
        eta = 1.0 / (center + half * math.cos((2 * int(order[k]) + 1) * math.pi / (2 * blocks)))
        y = y - eta * (y @ dense.T - flat)
        out.append(y)
    return torch.stack(out).reshape((blocks + 1,) + tuple(x.shape))


# ------------------------------------------------------------------ the schedule
@pytest.mark.parametrize("blocks", [1, 2, 3, 7, 16, 25])
def test_chebyshev_order_is_the_leja_order(blocks):
    nodes = np.cos((2 * np.arange(blocks) + 1) * np.pi / (2 * blocks))
    order = gd.chebyshev_order(blocks)
    assert sorted(order.tolist()) == list(range(blocks))
    assert order.tolist() == leja_order(nodes.tolist())


def test_chebyshev_roots_are_the_nodes_and_the_residual_attains_the_bound():
    gp = make_gp(frames=12)
    t, blocks, bands = 0.05, 9, 4
    etas = gd.step_sizes(gp, t, blocks, bands, steps="chebyshev")
    lam_min, lam_max = (float(v) for v in gd.spectrum(gp, t, bands))
    roots = np.sort(1.0 / etas.numpy())
    theta = (2 * np.arange(blocks) + 1) * np.pi / (2 * blocks)
    nodes = np.sort(0.5 * (lam_max + lam_min) + 0.5 * (lam_max - lam_min) * np.cos(theta))
    assert np.allclose(roots, nodes, rtol=1e-13)
    grid = torch.linspace(lam_min, lam_max, 20001, dtype=torch.float64)
    peak = float(gd.residual_polynomial(etas, grid)[-1].abs().max())
    factor = gd.chebyshev_factor(lam_max / lam_min, blocks)
    assert peak == pytest.approx(factor, rel=1e-6, abs=0)  # equioscillation: attained at the ends
    gd_peak = float(gd.residual_polynomial(gd.step_sizes(gp, t, blocks, bands), grid)[-1].abs().max())
    assert gd_peak == pytest.approx(float(gd.contraction(gp, t, bands)) ** blocks, rel=1e-9)


def test_step_sizes_shapes_and_gd_schedule():
    gp = make_gp()
    times = torch.tensor([0.01, 0.3, 4.0])
    schedule = gd.step_sizes(gp, times, 5, 3, steps="chebyshev")
    assert schedule.shape == (3, 5)
    constant = gd.step_sizes(gp, times, 5, 3)
    assert torch.allclose(constant, gd.step_size(gp, times, 3)[:, None].expand(3, 5), rtol=1e-14)
    model = construct_unrolled(gp, blocks=5, bands=3, steps="chebyshev")
    assert torch.allclose(model.step_sizes(times), schedule, rtol=1e-14)
    assert model.step_sizes(0.3).shape == (5,)


@pytest.mark.parametrize("steps", ["gd", "chebyshev"])
def test_loop_oracle_equals_dense_and_spectral_oracles(steps):
    gp = make_gp(frames=9, dim=2)
    t, blocks, bands = 0.02, 30, 5
    x = sample_x(gp, t)
    loop = gd.unrolled_iterates(gp, x, t, blocks, bands, steps=steps)
    spectral = gd.spectral_iterates(gp, x, t, blocks, bands, steps=steps)
    scale = float(gp.precision_apply(x, t).norm())
    assert float((loop - spectral).flatten(1).norm(dim=1).max()) / scale <= 1e-12
    if steps == "chebyshev":
        dense = dense_chebyshev_iterates(gp, x, t, blocks, bands)
        assert float((loop - dense).flatten(1).norm(dim=1).max()) / scale <= 1e-12


# ------------------------------------------------------------------ the construction, block by block
@settings(max_examples=24, deadline=None)
@given(configurations(frames=(2, 10), dim=(1, 3), blocks=(1, 120), diffusion_time=(1e-3, 10.0),
                      steps=("chebyshev",)))
def test_chebyshev_block_k_is_iterate_k_and_parts_hold_their_bounds(drawn):
    """Every draw: each part below its bound, and block k within the rounding bound of iterate k.

    The tolerance of block k is the theory module's ``net_exact_chebyshev`` bound with the suffix amplification
    ``A_suf`` replaced by the any-range one ``A_all``: ``e_k = sum_(j<k) prod_(j<i<k) (I - eta_i C_J) delta_j`` runs
    through sub-products ending at block k - 1, not at L - 1, and ``A_all`` bounds those for every k <= L.  A fixed
    1e-10 here was the wrong oracle (issue 15): a draw with Sigma eigenvalues (0.135, 1, 1), t = 0.05, L = 83 puts an
    intermediate block 1.2e-10 from its iterate, within this bound."""
    report = drawn.verify()
    assert report.steps == "chebyshev"
    for name, result in theory.check_report(report).items():
        assert result.holds, (name, str(result), drawn)
    values = theory.symbol_values(theory.Configuration.from_model(drawn.gp, drawn.build(), drawn.diffusion_time),
                                  x_ratio=float(report.x.norm()) / report.solution_norm)
    tolerance = theory.BOUNDS["net_exact_chebyshev"].evaluate({**values, "A_suf": values["A_all"]})
    oracle = gd.unrolled_iterates(drawn.gp, report.x, drawn.diffusion_time, drawn.blocks, drawn.bands, drawn.taper,
                                  steps="chebyshev")
    for k in range(1, drawn.blocks + 1):
        deviation = report.block_gaps[k] * float(oracle[k].norm()) / report.solution_norm
        assert deviation <= tolerance, (k, deviation, tolerance, drawn)
    # the gd part, measured against the eigenbasis oracle too
    x, t = report.x, drawn.diffusion_time
    spectral = gd.spectral_iterates(drawn.gp, x, t, drawn.blocks, drawn.bands, drawn.taper, "chebyshev")[-1]
    fixed = gd.fixed_point(drawn.gp, x, t, drawn.bands, drawn.taper)
    measured = float((spectral - fixed).norm()) / report.solution_norm
    assert measured <= report.parts["gd"].bound


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_chebyshev_network_equals_the_dense_oracle(mode):
    gp = make_gp(frames=8, dim=2)
    t, blocks, bands = 0.3, 12, 3
    model = construct_unrolled(gp, blocks=blocks, bands=bands, mode=mode, steps="chebyshev", paper_range=32.0)
    x = sample_x(gp, t)
    with torch.no_grad():
        network = model.iterates(x, t)
    dense = dense_chebyshev_iterates(gp, x, t, blocks, bands)
    gaps = [float((network[k] - dense[k]).norm() / dense[k].norm()) for k in range(1, blocks + 1)]
    if mode == "exact":
        assert max(gaps) <= 1e-10
    else:  # the FFN multiplier approximates each product: its part is held against net_paper_chebyshev
        from unroll.verification import verify

        report = verify(gp, model, t, x=x)
        assert report.multiplier_peak <= 32.0
        assert report.parts["net"].measured <= report.parts["net"].bound < 1.0


@settings(max_examples=40, deadline=None)
@given(configurations(frames=(2, 12), dim=(1, 3), blocks=(1, 200), diffusion_time=(1e-3, 10.0),
                      steps=("chebyshev",)), st.integers(0, 3))
def test_measured_gd_part_below_the_chebyshev_bound(drawn, seed):
    """Many draws, cheaply: the gd part measured with the eigenbasis oracle against ``gd_chebyshev``."""
    gp, t = drawn.gp, drawn.diffusion_time
    x = sample_x(gp, t, seed=seed)
    fixed = gd.fixed_point(gp, x, t, drawn.bands, drawn.taper)
    last = gd.spectral_iterates(gp, x, t, drawn.blocks, drawn.bands, drawn.taper, "chebyshev")[-1]
    measured = float((last - fixed).norm() / gp.precision_apply(x, t).norm())
    bound = theory.BOUNDS["gd_chebyshev"].evaluate(drawn.config)
    assert measured <= bound, (measured, bound, drawn)


def test_subproduct_bounds_cover_a_fine_grid_and_are_one_for_gd():
    gp = make_gp(frames=12)
    t, blocks, bands = 0.01, 20, 6
    lam_min, lam_max = (float(v) for v in gd.spectrum(gp, t, bands))
    etas = gd.step_sizes(gp, t, blocks, bands, steps="chebyshev").numpy()
    bounds = subproduct_bounds(etas, lam_min, lam_max)
    grid = np.linspace(lam_min, lam_max, 100001)
    factors = 1.0 - etas[:, None] * grid[None, :]
    prefix = max(np.abs(np.prod(factors[:k], axis=0)).max() for k in range(blocks + 1))
    suffix = max(np.abs(np.prod(factors[k:], axis=0)).max() for k in range(blocks + 1))
    every = max(np.abs(np.prod(factors[k:m], axis=0)).max() for k in range(blocks) for m in range(k, blocks + 1))
    assert prefix <= bounds.prefix <= 1.03 * prefix
    assert suffix <= bounds.suffix <= 1.03 * suffix
    assert every <= bounds.any <= 1.03 * every
    assert every >= float(gd.condition_number(gp, t, bands)) - 1 - 1e-6  # one step with eta ~ 1/lambda_min
    gd_steps = gd.step_sizes(gp, t, blocks, bands).numpy()
    constant = subproduct_bounds(gd_steps, lam_min, lam_max)
    assert constant.any <= 1.0 / math.cos(math.pi / 16) + 1e-12


# ------------------------------------------------------------------ blocks needed, at the verify defaults
def test_chebyshev_needs_at_most_a_fifth_of_the_gd_blocks_at_small_time():
    """``unroll verify``'s default configuration (H=32, d=4, gamma-exponential nu=1 ell=2, Sigma seed 0), all bands,
    t = 0.01: blocks to bring the measured gd part below 1e-6."""
    gp = make_gp(frames=32, dim=4, ell=2.0, seed=0)
    t, bands = 0.01, 31
    g = torch.Generator().manual_seed(0)
    x = gp.noised(gp.sample(8, generator=g), t, generator=g)
    scale = float(gp.precision_apply(x, t).norm())
    fixed = gd.fixed_point(gp, x, t, bands)
    errors = (gd.spectral_iterates(gp, x, t, 400, bands) - fixed).flatten(1).norm(dim=1) / scale
    gd_blocks = int(torch.nonzero(errors <= 1e-6)[0])
    chebyshev_blocks = next(blocks for blocks in range(1, 400)
                            if float((gd.spectral_iterates(gp, x, t, blocks, bands, steps="chebyshev")[-1] - fixed)
                                     .norm()) / scale <= 1e-6)
    assert 5 * chebyshev_blocks <= gd_blocks, (chebyshev_blocks, gd_blocks)
    # the network at that depth, through verify's loop oracle
    report = verify_chebyshev(gp, chebyshev_blocks, bands, t)
    assert report.parts["gd"].measured <= 1e-6 <= report.other_schedule_gd_bound["gd"]
    assert report.certificate <= 1e-10


def verify_chebyshev(gp, blocks, bands, t):
    from unroll.verification import verify

    model = construct_unrolled(gp, blocks=blocks, bands=bands, steps="chebyshev")
    return verify(gp, model, t, generator=torch.Generator().manual_seed(0), batch=8)


# ------------------------------------------------------------------ looped (weight-shared) GD
def test_looped_model_equals_the_unshared_one_with_a_fraction_of_the_parameters():
    gp = make_gp(frames=10, dim=3)
    blocks = 12
    looped = construct_unrolled(gp, blocks=blocks, bands=4, looped=True)
    unshared = construct_unrolled(gp, blocks=blocks, bands=4)
    x = sample_x(gp, 0.2)
    times = torch.tensor([0.01, 0.2, 5.0])
    with torch.no_grad():
        assert torch.equal(looped.iterates(x, times), unshared.iterates(x, times))
    assert len(looped.blocks) == 1 and len(looped.block_sequence()) == blocks
    block = sum(p.numel() for p in looped.blocks[0].parameters())
    count = sum(p.numel() for p in looped.parameters())
    assert sum(p.numel() for p in unshared.parameters()) == count + (blocks - 1) * block
    assert looped.size()["parameters"] == count


@pytest.mark.parametrize("options", [dict(looped=True), dict(steps="chebyshev"), dict(steps="chebyshev", mode="paper")])
def test_state_dict_round_trip_into_a_fresh_transformer(options):
    gp = make_gp(frames=8, dim=2)
    model = construct_unrolled(gp, blocks=6, bands=3, **options)
    fresh = Transformer(**model.config)
    fresh.load_state_dict(model.state_dict())
    x = sample_x(gp, 0.4)
    with torch.no_grad():
        assert torch.equal(fresh(x, 0.4), model(x, 0.4))


def test_grouped_rational_time_features():
    model = Transformer(dim=1, width=4, blocks=1, heads=1, time_features=6, time_groups=2, seed=1)
    t = torch.tensor([0.1, 2.0], dtype=torch.float64)
    a_t = torch.stack([torch.exp(-t), -torch.expm1(-t), torch.ones_like(t)], dim=-1)
    expected = torch.cat([(a_t @ model.time_weight[3 * g: 3 * g + 3].T) / (a_t @ model.time_norm[g])[:, None]
                          for g in range(2)], dim=-1)
    assert torch.allclose(model.time_features(t), expected, rtol=1e-14)


def test_bad_input_names_the_parameter():
    gp = make_gp(frames=6)
    with pytest.raises(ValueError, match="steps"):
        construct_unrolled(gp, blocks=3, bands=2, steps="nesterov")
    with pytest.raises(ValueError, match="looped"):
        construct_unrolled(gp, blocks=3, bands=2, steps="chebyshev", looped=True)
    with pytest.raises(ValueError, match="blocks"):
        construct_unrolled(gp, blocks=0, bands=2, steps="chebyshev")
    with pytest.raises(ValueError, match="steps"):
        gd.step_sizes(gp, 0.5, 3, 2, steps="heavy-ball")
    with pytest.raises(ValueError, match="blocks"):
        gd.chebyshev_order(0)
    with pytest.raises(ValueError, match="time_groups"):
        Transformer(dim=1, width=4, blocks=1, heads=1, time_features=4, time_groups=3)
    with pytest.raises(ValueError, match="time_groups"):
        Transformer(dim=1, width=4, blocks=1, heads=1, time_embedding="mlp", time_features=4, time_groups=2)
    with pytest.raises(ValueError, match="steps"):
        next(iter([configurations(steps=("adam",)).example()]))


def test_chebyshev_blocks_within_the_rounding_bound_where_a_fixed_threshold_failed():
    """The draw that broke the old fixed 1e-10: polynomial nu = 0.5, H = 7, Sigma eigenvalues (e^-2, 1, 1), J = 4,
    L = 83, t = e^-3; here the certificate is 1.5e-10 (relative to |y_k|), far inside the rounding bound."""
    q, _ = np.linalg.qr(np.random.default_rng(2).standard_normal((3, 3)))
    sigma = (q * np.array([math.exp(-2.0), 1.0, 1.0])) @ q.T
    gp = GaussianProcess(kernel_from_name("polynomial", nu=0.5, ell=1.0), 7, torch.from_numpy(0.5 * (sigma + sigma.T)))
    t, blocks, bands = math.exp(-3.0), 83, 4
    model = construct_unrolled(gp, blocks=blocks, bands=bands, steps="chebyshev")
    from unroll.verification import verify

    report = verify(gp, model, t, generator=torch.Generator().manual_seed(0), batch=2)
    values = theory.symbol_values(theory.Configuration.from_model(gp, model, t),
                                  x_ratio=float(report.x.norm()) / report.solution_norm)
    tolerance = theory.BOUNDS["net_exact_chebyshev"].evaluate({**values, "A_suf": values["A_all"]})
    oracle = gd.unrolled_iterates(gp, report.x, t, blocks, bands, None, steps="chebyshev")
    deviations = [report.block_gaps[k] * float(oracle[k].norm()) / report.solution_norm for k in range(1, blocks + 1)]
    assert max(deviations) <= tolerance < 0.1
