"""Exit codes of the ``unroll`` command and the expected failures each one stands for.

``unroll.cli.main`` turns every expected failure into one line on stderr, ``unroll <command>: error: <message>``,
and returns the exit code of its class (``EXIT_CODES``); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXIT_OK", "EXIT_USAGE", "EXIT_FILE", "EXIT_MEMORY", "EXIT_NUMERICAL", "EXIT_DEPENDENCY",
           "EXIT_INTERRUPTED", "EXIT_CODES", "ResourceLimitError", "Failure", "classify", "one_line",
           "exit_code_table"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FILE = 3
EXIT_MEMORY = 4
EXIT_NUMERICAL = 5
EXIT_DEPENDENCY = 6
EXIT_INTERRUPTED = 130

#: ``(exit code, what it means)``, in the order ``unroll --help`` lists them
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "success"),
    (1, "an unexpected error (a bug): Python's traceback"),
    (EXIT_USAGE, "bad input: an unknown option, a value out of its range, options that do not fit together"),
    (EXIT_FILE, "a file or folder that cannot be used: an output location that is not writable or not a "
                "regular file/folder, a missing or unreadable input file"),
    (EXIT_MEMORY, "not enough memory: the run's estimated memory exceeds what is available, or an allocation "
                  "failed"),
    (EXIT_NUMERICAL, "numerical failure: an overflow or a non-finite result (e.g. training diverged)"),
    (EXIT_DEPENDENCY, "a missing optional dependency (matplotlib for figures, dask for --scheduler)"),
    (EXIT_INTERRUPTED, "interrupted by Ctrl-C; train and compare keep their progress: rerun the same command to "
                       "resume"),
)

#: substrings of a ``RuntimeError`` (torch's allocator) that mean an allocation failed
_ALLOCATION_FAILURES = ("can't allocate memory", "not enough memory", "out of memory", "bad_alloc")
#: substrings of a ``RuntimeError`` (torch) that mean a number overflowed its type
_OVERFLOWS = ("without overflow", "overflow when")


class ResourceLimitError(MemoryError):
    """A run refused before it starts because its estimated memory exceeds what the machine has."""


@dataclass(frozen=True)
class Failure:
    """An expected failure: its exit code and the one line that explains it."""

    code: int
    message: str


def one_line(text: str) -> str:
    """``text`` with its lines joined by spaces (a message printed as one line)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _message(error: BaseException, default: str) -> str:
    text = one_line(str(error))
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        target = f"{error.filename!r}" + (f" -> {error.filename2!r}" if error.filename2 is not None else "")
        text = f"{error.strerror}: {target}"
    return text or default


def classify(error: BaseException) -> Failure | None:
    """The :class:`Failure` an exception stands for, or ``None`` for an unexpected one (a bug).

    ``KeyboardInterrupt`` -> 130; ``MemoryError`` (and torch's allocator errors) -> 4; ``OverflowError``,
    ``FloatingPointError``, a failed factorisation (torch's and numpy's ``LinAlgError``) and torch's overflow errors
    -> 5; ``ImportError`` -> 6; ``OSError``, a damaged checkpoint and an unusable output location -> 3;
    ``ValueError`` -> 2 (the options reach the library already converted by argparse, so a ``TypeError`` there is
    a bug and keeps its traceback).
    """
    if isinstance(error, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "interrupted")
    if isinstance(error, MemoryError):
        return Failure(EXIT_MEMORY, _message(error, "out of memory"))
    if isinstance(error, (OverflowError, FloatingPointError)):
        return Failure(EXIT_NUMERICAL, _message(error, "numerical overflow"))
    if any(cls.__name__.lstrip("_") == "LinAlgError" for cls in type(error).__mro__):
        return Failure(EXIT_NUMERICAL, f"numerical failure: {_message(error, 'a factorisation failed')}")
    if isinstance(error, RuntimeError):
        text = str(error).lower()
        if any(marker in text for marker in _ALLOCATION_FAILURES):
            return Failure(EXIT_MEMORY, f"out of memory: {one_line(str(error))}")
        if any(marker in text for marker in _OVERFLOWS):
            return Failure(EXIT_NUMERICAL, f"numerical overflow: {one_line(str(error))}")
        return None
    if isinstance(error, ImportError):
        return Failure(EXIT_DEPENDENCY, _message(error, "a dependency is missing"))
    if isinstance(error, OSError) or _is_file_error(error):
        return Failure(EXIT_FILE, _message(error, "file error"))
    if isinstance(error, ValueError):
        return Failure(EXIT_USAGE, _message(error, "bad input"))
    return None


def _is_file_error(error: BaseException) -> bool:
    """A damaged checkpoint or an output location that is not a regular file: ``ValueError`` subclasses that
    name a file, so exit 3 like an ``OSError``."""
    from unroll._atomic import DestinationError
    from unroll.experiments.checkpoint import CheckpointError

    return isinstance(error, (DestinationError, CheckpointError))


def exit_code_table() -> str:
    """The exit codes as the lines of ``unroll --help``'s epilog."""
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in EXIT_CODES)
