"""Benchmark: time and peak memory against sequence length H = 256 ... 4096, with fitted exponents.

Paths (float64, batch 1 unless stated):
- ``attention dense`` / ``attention banded``: one ReLU attention layer, ``attend(..., window=J)`` with
  --heads generic random heads (q, k standard normal dk=3, v dv=d), forced ``path="dense"`` / ``"banded"``;
- ``banded, M heads``: the banded path alone with --banded-heads heads (51 = the constructed model's heads per
  block at J=16), so that the work, not the fixed per-call overhead of 2(2J+1) small kernels, dominates;
- ``score structured``: ``gp.score`` per call with cached factors, batch --batch, d = --dim;
- ``factorise split``: ``temporal_eigen`` of a fresh GaussianProcess (two half-size eigh, centrosymmetric
  split); ``factorise full``: one ``torch.linalg.eigh`` of Gamma (what gp.py did before);
- ``score dense``: form C_t (Hd x Hd) and one LU solve, only for H <= --dense-score-max (C_t at H=1024,
  d=16 is 2 GB and the LU ~1e12 flops).
For each path: seconds per call per H (``bench_utils.round_robin``: at each H the fast paths run in turn, once per
round, each run ``torch.utils.benchmark.Timer.timeit`` looping the call for >= 0.2 s, the minimum over --repeats
rounds; the slow paths, factorisations and the dense score, one round), peak memory
(``bench_utils.MEMORY_METHOD``), and the least-squares slope of log(time) against log(H) with its standard error
(``scipy.stats.linregress``).  One torch thread.  Small times (< 1 ms) are dominated by Python overhead, which
flattens the fitted exponent (hence also a fit over the three largest H); the machine is shared (2 cores): the
header prints its load average.

    python benchmarks/scaling.py [--frames 256 512 1024 2048 4096] [--bands 16] [--dim 16]
"""

from __future__ import annotations

import argparse

import torch
from bench_utils import MEMORY_METHOD, configure, fit_exponent, peak_memory, round_robin

from unroll.cli.options import random_spatial_covariance
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import Matern
from unroll.model.transformer import attend

KERNEL = Matern(nu=1.5, ell=8.0)
DIFFUSION_TIME = 0.5


def dense_score(gp: GaussianProcess, x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(x.shape[0], -1)
    return -torch.linalg.solve(gp.noised_covariance(DIFFUSION_TIME), flat.T).T.reshape(x.shape)


def measure(candidates: dict, repeats: int) -> dict[str, tuple[float, float]]:
    """``{name: (seconds per call, peak MiB)}``: peak memory of one call each, then the round-robin timing."""
    memory = {name: peak_memory(function)[1] for name, function in candidates.items()}
    seconds = round_robin(candidates, repeats)
    return {name: (seconds[name], memory[name]) for name in candidates}


def candidates(frames: int, args: argparse.Namespace, spatial: torch.Tensor) -> tuple[dict, dict]:
    """The paths at ``frames``: the fast ones (timed over --repeats rounds) and the slow ones (one round)."""
    generator = torch.Generator().manual_seed(frames)
    shape = (1, args.heads, frames)
    q = torch.randn(*shape, 3, generator=generator, dtype=torch.float64)
    k = torch.randn(*shape, 3, generator=generator, dtype=torch.float64)
    v = torch.randn(*shape, args.dim, generator=generator, dtype=torch.float64)
    wide = (1, args.banded_heads, frames)
    qw, kw = (torch.randn(*wide, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    vw = torch.randn(*wide, args.dim, generator=generator, dtype=torch.float64)
    gp = GaussianProcess(KERNEL, frames, spatial).validate()
    x = gp.sample(args.batch, generator)
    fast = {f"attention {path}": (lambda path=path: attend(q, k, v, "relu", args.bands, 1.0, path=path,
                                                           need_weights=False))
            for path in ("dense", "banded")}
    fast[f"banded, {args.banded_heads} heads"] = lambda: attend(qw, kw, vw, "relu", args.bands, 1.0, path="banded",
                                                                need_weights=False)
    fast["score structured"] = lambda: gp.score(x, DIFFUSION_TIME)
    slow = {"factorise split": lambda: GaussianProcess(KERNEL, frames, spatial).temporal_eigen}
    if frames <= args.full_eigh_max:
        gamma = GaussianProcess(KERNEL, frames, spatial).temporal
        slow["factorise full"] = lambda: torch.linalg.eigh(gamma)
    if frames <= args.dense_score_max:
        slow["score dense"] = lambda: dense_score(gp, x)
    return fast, slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    parser.add_argument("--bands", type=int, default=16)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--banded-heads", type=int, default=51)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dense-score-max", type=int, default=512)
    parser.add_argument("--full-eigh-max", type=int, default=4096)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    print(f"{configure(threads=1)}; float64, J={args.bands}, d={args.dim}, "
          f"attention heads={args.heads}, score batch={args.batch}")
    print(f"peak memory: {MEMORY_METHOD}")
    spatial = random_spatial_covariance(args.dim, seed=0)
    results: dict[str, list[tuple[int, float, float]]] = {}

    def record(name: str, frames: int, seconds: float, memory: float) -> None:
        results.setdefault(name, []).append((frames, seconds, memory))
        print(f"  H={frames:5d}  {name:<18} {seconds:10.4f} s   peak {memory:9.1f} MiB", flush=True)

    for frames in args.frames:
        fast, slow = candidates(frames, args, spatial)
        for name, (seconds, memory) in {**measure(fast, args.repeats), **measure(slow, 1)}.items():
            record(name, frames, seconds, memory)

    print("\nfitted exponent (time ~ H^p, least squares on log-log over the H measured, ± its standard error):")
    for name, rows in results.items():
        sizes = [row[0] for row in rows]
        exponent, error = fit_exponent(sizes, [row[1] for row in rows])
        memory, memory_error = fit_exponent(sizes, [max(row[2], 1e-3) for row in rows])
        tail, tail_error = (fit_exponent(sizes[-3:], [row[1] for row in rows[-3:]]) if len(sizes) > 3
                            else (exponent, error))
        print(f"  {name:<18} p = {exponent:5.2f} ± {error:4.2f}   (H = {sizes[0]}..{sizes[-1]}, {len(sizes)} points; "
              f"three largest H: p = {tail:5.2f} ± {tail_error:4.2f}; memory exponent {memory:5.2f} ± "
              f"{memory_error:4.2f})")


if __name__ == "__main__":
    main()
