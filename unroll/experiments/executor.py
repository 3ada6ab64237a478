"""Run the toolkit's independent tasks (trainings over a grid of seeds x sizes x models) in parallel, with
one interface whether they run in local processes or on a Dask cluster, and resume an interrupted grid.

Back-ends, all ``concurrent.futures.Executor``s made by ``make_executor``, so the calling code is the same:

- ``make_executor(workers=k)``: a ``ProcessPoolExecutor`` of ``k`` local processes (default 1), started by
  ``forkserver`` with torch preloaded in the server (``spawn`` where there is no forkserver), each process
  set to one torch thread; ``make_executor(workers=0)``: ``InlineExecutor``, each task run in the calling
  process when submitted (for tests and debugging: breakpoints and tracebacks as in a plain loop).
- ``make_executor(scheduler="tcp://host:8786")``: the tasks go to a running Dask scheduler through a
  ``distributed.Client`` (``pip install 'unroll-gp[dask]'``); the cluster's workers, not ``workers``, set the
  parallelism. Dask starts its worker processes with ``OMP_NUM_THREADS=1`` (its ``distributed.nanny.pre-spawn-environ``
  default), which torch reads as one thread.

``run_tasks(function, tasks, executor)`` calls ``function(**kwargs)`` for each named task of ``tasks`` and
returns ``{name: result}`` in the order of ``tasks``; the first failing task raises ``TaskError`` naming it,
and the tasks not yet started are cancelled.

Cache (``cache_dir``): each result is written, as soon as its task finishes, to ``cache_dir/<name>.json``
(atomically, strict JSON: NaN/inf become ``null``) together with the task's keyword arguments. A later call
with the same ``cache_dir`` returns the stored result of every task whose file records the same keyword
arguments, without running it, and runs the others, so an interrupted grid loses only the tasks that were
running. A file that records other keyword arguments (the grid changed, the name stayed), or that cannot
be read, is recomputed and overwritten. With a cache, results come back as read from JSON (tuples become
lists, dict keys strings, NaN ``None``), whether computed now or read from the cache, so a first run and a
resumed run return equal dicts.

Requirements: the function must be a top-level function of an importable module (or of the script being
run), not a lambda or a nested function: worker processes find it by its module and name. Keyword
arguments and results must be picklable, and with a cache the results JSON-ready. Task names are used as
file names: letters, digits and ``_ . , = + -``, starting with a letter, digit or ``_``, at most 200 chars.

Example (``train_one`` a top-level function returning a JSON-ready dict)::

    from unroll.experiments.executor import make_executor, run_tasks

    tasks = {f"{model}-n{size}-seed{seed}": dict(model=model, train_size=size, seed=seed)
             for model in ("dit", "unet") for size in (64, 256, 1024) for seed in range(3)}
    with make_executor(workers=2) as executor:  # or make_executor(scheduler="tcp://host:8786")
        results = run_tasks(train_one, tasks, executor, cache_dir="runs/sweep", description="n-sweep")
    results["dit-n64-seed0"]  # whatever train_one(model="dit", train_size=64, seed=0) returned
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import pickle
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from unroll._atomic import strict_json, write_text_atomic
from unroll._validate import check_int

__all__ = ["make_executor", "run_tasks", "InlineExecutor", "TaskError"]

TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.,=+-]{0,199}")
SCHEDULER_ADDRESS = re.compile(r"(tcp|tls|inproc|ucx|ws|wss)://\S+")
_MISSING = object()


class TaskError(RuntimeError):
    """A task of ``run_tasks`` failed: ``task`` is its name, ``__cause__`` the exception it raised."""

    def __init__(self, task: str, message: str):
        super().__init__(message)
        self.task = task


class InlineExecutor(concurrent.futures.Executor):
    """An executor that runs ``fn(*args, **kwargs)`` in the calling process when it is submitted and returns
    a finished ``Future`` holding its result or exception (``make_executor(workers=0)``)."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # a KeyboardInterrupt propagates, as in a plain loop
            future.set_exception(error)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True


