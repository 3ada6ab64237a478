"""Command-line interface: ``unroll <command> ...``.

Each sub-command lives in its own module exposing ``register(subparsers)``; the module list below is
the only place that names them.  ``main`` turns every expected failure into one line on stderr,
``unroll <command>: error: <message>``, with the exit code of its class (``unroll.cli.failures.EXIT_CODES``,
listed by ``unroll --help``); an unexpected exception (a bug) keeps its traceback.

Status lines of the library (``logging.getLogger(__name__)`` in ``unroll`` and ``theory``) go to stderr at level
INFO; ``-v`` shows DEBUG, ``-q`` only warnings and errors.  Progress bars (tqdm, on stderr) are separate:
``--no-progress`` silences them and leaves the status lines.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from unroll.cli.failures import EXIT_INTERRUPTED, classify, exit_code_table, one_line
from unroll.cli.options import OneLineParser

COMMAND_MODULES = [
    "unroll.cli.demo",
    "unroll.cli.verify",
    "unroll.cli.train",
    "unroll.cli.compare",
    "unroll.cli.bounds",
    "unroll.cli.figures",
    "unroll.cli.sweep",
]
#: the loggers whose records ``main`` shows (the library's status lines)
LOGGERS = ("unroll", "theory")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="unroll",
        description="Check numerically that a transformer unrolling gradient descent represents the "
        "score of Gaussian-process sequence data.",
        epilog=exit_code_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version_line(),
                        help="print the versions of unroll, torch, numpy, scipy and Python, and exit")
    level = parser.add_mutually_exclusive_group()
    level.add_argument("-v", "--verbose", action="store_true", help="also show debug messages")
    level.add_argument("-q", "--quiet", action="store_true",
                       help="show only warnings and errors (no status lines; progress bars: --no-progress)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _version_line() -> str:
    """``unroll X.Y.Z (torch A.B.C, numpy ..., scipy ..., Python ...)``: what a bug report needs first."""
    import platform

    import numpy
    import scipy
    import torch

    from unroll import __version__

    return (f"unroll {__version__} (torch {torch.__version__}, numpy {numpy.__version__}, "
            f"scipy {scipy.__version__}, Python {platform.python_version()})")


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unrecognised argument is reported by its sub-command (``unroll verify: error: ...``)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
        commands[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _interrupted_message(args: argparse.Namespace) -> str:
    note = getattr(args, "interrupt_note", None)
    return "interrupted" + (f"; {note.format(**vars(args))}" if note else "")


@contextmanager
def logging_to_stderr(level: int) -> Iterator[None]:
    """Show the records of ``LOGGERS`` at ``level`` and above on stderr, one line each, for the duration."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, (old_level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(old_level)
            logger.propagate = propagate


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``unroll`` script; returns the process exit code (``unroll --help`` lists them)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parse(parser, argv)
    except SystemExit as stop:  # --help (0) or a usage error (2), already printed as one line
        return stop.code if isinstance(stop.code, int) else 2
    args.command_line = ["unroll", *argv]  # recorded in the provenance of every file the command writes
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    try:
        with logging_to_stderr(level):
            return int(args.run(args) or 0)
    except (Exception, KeyboardInterrupt) as error:
        failure = classify(error)
        if failure is None:
            raise
        message = _interrupted_message(args) if failure.code == EXIT_INTERRUPTED else failure.message
        print(f"unroll {args.command}: error: {one_line(message)}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
