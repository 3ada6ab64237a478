"""Shared helpers of the benchmark scripts: median wall-clock time and peak resident memory.

Peak memory is the Linux process high-water mark: ``peak_memory(fn)`` resets ``VmHWM`` by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0), runs ``fn``, and reports ``VmHWM`` after minus ``VmRSS`` before, i.e.
the largest growth of resident memory while ``fn`` ran.  It counts everything the process touched: tensors,
temporaries, allocator slack and any library workspace — not only live tensors.  Where the reset is not
available it falls back to ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak since process start).
While ``peak_memory`` runs, glibc's ``mallopt`` lowers the mmap threshold to 64 KiB and ``malloc_trim`` runs first,
so that freed buffers go back to the system instead of staying resident and being reused unseen; timings
(``median_seconds``) run with the threshold at glibc's dynamic maximum (32 MiB), which is faster.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import resource
import statistics
import time
from collections.abc import Callable, Sequence

__all__ = ["median_seconds", "seconds_per_call", "peak_memory", "fit_exponent", "MEMORY_METHOD"]

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


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``function``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seconds_per_call(function: Callable[[], object], repeats: int, min_seconds: float = 0.2) -> float:
    """Median over ``repeats`` of the mean time per call, each repeat looping ``function`` enough times to
    last about ``min_seconds`` (so that millisecond calls are not just timer and scheduling noise)."""
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-6)
    calls = max(1, math.ceil(min_seconds / once))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


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


def fit_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """Least-squares slope of ``log(seconds)`` against ``log(sizes)`` (time ~ size**exponent)."""
    if len(sizes) < 2:
        return math.nan
    xs = [math.log(s) for s in sizes]
    ys = [math.log(t) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
