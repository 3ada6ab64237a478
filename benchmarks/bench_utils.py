"""Shared helpers of the benchmark scripts: timings with ``torch.utils.benchmark``, peak resident memory, fits.

**Timing.**  ``configure()`` sets torch to one intra-op thread and returns the header every script prints (torch
version, thread count, the machine's load average: the machine is shared, so a load above the core count means
the numbers are inflated).  ``round_robin(candidates, repeats)`` times several callables against each other:
one plain call of each (a first warm-up) calibrates a ``number`` of calls lasting about ``min_seconds``, then
every one of ``repeats`` rounds runs every candidate once, in the same order, as one
``torch.utils.benchmark.Timer(...).timeit(number)`` (which first warms up with 2 calls, after the other candidates
ran), and the minimum over rounds of the mean time per call is kept: interference from other processes only adds
time, and a slow spell hits every candidate of a round, not one of them.  ``seconds_per_call``
is the same for one callable.

**Memory.**  Peak memory is the Linux process high-water mark: ``peak_memory(fn)`` resets ``VmHWM`` by writing
``5`` to ``/proc/self/clear_refs`` (Linux >= 4.0), runs ``fn``, and reports ``VmHWM`` after minus ``VmRSS`` before,
i.e. the largest growth of resident memory while ``fn`` ran.  It counts everything the process touched: tensors,
temporaries, allocator slack and any library workspace — not only live tensors.  Where the reset is not
available it falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak since process start).
While ``peak_memory`` runs, glibc's ``mallopt`` lowers the mmap threshold to 64 KiB and ``malloc_trim`` runs first,
so that freed buffers go back to the system instead of staying resident and being reused unseen; timings run
with the threshold at glibc's dynamic maximum (32 MiB), which is faster.

**Fits.**  ``fit_exponent(sizes, seconds)`` is ``scipy.stats.linregress`` of ``log seconds`` on ``log sizes``:
the exponent ``p`` of ``time ~ size^p`` and its standard error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import resource
import time
from collections.abc import Callable, Mapping, Sequence

import torch
from scipy import stats
from torch.utils import benchmark

__all__ = ["configure", "round_robin", "seconds_per_call", "peak_memory", "fit_exponent", "MEMORY_METHOD"]

_M_MMAP_THRESHOLD = -3
try:  # glibc only; elsewhere the numbers may undercount memory reused from earlier measurements
    _LIBC = ctypes.CDLL(ctypes.util.find_library("c"))
    _LIBC.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
except (OSError, AttributeError):
    _LIBC = None


def _strict_malloc(strict: bool) -> None:
    if _LIBC is None:
        return
    if strict:
        _LIBC.malloc_trim(0)
    _LIBC.mallopt(_M_MMAP_THRESHOLD, 64 * 1024 if strict else 32 * 1024 * 1024)


def configure(threads: int = 1) -> str:
    """Set torch to ``threads`` intra-op threads; the header line: torch version, threads, load average."""
    torch.set_num_threads(threads)
    one, five, fifteen = os.getloadavg()
    return (f"torch {torch.__version__}, threads {torch.get_num_threads()}, load average {one:.2f} {five:.2f} "
            f"{fifteen:.2f} (1, 5, 15 min; {os.cpu_count()} cores)")


def round_robin(candidates: Mapping[str, Callable[[], object]], repeats: int = 3, min_seconds: float = 0.2
                ) -> dict[str, float]:
    """``{name: seconds per call}``: the minimum over ``repeats`` rounds, each running every candidate once.

    A candidate's run is ``torch.utils.benchmark.Timer.timeit(number)`` (2 warm-up calls, then ``number`` timed
    ones), ``number`` calibrated by one plain call to last about ``min_seconds`` (at least 1 call); the seconds
    per call of a run is its mean.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    numbers = {}
    for name, function in candidates.items():
        start = time.perf_counter()
        function()
        numbers[name] = max(1, math.ceil(min_seconds / max(time.perf_counter() - start, 1e-9)))
    timers = {name: benchmark.Timer(stmt="function()", globals={"function": function},
                                    num_threads=torch.get_num_threads())
              for name, function in candidates.items()}
    best = dict.fromkeys(timers, math.inf)
    for _ in range(repeats):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]).mean)
    return best


def seconds_per_call(function: Callable[[], object], repeats: int = 3, min_seconds: float = 0.2) -> float:
    """``round_robin`` of one candidate: the minimum over ``repeats`` runs of the mean seconds per call."""
    return round_robin({"function": function}, repeats, min_seconds)["function"]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"{field} not in /proc/self/status")


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


MEMORY_METHOD = ("VmHWM - VmRSS from /proc/self/status, high-water mark reset through /proc/self/clear_refs "
                 "(peak growth of resident memory while the call ran: tensors, temporaries, allocator slack)")


def peak_memory(function: Callable[[], object]) -> tuple[object, float]:
    """``(result, peak MiB)``: run ``function`` once and return its result and the peak growth of resident memory."""
    _strict_malloc(True)
    try:
        if _reset_high_water_mark():
            before = _status_kib("VmRSS")
            result = function()
            return result, (_status_kib("VmHWM") - before) / 1024.0
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = function()
        return result, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0
    finally:
        _strict_malloc(False)


def fit_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> tuple[float, float]:
    """``(p, se(p))``: the least-squares slope of ``log(seconds)`` on ``log(sizes)`` (``time ~ size**p``) and its
    standard error (``scipy.stats.linregress``); ``nan`` for fewer than 2 points, ``se`` ``nan`` for 2."""
    if len(sizes) < 2:
        return math.nan, math.nan
    fit = stats.linregress([math.log(size) for size in sizes], [math.log(time) for time in seconds])
    return float(fit.slope), float(fit.stderr) if len(sizes) > 2 else math.nan