class _DaskExecutor(concurrent.futures.Executor):
    """``client.get_executor(pure=False)`` that also closes the client it owns on ``shutdown``.

    ``pure=False``: every submit is its own run, as in a process pool (Dask's default ``pure=True`` would
    merge two submits of the same function and arguments into one task)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()


def _one_torch_thread() -> None:
    """Initializer of each worker process: one torch thread (two per process collapse on a shared 2-core
    machine)."""
    import torch

    torch.set_num_threads(1)


def _process_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` with ``__main__`` (the stdlib default) and torch preloaded in the server: each worker is
    forked from a process that has imported torch already but run nothing (no threads, no CUDA), so a pool
    starts in tens of milliseconds after the first; ``spawn`` (a fresh interpreter importing torch per
    worker) where there is no forkserver (Windows)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", "torch"])
        return context
    return multiprocessing.get_context("spawn")


def make_executor(workers: int | None = None, scheduler: str | None = None) -> concurrent.futures.Executor:
    """The executor ``run_tasks`` runs tasks on: local processes, inline, or a Dask cluster.

    Args:
        workers: without ``scheduler``, the number of local worker processes (default 1: on a shared
            machine the caller decides how many cores to take); ``0`` runs every task inline in the calling
            process (``InlineExecutor``). Must be ``None`` with ``scheduler``.
        scheduler: address of a running Dask scheduler, ``"tcp://host:port"`` (also ``tls://``,
            ``inproc://``, ``ucx://``, ``ws://``, ``wss://``), e.g. ``LocalCluster().scheduler_address``.
            Needs ``distributed`` (``pip install 'unroll-gp[dask]'``).
    Returns:
        A ``concurrent.futures.Executor``; use it in a ``with`` block (or call ``shutdown()``) to stop the
        processes or, for Dask, close the client (the executor's ``client`` attribute). Local processes are
        started by ``forkserver`` (torch preloaded in the server; this sets the process-wide forkserver
        preload list) or ``spawn``, each with ``torch.set_num_threads(1)``.
    """
    if scheduler is None:
        workers = 1 if workers is None else check_int("workers", workers, minimum=0)
        if workers == 0:
            return InlineExecutor()
        return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=_process_context(),
                                                      initializer=_one_torch_thread)
    if workers is not None:
        raise ValueError(f"workers must be None when scheduler is given (the Dask cluster's workers set the "
                         f"parallelism), got workers={workers!r}")
    if not isinstance(scheduler, str) or SCHEDULER_ADDRESS.fullmatch(scheduler) is None:
        raise ValueError(f"scheduler must be a Dask scheduler address 'tcp://host:port' (or tls://, inproc://, "
                         f"ucx://, ws://, wss://), got scheduler={scheduler!r}")
    try:
        import distributed
    except ImportError as error:
        raise ImportError("make_executor(scheduler=...) needs the Dask back-end: pip install 'unroll-gp[dask]' "
                          f"(distributed could not be imported: {error})") from error
    # set_as_default=False: do not make this client the process-wide scheduler of every dask computation
    return _DaskExecutor(distributed.Client(scheduler, set_as_default=False))


def _call(function: Callable[..., Any], kwargs: dict) -> Any:
    """``function(**kwargs)``; submitted instead of ``function`` so that no task argument can be taken for an
    executor's own option (Dask's ``submit`` reads ``key``, ``workers``, ``priority``, ``retries``, ...)."""
    return function(**kwargs)


def _fingerprint(value: Any) -> dict:
    """JSON stand-in for a keyword argument JSON cannot hold: a tensor by its dtype, shape and the SHA-256 of
    its bytes; anything else (an array, a dataclass) by the SHA-256 of its pickle. Equal values give equal
    stand-ins, so a cached task is recognised; a value whose pickle varies between runs (a torch tensor's
    does, hence its own case) only costs a recomputation."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        return {"tensor": {"dtype": str(flat.dtype), "shape": list(value.shape),
                           "sha256": hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()}}
    return {"pickle_sha256": hashlib.sha256(pickle.dumps(value)).hexdigest()}


def _kwargs_record(kwargs: Mapping[str, Any]) -> Any:
    """The task's keyword arguments as stored in (and compared with) its cache file."""
    return json.loads(json.dumps(strict_json(dict(kwargs)), default=_fingerprint, allow_nan=False, sort_keys=True))


