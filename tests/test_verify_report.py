"""unroll.verify's report: the flags, table rows and JSON dictionary it promises, and the paper-mode multiplier peak
against a peak computed from a plain GD loop (issue 15: survivors of mutation testing)."""

from __future__ import annotations

import io
import json
import math
import re
import sys

import numpy as np
import pytest
import torch
from plain_loop import dense_truncated_covariance, plain_gd_loop, truncated_toeplitz

import unroll
from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.model.transformer import Transformer
from unroll.verification import ErrorPart

SIGMA = np.diag([2.0, 6.0])


def _gp(frames=8):
    return GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), frames, torch.from_numpy(SIGMA))


def test_error_part_flags():
    assert ErrorPart(0.1, 0.5).flag() == "" and not ErrorPart(0.1, 0.5).failed
    assert ErrorPart(0.6, 0.5).flag() == "  BOUND VIOLATED" and ErrorPart(0.6, 0.5).failed
    assert ErrorPart(math.nan, 0.5).flag() == "  NOT FINITE" and ErrorPart(math.inf).failed
    assert ErrorPart(3.0).flag() == "" and not ErrorPart(3.0).failed  # no bound: nothing to violate


def test_table_rows_without_bounds_and_with_many_bands():
    gp = _gp()
    model = construct_unrolled(gp, blocks=2, bands=3, taper="triangular")
    report = unroll.verify(gp, model, 0.5, batch=2, attach_bounds=False)
    rows = report.table().splitlines()
    gd_row = next(row for row in rows if row.startswith("gd "))
    assert re.fullmatch(r"gd\s+\d\.\d{3}e[+-]\d\d\s+-  L steps on Gamma_J vs their fixed point", gd_row), gd_row
    assert "heads per band 0:3, 1:3, 2:3 ..." in report.table()  # 4 bands: the first three, then "..."
    three = unroll.verify(gp, construct_unrolled(gp, blocks=2, bands=2, taper="triangular"), 0.5, batch=2)
    assert three.table().rstrip().endswith("heads per band 0:3, 1:3, 2:3")


def test_table_of_a_trained_model_and_of_a_report_without_sizes():
    gp = _gp(frames=6)
    report = unroll.verify(gp, Transformer(dim=2, width=8, blocks=2, heads=2), 0.5, batch=2, bands=5)
    text = report.table()
    assert "R = nan" in text and "heads per band \n" not in text and text.rstrip().endswith("heads per band")
    report.size = {"D": 8}
    assert "B = nan (spectral norm; max entry nan)  R = nan" in report.table()


def test_to_dict_leaves_out_the_objects_and_lists_the_failures():
    gp = _gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=5)
    report = unroll.verify(gp, model, 0.5, batch=2)
    out = report.to_dict()
    assert "construction" not in out and "x" not in out
    assert out["failures"] == report.failures == []
    json.dumps(out)  # plain JSON: no tensor, no construction object
    with torch.no_grad():
        model.readout_bias[0] = math.nan
    broken = unroll.verify(gp, model, 0.5, batch=2).to_dict()
    assert set(broken["failures"]) == {"net", "total", "certificate"}


def _peak_truth(gp, x, t, bands, blocks, taper):
    """``max_k [max(eta a, eta s, eta) + max(|Gamma_J Y_k Sigma|, |Y_k|, |x|)]`` over the blocks ``k < L``: the largest
    ``|c| + |v|`` the paper-mode FFN multiplies, from the plain loop (the network follows it to ~h^2/16)."""
    gamma = gd.factors(gp).gamma.numpy()
    a, s = math.exp(-t), -math.expm1(-t)
    band = truncated_toeplitz(gamma, bands, taper)
    products = np.outer(np.linalg.eigvalsh(band), np.linalg.eigvalsh(SIGMA))
    eta = 1.0 / (a * 0.5 * (products.min() + products.max()) + s)
    iterates = plain_gd_loop(gamma, SIGMA, x.numpy(), t, blocks, bands, taper)
    largest_x = float(x.abs().max())
    return max(max(eta * a, eta * s, eta) + max(np.abs(band @ y @ SIGMA).max(), np.abs(y).max(), largest_x)
               for y in iterates[:blocks])


@pytest.mark.parametrize(("bands", "taper", "scale"),
                         [(7, None, 1e-3), (2, "triangular", 1e-3), (2, "triangular", 1.0)])
