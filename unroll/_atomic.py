"""Atomic file writes: every file the toolkit writes (results, checkpoints, tables, figures) goes through here.

The content is written to a temporary file in the destination's folder, flushed to disk, given the usual
permissions (``0666`` minus the umask; ``mkstemp`` would leave ``0600``) and renamed onto the destination
with ``os.replace``, which is atomic on POSIX and Windows. An interrupted run therefore leaves either the
previous file or the new one, never a truncated one, and no temporary file behind.

Results are written as strict JSON (``write_json_atomic``): NaN and infinities become ``null`` rather than the
non-standard ``NaN`` tokens other readers reject.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _default_permissions() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``path`` atomically.

    Args:
        path: destination; its folder is created if missing.
        write: writes the whole content to the temporary path it is given (e.g.
            ``lambda tmp: figure.savefig(tmp, format="png")`` or ``lambda tmp: torch.save(obj, tmp)``).
    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, _default_permissions())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text)

    return atomic_write(path, write)


def strict_json(obj: Any) -> Any:
    """Replace NaN/inf floats by None (strict JSON) and numpy scalars by Python ones, recursively
    (dict keys become strings, tuples lists); anything else is returned unchanged."""
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(float(obj)) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def write_json_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as strict JSON (NaN/inf -> null, ``strict_json``) to ``path`` atomically."""
    write_text_atomic(path, json.dumps(strict_json(obj), indent=2, allow_nan=False) + "\n")
