"""Task functions for tests/test_executor.py, in a module of their own so that worker processes (forked,
spawned or Dask's) import them by name, as they would a toolkit function."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from unroll._atomic import write_text_atomic


def seeded_sum(seed: int, size: int) -> dict:
    """Sum of ``size`` float64 standard normals from a generator seeded by ``seed``, with the process id and
    torch's thread count where it ran."""
    import torch

    values = torch.randn(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return {"sum": float(values.sum()), "pid": os.getpid(), "threads": torch.get_num_threads()}


def logged_square(x: int, log_dir: str, fail_if_exists: str | None = None) -> dict:
    """``{"x": x, "square": x * x, "pair": (x, -x), "nan": nan}``; each call first leaves a file
    ``log_dir/<x>-<random>.call`` (so a test counts calls, across processes), and the call raises ``ValueError``
    while the file ``fail_if_exists`` exists."""
    write_text_atomic(Path(log_dir) / f"{x}-{uuid.uuid4().hex}.call", "")
    if fail_if_exists is not None and os.path.exists(fail_if_exists):
        raise ValueError(f"planned failure of x={x}")
    return {"x": x, "square": x * x, "pair": (x, -x), "nan": float("nan")}


def calls(log_dir: str) -> list[int]:
    """The ``x`` of every ``logged_square`` call logged in ``log_dir``, sorted."""
    return sorted(int(path.name.split("-")[0]) for path in Path(log_dir).glob("*.call"))


def echo(**kwargs: object) -> dict:
    """Its keyword arguments, as a dict."""
    return dict(kwargs)


def tensor_total(values: object, log_dir: str) -> dict:
    """``{"total": float(values.sum())}``; each call leaves a file ``log_dir/<random>.total``."""
    write_text_atomic(Path(log_dir) / f"{uuid.uuid4().hex}.total", "")
    return {"total": float(values.sum())}
