"""What a command prints and writes: its table (stdout, or stderr when ``--json -`` takes stdout) and its JSON
results file, which always carries the run's ``configuration`` and ``provenance`` (``unroll.provenance``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from unroll.cli.paths import STDOUT, check_output_file, write_output_text

__all__ = ["show", "check_json_output", "write_json", "with_records"]


def show(args: argparse.Namespace, text: str) -> None:
    """Print a line of the human-readable report: to stdout, or to stderr when the JSON goes to stdout."""
    print(text, file=sys.stderr if getattr(args, "json", None) == STDOUT else sys.stdout)


def check_json_output(args: argparse.Namespace) -> None:
    """Check ``--json``'s location before any work (``unroll.cli.paths.check_output_file``)."""
    if getattr(args, "json", None) is not None:
        check_output_file("--json", args.json)


def with_records(args: argparse.Namespace, payload: dict[str, Any], configuration: dict[str, Any]) -> dict[str, Any]:
    """``{"configuration": ..., "provenance": ..., **payload}``."""
    from unroll.provenance import provenance

    return {"configuration": configuration, "provenance": provenance(getattr(args, "command_line", None)),
            **payload}


def write_json(args: argparse.Namespace, payload: dict[str, Any], configuration: dict[str, Any]) -> None:
    """Write ``payload`` with its records to ``--json`` (nothing without it)."""
    if getattr(args, "json", None) is None:
        return
    text = json.dumps(with_records(args, payload, configuration), indent=2, default=str, allow_nan=True)
    write_output_text(args.json, text + "\n")
