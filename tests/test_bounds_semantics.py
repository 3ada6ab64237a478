"""theory.bounds against formulas written out here from its docstring and docs/design.md §6–7 (mutmut survivors
of theory/bounds.py, issue 15)."""

from __future__ import annotations

import math

import torch

from unroll.constructor import construct_unrolled
from unroll.gp import GaussianProcess
from unroll.kernels import kernel_from_name
from unroll.verification import VerificationReport, verify


def _bfloat16_report(frames: int, bands: int, blocks: int, dim: int, t: float) -> VerificationReport:
    """``verify`` of the bfloat16 construction for a Matérn(1.5, 1.5) GP with ``Sigma = I_dim``, plain band cut."""
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=1.5), frames, torch.eye(dim, dtype=torch.float64))
    model = construct_unrolled(gp, blocks=blocks, bands=bands, dtype=torch.bfloat16)
    return verify(gp, model, t, batch=2)


def test_bfloat16_verify_with_many_bands_reports_an_infinite_not_a_nan_net_bound() -> None:
    """bfloat16 (``u = 2^-8``) with ``J = 49`` bands: the rounding count ``2J + 1 + M + d + 8 = 5J + 13 = 258 >= 1/u``
    makes ``gamma_n`` vacuous, so the GD net bound is ``inf`` (a verdict).  It was NaN (``(inf - 1)/(inf - 1)`` in the
    geometric series), and so was the total: a NaN bound is neither held nor failed."""
    report = _bfloat16_report(50, 49, 1, dim=1, t=0.5)
    assert report.parts["net"].bound == math.inf and report.parts["total"].bound == math.inf
    assert math.isfinite(report.parts["gd"].bound) and math.isfinite(report.parts["trunc"].bound)


def test_bfloat16_verify_with_many_blocks_reports_an_infinite_net_bound() -> None:
    """bfloat16, 200 blocks: ``(rho + g)^L`` overflows the float range, so the GD net bound is ``inf``; it raised
    OverflowError out of ``verify`` (``attach_bounds``)."""
    report = _bfloat16_report(10, 3, 200, dim=2, t=0.2)
    assert report.parts["net"].bound == math.inf
