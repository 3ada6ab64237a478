"""Softmax variant: one softmax head per block; its row-normalisation (boundary) error is measured against
an independent loop computation and against exact GD, not hidden."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import unroll
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.construction.softmax import boundary_factors, construct_softmax, measure_softmax, von_mises_kernel
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name


def make_gp(frames=16, ell=2.0, dim=2, kernel=None):
    kernel = kernel or von_mises_kernel(ell, frames)
    return GaussianProcess(kernel, frames, random_spatial_covariance(dim, 0))


def test_attention_output_is_the_row_normalised_kernel_sum():
    gp = make_gp(frames=12, ell=2.0)
    model = construct_softmax(gp, blocks=1)
    layout = model.construction.layout
    g = torch.Generator().manual_seed(0)
    x = gp.sample(2, generator=g)
    y = torch.randn(x.shape, generator=g, dtype=torch.float64)
    with torch.no_grad():
        xi, ti, _ = model._prepare(x, 0.5)
        z = model.embed(xi, ti)
        z[..., layout["y"]] = y
        acc = (z + model.blocks[0].attention(z, "softmax", None, 1.0)[0])[..., layout["acc"]]
    # independent loop: gamma from the kernel object, softmax normalisers summed by hand
    frames, sigma = 12, gp.spatial.numpy()
    gamma = gp.kernel(np.arange(frames))
    full = gamma[0] + 2 * gamma[1:].sum()
    expected = np.zeros(y.shape)
    for i in range(frames):
        row = sum(gamma[abs(i - j)] for j in range(frames))
        for j in range(frames):
            expected[:, i] += full / row * gamma[abs(i - j)] * (y[:, j].numpy() @ sigma)
    assert np.allclose(acc.numpy(), expected, rtol=1e-11, atol=1e-12)
    factors = boundary_factors(model).numpy()
    assert np.allclose(factors, [full / sum(gamma[abs(i - j)] for j in range(frames)) - 1 for i in range(frames)])


def test_boundary_error_is_reported_and_is_the_only_large_error():
    gp = make_gp(frames=32, ell=2.0)
    model = construct_softmax(gp, blocks=15, paper_knots=257, paper_range=16.0)
    errors = measure_softmax(gp, model, 0.5, batch=4)
    assert errors.kernel_mismatch < 1e-12  # the GP's kernel is the von Mises kernel itself
    assert errors.boundary_factor_max > 0.5  # the end rows miss almost half of the kernel mass
    assert errors.boundary_factor_middle < 1e-8
    assert errors.boundary > 1e-2 and errors.step > 1e-2
    # against GD with the row-normalised operator only the multiplier's error remains
    assert errors.certificate_row_normalised < errors.certificate / 10
    assert errors.certificate == errors.report.certificate > 1e-2
    assert errors.report.mode == "softmax" and errors.report.size["M"] == 1


def test_gaussian_kernel_mismatch_is_measured():
    gp = make_gp(frames=32, kernel=kernel_from_name("gamma-exponential", nu=2.0, ell=2.0))
    model = construct_softmax(gp, blocks=2)
    gamma = gp.kernel(np.arange(32))
    beta = model.construction.softmax_beta
    assert math.isclose(math.exp(beta * (math.cos(math.pi / 32) - 1)), gamma[1], rel_tol=1e-12)
    vm = np.exp(beta * (np.cos(np.pi / 32 * np.arange(32)) - 1))
    assert math.isclose(model.construction.kernel_mismatch, float(np.abs(vm - gamma).max()), rel_tol=1e-9)
    assert 0 < model.construction.kernel_mismatch < 1e-2


def test_round_trip_and_validation():
    gp = make_gp(frames=8, ell=1.5)
    model = construct_softmax(gp, blocks=2, paper_knots=17)
    assert model.config["attention"] == "softmax" and model.config["heads"] == 1
    fresh = unroll.Transformer(**model.config)
    fresh.load_state_dict(model.state_dict())
    x = gp.sample(2)
    with torch.no_grad():
        assert torch.equal(fresh(x, 0.3), model(x, 0.3))
    with pytest.raises(ValueError, match="blocks"):
        construct_softmax(gp, blocks=0)
    with pytest.raises(ValueError, match="beta"):
        construct_softmax(gp, blocks=1, beta=-1.0)
    long = make_gp(frames=16, kernel=kernel_from_name("gamma-exponential", nu=2.0, ell=6.0))
    with pytest.raises(gd.IndefiniteTruncationError, match="shorter length scale"):
        construct_softmax(long, blocks=1)


def test_a_softmax_model_steps_by_one_gd_step_per_block_and_other_models_are_refused():
    """``step_sizes`` used to fail on the softmax construction (no step centres); its steps are plain GD."""
    gp = make_gp(frames=12)
    model = construct_softmax(gp, blocks=3)
    t = 0.5
    centre = model.construction.step_center  # P = (lambda_min + lambda_max)/2 of Gamma (x) Sigma
    eta = 1.0 / (math.exp(-t) * centre + (1.0 - math.exp(-t)))  # 1/(alpha_t^2 P + sigma_t^2)
    assert torch.allclose(model.step_sizes(t), torch.full((3,), eta, dtype=torch.float64), rtol=1e-14, atol=0)
    exact = unroll.construct_unrolled(make_gp(frames=12, kernel=kernel_from_name("gamma-exponential", nu=1.0,
                                                                                 ell=2.0)), blocks=2, bands=3)
    with pytest.raises(ValueError, match="softmax construction"):
        boundary_factors(exact)
