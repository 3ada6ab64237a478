"""``unroll sweep``: measured against bound over many configurations (``theory.sweep``).

A property run verifies ``--examples`` configurations drawn by hypothesis (seed ``--seed``) among those meeting the
assumptions, in the construction modes ``--modes``, and prints the slack ``bound / measured`` of each error part
(min, median, max, violations); ``--grid`` adds the grid sweep (4 families x nu x H x J x L x t, Sigma from the
options below, d = ``--dim``) and its figure.  Writes OUT/property_run.tsv (and OUT/grid.tsv, OUT/grid.png), every
row with its whole configuration and each table headed by its provenance; ``--json PATH`` also writes the slack
summaries as JSON (``-``: standard output, the summary then on stderr).  ``python -m theory.sweep`` is the same
command.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from unroll.cli.options import (
    GP_DEFAULTS,
    add_json_argument,
    add_progress_argument,
    add_seed_argument,
    add_spatial_arguments,
    add_threads_argument,
    integer,
    spatial_fields,
)
from unroll.cli.output import check_json_output, show, write_json
from unroll.cli.paths import check_output_folder

#: the construction modes a property run may draw
MODES = ("exact", "paper")
#: the files ``unroll sweep`` writes into --out
OUTPUT_FILES = ("property_run.tsv", "grid.tsv", "grid.png")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sweep", help="measured vs bound over many configurations (property run, grid)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=integer(1), default=200,
                        help="configurations of the property run, >= 1 (default 200)")
    add_seed_argument(parser, "seed of hypothesis's draws and of the grid's data and Sigma")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["exact"], metavar="MODE",
                        help=f"construction modes the property run draws from, any of {', '.join(MODES)} "
                             "(space-separated; default exact)")
    parser.add_argument("--out", default="runs/bounds", help="output folder of the tables (default runs/bounds)")
    parser.add_argument("--grid", action="store_true", help="also run the grid sweep and draw its figure")
    group = parser.add_argument_group("grid's Sigma")
    group.add_argument("--dim", type=integer(1), default=GP_DEFAULTS["dim"],
                       help=f"grid: dimension d of a frame, 1 <= d (default {GP_DEFAULTS['dim']})")
    add_spatial_arguments(group)
    add_threads_argument(parser, ": many tiny matrix products, which threads only slow down")
    add_progress_argument(parser)
    add_json_argument(parser, "the slack summaries")
    parser.set_defaults(run=run)


def _summary_lines(prefix: str, summary: dict[str, dict[str, float]]) -> list[str]:
    return [f"  {prefix}{name:<6} slack min {stats['min']:.3g}  median {stats['median']:.3g}  max {stats['max']:.3g}  "
            f"(finite {stats['finite']}/{stats['count']}, violations {stats['violations']})"
            for name, stats in summary.items()]


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as fields (``unroll.provenance``)."""
    return {"command": "sweep", "examples": args.examples, "seed": args.seed, "modes": list(args.modes),
            "grid": args.grid, "grid_dim": args.dim, "grid_spatial": spatial_fields(args),
            "data_seed": 0}


def run(args: argparse.Namespace) -> int:
    import torch

    from theory.sweep import grid_sweep, property_run, slack_summary, write_figure, write_table
    from unroll.data.gp_spec import GPSpec

    check_output_folder("--out", args.out, OUTPUT_FILES)
    check_json_output(args)
    torch.set_num_threads(args.threads)
    modes = tuple(dict.fromkeys(args.modes))
    record = configuration(args)
    command_line = getattr(args, "command_line", None)
    rows, seconds = property_run(args.examples, args.seed, progress=not args.no_progress, modes=modes)
    summary = slack_summary(rows)
    show(args, f"property run: {len(rows)} examples in {seconds:.1f} s (modes {', '.join(modes)})")
    for line in _summary_lines("", summary):
        show(args, line)
    write_table(rows, os.path.join(args.out, "property_run.tsv"), record, command_line)
    payload: dict[str, Any] = {"property_run": {"examples": len(rows), "summary": summary}, "seconds": seconds}
    if args.grid:
        spec = GPSpec(dim=args.dim, **spatial_fields(args))
        grid = grid_sweep(seed=args.seed, spatial=spec, progress=not args.no_progress)
        write_table(grid, os.path.join(args.out, "grid.tsv"), record, command_line)
        drew = write_figure(grid, os.path.join(args.out, "grid.png"))
        grid_summary = slack_summary([r for r in grid if not r["error"]])
        show(args, f"grid: {len(grid)} rows -> {args.out}/grid.tsv{' and grid.png' if drew else ''}")
        for line in _summary_lines("grid ", grid_summary):
            show(args, line)
        payload["grid"] = {"rows": len(grid), "summary": grid_summary}
    write_json(args, payload, record)
    return 0
