"""``unroll verify`` command line: defaults, options, JSON output, errors."""

from __future__ import annotations

import json

from unroll.cli import main


def test_defaults_print_the_table(capsys):
    assert main(["verify"]) == 0
    out = capsys.readouterr().out
    for word in ("gd", "trunc", "net", "total", "certificate", "H=32", "J=8", "L=40", "t=0.5"):
        assert word in out


def test_options_and_json(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = main(["verify", "--kernel", "matern", "--nu", "1.5", "--ell", "1", "--frames", "12", "--dim", "2",
                 "--bands", "4", "--blocks", "10", "--time", "0.2", "--mode", "paper", "--knots", "65",
                 "--taper", "triangular", "--batch", "2", "--seed", "4", "--dtype", "float32",
                 "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mode=paper" in out and "taper=triangular" in out and "float32" in out
    payload = json.loads(path.read_text())
    assert set(payload["parts"]) == {"gd", "trunc", "net", "total"}
    assert payload["bands"] == 4 and payload["dtype"] == "float32"


def test_errors_name_the_parameter(capsys):
    assert main(["verify", "--frames", "8", "--bands", "8"]) == 2
    assert "bands" in capsys.readouterr().err
    assert main(["verify", "--frames", "8", "--bands", "2", "--time", "0"]) == 2
    assert "--time" in capsys.readouterr().err  # the option, checked when parsed


def test_softmax_mode_reports_the_boundary_error(tmp_path, capsys):
    import torch

    from unroll.cli.options import random_spatial_covariance
    from unroll.construction.softmax import construct_softmax, measure_softmax
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import GammaExponential

    path = tmp_path / "softmax.json"
    code = main(["verify", "--mode", "softmax", "--nu", "2", "--ell", "3", "--frames", "16", "--dim", "2",
                 "--blocks", "6", "--batch", "2", "--seed", "3", "--json", str(path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "mode=softmax" in out and "row normalisation" in out and "boundary error" in out
    softmax = json.loads(path.read_text())["softmax"]
    # the same measurement made directly through the API on the same GP and draw
    gp = GaussianProcess(GammaExponential(nu=2.0, ell=3.0), 16, random_spatial_covariance(2, 3))  # Sigma from --seed
    direct = measure_softmax(gp, construct_softmax(gp, blocks=6), 0.5, generator=torch.Generator().manual_seed(3),
                             batch=2)
    assert softmax["boundary"] == direct.boundary > 0
    assert softmax["boundary_factor_max"] == direct.boundary_factor_max > 0
