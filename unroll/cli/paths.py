"""Output locations and input files of the commands, checked before any work starts.

A command that writes into ``--out`` or ``--json`` checks the location first, so a run never trains or verifies
for minutes and then fails at its first write:

- an output folder (``--out``) exists and is a writable folder, or can be created (its nearest existing ancestor
  is a writable folder); the files the command will write inside it, if present, are regular files;
- an output file (``--json``) is ``-`` (standard output), a character device such as ``/dev/null`` (written
  straight through, never replaced), or a regular file or a new name in a writable folder; a folder, a FIFO, a
  socket or a block device is refused;
- an input file (``--results``) exists, is a regular file and is readable.

Writability is probed by creating and removing a temporary file (``os.access`` says yes to root even on a
read-only mount).  An empty path is bad input (``ValueError``, exit 2); every other refusal is an ``OSError``
(exit 3) whose message names the option.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from unroll._atomic import write_text_atomic

__all__ = ["STDOUT", "check_output_folder", "check_output_file", "check_input_file", "write_output_text"]

#: the ``--json`` value that means standard output
STDOUT = "-"


def _require_path(option: str, path: str, what: str) -> None:
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{option} must name {what}, got an empty path {path!r}")
    if "\0" in path:
        raise ValueError(f"{option} must not contain a NUL character, got {path!r}")


def _status(option: str, path: Path) -> os.stat_result | None:
    """``os.stat(path)``, or ``None`` if nothing is there (a dangling symlink, or a path through a file, counts as
    nothing: the ancestor check then names the file in the way)."""
    try:
        return path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise type(error)(f"{option} {str(path)!r}: {error.strerror or error}") from None


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISREG, "a file")):
        if test(mode):
            return name
    return "not a regular file"


def _probe_writable(option: str, folder: Path, target: Path) -> None:
    """Create and remove a temporary file in ``folder``; raise ``PermissionError`` naming ``option`` if that fails."""
    try:
        handle, name = tempfile.mkstemp(prefix=".unroll-write-check.", dir=folder)
    except OSError as error:
        raise PermissionError(f"{option} {str(target)!r}: cannot write into the folder {str(folder)!r} "
                              f"({error.strerror or error})") from None
    os.close(handle)
    os.unlink(name)


def _nearest_existing(option: str, path: Path) -> Path:
    """The nearest ancestor of ``path`` (``path`` excluded) that exists; it must be a folder."""
    for ancestor in path.absolute().parents:
        status = _status(option, ancestor)
        if status is None:
            continue
        if not stat.S_ISDIR(status.st_mode):
            raise NotADirectoryError(f"{option} {str(path)!r}: {str(ancestor)!r} is {_kind(status.st_mode)}, "
                                     "not a folder, so the output cannot be created there")
        return ancestor
    raise FileNotFoundError(f"{option} {str(path)!r}: no existing folder above it")  # pragma: no cover (``/``)


def check_output_folder(option: str, path: str, files: Iterable[str] = (), folders: Iterable[str] = ()) -> Path:
    """Check that ``path`` is a writable folder or can be created; return it as a ``Path``.

    Args:
        option: the option's name for the messages, e.g. ``"--out"``.
        path: the folder.
        files: names the command writes inside the folder; each that exists must be a regular file.
        folders: names of the sub-folders the command writes into; each that exists must be a folder.
    Raises:
        ValueError: an empty path.
        OSError (``NotADirectoryError``, ``PermissionError``, ``IsADirectoryError``): a location that cannot be
            written, with a message naming ``option``.
    """
    _require_path(option, path, "a folder")
    folder = Path(path)
    status = _status(option, folder)
    if status is None:
        _probe_writable(option, _nearest_existing(option, folder), folder)
        return folder
    if not stat.S_ISDIR(status.st_mode):
        raise NotADirectoryError(f"{option} {path!r} is {_kind(status.st_mode)}, not a folder")
    _probe_writable(option, folder, folder)
    for name in files:
        inner = _status(option, folder / name)
        if inner is not None and not stat.S_ISREG(inner.st_mode):
            error = IsADirectoryError if stat.S_ISDIR(inner.st_mode) else OSError
            raise error(f"{option} {path!r}: {str(folder / name)!r}, which the run writes, is "
                        f"{_kind(inner.st_mode)}, not a regular file")
    for name in folders:
        inner = _status(option, folder / name)
        if inner is not None and not stat.S_ISDIR(inner.st_mode):
            raise NotADirectoryError(f"{option} {path!r}: {str(folder / name)!r}, which the run writes into, is "
                                     f"{_kind(inner.st_mode)}, not a folder")
    return folder


def check_output_file(option: str, path: str) -> str:
    """Check that ``path`` can take the output file; return ``path``.

    ``-`` (standard output) and a character device (``/dev/null``) are accepted as they are; a regular file or a
    new name must lie in a writable folder (the file is replaced atomically, ``unroll._atomic``).

    Raises:
        ValueError: an empty path.
        OSError (``IsADirectoryError``, ``NotADirectoryError``, ``PermissionError``): a folder, a FIFO, a socket,
            a block device, or a location that cannot be written, with a message naming ``option``.
    """
    _require_path(option, path, "a file (or - for standard output)")
    if path == STDOUT:
        return path
    if path.endswith(("/", os.sep)):
        raise IsADirectoryError(f"{option} {path!r} names a folder; give a file name")
    target = Path(path)
    status = _status(option, target)
    if status is not None:
        if stat.S_ISCHR(status.st_mode):
            if not os.access(target, os.W_OK):
                raise PermissionError(f"{option} {path!r}: the character device is not writable")
            return path
        if stat.S_ISDIR(status.st_mode):
            raise IsADirectoryError(f"{option} {path!r} is a folder, not a file")
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{option} {path!r} is {_kind(status.st_mode)}, not a regular file; use {option} - "
                          "to write to standard output")
        _probe_writable(option, target.absolute().parent, target)
        return path
    _probe_writable(option, _nearest_existing(option, target), target)
    return path


def check_input_file(option: str, path: str) -> Path:
    """Check that ``path`` is an existing, readable regular file; return it as a ``Path``.

    Raises:
        ValueError: an empty path.
        OSError (``FileNotFoundError``, ``IsADirectoryError``, ``PermissionError``) naming ``option``.
    """
    _require_path(option, path, "a file")
    target = Path(path)
    status = _status(option, target)
    if status is None:
        raise FileNotFoundError(f"{option} {path!r}: no such file")
    if not stat.S_ISREG(status.st_mode):
        error = IsADirectoryError if stat.S_ISDIR(status.st_mode) else OSError
        raise error(f"{option} {path!r} is {_kind(status.st_mode)}, not a regular file")
    try:
        with open(target, "rb"):
            pass
    except OSError as error:
        raise PermissionError(f"{option} {path!r}: cannot be read ({error.strerror or error})") from None
    return target


def write_output_text(path: str, text: str) -> None:
    """Write ``text`` to an output file checked by :func:`check_output_file`: ``-`` to standard output, a
    character device straight through, anything else atomically."""
    if path == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    status = _status("output", Path(path))
    if status is not None and stat.S_ISCHR(status.st_mode):
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(text)
        return
    write_text_atomic(path, text)
