"""Benchmark: the exact score, sampling and the banded construction at H = 65,536 frames, in one run.

1. Score: ``GaussianProcess.score`` (Toeplitz path) at H, d = 16, batch 32, float64, t = 0.01: seconds of the first
   call (Gohberg–Semencul generators by PCG included) and of a cached call (minimum of --repeats), peak growth of
   resident memory during a cached call (``bench_utils.peak_memory``), the relative residual it reports, and its
   agreement with an independent PCG solve at rtol 1e-13.
2. Sampling: ``GaussianProcess.sample(method="circulant")`` of 32 sequences (512 columns of N(0, Gamma)): seconds,
   and the lag-averaged empirical autocovariance ``gamma_hat(m) = mean_{columns, i} z_i z_{i+m}`` for m = 0..32
   against ``gamma(m)``, with the tolerance ``5 sigma``, ``sigma^2 = 2 sum_k gamma(k)^2 / (N (H - m))`` (the variance
   of a lag-averaged Gaussian autocovariance estimate from N columns of length H, an upper bound).
3. The banded construction (J = 16, L blocks, d = 4, t = 0.5, triangular taper): ``construct_unrolled`` and its
   forward pass at H (banded attention, weights dropped), against the vectorised GD reference
   (``gd.unrolled_solution``), the truncated fixed point (``gd.fixed_point``, Toeplitz solves) and the exact score.
4. Banded attention memory: peak growth of one 51-head banded ReLU attention at H with ``need_weights`` False and
   True, against the size of its output.

    python benchmarks/long_sequences.py [--frames 65536] [--repeats 3] [--threads 1] [--blocks 8]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch
from bench_utils import peak_memory

from unroll.construction import gd
from unroll.construction.constructor import construct_unrolled
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import Matern
from unroll.linalg.toeplitz import pcg
from unroll.model.banded import banded_attend


def spatial_covariance(dim: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return (rotation * torch.logspace(-1, 1, dim, dtype=torch.float64)) @ rotation.T


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def score_part(frames: int, repeats: int) -> None:
    dim, batch, diffusion_time = 16, 32, 0.01
    gp = GaussianProcess(Matern(nu=1.0, ell=4.0), frames, spatial_covariance(dim))
    x = torch.randn(batch, frames, dim, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    start = time.perf_counter()
    score = gp.score(x, diffusion_time)
    first = time.perf_counter() - start
    cached = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        score = gp.score(x, diffusion_time)
        cached = min(cached, time.perf_counter() - start)
    info = gp.last_solve
    del score
    score, mib = peak_memory(lambda: gp.score(x, diffusion_time))
    mu, vectors = gp.spatial_eigen
    columns = gp.toeplitz_solver.inverse(diffusion_time).column
    solved, pcg_info = pcg(columns, (x @ vectors).transpose(1, 2), rtol=1e-13)
    reference = -(solved.transpose(1, 2) @ vectors.T)
    print(f"1. score  H={frames} d={dim} batch={batch} t={diffusion_time}: path={gp.score_path()}, first call "
          f"{first:.2f} s (generators: {gp.toeplitz_solver.inverse(diffusion_time).generator_info.iterations} PCG "
          f"iterations), cached {cached:.2f} s (min of {repeats}), peak memory growth {mib:.0f} MiB (input and "
          f"output {2 * x.numel() * 8 / 2**20:.0f} MiB), reported residual {info.residual:.1e} after "
          f"{info.iterations} apply(s), vs PCG(rtol 1e-13, {pcg_info.iterations} iterations) "
          f"{relative_error(score, reference):.1e}")


def sampling_part(frames: int) -> None:
    kernel = Matern(nu=1.0, ell=4.0)
    gp = GaussianProcess(kernel, frames, torch.eye(16, dtype=torch.float64))
    start = time.perf_counter()
    x = gp.sample(32, torch.Generator().manual_seed(2), method="circulant")
    seconds = time.perf_counter() - start
    columns = x.transpose(1, 2).reshape(-1, frames)  # Sigma = I: 512 columns of N(0, Gamma)
    count = columns.shape[0]
    lags = torch.arange(33)
    gamma = torch.from_numpy(kernel(lags.numpy().astype(float)))
    every = torch.from_numpy(kernel(torch.arange(frames).numpy().astype(float)))
    energy = float(every[0] ** 2 + 2 * (every[1:] ** 2).sum())
    worst = 0.0
    for lag in lags.tolist():
        estimate = float((columns[:, : frames - lag] * columns[:, lag:]).mean())
        sigma = math.sqrt(2 * energy / (count * (frames - lag)))
        worst = max(worst, abs(estimate - float(gamma[lag])) / sigma)
    _, size = gp.circulant_embedding
    print(f"2. sample H={frames}: 32 x 16 sequences by circulant embedding (M = {size}) in {seconds:.2f} s; "
          f"lag-averaged autocovariance, lags 0..32, worst |gamma_hat - gamma| = {worst:.2f} sigma (tolerance 5 "
          f"sigma): {'within' if worst <= 5 else 'OUTSIDE'}")


def construction_part(frames: int, blocks: int) -> None:
    dim, bands, diffusion_time = 4, 16, 0.5
    gp = GaussianProcess(Matern(nu=1.0, ell=4.0), frames, spatial_covariance(dim))
    generator = torch.Generator().manual_seed(3)
    x = gp.noised(gp.sample(1, generator), diffusion_time, generator)
    start = time.perf_counter()
    model = construct_unrolled(gp, bands=bands, blocks=blocks, taper="triangular")
    built = time.perf_counter() - start
    start = time.perf_counter()
    with torch.no_grad():
        network = -model(x, diffusion_time)
    forward = time.perf_counter() - start
    reference = gd.unrolled_solution(gp, x, diffusion_time, blocks, bands, "triangular")
    fixed = gd.fixed_point(gp, x, diffusion_time, bands, "triangular")
    exact = gp.precision_apply(x, diffusion_time)
    scale = float(exact.norm())
    rho = float(gd.contraction(gp, diffusion_time, bands, "triangular"))
    print(f"3. construction H={frames} J={bands} L={blocks} d={dim} t={diffusion_time}: built in {built:.2f} s, "
          f"forward {forward:.1f} s; |net - y_L|/|y*| = {float((network - reference).norm()) / scale:.2e}, "
          f"|y_L - y*_J|/|y*| = {float((reference - fixed).norm()) / scale:.3g} (GD bound rho^L "
          f"{rho ** blocks:.3g}), |y*_J - y*|/|y*| = {float((fixed - exact).norm()) / scale:.3g}")


def attention_part(frames: int) -> None:
    heads, dk, dv, window = 51, 3, 4, 16
    generator = torch.Generator().manual_seed(4)
    query = torch.randn(1, heads, frames, dk, generator=generator, dtype=torch.float64)
    key = torch.randn(1, heads, frames, dk, generator=generator, dtype=torch.float64)
    value = torch.randn(1, heads, frames, dv, generator=generator, dtype=torch.float64)
    output_mib = heads * frames * dv * 8 / 2**20
    (_, dropped), without = peak_memory(lambda: banded_attend(query, key, value, "relu", window, 1.0, False))
    (_, kept), with_weights = peak_memory(lambda: banded_attend(query, key, value, "relu", window, 1.0, True))
    print(f"4. banded attention H={frames} M={heads} J={window}: peak growth {without:.0f} MiB without weights "
          f"({without / output_mib:.2f}x the {output_mib:.0f} MiB output), {with_weights:.0f} MiB with the "
          f"{(2 * window + 1) * heads * frames * 8 / 2**20:.0f} MiB of band weights kept")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--blocks", type=int, default=8, help="blocks L of the construction (part 3)")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3, 4])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}  load average={os.getloadavg()}")
    for part in args.parts:
        {1: lambda: score_part(args.frames, args.repeats), 2: lambda: sampling_part(args.frames),
         3: lambda: construction_part(args.frames, args.blocks), 4: lambda: attention_part(args.frames)}[part]()


if __name__ == "__main__":
    main()
