"""Benchmark: structured (Kronecker-eigen) score vs dense solve, from one run.

Prints
- at H=256, d=16, batch 32: the dense-solve time (form C_t, one LU for all 32 right-hand sides), the
  structured time with the factorisation included (first call) and with cached factors, and both ratios;
- at H=4096, d=16, batch 32: the structured per-call time (factors cached) and the one-off factorisation.

Targets (issue 2): dense / structured >= 100 at H=256; structured per call < 1 s at H=4096 on 2 cores.
Timings are medians of a few repeats; on a shared machine expect +-30% noise.

    python benchmarks/score_speed.py [--large-frames 4096] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from unroll.cli.options import random_spatial_covariance
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import Matern


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dense_score(gp: GaussianProcess, x: torch.Tensor, diffusion_time: float) -> torch.Tensor:
    """``-C_t^{-1} vec(x)`` by forming the (Hd, Hd) matrix and one LU solve for the whole batch."""
    flat = x.reshape(x.shape[0], -1)
    return -torch.linalg.solve(gp.noised_covariance(diffusion_time), flat.T).T.reshape(x.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--large-frames", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    diffusion_time = 0.5
    kernel = Matern(nu=1.5, ell=8.0)
    spatial = random_spatial_covariance(args.dim, seed=0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, diffusion_time {diffusion_time}")

    gp = GaussianProcess(kernel, args.frames, spatial)
    x = gp.sample(args.batch, torch.Generator().manual_seed(0))
    dense_time = median_seconds(lambda: dense_score(gp, x, diffusion_time), args.repeats)

    def first_call() -> torch.Tensor:
        fresh = GaussianProcess(kernel, args.frames, spatial)
        return fresh.score(x, diffusion_time)

    first_time = median_seconds(first_call, args.repeats)
    cached_time = median_seconds(lambda: gp.score(x, diffusion_time), max(args.repeats, 5))
    error = float((gp.score(x, diffusion_time) - dense_score(gp, x, diffusion_time)).norm()
                  / dense_score(gp, x, diffusion_time).norm())
    print(f"H={args.frames} d={args.dim} batch={args.batch}:")
    print(f"  dense solve                      {dense_time:9.4f} s")
    for label, seconds in (("factorisation incl.", first_time), ("cached factors", cached_time)):
        print(f"  structured, {label:<20} {seconds:9.4f} s   ratio dense/structured {dense_time / seconds:8.1f}")
    print(f"  relative difference structured vs dense: {error:.2e}")

    large = GaussianProcess(kernel, args.large_frames, spatial)
    start = time.perf_counter()
    large.validate()
    factorisation_time = time.perf_counter() - start
    x_large = large.sample(args.batch, torch.Generator().manual_seed(1))
    large_time = median_seconds(lambda: large.score(x_large, diffusion_time), args.repeats)
    print(f"H={args.large_frames} d={args.dim} batch={args.batch}:")
    print(f"  factorisation (once)             {factorisation_time:9.4f} s")
    print(f"  structured score per call        {large_time:9.4f} s   target < 1 s")


if __name__ == "__main__":
    main()
