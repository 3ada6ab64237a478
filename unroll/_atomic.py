"""Atomic file writes: every file the toolkit writes (results, checkpoints, tables, figures) goes through here.

The content is written to a temporary file ``<name>.XXXXXXXX.tmp`` in the destination's folder, flushed to
disk, given the usual permissions (``0666`` minus the umask; ``mkstemp`` would leave ``0600``) and renamed
onto the destination with ``os.replace``, which is atomic on POSIX and Windows. An interrupted run therefore
leaves either the previous file or the new one, never a truncated one. An exception or Ctrl-C during the
write removes the temporary file; a process killed outright (``kill -9``, power loss) cannot, so the next
write to the same destination removes the temporary files of earlier writes to it that no process is
still writing: names of exactly that pattern, regular files, last modified before the current write began
and not locked (each writer holds an exclusive ``flock`` on its temporary file while it writes; POSIX).

**Destinations.** A missing path or a regular file (or a symbolic link to one, which is replaced by the new
file) is written atomically. A character device (``/dev/null``, a terminal) is written straight through,
in place and not atomically: there is nothing to replace, and replacing a device by a regular file (as
root, ``/dev/null``) would break the machine. Anything else (a folder, a FIFO, a socket, a block device),
or a path whose folder is a file, is refused with ``DestinationError`` (a ``ValueError``) before any
writing, and never replaced. ``check_destination`` runs the same check, so a command can refuse a bad
output path before it starts its work.

Results are written as strict JSON (``write_json_atomic``): NaN and infinities become ``null`` rather than the
non-standard ``NaN`` tokens other readers reject.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import re
import stat
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

fcntl: types.ModuleType | None
try:  # POSIX: a writer locks its temporary file, so stale-file cleaning never removes a live one
    fcntl = importlib.import_module("fcntl")
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: the temporary names ``tempfile.mkstemp(prefix=name + ".", suffix=".tmp")`` makes: 8 characters of
#: ``[a-z0-9_]`` between the two (``tempfile._RandomNameSequence``)
_TEMPORARY_MIDDLE = r"\.[a-z0-9_]{8}\.tmp"


class DestinationError(ValueError):
    """An output path that must not be written or replaced: a folder, FIFO, socket or block device, or a
    path below a file. The message names the path and what it is."""


def _default_permissions() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device")):
        if test(mode):
            return name
    return "not a regular file"


def _existing_mode(path: Path) -> int | None:
    """``st_mode`` of ``path`` (following symbolic links), or ``None`` if nothing (or a dangling link) is there."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise DestinationError(f"cannot write {path}: a part of its folder is a file, not a folder") from None


def check_destination(path: str | os.PathLike) -> Path:
    """Check that ``path`` can be written by ``atomic_write`` without replacing anything but a regular file.

    Accepted: a missing path, a regular file, a character device (written straight through). Refused with
    ``DestinationError``: an empty path, a folder, a FIFO, a socket, a block device, or a path whose nearest
    existing ancestor is not a folder. Nothing is created. Returns ``path`` as a ``Path``.
    """
    if str(path) == "":
        raise DestinationError("the output path is empty; give a file name")
    path = Path(path)
    mode = _existing_mode(path)
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        raise DestinationError(f"refusing to write {path}: it is {_kind(mode)}, not a regular file; "
                               "give the path of a file")
    ancestor = path.parent
    while _existing_mode(ancestor) is None and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    ancestor_mode = _existing_mode(ancestor)
    if ancestor_mode is not None and not stat.S_ISDIR(ancestor_mode):
        raise DestinationError(f"cannot write {path}: {ancestor} is {_kind(ancestor_mode)}, not a folder")
    return path


def _locked_by_a_writer(path: Path) -> bool:
    """Whether a live writer holds the ``flock`` on ``path`` (``False`` where ``flock`` does not exist)."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # never blocks on a FIFO
    except OSError:
        return True  # vanished or unreadable: leave it alone
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(descriptor)  # releases the probe's lock
    return False


def remove_stale_temporaries(path: str | os.PathLike, *, before: float, keep: str | None = None) -> list[Path]:
    """Remove the temporary files earlier writes to ``path`` left behind when killed; returns them.

    Only regular files named ``<name>.XXXXXXXX.tmp`` (``XXXXXXXX`` 8 characters of ``[a-z0-9_]``, the pattern
    of ``atomic_write``) in ``path``'s folder, last modified before ``before`` (a ``time.time()``), not
    locked by a live writer, and not named ``keep``. Files that cannot be removed are skipped.
    """
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + _TEMPORARY_MIDDLE)
    removed: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if name == keep or not pattern.fullmatch(name):
            continue
        candidate = path.parent / name
        try:
            info = os.lstat(candidate)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_mtime >= before or _locked_by_a_writer(candidate):
            continue
        try:
            os.unlink(candidate)
        except OSError:
            continue
        removed.append(candidate)
    return removed


def _refuse_unless_replaceable(path: Path) -> None:
    """``DestinationError`` unless ``path`` is missing or a regular file (all ``os.replace`` may replace)."""
    mode = _existing_mode(path)
    if mode is not None and not stat.S_ISREG(mode):
        raise DestinationError(f"refusing to replace {path}: it became {_kind(mode)} during the write")


def _write_through(path: Path, write: Callable[[str], None]) -> Path:
    """A character device: ``write(path)`` in place (nothing to replace, nothing atomic about it)."""
    write(str(path))
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(temporary_path)`` and move the result onto ``path`` atomically.

    Args:
        path: destination; its folder is created if missing. A character device is written straight through;
            a folder, FIFO, socket or block device is refused with ``DestinationError`` (module docstring).
        write: writes the whole content to the path it is given (e.g.
            ``lambda tmp: figure.savefig(tmp, format="png")`` or ``lambda tmp: torch.save(obj, tmp)``).
    Returns:
        ``path`` as a ``Path``.
    """
    started = time.time()
    path = check_destination(path)
    mode = _existing_mode(path)
    if mode is not None and stat.S_ISCHR(mode):
        return _write_through(path, write)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # held until the rename: marks the file as being written
        remove_stale_temporaries(path, before=started, keep=os.path.basename(temporary))
        write(temporary)
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.chmod(temporary, _default_permissions())
        _refuse_unless_replaceable(path)  # something else may have been put there during the write
        os.replace(temporary, path)
    finally:
        os.close(handle)
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
