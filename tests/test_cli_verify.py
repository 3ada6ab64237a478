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
    assert "diffusion_time" in capsys.readouterr().err