def _read_cached(path: Path, name: str, record: Any) -> Any:
    """The stored result of task ``name`` if ``path`` holds it for the same keyword arguments, else
    ``_MISSING``."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _MISSING
    if isinstance(stored, dict) and stored.get("task") == name and stored.get("kwargs") == record \
            and "result" in stored:
        return stored["result"]
    return _MISSING


def _store(path: Path, name: str, record: Any, result: Any) -> Any:
    """Write ``{"task", "kwargs", "result"}`` to ``path`` atomically; returns the result as read back."""
    try:
        text = json.dumps({"task": name, "kwargs": record, "result": strict_json(result)}, indent=2,
                          allow_nan=False) + "\n"
    except (TypeError, ValueError) as error:
        raise TaskError(name, f"task {name!r} returned a result that is not JSON-serialisable ({error}); "
                              "with cache_dir a task must return JSON-ready data") from error
    write_text_atomic(path, text)
    return json.loads(text)["result"]


def _check_tasks(tasks: Any, cache_dir: Any) -> None:
    if not isinstance(tasks, Mapping):
        raise ValueError(f"tasks must be a mapping {{name: {{keyword: value}}}}, got {type(tasks).__name__}")
    for name, kwargs in tasks.items():
        if not isinstance(name, str) or TASK_NAME.fullmatch(name) is None:
            raise ValueError(f"task names must be safe file names: letters, digits and _ . , = + -, starting with "
                             f"a letter, digit or _, at most 200 characters; got task name {name!r}")
        if not isinstance(kwargs, Mapping) or not all(isinstance(key, str) for key in kwargs):
            raise ValueError(f"tasks[{name!r}] must be a mapping of keyword arguments (str keys), got {kwargs!r}")
    if cache_dir is not None:
        folded: dict[str, str] = {}
        for name in tasks:
            other = folded.setdefault(name.casefold(), name)
            if other != name:
                raise ValueError(f"task names {other!r} and {name!r} differ only in case; their cache files "
                                 "would be one file on a case-insensitive file system")


def _check_importable(function: Callable[..., Any]) -> None:
    """Worker processes receive the function by module and name; a lambda or nested function has none."""
    try:
        pickle.dumps(function)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise ValueError(f"function must be a top-level function of an importable module to run in worker "
                         f"processes (not a lambda or a nested function), got {function!r}: {error}") from None


def run_tasks(function: Callable[..., Any], tasks: Mapping[str, Mapping[str, Any]],
              executor: concurrent.futures.Executor, *, cache_dir: str | os.PathLike | None = None,
              progress: bool = True, description: str = "tasks") -> dict[str, Any]:
    """Run ``function(**kwargs)`` for every named task on ``executor``; ``{name: result}`` in the order of
    ``tasks``.

    Args:
        function: a top-level function of an importable module (not a lambda or nested function: worker
            processes import it by name; checked for a ``ProcessPoolExecutor``).
        tasks: ``{name: kwargs}``; names are file names (letters, digits, ``_ . , = + -``; at most 200 chars);
            keyword arguments and results must be picklable.
        executor: from ``make_executor`` (any ``concurrent.futures.Executor`` works).
        cache_dir: if given, each result is written atomically to ``cache_dir/<name>.json`` (strict JSON, with
            the task's keyword arguments) as soon as the task finishes, and a task whose file records the same
            keyword arguments is not run again; results must then be JSON-ready and are returned as read back
            from JSON (the module docstring has the details).
        progress: a tqdm bar over finished tasks (cached ones count as finished).
        description: the bar's label.
    Returns:
        ``{name: function(**tasks[name])}``.
    Raises:
        TaskError: naming the first task that failed (``error.task``; the task's exception is its
            ``__cause__``). Tasks not yet started are cancelled; with ``cache_dir``, tasks already running on
            local processes are waited for and their results stored before the error is raised (Dask cancels
            those too).
        ValueError: bad ``function``, ``tasks``, task names or ``executor``.
    """
    if not callable(function):
        raise ValueError(f"function must be callable, got {function!r}")
    _check_tasks(tasks, cache_dir)
    if not isinstance(executor, concurrent.futures.Executor):
        raise ValueError(f"executor must be a concurrent.futures.Executor (see make_executor), got {executor!r}")
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        _check_importable(function)
    cache = None if cache_dir is None else Path(cache_dir)
    records = {} if cache is None else {name: _kwargs_record(kwargs) for name, kwargs in tasks.items()}
    results: dict[str, Any] = {}
    if cache is not None:
        for name, record in records.items():
            stored = _read_cached(cache / f"{name}.json", name, record)
            if stored is not _MISSING:
                results[name] = stored
    todo = [name for name in tasks if name not in results]

    from tqdm.auto import tqdm

    pending: dict[concurrent.futures.Future, str] = {}

    def finish(future: concurrent.futures.Future) -> None:
        name = pending.pop(future)
        try:
            value = future.result()
        except Exception as error:
            raise TaskError(name, f"task {name!r} failed: {type(error).__name__}: {error}") from error
        results[name] = value if cache is None else _store(cache / f"{name}.json", name, records[name], value)
        bar.update()

    with tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=description, unit="task",
              disable=not progress) as bar:
        try:
            for name in todo:
                pending[executor.submit(_call, function, dict(tasks[name]))] = name
                for future in [f for f in pending if f.done()]:  # an inline executor finishes at submit
                    finish(future)
            for future in concurrent.futures.as_completed(list(pending)):
                finish(future)
        except BaseException as error:
            for future in pending:
                future.cancel()
            if cache is not None and isinstance(error, TaskError):
                # what the tasks already running finish is kept, as if the run had been interrupted later
                for future in concurrent.futures.as_completed(list(pending)):
                    if not future.cancelled() and future.exception() is None:
                        try:
                            finish(future)
                        except TaskError:  # its result is not JSON: the first failure is the one reported
                            pass
            raise
    return {name: results[name] for name in tasks}
