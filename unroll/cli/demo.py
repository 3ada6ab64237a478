"""``unroll demo``: sample a GP sequence, noise it, and print the closed-form score's agreement with the
dense oracle at several diffusion times (``--json PATH``: also as JSON with the run's configuration and
provenance; ``-`` for standard output, the table then on stderr)."""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from unroll.cli.options import add_gp_arguments, add_json_argument, gp_from_arguments, gp_spec_from_arguments, integer
from unroll.cli.output import check_json_output, show, write_json
from unroll.cli.resources import check_memory, demo_estimate

#: the diffusion times of the table
TIMES = (1e-3, 1e-2, 0.1, 1.0, 10.0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="closed-form score vs the dense oracle on sampled GP data",
        description=__doc__,
    )
    add_gp_arguments(parser)
    parser.add_argument("--batch", type=integer(1), default=8, help="number of sampled sequences >= 1 (default 8)")
    add_json_argument(parser, "the table")
    parser.set_defaults(run=run)


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as fields (``unroll.provenance``)."""
    return {"command": "demo", "gp": gp_spec_from_arguments(args).to_dict(), "seed": args.seed,
            "batch": args.batch, "times": list(TIMES)}


def run(args: argparse.Namespace) -> int:
    check_json_output(args)
    check_memory(demo_estimate(frames=args.frames, dim=args.dim, batch=args.batch))
    gp = gp_from_arguments(args)
    generator = torch.Generator().manual_seed(args.seed)
    x0 = gp.sample(args.batch, generator)
    show(args, f"{gp}: lambda_min(Gamma) = {gp.lambda_min:.3e}, batch {args.batch}")
    show(args, f"{'diffusion_time':>14} {'|s - s_dense|/|s_dense|':>24} {'structured [ms]':>16} {'dense [ms]':>11}")
    rows = []
    for diffusion_time in TIMES:
        x = gp.noised(x0, diffusion_time, generator)
        start = time.perf_counter()
        structured = gp.score(x, diffusion_time)
        middle = time.perf_counter()
        dense = gp.score_dense(x, diffusion_time)
        end = time.perf_counter()
        error = float((structured - dense).norm() / dense.norm())
        rows.append({"time": diffusion_time, "relative_error": error})
        show(args, f"{diffusion_time:>14g} {error:>24.3e} {1e3 * (middle - start):>16.2f} "
                   f"{1e3 * (end - middle):>11.2f}")
    write_json(args, {"lambda_min": gp.lambda_min, "rows": rows}, configuration(args))
    return 0
