"""The command line's entry points: ``python -m unroll`` and ``unroll --version``."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

import unroll
from unroll.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_version_names_the_package_and_torch(capsys):
    assert main(["--version"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"unroll {unroll.__version__} (") and f"torch {torch.__version__}" in line


def test_the_package_version_is_the_installed_distributions():
    assert unroll.__version__ == metadata.version("unroll-gp")


def test_python_dash_m_unroll_runs_the_same_command_line():
    done = subprocess.run([sys.executable, "-m", "unroll", "bounds", "--frames", "8", "--bands", "2", "--blocks", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "formula:" in done.stdout
    refused = subprocess.run([sys.executable, "-m", "unroll", "bounds", "--blocks", "0"], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--blocks" in refused.stderr


def test_the_package_ships_its_type_marker():
    assert (Path(unroll.__file__).parent / "py.typed").is_file()
