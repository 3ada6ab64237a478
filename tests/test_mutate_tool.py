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


def _write_meta(root, name, codes):
    meta = root / "mutants" / "pkg"
    meta.mkdir(parents=True, exist_ok=True)
    (meta / f"{name}.meta").write_text(json.dumps({"exit_code_by_key": codes}))


def test_summary_gives_no_interval_for_a_file_checked_in_mutmuts_order(mutate, tmp_path, monkeypatch):
    """Without a recorded sample the mutants checked so far are mutmut's cheapest first, not a random sample: the
    score over them is printed, no whole-file estimate, and a line says why."""
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    _write_meta(tmp_path, "a.py", {f"pkg.a.x_f__mutmut_{i}": code for i, code in enumerate([1] * 8 + [0] * 2
                                                                                              + [None] * 5)})
    _write_meta(tmp_path, "b.py", {f"pkg.b.x_f__mutmut_{i}": code for i, code in enumerate([1] * 3 + [0])})
    text = mutate.summary(["pkg/a.py", "pkg/b.py"])
    rows = {line.split()[0]: line for line in text.splitlines()}
    assert "80.0%" in rows["pkg/a.py"] and "[" not in rows["pkg/a.py"]
    assert "75.0%" in rows["pkg/b.py"] and "[" not in rows["pkg/b.py"]
    assert "not a random sample" in text
    assert "pkg.a.x_f__mutmut_8" in rows and "pkg.b.x_f__mutmut_3" in rows  # the survivors are listed


def test_stratified_estimate_of_a_census_and_a_sample(mutate):
    """Census: 30 checked before the draw, 27 killed.  Stratum: the 70 then unchecked, of which the sample of 10
    has 8 killed, and 5 more were checked later in mutmut's order (all killed: not used).  The estimate is
    ``(27 + 70 p) / 100`` at ``p = 0.8`` and at each end of the sample's Wilson interval."""
    codes = {f"m.x_f__mutmut_{i}": (1 if i < 27 else 0) for i in range(30)}
    stratum = [f"m.x_f__mutmut_{i}" for i in range(30, 100)]
    codes.update({name: None for name in stratum})
    sample = stratum[:10]
    codes.update({name: (1 if i < 8 else 0) for i, name in enumerate(sample)})
    codes.update({name: 1 for name in stratum[10:15]})
    value, low, high = mutate.stratified_estimate(codes, {"seed": 0, "stratum": stratum, "sample": sample})
    wilson_low, wilson_high = mutate.wilson_interval(8, 10)
    assert value == pytest.approx((27 + 70 * 0.8) / 100, abs=1e-15)
    assert (low, high) == pytest.approx(((27 + 70 * wilson_low) / 100, (27 + 70 * wilson_high) / 100), abs=1e-15)


def test_a_stale_or_empty_sample_gives_no_estimate(mutate):
    codes = {"m.x_f__mutmut_0": 1, "m.x_f__mutmut_1": None, "m.x_f__mutmut_2": None}
    assert mutate.stratified_estimate(codes, None) is None
    # an unchecked mutant outside the stratum: regenerated since the draw
    assert mutate.stratified_estimate(codes, {"stratum": ["m.x_f__mutmut_1"], "sample": ["m.x_f__mutmut_1"]}) is None
    # nothing of the sample decided yet
    assert mutate.stratified_estimate(codes, {"stratum": ["m.x_f__mutmut_1", "m.x_f__mutmut_2"],
                                              "sample": ["m.x_f__mutmut_1"]}) is None


def test_a_sampled_run_records_its_draw_and_the_summary_reads_it(mutate, tmp_path, monkeypatch):
    """``run --sample`` records the stratum and the sample it drew (replacing that file's older draw); the summary
    prints the stratified estimate from it.  mutmut is stood in for: it kills every mutant it is given."""
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    monkeypatch.setattr(mutate, "core_files", lambda: ["pkg/a.py"])
    codes = {f"pkg.a.x_f__mutmut_{i}": (1 if i < 4 else None) for i in range(20)}
    _write_meta(tmp_path, "a.py", codes)

    def kill_all(names, jobs):
        codes.update({name: 1 for name in names})
        _write_meta(tmp_path, "a.py", codes)
        return 0

    monkeypatch.setattr(mutate, "_mutmut", kill_all)
    monkeypatch.setattr(mutate, "_generate", lambda files, jobs: None)  # the mutants exist already
    assert mutate.run(["pkg/a.py"], jobs=1, sample=5, seed=2) == 0
    draw = mutate.recorded_samples()["pkg/a.py"]
    assert draw["seed"] == 2 and len(draw["stratum"]) == 16 and len(draw["sample"]) == 5
    assert set(draw["sample"]) <= set(draw["stratum"])
    low = mutate.wilson_interval(5, 5)[0]
    row = next(line for line in mutate.summary(["pkg/a.py"]).splitlines() if line.startswith("pkg/a.py"))
    assert row.endswith(f"100.0% [{100 * (4 + 16 * low) / 20:.1f}, 100.0]")


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


def test_a_whole_file_run_hands_mutmut_only_the_unchecked_mutants(mutate, tmp_path, monkeypatch):
    """mutmut re-runs every mutant a pattern matches, checked or not: the run passes the unchecked names instead,
    after regenerating the mutants (which resets the verdicts of changed functions)."""
    monkeypatch.setattr(mutate, "ROOT", tmp_path)
    monkeypatch.setattr(mutate, "core_files", lambda: ["pkg/a.py", "pkg/b.py"])
    _write_meta(tmp_path, "a.py", {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": None, "pkg.a.x_g__mutmut_1": 0})
    _write_meta(tmp_path, "b.py", {"pkg.b.x_f__mutmut_1": None})
    calls = []
    monkeypatch.setattr(mutate, "_generate", lambda files, jobs: calls.append(("generate", files)))
    monkeypatch.setattr(mutate, "_mutmut", lambda names, jobs: calls.append(("mutmut", names)) or 0)
    assert mutate.run(["pkg/a.py", "pkg/b.py"], jobs=2) == 0
    assert calls == [("generate", ["pkg/a.py", "pkg/b.py"]), ("mutmut", ["pkg.a.x_f__mutmut_2", "pkg.b.x_f__mutmut_1"])]
    calls.clear()
    _write_meta(tmp_path, "a.py", {"pkg.a.x_f__mutmut_1": 1, "pkg.a.x_f__mutmut_2": 1, "pkg.a.x_g__mutmut_1": 0})
    _write_meta(tmp_path, "b.py", {"pkg.b.x_f__mutmut_1": 1})
    assert mutate.run(["pkg/a.py", "pkg/b.py"], jobs=2) == 0
    assert calls == [("generate", ["pkg/a.py", "pkg/b.py"])]  # nothing left: mutmut is not called
