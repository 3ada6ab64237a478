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


def test_fastest_first_orders_by_recorded_duration_and_keeps_every_test(mutate):
    durations = {"t::slow": 9.0, "t::fast": 0.1, "t::middle": 1.0}
    ordered = mutate.fastest_first(["t::unknown_b", "t::slow", "t::unknown_a", "t::fast", "t::middle"], durations)
    assert ordered == ["t::fast", "t::middle", "t::slow", "t::unknown_a", "t::unknown_b"]


def test_the_wrapped_runner_hands_each_mutant_its_tests_fastest_first(mutate, monkeypatch):
    """The plumbing of ``mutmut_fastest_tests_first``, against a stand-in for mutmut's ``__main__``: the runner
    mutmut's command line builds receives each mutant's tests in duration order, with its other arguments intact."""
    import sys
    import types

    submitted = []

    class Runner:
        def submit(self, mutant_name, tests, cpu_time_limit, estimated_time):
            submitted.append((mutant_name, tests, cpu_time_limit, estimated_time))

    fake_main = types.ModuleType("mutmut.__main__")
    fake_main.get_mutant_runner = lambda max_workers=1: Runner()
    fake_main.state = lambda: types.SimpleNamespace(duration_by_test={"a": 3.0, "b": 0.5, "c": 1.5})

    def main(args, prog_name):
        assert args == ["run", "x.*"] and prog_name == "mutmut"
        fake_main.get_mutant_runner(2).submit("x.f__mutmut_1", ["a", "b", "c"], 17, 5.0)

    fake_main.cli = types.SimpleNamespace(main=main)
    fake_package = types.ModuleType("mutmut")
    fake_package.__path__ = []
    fake_package.__main__ = fake_main
    monkeypatch.setitem(sys.modules, "mutmut", fake_package)
    monkeypatch.setitem(sys.modules, "mutmut.__main__", fake_main)
    mutate.mutmut_fastest_tests_first(["run", "x.*"])
    assert submitted == [("x.f__mutmut_1", ["b", "c", "a"], 17, 5.0)]


def test_installed_mutmut_has_what_the_wrapper_replaces(mutate):
    """mutmut's internals the wrapper relies on (3.8): its runner factory, the recorded test durations, and the
    runner's ``submit(mutant_name, tests, cpu_time_limit, estimated_time)``.  Skipped where mutmut is absent."""
    import inspect

    mutmut_main = pytest.importorskip("mutmut.__main__")
    from mutmut.workers.isolation import MutantRunner

    assert callable(mutmut_main.get_mutant_runner) and hasattr(mutmut_main.cli, "main")
    assert isinstance(mutmut_main.state().duration_by_test, dict)
    parameters = list(inspect.signature(MutantRunner.submit).parameters)
    assert parameters == ["self", "mutant_name", "tests", "cpu_time_limit", "estimated_time"]


def test_a_meta_file_caught_half_written_is_read_again(mutate, tmp_path, monkeypatch):
    """mutmut rewrites a ``.meta`` file in place after each mutant: a summary taken meanwhile reads it again."""
    meta = tmp_path / "gd.py.meta"
    whole = json.dumps({"exit_code_by_key": {"m.x_f__mutmut_1": 1}})
    meta.write_text(whole[:10])
    sleeps = []

    def finish_writing(seconds):
        sleeps.append(seconds)
        meta.write_text(whole)

    monkeypatch.setattr(mutate.time, "sleep", finish_writing)
    assert mutate._read_meta(meta) == {"exit_code_by_key": {"m.x_f__mutmut_1": 1}}
    assert sleeps == [0.1]


def test_a_meta_file_that_stays_broken_is_named(mutate, tmp_path, monkeypatch):
    meta = tmp_path / "gd.py.meta"
    meta.write_text("{not json")
    monkeypatch.setattr(mutate.time, "sleep", lambda seconds: None)
    with pytest.raises(SystemExit, match=r"gd\.py\.meta is not valid JSON"):
        mutate._read_meta(meta)