def test_multiplier_peak_against_the_plain_loop(bands, taper, scale):
    """Small inputs put the peak below 1 (the eta features are ~0.2 here); J = 2 with w = pi/4 aliases the lags
    6, 7, 9, 10 beyond the window onto bands 2 and 1, so a peak read without the window would differ.  2049 knots on
    [-24, 24]: products off by h^2/16 = 3.5e-5 at most (the peak stays inside the range)."""
    gp = _gp(frames=12)
    t, blocks = 0.5, 5
    model = construct_unrolled(gp, blocks=blocks, bands=bands, taper=taper, mode="paper", paper_knots=2049,
                               paper_range=24.0)
    generator = torch.Generator().manual_seed(7)
    x = scale * gp.noised(gp.sample(2, generator=generator), t, generator=generator)
    truth = _peak_truth(gp, x, t, bands, blocks, taper)
    report = unroll.verify(gp, model, t, x=x)
    assert report.multiplier_peak == pytest.approx(truth, abs=1e-3)
    if scale < 1:
        assert truth < 1.0


def test_table_says_whether_the_multiplier_stayed_inside_its_range():
    gp = _gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=5, mode="paper", paper_knots=65, paper_range=32.0)
    report = unroll.verify(gp, model, 0.5, batch=2)
    assert report.multiplier_peak < 32.0 and "inside the range -> inside" in report.table()
    report.multiplier_peak = 32.0  # at the range: still inside (|c| + |v| <= R)
    assert report.table().endswith("inside the range -> inside")
    report.multiplier_peak = 32.5
    assert report.table().endswith("-> OUTSIDE the range: linear extrapolation, error ~ (|u| - R)^2/4; raise --range")


def test_a_model_for_another_sigma_is_refused_naming_sigma():
    model = construct_unrolled(_gp(frames=6), blocks=2, bands=5)
    other = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 6, torch.from_numpy(SIGMA * (1 + 1e-9)))
    with pytest.raises(ValueError, match=r": Sigma \(max \|difference\| 6e-09\) differ"):
        unroll.verify(other, model, 0.5, batch=2)
    unroll.verify(GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 6,
                                  torch.from_numpy(SIGMA * (1 + 1e-13))), model, 0.5, batch=2)  # 6e-13 < 1e-12 * 6


def test_a_trained_model_is_verified_against_the_bands_given_or_all_lags():
    gp = _gp(frames=6)
    model = Transformer(dim=2, width=8, blocks=2, heads=2)
    generator = torch.Generator().manual_seed(2)
    x = gp.noised(gp.sample(2, generator=generator), 0.5, generator=generator)
    assert unroll.verify(gp, model, 0.5, x=x).bands == 5  # default: every lag, H - 1
    report = unroll.verify(gp, model, 0.5, x=x, bands=4)
    assert report.bands == 4
    flat = x.numpy().reshape(2, -1).T
    y_star, y_trunc = (np.linalg.solve(dense_truncated_covariance(gd.factors(gp).gamma.numpy(), SIGMA, 0.5, bands),
                                       flat) for bands in (5, 4))
    assert report.parts["trunc"].measured == pytest.approx(np.linalg.norm(y_trunc - y_star) / np.linalg.norm(y_star),
                                                           rel=1e-8)


def test_verify_names_bad_generator_and_attach_bounds():
    gp = _gp(frames=6)
    model = construct_unrolled(gp, blocks=2, bands=5)
    with pytest.raises(TypeError, match="^generator must be"):
        unroll.verify(gp, model, 0.5, generator=3)
    with pytest.raises(TypeError, match="^generator must be"):  # checked even when x is given (and it is unused)
        unroll.verify(gp, model, 0.5, x=torch.ones(6, 2), generator=3)
    with pytest.raises(TypeError, match="^attach_bounds must be True or False"):
        unroll.verify(gp, model, 0.5, attach_bounds="yes")


