"""Command-line interface: ``unroll <command> ...``.

Each sub-command lives in its own module exposing ``register(subparsers)``; the module list below is
the only place that names them.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "unroll.cli.demo",
    "unroll.cli.verify",
    "unroll.cli.train",
    "unroll.cli.compare",
    "unroll.cli.bounds",
    "unroll.cli.figures",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unroll",
        description="Check numerically that a transformer unrolling gradient descent represents the "
        "score of Gaussian-process sequence data.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``unroll`` script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ValueError as error:
        print(f"unroll {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
