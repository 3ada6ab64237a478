"""Shared pytest configuration: hypothesis profiles and float64 by default."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "default"))

torch.set_default_dtype(torch.float64)


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread per test: the tensors here are small, and on the shared 2-core test machines a
    second thread only adds contention. Restored afterwards (a CLI under test may set its own)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def float32_default():
    """torch's default dtype float32 for the test (the library's users' default; this suite sets float64)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
