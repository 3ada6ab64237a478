"""unroll.construction.gd: the frame-wise objective, step size, truncation/taper and the plain-loop GD oracle,
checked against dense oracles (torch.kron matrices, linalg.solve, autograd)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name


def make_gp(name="gamma-exponential", nu=1.0, ell=2.0, frames=8, dim=3, seed=0):
    return GaussianProcess(kernel_from_name(name, nu=nu, ell=ell), frames, random_spatial_covariance(dim, seed))


def sample_x(gp, batch=3, t=0.5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return gp.noised(gp.sample(batch, generator=g), t, generator=g)


def dense_gd(gp, x, t, steps, bands, taper=None):
    """Independent oracle: GD with the dense matrix C_{t,J} and the dense eigenvalue step size."""
    c = gd.dense_covariance(gp, t, bands, taper)
    eig = torch.linalg.eigvalsh(c)
    eta = 2.0 / (eig[0] + eig[-1])
    flat = x.reshape(x.shape[0], -1)
    y = torch.zeros_like(flat)
    out = [y]
    for _ in range(steps):
        y = y - eta * (y @ c.T - flat)
        out.append(y)
    return torch.stack(out).reshape(steps + 1, *x.shape)


@pytest.mark.parametrize("taper", [None, "triangular"])
def test_loop_oracle_matches_dense_gd(taper):
    gp = make_gp(frames=9, dim=2)
    x = sample_x(gp)
    loop = gd.gd_iterates(gp, x, 0.3, 6, bands=3, taper=taper)
    dense = dense_gd(gp, x, 0.3, 6, 3, taper)
    assert loop.shape == (7, 3, 9, 2)
    assert torch.equal(loop[0], torch.zeros_like(x))
    assert torch.allclose(loop, dense, rtol=1e-12, atol=1e-12)


def test_gradient_and_objective_match_dense_and_autograd():
    gp = make_gp(frames=6, dim=3)
    x = sample_x(gp, batch=2)
    y = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64, requires_grad=True)
    gamma = gd.truncate(gd.factors(gp).gamma, 2)
    value = gd.objective(y, x, gamma, gp.spatial, 0.7)
    (auto,) = torch.autograd.grad(value.sum(), y)
    assert torch.allclose(gd.gradient(y, x, gamma, gp.spatial, 0.7), auto, rtol=1e-12, atol=1e-12)
    c = gd.dense_covariance(gp, 0.7, 2)
    flat_y, flat_x = y.detach().reshape(2, -1), x.reshape(2, -1)
    dense_value = 0.5 * (flat_y * (flat_y @ c.T)).sum(-1) - (flat_x * flat_y).sum(-1)
    assert torch.allclose(value.detach(), dense_value, rtol=1e-12)


def test_fixed_point_matches_dense_solve_and_full_bands_matches_gp_score():
    gp = make_gp(frames=7, dim=2)
    x = sample_x(gp)
    got = gd.fixed_point(gp, x, 0.4, bands=3)
    c = gd.dense_covariance(gp, 0.4, 3)
    want = torch.linalg.solve(c, x.reshape(3, -1).T).T.reshape(x.shape)
    assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)
    assert torch.allclose(gd.fixed_point(gp, x, 0.4), -gp.score(x, 0.4), rtol=1e-10, atol=1e-12)


def test_step_size_condition_number_and_contraction_match_dense_eigenvalues():
    gp = make_gp(frames=8, dim=3)
    for t in (0.01, 0.5, 4.0):
        eig = torch.linalg.eigvalsh(gd.dense_covariance(gp, t, 4))
        assert math.isclose(float(gd.step_size(gp, t, 4)), float(2 / (eig[0] + eig[-1])), rel_tol=1e-10)
        kappa = float(gd.condition_number(gp, t, 4))
        assert math.isclose(kappa, float(eig[-1] / eig[0]), rel_tol=1e-9)
        assert math.isclose(gd.contraction(kappa), (kappa - 1) / (kappa + 1))
        assert math.isclose(float(gd.contraction(gp, t, 4)), (kappa - 1) / (kappa + 1), rel_tol=1e-12)


def test_error_contracts_at_least_by_the_contraction_factor():
    gp = make_gp(frames=10, dim=2)
    x = sample_x(gp)
    t, bands, steps = 0.2, 4, 30
    iterates = gd.gd_iterates(gp, x, t, steps, bands)
    target = gd.fixed_point(gp, x, t, bands)
    rho = float(gd.contraction(gp, t, bands))
    for k in range(steps + 1):
        assert float((iterates[k] - target).norm()) <= rho**k * float(target.norm()) * (1 + 1e-9) + 1e-12


def test_per_sample_diffusion_times_equal_separate_runs():
    gp = make_gp(frames=6, dim=2)
    x = sample_x(gp, batch=2)
    times = torch.tensor([0.1, 2.0])
    joint = gd.gd_iterates(gp, x, times, 4, 2)
    for b in range(2):
        single = gd.gd_iterates(gp, x[b], float(times[b]), 4, 2)
        assert torch.allclose(joint[:, b], single, rtol=1e-13, atol=1e-14)


def test_truncate_plain_and_triangular():
    values = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625])
    assert torch.equal(gd.truncate(values, 2), torch.tensor([1.0, 0.5, 0.25, 0.0, 0.0]))
    tri = gd.truncate(values, 2, taper="triangular")
    assert torch.allclose(tri, torch.tensor([1.0, 0.5 * 2 / 3, 0.25 / 3, 0.0, 0.0]))
    matrix = gd.truncate(gd.Factors(values, torch.eye(1)).toeplitz(), 1)
    index = torch.arange(5)
    lag = (index[:, None] - index[None, :]).abs()
    assert torch.equal(matrix, torch.where(lag <= 1, values[lag], torch.zeros(())))
    with pytest.raises(ValueError, match="bands"):
        gd.truncate(values, 5)
    with pytest.raises(ValueError, match="taper"):
        gd.truncate(values, 2, taper="cosine")


FAMILIES = {"gamma-exponential": (0.3, 2.0), "matern": (0.5, 3.0), "polynomial": (0.5, 4.0),
            "logarithmic": (0.5, 3.0)}


@settings(max_examples=30, deadline=None)
@given(family=st.sampled_from(sorted(FAMILIES)), u=st.floats(0, 1), ell=st.floats(0.3, 8.0),
       frames=st.integers(2, 32), data=st.data())
def test_triangular_taper_is_positive_definite_for_every_bands(family, u, ell, frames, data):
    low, high = FAMILIES[family]
    kernel = kernel_from_name(family, nu=low + u * (high - low), ell=ell)
    gamma = torch.from_numpy(kernel.toeplitz(frames))[0]
    if float(torch.linalg.eigvalsh(gd.Factors(gamma, torch.eye(1)).toeplitz())[0]) < 1e-8:
        return  # Gamma itself numerically singular: no claim
    bands = data.draw(st.integers(0, frames - 1))
    lam_min = gd.check_truncation(gamma, bands, "triangular")  # raises if not positive definite
    assert lam_min > 0


def test_indefinite_plain_cut_is_caught_and_taper_converges():
    gp = make_gp("gamma-exponential", nu=2.0, ell=3.0, frames=16, dim=2)
    x = sample_x(gp, t=0.01)
    with pytest.raises(gd.IndefiniteTruncationError, match="triangular") as info:
        gd.gd_iterates(gp, x, 0.01, 5, bands=3)
    banded = gp.temporal.clone()
    index = torch.arange(16)
    banded[(index[:, None] - index[None, :]).abs() > 3] = 0.0
    lam_min = float(torch.linalg.eigvalsh(banded)[0])
    assert lam_min < 0
    assert f"lambda_min(Gamma_J) = {lam_min:.3g}" in str(info.value) and "larger number of bands" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = gd.gd_iterates(gp, x, 0.01, 200, bands=3, on_indefinite="warn")
    assert any("not positive definite" in str(w.message) for w in caught)
    tapered = gd.gd_iterates(gp, x, 0.01, 200, bands=3, taper="triangular")
    target = gd.fixed_point(gp, x, 0.01, 3, "triangular")
    assert float(plain[-1].norm()) > 1e6 * float(target.norm())  # the plain cut diverges
    rho = float(gd.contraction(gp, 0.01, 3, "triangular"))
    assert float((tapered[-1] - target).norm()) <= rho**200 * float(target.norm()) * (1 + 1e-6) + 1e-9


def test_input_validation_names_the_parameter():
    gp = make_gp(frames=6, dim=2)
    x = sample_x(gp)
    with pytest.raises(ValueError, match="bands"):
        gd.gd_iterates(gp, x, 0.5, 3, bands=6)
    with pytest.raises(ValueError, match="steps"):
        gd.gd_iterates(gp, x, 0.5, -1, bands=2)
    with pytest.raises(ValueError, match="diffusion_time"):
        gd.gd_iterates(gp, x, 0.0, 3, bands=2)
    bad = x.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="x contains"):
        gd.gd_iterates(gp, bad, 0.5, 3, bands=2)
    with pytest.raises(ValueError, match="x must have shape"):
        gd.gd_iterates(gp, x[..., :1], 0.5, 3, bands=2)
    with pytest.raises(ValueError, match="on_indefinite"):
        gd.gd_iterates(gp, x, 0.5, 3, bands=2, on_indefinite="never")
