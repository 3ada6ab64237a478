"""``unroll bounds``: formulas and numbers for one configuration; clear errors for bad input."""

from __future__ import annotations

import theory
from unroll.cli import main
from unroll.cli.options import random_spatial_covariance
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name


def test_bounds_prints_assumptions_formulas_and_numbers(capsys):
    argv = ["bounds", "--kernel", "matern", "--nu", "1.5", "--ell", "2", "--frames", "16", "--dim", "2",
            "--bands", "5", "--blocks", "30", "--time", "0.5", "--taper", "triangular"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for text in ("gamma_pd", "truncated_pd", "lags_separated", "trunc", "net_exact", "formula:", "T_J",
                 "J needed", "heads M(J)", "t -> 0", "n^-1/2"):
        assert text in out, text
    # the printed E_trunc number is the numeric path's value for the same configuration (oracle: theory API)
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 16, random_spatial_covariance(2, 0, 4.0))
    config = theory.Configuration.from_gp(gp, bands=5, blocks=30, diffusion_time=0.5, taper="triangular",
                                          max_condition=4.0)
    expected = f"{theory.BOUNDS['trunc'].evaluate(config):.4g}"
    assert f"trunc          = {expected}" in out


def test_bounds_latex_and_failing_assumption(capsys):
    argv = ["bounds", "--kernel", "logarithmic", "--nu", "0.5", "--ell", "1", "--frames", "12", "--dim", "1",
            "--bands", "1", "--blocks", "5", "--time", "0.2", "--latex"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "FAILS" in out and "\\" in out


def test_bounds_bad_input_exit_code_2(capsys):
    assert main(["bounds", "--frames", "8", "--bands", "9"]) == 2
    assert "bands" in capsys.readouterr().err
