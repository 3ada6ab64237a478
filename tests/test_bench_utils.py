"""The benchmarks' shared timing and fitting helpers (``benchmarks/bench_utils.py``)."""

from __future__ import annotations

import itertools
import math
import sys
import types
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_utils  # noqa: E402


def test_every_round_runs_every_candidate_once_in_turn():
    calls: list[str] = []
    candidates = {name: (lambda name=name: calls.append(name)) for name in ("a", "b", "c")}
    seconds = bench_utils.round_robin(candidates, repeats=4, min_seconds=0.0)  # one timed call per run
    runs = [name for name, _ in itertools.groupby(calls)]  # a run: the Timer's warm-up calls and the timed one
    assert runs == ["a", "b", "c"] * 5  # one calibrating call each, then 4 rounds
    assert set(seconds) == {"a", "b", "c"} and all(0 < value < 0.01 for value in seconds.values())


def test_a_run_is_a_torch_benchmark_timer_and_the_minimum_over_rounds_is_kept(monkeypatch):
    means = iter([0.03, 0.01, 0.02])
    used = []

    class Timer:
        def __init__(self, stmt, globals, num_threads):
            used.append((stmt, num_threads))

        def timeit(self, number):
            return types.SimpleNamespace(mean=next(means))

    monkeypatch.setattr(bench_utils.benchmark, "Timer", Timer)
    assert bench_utils.seconds_per_call(lambda: None, repeats=3) == 0.01
    assert used == [("function()", torch.get_num_threads())]


def test_configure_sets_one_thread_and_names_the_load_average():
    before = torch.get_num_threads()
    try:
        header = bench_utils.configure(threads=1)
        assert torch.get_num_threads() == 1
        assert header.startswith(f"torch {torch.__version__}, threads 1, load average ")
    finally:
        torch.set_num_threads(before)


def test_round_robin_refuses_no_rounds():
    with pytest.raises(ValueError, match="repeats"):
        bench_utils.round_robin({"a": lambda: None}, repeats=0)


def test_fit_exponent_of_a_power_law_and_of_noisy_points():
    sizes = [256, 512, 1024, 2048]
    exponent, error = bench_utils.fit_exponent(sizes, [3e-9 * size**1.5 for size in sizes])
    assert exponent == pytest.approx(1.5, rel=1e-12, abs=0) and error < 1e-12
    # log-log points (0, 0), (1, 1), (2, 1): slope 1/2, residuals (1/6, -1/3, 1/6), se = sqrt((1/6) / 1 / 2)
    exponent, error = bench_utils.fit_exponent([1, math.e, math.e**2], [1, math.e, math.e])
    assert exponent == pytest.approx(0.5) and error == pytest.approx(math.sqrt(1 / 12))
    assert all(math.isnan(value) for value in bench_utils.fit_exponent([1], [1]))
    assert math.isnan(bench_utils.fit_exponent([1, 2], [1, 2])[1])