def test_verify_input_forms_and_their_checks():
    gp = _gp(frames=6)
    model = construct_unrolled(gp, blocks=3, bands=5)
    generator = torch.Generator().manual_seed(5)
    x = gp.noised(gp.sample(1, generator=generator), 0.5, generator=generator)
    batched = unroll.verify(gp, model, 0.5, x=x)
    for form in (x[0], x.numpy()):  # (H, d) unbatched, a numpy array
        other = unroll.verify(gp, model, 0.5, x=form)
        assert other.solution_norm == pytest.approx(batched.solution_norm, rel=1e-12, abs=0)
        assert other.parts["trunc"].measured == pytest.approx(batched.parts["trunc"].measured, rel=1e-9, abs=0)
    single = unroll.verify(gp, model, 0.5, x=x.float())  # float32 x: measured in float64 all the same
    assert single.solution_norm == pytest.approx(float(gp.precision_apply(x.float().double(), 0.5).norm()), rel=1e-12)
    with pytest.raises(TypeError, match="^x must be a real array or tensor"):
        unroll.verify(gp, model, 0.5, x="abc")
    with pytest.raises(ValueError, match="^x contains 1 NaN"):
        unroll.verify(gp, model, 0.5, x=torch.where(torch.arange(12).reshape(1, 6, 2) == 3, math.nan, x))
    with pytest.raises(ValueError, match="^batch must satisfy 1 <= batch"):
        unroll.verify(gp, model, 0.5, batch=0)


def test_verify_draws_x_from_the_generator_given():
    gp = _gp(frames=6)
    model = construct_unrolled(gp, blocks=3, bands=5)
    drawn = unroll.verify(gp, model, 0.5, generator=torch.Generator().manual_seed(9), batch=2)
    generator = torch.Generator().manual_seed(9)
    x = gp.noised(gp.sample(2, generator=generator), 0.5, generator=generator)
    assert torch.equal(drawn.x, x)
    assert not torch.equal(unroll.verify(gp, model, 0.5, batch=2).x, x)  # default seed 0: another draw


def test_verify_a_trained_model_checks_the_bands_range():
    gp = _gp(frames=6)
    model = Transformer(dim=2, width=8, blocks=1, heads=1)
    assert unroll.verify(gp, model, 0.5, batch=1, bands=0).bands == 0
    for bad in (6, -1):
        with pytest.raises(ValueError, match="^bands must satisfy 0 <= bands <= 5"):
            unroll.verify(gp, model, 0.5, batch=1, bands=bad)


def test_block_gaps_are_relative_to_each_iterate():
    """``block_gaps[k] = |net_k - y_k| / |y_k|`` for a model started at ``y_0 = eps x`` (gaps far above rounding), with
    ``|y_k| << 1``: each gap is relative to its own iterate, computed here from the plain loop."""
    gp = _gp(frames=6)
    t, blocks, bands, eps = 1.0, 4, 5, 1e-3
    model = construct_unrolled(gp, blocks=blocks, bands=bands)
    with torch.no_grad():
        model.input_x[model.construction.layout["y"], :] += eps * torch.eye(2)
    generator = torch.Generator().manual_seed(4)
    x = 1e-6 * gp.noised(gp.sample(2, generator=generator), t, generator=generator)
    report = unroll.verify(gp, model, t, x=x)
    reference = plain_gd_loop(gd.factors(gp).gamma.numpy(), SIGMA, x.numpy(), t, blocks, bands)
    with torch.no_grad():
        network = model.iterates(x, t).numpy()
    for k in range(1, blocks + 1):
        expected = np.linalg.norm(network[k] - reference[k]) / np.linalg.norm(reference[k])
        assert np.linalg.norm(reference[k]) < 1e-4 and report.block_gaps[k] == pytest.approx(expected, rel=1e-6, abs=0)


def test_report_fields_against_dense_values():
    gp = _gp(frames=6)
    t, bands, blocks = 0.3, 3, 4
    model = construct_unrolled(gp, blocks=blocks, bands=bands, taper="triangular")
    report = unroll.verify(gp, model, t, batch=3)
    gamma = gd.factors(gp).gamma.numpy()
    eigenvalues = np.linalg.eigvalsh(dense_truncated_covariance(gamma, SIGMA, t, bands, "triangular"))
    assert (report.diffusion_time, report.bands, report.blocks, report.taper, report.mode, report.batch,
            report.dtype, report.steps) == (t, bands, blocks, "triangular", "exact", 3, "float64", "gd")
    assert report.config == model.config and report.construction is model.construction
    assert report.lambda_min == pytest.approx(eigenvalues[0], rel=1e-10, abs=0)
    assert report.lambda_max == pytest.approx(eigenvalues[-1], rel=1e-10, abs=0)
    assert report.kappa == pytest.approx(eigenvalues[-1] / eigenvalues[0], rel=1e-10, abs=0)
    assert report.step_size == pytest.approx(2 / (eigenvalues[0] + eigenvalues[-1]), rel=1e-10, abs=0)
    tapered = np.linalg.eigvalsh(truncated_toeplitz(gamma, bands, "triangular"))
    assert report.lambda_min_gamma == pytest.approx(tapered[0], rel=1e-10, abs=0)


