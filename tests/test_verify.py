"""unroll.verify: error parts against independent dense oracles, certificate, bounds hook, report output."""

from __future__ import annotations

import json
import math

import pytest
import torch

import unroll
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.model.transformer import Transformer


def make_gp(frames=10, dim=2):
    return GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), frames,
                           random_spatial_covariance(dim, 0))


def dense_solution(gp, x, t, bands=None):
    c = gd.dense_covariance(gp, t, bands)
    return torch.linalg.solve(c, x.reshape(x.shape[0], -1).T).T.reshape(x.shape)


def test_parts_match_dense_oracles():
    gp = make_gp()
    t, bands, blocks = 0.4, 3, 15
    model = construct_unrolled(gp, blocks=blocks, bands=bands)
    g = torch.Generator().manual_seed(3)
    x = gp.noised(gp.sample(4, generator=g), t, generator=g)
    report = unroll.verify(gp, model, t, x=x)
    assert set(report.parts) == {"gd", "trunc", "net", "total"}
    y_star, y_trunc = dense_solution(gp, x, t), dense_solution(gp, x, t, bands)
    scale = float(y_star.norm())
    assert math.isclose(report.solution_norm, scale, rel_tol=1e-10)
    assert math.isclose(report.parts["trunc"].measured, float((y_trunc - y_star).norm()) / scale, rel_tol=1e-8)
    with torch.no_grad():
        y_net = -model(x, t)
    assert math.isclose(report.parts["total"].measured, float((y_net - y_star).norm()) / scale, rel_tol=1e-8)
    # the GD part from the dense iteration (independent of the loop oracle)
    c = gd.dense_covariance(gp, t, bands)
    eig = torch.linalg.eigvalsh(c)
    y = torch.zeros(x.shape[0], c.shape[0])
    for _ in range(blocks):
        y = y - 2 / (eig[0] + eig[-1]) * (y @ c - x.reshape(x.shape[0], -1))
    expected_gd = float((y.reshape(x.shape) - y_trunc).norm()) / scale
    assert math.isclose(report.parts["gd"].measured, expected_gd, rel_tol=1e-8)
    parts = report.parts
    assert parts["total"].measured <= parts["gd"].measured + parts["trunc"].measured + parts["net"].measured
    assert parts["net"].measured <= 1e-10 and report.certificate <= 1e-10
    assert len(report.block_gaps) == blocks + 1
    assert math.isclose(report.contraction, (report.kappa - 1) / (report.kappa + 1))
    assert math.isclose(report.lambda_min, float(eig[0]), rel_tol=1e-9)
    assert report.construction is model.construction
    for part in parts.values():  # a bound below its measurement is a bug somewhere
        assert part.bound is None or part.measured <= part.bound


def test_attach_bounds_hook_is_called(monkeypatch):
    import theory.bounds

    calls = []

    def fake(report, gp, model, diffusion_time):
        calls.append((gp, model, diffusion_time))
        report.parts["gd"].bound = 1.0

    monkeypatch.setattr(theory.bounds, "attach_bounds", fake)
    gp = make_gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=2)
    report = unroll.verify(gp, model, 0.7, batch=2)
    assert calls == [(gp, model, 0.7)] and report.parts["gd"].bound == 1.0


def test_report_table_and_json():
    gp = make_gp(frames=6)
    report = unroll.verify(gp, construct_unrolled(gp, blocks=3, bands=2, mode="paper", paper_knots=17), 0.5,
                           batch=2)
    text = report.table()
    for word in ("gd", "trunc", "net", "total", "certificate", "D = ", "B = ", "multiplier"):
        assert word in text
    for part in report.parts.values():  # paper mode: a bound below its measurement is a bug somewhere
        assert part.bound is None or part.measured <= part.bound
    payload = json.loads(json.dumps(report.to_dict(), default=str))
    assert payload["parts"]["net"]["measured"] == report.parts["net"].measured
    assert payload["size"]["M"] == 1 + 3 * 2


def test_verify_a_generic_transformer_and_validation():
    gp = make_gp(frames=6)
    model = Transformer(dim=2, width=8, blocks=2, heads=2)
    report = unroll.verify(gp, model, 0.5, batch=2, bands=5)
    assert report.mode == "trained" and math.isfinite(report.parts["total"].measured)
    with pytest.raises(ValueError, match="diffusion_time"):
        unroll.verify(gp, model, 0.0)
    with pytest.raises(ValueError, match="x must have shape"):
        unroll.verify(gp, model, 0.5, x=torch.zeros(2, 5, 2))


# ------------------------------------------------------------------------- the model must fit the GP
@pytest.mark.parametrize(("other", "named"), [
    (lambda: GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 8, random_spatial_covariance(2, 0)),
     "Gamma"),
    (lambda: GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.5), 8,
                             random_spatial_covariance(2, 0)), "Gamma"),
    (lambda: make_gp(frames=9), "frames H (8 vs 9)"),
    (lambda: make_gp(dim=3), "dimension d (2 vs 3)"),
    (lambda: GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 8,
                             random_spatial_covariance(2, 1)), "Sigma"),
])
def test_a_model_built_for_another_gp_is_refused(other, named):
    model = construct_unrolled(make_gp(frames=8), blocks=3, bands=3)
    with pytest.raises(ValueError, match="the model was built for") as caught:
        unroll.verify(other(), model, 0.5, batch=2)
    assert named in str(caught.value)


