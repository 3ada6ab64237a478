"""tools/mutate.py, the wrapper of ``make mutate``: its sampled runs and the interval its summary prints."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutate():
    spec = importlib.util.spec_from_file_location("mutate_tool", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("killed, decided", [(0, 5), (5, 5), (37, 50), (1, 1000), (999, 1000)])
def test_wilson_interval_matches_scipy(mutate, killed, decided):
    """The interval is scipy's Wilson interval (``binomtest(...).proportion_ci(method="wilson")``), an
    independent implementation, to rounding."""
    expected = binomtest(killed, decided).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = mutate.wilson_interval(killed, decided)
    assert low == pytest.approx(expected.low, abs=1e-9) and high == pytest.approx(expected.high, abs=1e-9)


def test_wilson_interval_of_nothing_is_everything(mutate):
    assert mutate.wilson_interval(0, 0) == (0.0, 1.0)


def test_sample_is_seeded_unchecked_and_capped(mutate):
    codes = {f"m.x_f__mutmut_{i}": (None if i % 3 else 1) for i in range(30)}  # every third already checked
    first, again = mutate.sample_names(codes, 7, seed=4), mutate.sample_names(codes, 7, seed=4)
    assert first == again and len(set(first)) == 7
    assert all(codes[name] is None for name in first)
    assert first != mutate.sample_names(codes, 7, seed=5)
    assert sorted(mutate.sample_names(codes, 100, seed=0)) == sorted(n for n, c in codes.items() if c is None)


def test_summary_prints_the_interval_only_for_a_partial_run(mutate, tmp_path, monkeypatch):
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    meta = tmp_path / "mutants" / "pkg"
    meta.mkdir(parents=True)
    partial = {f"pkg.a.x_f__mutmut_{i}": code for i, code in enumerate([1] * 8 + [0] * 2 + [None] * 5)}
    full = {f"pkg.b.x_f__mutmut_{i}": code for i, code in enumerate([1] * 3 + [0])}
    (meta / "a.py.meta").write_text(json.dumps({"exit_code_by_key": partial}))
    (meta / "b.py.meta").write_text(json.dumps({"exit_code_by_key": full}))
    rows = {line.split()[0]: line for line in mutate.summary(["pkg/a.py", "pkg/b.py"]).splitlines()}
    low, high = mutate.wilson_interval(8, 10)
    assert "80.0%" in rows["pkg/a.py"] and f"[{100 * low:.1f}, {100 * high:.1f}]" in rows["pkg/a.py"]
    assert "75.0%" in rows["pkg/b.py"] and "[" not in rows["pkg/b.py"]
    assert "pkg.a.x_f__mutmut_8" in rows and "pkg.b.x_f__mutmut_3" in rows  # the survivors are listed
