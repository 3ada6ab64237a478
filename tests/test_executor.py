"""unroll.experiments.executor: the inline, local-process and Dask back-ends run the same tasks to the same results, and
the cache keeps what an interrupted run finished."""

from __future__ import annotations

import concurrent.futures
import json
import math
import os
import sys

import pytest
from executor_tasks import calls, echo, logged_square, seeded_sum, tensor_total

from unroll.experiments import executor as executor_module
from unroll.experiments.executor import InlineExecutor, TaskError, make_executor, run_tasks

SUM_TASKS = {f"seed{seed}-size{size}": dict(seed=seed, size=size) for seed in (0, 1, 2) for size in (5, 50)}


@pytest.fixture(scope="module")
def dask_scheduler():
    """A local Dask cluster: one worker process with one thread (about 2 s to start here)."""
    import distributed  # in the test extra: a missing install fails here rather than skipping

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        yield cluster.scheduler_address


def _executor(backend: str, request: pytest.FixtureRequest) -> concurrent.futures.Executor:
    if backend == "dask":
        return make_executor(scheduler=request.getfixturevalue("dask_scheduler"))
    return make_executor(workers={"inline": 0, "process": 2}[backend])


@pytest.mark.parametrize("backend", ["inline", "process", "dask"])
def test_each_backend_returns_the_results_of_a_plain_loop_in_task_order(backend, request):
    expected = {name: seeded_sum(**kwargs)["sum"] for name, kwargs in SUM_TASKS.items()}
    assert len(set(expected.values())) == len(SUM_TASKS)  # distinct results: a mixed-up name would show
    with _executor(backend, request) as executor:
        results = run_tasks(seeded_sum, SUM_TASKS, executor, progress=False)
    assert list(results) == list(SUM_TASKS)
    assert {name: result["sum"] for name, result in results.items()} == expected
    pids = {result["pid"] for result in results.values()}
    if backend == "inline":
        assert pids == {os.getpid()}
    else:  # really elsewhere, with one torch thread (2 would be torch's default on these 2-core machines)
        assert os.getpid() not in pids
        assert {result["threads"] for result in results.values()} == {1}


def test_dask_runs_every_submit_and_passes_arguments_named_like_its_own_options(dask_scheduler, tmp_path):
    """Two tasks with equal arguments are two runs (Dask's default pure=True would merge them), and task
    arguments called key, workers, priority or retries reach the function, not Dask's submit."""
    tasks = {"first": dict(x=3, log_dir=str(tmp_path)), "second": dict(x=3, log_dir=str(tmp_path))}
    options = {"key": "k", "workers": 2, "priority": 5, "retries": 0, "pure": True, "resources": None}
    with make_executor(scheduler=dask_scheduler) as executor:
        assert run_tasks(logged_square, tasks, executor, progress=False)["second"]["square"] == 9
        assert run_tasks(echo, {"options": options}, executor, progress=False) == {"options": options}
    assert calls(tmp_path) == [3, 3]