def test_the_same_gp_rebuilt_is_accepted():
    model = construct_unrolled(make_gp(frames=8), blocks=3, bands=3)
    report = unroll.verify(make_gp(frames=8), model, 0.5, batch=2)  # a new object with the same Gamma and Sigma
    assert not report.failures


def test_bands_or_taper_that_disagree_with_the_construction_are_refused():
    gp = make_gp(frames=8)
    model = construct_unrolled(gp, blocks=3, bands=3)
    with pytest.raises(ValueError, match="bands=2 disagrees"):
        unroll.verify(gp, model, 0.5, batch=2, bands=2)
    with pytest.raises(ValueError, match="taper='triangular' disagrees"):
        unroll.verify(gp, model, 0.5, batch=2, taper="triangular")


def test_a_trained_model_of_another_dimension_is_refused():
    with pytest.raises(ValueError, match="d = 3"):
        unroll.verify(make_gp(frames=6), Transformer(dim=3, width=8, blocks=1, heads=1), 0.5, batch=2)


@pytest.mark.parametrize("attach_bounds", [False, True])
def test_a_nan_part_is_flagged_with_or_without_bounds(attach_bounds):
    gp = make_gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=2)
    with torch.no_grad():
        model.readout_bias[0] = math.nan  # every read-out, hence the network's iterates, become NaN
    report = unroll.verify(gp, model, 0.5, batch=2, attach_bounds=attach_bounds)
    assert math.isnan(report.parts["net"].measured) and math.isnan(report.parts["total"].measured)
    assert {"net", "total", "certificate"} <= set(report.failures)
    assert "gd" not in report.failures and "trunc" not in report.failures
    assert report.table().count("NOT FINITE") == 2
    assert report.to_dict()["parts"]["net"]["failed"] is True


def test_zero_x_is_refused_not_divided_by():
    gp = make_gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=2)
    with pytest.raises(ValueError, match="x must not be all zeros"):
        unroll.verify(gp, model, 0.5, x=torch.zeros(2, 6, 2))


def test_tiny_and_huge_x_give_the_same_relative_errors():
    """The norms are scaled: x * 1e-300 or x * 1e250 neither underflows nor overflows in the sum of squares."""
    gp = make_gp(frames=6)
    model = construct_unrolled(gp, blocks=4, bands=2)
    x = gp.sample(2, generator=torch.Generator().manual_seed(2))
    reference = unroll.verify(gp, model, 0.5, x=x, attach_bounds=False)
    for factor in (1e-300, 1e250):
        report = unroll.verify(gp, model, 0.5, x=x * factor, attach_bounds=False)
        assert report.parts["gd"].measured == pytest.approx(reference.parts["gd"].measured, rel=1e-9, abs=0)
        assert report.parts["trunc"].measured == pytest.approx(reference.parts["trunc"].measured, rel=1e-9, abs=0)


def test_certificate_catches_a_model_whose_first_read_out_is_wrong():
    """A constructed model always reads out 0 before block 1, so a certificate that skipped k = 0 would pass a model
    that starts from ``y_0 = eps x`` instead: at t = 3 GD contracts that start away (about 6x per block) before the
    output, and only the k = 0 gap ``eps |x| / |y*|`` (computed here from a dense solve) shows it."""
    gp = make_gp()
    t, bands, blocks, eps = 3.0, 9, 8, 1e-3
    model = construct_unrolled(gp, blocks=blocks, bands=bands)
    g = torch.Generator().manual_seed(5)
    x = gp.noised(gp.sample(3, generator=g), t, generator=g)
    clean = unroll.verify(gp, model, t, x=x)
    with torch.no_grad():
        model.input_x[model.construction.layout["y"], :] += eps * torch.eye(gp.dim)
    perturbed = unroll.verify(gp, model, t, x=x)
    first_gap = eps * float(x.norm()) / float(dense_solution(gp, x, t).norm())
    assert perturbed.block_gaps[0] == pytest.approx(first_gap, rel=1e-9, abs=0)
    assert perturbed.certificate == pytest.approx(first_gap, rel=1e-9, abs=0)
    assert max(perturbed.block_gaps[1:]) < first_gap / 5 and clean.certificate < first_gap / 1e6
    assert perturbed.parts["net"].measured < first_gap / 1e3  # the output alone hardly moves


def test_unroll_verify_is_the_function_and_its_module_is_unroll_verification():
    import types
    from pathlib import Path

    from unroll.verification import VerificationReport, verify

    assert unroll.verify is verify and not isinstance(unroll.verify, types.ModuleType)
    assert VerificationReport.__module__ == "unroll.verification"
    assert not (Path(unroll.__file__).parent / "verify.py").exists()  # no module of the function's name


def test_norm_of_an_empty_tensor_is_zero():
    """The scaled Frobenius norm behind every relative error: an empty tensor has norm 0 (not torch's error on
    ``max`` of nothing), and a tensor of huge or tiny entries keeps its norm (the scaling exists for that)."""
    from unroll.verification import _norm

    assert _norm(torch.zeros(0, 3, dtype=torch.float64)) == 0.0
    assert _norm(torch.full((4,), 1e300, dtype=torch.float64)) == pytest.approx(2e300, rel=1e-15, abs=0)
    assert _norm(torch.full((4,), 1e-300, dtype=torch.float64)) == pytest.approx(2e-300, rel=1e-15, abs=0)
