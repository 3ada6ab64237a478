"""``unroll demo``: sample a GP sequence, noise it, and print the closed-form score's agreement with the
dense oracle at several diffusion times."""

from __future__ import annotations

import argparse
import time

import torch

from unroll.cli.options import add_gp_arguments, gp_from_arguments, integer
from unroll.cli.resources import check_memory, demo_estimate


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="closed-form score vs the dense oracle on sampled GP data",
        description=__doc__,
    )
    add_gp_arguments(parser, frames=16, dim=3)
    parser.add_argument("--batch", type=integer(1), default=8, help="number of sampled sequences >= 1 (default 8)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_memory(demo_estimate(frames=args.frames, dim=args.dim, batch=args.batch))
    gp = gp_from_arguments(args)
    generator = torch.Generator().manual_seed(args.seed)
    x0 = gp.sample(args.batch, generator)
    print(f"{gp}: lambda_min(Gamma) = {gp.lambda_min:.3e}, batch {args.batch}")
    print(f"{'diffusion_time':>14} {'|s - s_dense|/|s_dense|':>24} {'structured [ms]':>16} {'dense [ms]':>11}")
    for diffusion_time in (1e-3, 1e-2, 0.1, 1.0, 10.0):
        x = gp.noised(x0, diffusion_time, generator)
        start = time.perf_counter()
        structured = gp.score(x, diffusion_time)
        middle = time.perf_counter()
        dense = gp.score_dense(x, diffusion_time)
        end = time.perf_counter()
        error = float((structured - dense).norm() / dense.norm())
        print(f"{diffusion_time:>14g} {error:>24.3e} {1e3 * (middle - start):>16.2f} {1e3 * (end - middle):>11.2f}")
    return 0