@pytest.mark.parametrize("backend", ["inline", "process", "dask"])
def test_a_failing_task_is_named_in_the_error(backend, request, tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("")
    log = tmp_path / "log"
    tasks = {"ok": dict(x=1, log_dir=str(log)), "bad-task": dict(x=2, log_dir=str(log), fail_if_exists=str(flag))}
    with _executor(backend, request) as executor:
        with pytest.raises(TaskError, match=r"task 'bad-task' failed: ValueError: planned failure of x=2") as caught:
            run_tasks(logged_square, tasks, executor, progress=False)
    assert caught.value.task == "bad-task"
    assert isinstance(caught.value.__cause__, ValueError)


def test_inline_stops_at_the_failing_task(tmp_path):
    flag = tmp_path / "fail"
    flag.write_text("")
    tasks = {f"x{x}": dict(x=x, log_dir=str(tmp_path), fail_if_exists=str(flag) if x == 2 else None)
             for x in range(5)}
    with pytest.raises(TaskError, match="'x2'"):
        run_tasks(logged_square, tasks, make_executor(workers=0), progress=False)
    assert calls(tmp_path) == [0, 1, 2]


def _square_tasks(log, flag, failing):
    return {f"x={x}": dict(x=x, log_dir=str(log), fail_if_exists=str(flag) if x == failing else None)
            for x in range(6)}


def _expected(x):
    """What a square task's result reads back as from JSON: the tuple a list, NaN null."""
    return {"x": x, "square": x * x, "pair": [x, -x], "nan": None}


def test_cache_keeps_an_interrupted_run_and_the_rerun_computes_only_the_rest(tmp_path):
    log, cache, flag = tmp_path / "log", tmp_path / "cache", tmp_path / "fail"
    flag.write_text("")
    tasks = _square_tasks(log, flag, failing=3)
    with pytest.raises(TaskError, match="'x=3'"):
        run_tasks(logged_square, tasks, InlineExecutor(), cache_dir=cache, progress=False)
    assert sorted(os.listdir(cache)) == ["x=0.json", "x=1.json", "x=2.json"]
    stored = json.loads((cache / "x=2.json").read_text())
    assert stored == {"task": "x=2", "kwargs": {"x": 2, "log_dir": str(log), "fail_if_exists": None},
                      "result": _expected(2)}
    assert calls(log) == [0, 1, 2, 3]

    flag.unlink()  # the cause of the interruption is gone; same tasks, same arguments
    results = run_tasks(logged_square, tasks, InlineExecutor(), cache_dir=cache, progress=False)
    assert calls(log) == [0, 1, 2, 3, 3, 4, 5]  # 3, 4, 5 computed now, 0, 1, 2 read
    assert results == {f"x={x}": _expected(x) for x in range(6)}
    assert list(results) == list(tasks)
    assert sorted(os.listdir(cache)) == [f"x={x}.json" for x in range(6)]

    again = run_tasks(logged_square, tasks, InlineExecutor(), cache_dir=cache, progress=False)
    assert again == results and calls(log) == [0, 1, 2, 3, 3, 4, 5]


def test_cache_on_processes_keeps_every_task_that_started_before_the_failure(tmp_path):
    """Tasks already running when one fails are waited for and stored, so the rerun runs only the tasks that
    never started (and the failed one)."""
    log, cache, flag = tmp_path / "log", tmp_path / "cache", tmp_path / "fail"
    flag.write_text("")
    tasks = _square_tasks(log, flag, failing=1)
    with make_executor(workers=2) as executor:
        with pytest.raises(TaskError, match="'x=1'"):
            run_tasks(logged_square, tasks, executor, cache_dir=cache, progress=False)
        started = calls(log)
        assert 1 in started
        assert sorted(os.listdir(cache)) == [f"x={x}.json" for x in started if x != 1]
        flag.unlink()
        results = run_tasks(logged_square, tasks, executor, cache_dir=cache, progress=False)
    assert sorted(calls(log)) == sorted(started + [x for x in range(6) if x not in started or x == 1])
    assert results == {f"x={x}": _expected(x) for x in range(6)}


def test_cache_recomputes_a_task_whose_arguments_changed_or_whose_file_is_unreadable(tmp_path):
    log, cache = tmp_path / "log", tmp_path / "cache"
    tasks = {"a": dict(x=1, log_dir=str(log)), "b": dict(x=2, log_dir=str(log)), "c": dict(x=3, log_dir=str(log))}
    run_tasks(logged_square, tasks, InlineExecutor(), cache_dir=cache, progress=False)
    (cache / "c.json").write_text("{not json")
    changed = {**tasks, "a": dict(x=10, log_dir=str(log))}
    results = run_tasks(logged_square, changed, InlineExecutor(), cache_dir=cache, progress=False)
    assert results["a"] == _expected(10) and results["b"] == _expected(2) and results["c"] == _expected(3)
    assert calls(log) == [1, 2, 3, 3, 10]
    assert json.loads((cache / "a.json").read_text())["kwargs"]["x"] == 10


def test_cache_recognises_arguments_json_cannot_hold_by_their_content(tmp_path):
    """A tensor argument is recorded by dtype, shape and a digest of its bytes (its pickle differs from one
    process to the next, so a digest of that would never match in a rerun), an array by its pickle."""
    import hashlib

    import numpy as np
    import torch

    log, cache = tmp_path / "log", tmp_path / "cache"
    log.mkdir()

    def run(values):
        return run_tasks(tensor_total, {"t": dict(values=values, log_dir=str(log))}, InlineExecutor(),
                         cache_dir=cache, progress=False)["t"]["total"]

    assert run(torch.arange(4.0, dtype=torch.float64)) == 6.0
    stored = json.loads((cache / "t.json").read_text())["kwargs"]["values"]
    digest = hashlib.sha256(np.arange(4.0).tobytes()).hexdigest()
    assert stored == {"tensor": {"dtype": "torch.float64", "shape": [4], "sha256": digest}}
    assert run(torch.arange(4.0, dtype=torch.float64)) == 6.0  # an equal tensor: read from the cache
    assert len(list(log.glob("*.total"))) == 1
    assert run(torch.arange(4.0).reshape(2, 2)) == 6.0 and len(list(log.glob("*.total"))) == 2  # shape differs
    assert run(torch.arange(5.0)) == 10.0 and len(list(log.glob("*.total"))) == 3
    assert run(np.arange(5.0)) == 10.0 and len(list(log.glob("*.total"))) == 4
    assert run(np.arange(5.0)) == 10.0 and len(list(log.glob("*.total"))) == 4


def test_cache_needs_json_ready_results(tmp_path):
    with pytest.raises(TaskError, match=r"task 'obj' returned a result that is not JSON-serialisable"):
        run_tasks(echo, {"obj": dict(value=object())}, InlineExecutor(), cache_dir=tmp_path, progress=False)
    assert os.listdir(tmp_path) == []


def test_without_cache_results_are_returned_as_the_function_gave_them(tmp_path):
    results = run_tasks(logged_square, {"a": dict(x=2, log_dir=str(tmp_path))}, InlineExecutor(), progress=False)
    assert results["a"]["pair"] == (2, -2) and math.isnan(results["a"]["nan"])


def test_progress_bar_counts_cached_and_new_tasks(tmp_path, capsys):
    tasks = {"a": dict(x=1, log_dir=str(tmp_path / "log")), "b": dict(x=2, log_dir=str(tmp_path / "log"))}
    run_tasks(logged_square, {"a": tasks["a"]}, InlineExecutor(), cache_dir=tmp_path / "cache", progress=False)
    run_tasks(logged_square, tasks, InlineExecutor(), cache_dir=tmp_path / "cache", description="squares")
    err = capsys.readouterr().err
    assert "squares" in err and "1/2" in err and "2/2" in err


def test_no_tasks_give_no_results():
    assert run_tasks(seeded_sum, {}, InlineExecutor(), progress=False) == {}


def test_inline_executor_holds_exceptions_and_refuses_work_after_shutdown():
    executor = InlineExecutor()
    future = executor.submit(int, "x")
    assert future.done() and isinstance(future.exception(), ValueError)
    assert executor.submit(pow, 2, exp=3).result() == 8
    executor.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        executor.submit(int, "1")


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_bad_workers(workers):
    with pytest.raises(ValueError, match="workers"):
        make_executor(workers=workers)


def test_workers_with_a_scheduler_is_refused():
    with pytest.raises(ValueError, match="workers must be None when scheduler is given"):
        make_executor(workers=2, scheduler="tcp://127.0.0.1:8786")


@pytest.mark.parametrize("scheduler", ["127.0.0.1:8786", "", "http://127.0.0.1:8786", "tcp://", 8786,
                                       "tcp://host :1"])
def test_bad_scheduler(scheduler):
    with pytest.raises(ValueError, match="scheduler"):
        make_executor(scheduler=scheduler)


def test_missing_distributed_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'unroll-gp\[dask\]'"):
        make_executor(scheduler="tcp://127.0.0.1:8786")


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden", "x" * 201, "tab\tname", "naïve", 3])
def test_bad_task_names(name):
    with pytest.raises(ValueError, match="task name"):
        run_tasks(seeded_sum, {name: dict(seed=0, size=1)}, InlineExecutor(), progress=False)


def test_good_task_names_pass():
    names = ["dit-n64-seed0", "H=16,d=2", "x" * 200, "_private", "1.5e+3"]
    results = run_tasks(echo, {name: {"n": name} for name in names}, InlineExecutor(), progress=False)
    assert results == {name: {"n": name} for name in names}


def test_names_differing_only_in_case_are_refused_with_a_cache(tmp_path):
    tasks = {"Run": dict(seed=0, size=1), "run": dict(seed=1, size=1)}
    with pytest.raises(ValueError, match="differ only in case"):
        run_tasks(seeded_sum, tasks, InlineExecutor(), cache_dir=tmp_path, progress=False)
    assert len(run_tasks(seeded_sum, tasks, InlineExecutor(), progress=False)) == 2  # no files, no clash


@pytest.mark.parametrize("tasks, match", [([("a", {})], "tasks must be a mapping"),
                                          ({"a": [1]}, r"tasks\['a'\] must be a mapping"),
                                          ({"a": {1: 2}}, r"tasks\['a'\] must be a mapping")])
def test_bad_tasks(tasks, match):
    with pytest.raises(ValueError, match=match):
        run_tasks(echo, tasks, InlineExecutor(), progress=False)


def test_bad_function_and_executor():
    with pytest.raises(ValueError, match="function must be callable"):
        run_tasks(None, {}, InlineExecutor(), progress=False)
    with pytest.raises(ValueError, match="executor must be a concurrent.futures.Executor"):
        run_tasks(echo, {}, "processes", progress=False)


def test_a_lambda_is_refused_by_the_process_executor_before_any_process_starts():
    def nested(x):
        return x

    executor = make_executor(workers=1)  # processes start at the first submit
    try:
        for function in (lambda x: x, nested):
            with pytest.raises(ValueError, match="function must be a top-level function"):
                run_tasks(function, {"a": dict(x=1)}, executor, progress=False)
    finally:
        executor.shutdown()
    assert run_tasks(lambda x: x, {"a": dict(x=1)}, InlineExecutor(), progress=False) == {"a": 1}


def test_processes_start_by_forkserver_with_torch_preloaded_or_else_by_spawn(monkeypatch):
    import multiprocessing.forkserver

    assert executor_module._process_context().get_start_method() == "forkserver"
    assert multiprocessing.forkserver._forkserver._preload_modules == ["__main__", "torch"]
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])  # as on Windows
    assert executor_module._process_context().get_start_method() == "spawn"