def test_size_of_a_trained_model_in_the_report():
    gp = _gp(frames=6)
    model = Transformer(dim=2, width=8, blocks=2, heads=3, ffn_width=5)
    report = unroll.verify(gp, model, 0.5, batch=1)
    norms = model.max_weight_norm()
    assert report.size == {"D": 8, "L": 2, "M": 3, "ffn_width": 5, "B": norms["spectral"], "B_entry": norms["entry"]}
    assert "model  D = 8  L = 2  M = 3 heads  FFN width = 5  B = " in report.table()


def test_sigma_exactly_at_the_tolerance_is_the_same_gp():
    """``check_model_gp``'s tolerance is inclusive: a Sigma whose off-diagonal is exactly ``1e-12`` of its largest
    entry (6) is the GP the model was built for (the float ``1e-12 * 6.0`` is both the gap and the threshold)."""
    model = construct_unrolled(_gp(frames=6), blocks=2, bands=5)
    nudged = SIGMA.copy()
    nudged[0, 1] = nudged[1, 0] = 1e-12 * 6.0
    report = unroll.verify(GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 6, torch.from_numpy(nudged)),
                           model, 0.5, batch=2)
    assert math.isfinite(report.certificate)


def test_float32_inputs_are_verified_in_float64():
    """``x`` in float32 is read as the float64 numbers it holds: the report keeps it in float64 and every measured
    number and bound equals those of the same inputs given in float64."""
    gp = _gp()
    model = construct_unrolled(gp, blocks=4, bands=5, taper="triangular")
    x = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(torch.float32)
    single, double = unroll.verify(gp, model, 0.5, x=x), unroll.verify(gp, model, 0.5, x=x.double())
    assert single.x.dtype == torch.float64 and torch.equal(single.x, double.x)
    assert {name: (part.measured, part.bound) for name, part in single.parts.items()} == {
        name: (part.measured, part.bound) for name, part in double.parts.items()}


class _Terminal(io.StringIO):
    """A stand-in stderr that says it is a terminal, where tqdm would draw a bar unless told not to."""

    def isatty(self) -> bool:
        return True


def test_verify_draws_a_progress_bar_only_when_asked(monkeypatch):
    gp = _gp()
    model = construct_unrolled(gp, blocks=2, bands=3, taper="triangular")
    for kwargs, drawn in (({}, False), ({"progress": False}, False), ({"progress": True}, True)):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        unroll.verify(gp, model, 0.5, batch=2, **kwargs)
        monkeypatch.undo()
        assert ("verify: reference iterates" in terminal.getvalue()) == drawn, kwargs


def test_norm_sums_squares_in_float64_whatever_the_input_dtype():
    """``_norm`` of float32 entries is the float64 norm of the same numbers (float32 accumulation of 10^5 squares
    is off by ~1e-7 relative; float64's by ~1e-16)."""
    from unroll.verification import _norm

    entries = torch.rand(100_000, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(torch.float32)
    exact = math.sqrt(math.fsum(float(value) ** 2 for value in entries.double()))
    assert _norm(entries) == pytest.approx(exact, rel=1e-14, abs=0)


def test_inputs_whose_solution_underflows_are_refused_naming_the_rescale():
    """Every part is relative to ``||C_t^{-1} x||``: where it underflows to 0 (the smallest subnormal x against
    ``lambda_min(C_t)`` about 300) verify says so instead of dividing by zero."""
    gp = GaussianProcess(kernel_from_name("matern", nu=0.5, ell=0.3), 6, 1000 * torch.eye(2, dtype=torch.float64))
    model = construct_unrolled(gp, blocks=2, bands=5)
    x = torch.full((2, 6, 2), 5e-324, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"underflows to 0\.0 \(max \|x\| = 4\.94e-324\).*rescale x"):
        unroll.verify(gp, model, 0.5, x=x)
