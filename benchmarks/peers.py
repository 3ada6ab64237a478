"""Benchmark: the exact score ``-C_t^{-1} vec(x)`` by the project's two paths against library peers, in one run.

For H in ``--frames`` (default 256 1024 4096 16384 65536), d = 16, batch 32, float64, t = 0.01 (the worst
conditioned time the comparison uses), Matérn nu = 1, ell = 4, Sigma with eigenvalues log-spaced in [0.1, 10]:

- ``eigen (first)`` / ``eigen (cached)``: ``GaussianProcess.score(method="eigen")`` with the factorisation (O(H^3),
  two half-size ``eigh``) and with it cached (O(H^2 d) per sample);
- ``toeplitz (first)`` / ``toeplitz (cached)``: ``method="toeplitz"``, Gohberg–Semencul with the generators found
  by PCG and with them cached (O(H log H) per sample and feature);
- ``dense cholesky``: every peer gets the spatial rotation for free and solves the d systems
  ``alpha^2 mu_a Gamma + sigma^2 I`` (H x H) by a dense Cholesky factorisation and solve (torch/LAPACK);
- ``scipy levinson``: ``scipy.linalg.solve_toeplitz`` (Levinson–Durbin, O(H^2)) on each of the d systems, all 32
  right-hand sides at once;
- ``linear_operator``: ``ToeplitzLinearOperator + DiagLinearOperator`` per system and ``.solve`` (conjugate gradients
  with its default preconditioner; ``cg_tolerance`` 1e-10, up to 1000 iterations), if ``linear_operator`` is
  installed (``pip install -e '.[bench]'``).

Timing: round-robin in one process: every repeat calls every method once (``--repeats``, default 3) and the minimum
is kept; one torch thread unless ``--threads``; methods whose predicted time (from the previous H and their
asymptotic exponent) exceeds ``--budget`` seconds are skipped and marked, and their ratio is then a lower bound
(their time at the largest H they ran, grown only linearly to this H, ``>=`` in the table).  Peak memory: growth
of resident memory during one call (``bench_utils.peak_memory``).
Error: relative Frobenius error against the reference of that H (the eigen path where it runs, else PCG to 1e-13).
Also measured: the machine's FFT and GEMM throughput, and each path's distance from its own operation count at that
throughput (``toeplitz``: 8 real FFTs of size n = 2H per right-hand side plus the two spatial rotations; ``eigen``:
the four half-size GEMMs).

    python benchmarks/peers.py [--frames 256 1024 4096 16384 65536] [--repeats 3] [--threads 1] [--budget 60]
"""

from __future__ import annotations

import argparse
import math
import os
import time
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.stats
import torch
from bench_utils import peak_memory

from unroll.data import diffusion
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import Matern
from unroll.linalg.toeplitz import embedding_size, pcg

DIM, BATCH, TIME = 16, 32, 0.01
#: asymptotic time exponent of each method in H (for predicting whether the next size fits the budget)
EXPONENTS = {"eigen (first)": 3.0, "eigen (cached)": 2.0, "toeplitz (first)": 1.2, "toeplitz (cached)": 1.2,
             "dense cholesky": 3.0, "scipy levinson": 2.0, "linear_operator": 1.5}
#: memory needed (bytes) as a function of H, to skip what cannot fit
MEMORY = {"eigen (first)": lambda h: 40.0 * h * h, "eigen (cached)": lambda h: 40.0 * h * h,
          "dense cholesky": lambda h: 24.0 * DIM * h * h, "scipy levinson": lambda h: 64.0 * h * BATCH,
          "linear_operator": lambda h: 400.0 * h * BATCH * DIM}
PROJECT = ("eigen (cached)", "toeplitz (cached)")
PEERS = ("dense cholesky", "scipy levinson", "linear_operator")


def spatial_covariance() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    rotation, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=generator, dtype=torch.float64))
    return (rotation * torch.logspace(-1, 1, DIM, dtype=torch.float64)) @ rotation.T


def systems(gp: GaussianProcess) -> tuple[torch.Tensor, torch.Tensor]:
    """``(columns (d, H), V)``: the d Toeplitz systems of C_t in Sigma's eigenbasis."""
    mu, vectors = gp.spatial_eigen
    time_ = torch.tensor(TIME, dtype=torch.float64)
    columns = float(diffusion.alpha(time_) ** 2) * mu[:, None] * gp.autocovariance[None, :]
    columns[:, 0] += float(diffusion.sigma2(time_))
    return columns, vectors


def rotated_solve(gp: GaussianProcess, x: torch.Tensor, solve: Callable[[int, torch.Tensor], torch.Tensor]
                  ) -> torch.Tensor:
    """``-C_t^{-1} x`` given ``solve(a, rhs (H, B)) -> (H, B)`` for feature system a (the peers' common frame)."""
    _, vectors = systems(gp)
    rotated = x @ vectors  # (B, H, d)
    out = torch.empty_like(rotated)
    for feature in range(DIM):
        out[:, :, feature] = solve(feature, rotated[:, :, feature].T.contiguous()).T
    return -(out @ vectors.T)


def make_methods(gp_factory: Callable[[], GaussianProcess], x: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """The candidates; ``eigen (cached)`` and ``toeplitz (cached)`` use one GP whose factors :func:`warm` builds
    before any timing."""
    cached = gp_factory()
    columns, _ = systems(cached)

    def eigen_first() -> torch.Tensor:
        return gp_factory().score(x, TIME, method="eigen")

    def eigen_cached() -> torch.Tensor:
        return cached.score(x, TIME, method="eigen")

    eigen_cached.warm = lambda: cached.validate()  # type: ignore[attr-defined]

    def toeplitz_first() -> torch.Tensor:
        return gp_factory().score(x, TIME, method="toeplitz")

    def toeplitz_cached() -> torch.Tensor:
        return cached.score(x, TIME, method="toeplitz")

    toeplitz_cached.warm = lambda: cached.toeplitz_solver.inverse(TIME)  # type: ignore[attr-defined]

    def dense_cholesky() -> torch.Tensor:
        index = torch.arange(cached.frames)
        lags = (index[:, None] - index[None, :]).abs()

        def solve(feature: int, rhs: torch.Tensor) -> torch.Tensor:
            factor = torch.linalg.cholesky(columns[feature][lags])
            return torch.cholesky_solve(rhs, factor)
        return rotated_solve(cached, x, solve)

    def levinson() -> torch.Tensor:
        def solve(feature: int, rhs: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(scipy.linalg.solve_toeplitz(columns[feature].numpy(), rhs.numpy()))
        return rotated_solve(cached, x, solve)

    methods = {"eigen (first)": eigen_first, "eigen (cached)": eigen_cached, "toeplitz (first)": toeplitz_first,
               "toeplitz (cached)": toeplitz_cached, "dense cholesky": dense_cholesky, "scipy levinson": levinson}
    try:
        import linear_operator
        from linear_operator.operators import DiagLinearOperator, ToeplitzLinearOperator
    except ImportError:
        return methods

    def with_linear_operator() -> torch.Tensor:
        sigma2 = float(diffusion.sigma2(torch.tensor(TIME, dtype=torch.float64)))

        def solve(feature: int, rhs: torch.Tensor) -> torch.Tensor:
            column = columns[feature].clone()
            column[0] -= sigma2
            operator = ToeplitzLinearOperator(column) + DiagLinearOperator(
                torch.full((cached.frames,), sigma2, dtype=torch.float64))
            with linear_operator.settings.cg_tolerance(1e-10), linear_operator.settings.max_cg_iterations(1000), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "CG terminated in 1000 iterations": its error column shows it
                return operator.solve(rhs)
        return rotated_solve(cached, x, solve)

    methods["linear_operator"] = with_linear_operator
    return methods


def fft_seconds(size: int, vectors: int = DIM, repeats: int = 5) -> float:
    """Seconds per real FFT of length ``size`` (forward and inverse averaged), batches of ``vectors`` rows."""
    data = torch.randn(vectors, size, dtype=torch.float64)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        spectrum = torch.fft.rfft(data)
        torch.fft.irfft(spectrum, size)
        best = min(best, (time.perf_counter() - start) / (2 * vectors))
    return best


def gemm_flops(repeats: int = 5) -> float:
    """Measured float64 GEMM rate (flop/s) on a (1024 x 1024) @ (1024 x 512) product."""
    left, right = torch.randn(1024, 1024, dtype=torch.float64), torch.randn(1024, 512, dtype=torch.float64)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        best = min(best, time.perf_counter() - start)
    return 2 * 1024 * 1024 * 512 / best


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).norm() / expected.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[256, 1024, 4096, 16384, 65536],
                        help="increasing sizes, starting small: a method is skipped at H when its time at the "
                             "previous H predicts more than --budget")
    parser.add_argument("--repeats", type=int, default=3, help="round-robin repeats (the minimum is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: see benchmarks/README)")
    parser.add_argument("--budget", type=float, default=60.0, help="skip a method whose predicted call exceeds this")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}  load average={os.getloadavg()}  d={DIM} batch={BATCH} t={TIME} "
          f"Matern(nu=1, ell=4), float64; times are the minimum of {args.repeats} round-robin repeats")
    gemm = gemm_flops()
    rates = []
    for frames in args.frames:
        size = embedding_size(frames)
        rates.append(f"n={size}: {2.5 * size * math.log2(size) / fft_seconds(size) / 1e9:.2f}")
    print(f"machine: GEMM {gemm / 1e9:.2f} GFLOP/s (float64); real FFT GFLOP/s (counting 2.5 n log2 n per "
          f"transform, 16 rows per call) {', '.join(rates)}")
    spatial = spatial_covariance()
    kernel = Matern(nu=1.0, ell=4.0)
    results: dict[str, dict[int, tuple[float, float, float]]] = {}  # method -> H -> (seconds, MiB, error)
    skipped: dict[str, dict[int, str]] = {}
    for frames in args.frames:
        generator = torch.Generator().manual_seed(frames)
        x = torch.randn(BATCH, frames, DIM, generator=generator, dtype=torch.float64)
        methods = make_methods(lambda frames=frames: GaussianProcess(kernel, frames, spatial), x)
        available = {}
        for name, method in methods.items():
            need = MEMORY.get(name, lambda h: 0.0)(frames)
            if need > 12e9:
                skipped.setdefault(name, {})[frames] = f"needs {need / 1e9:.0f} GB"
                continue
            earlier = [h for h in results.get(name, {}) if h < frames]
            if earlier:
                last = max(earlier)
                predicted = results[name][last][0] * (frames / last) ** EXPONENTS[name]
                if predicted > args.budget:
                    skipped.setdefault(name, {})[frames] = f"predicted {predicted:.0f} s"
                    continue
            elif name in skipped and skipped[name]:
                skipped[name][frames] = "skipped at a smaller H"
                continue
            if name == "eigen (cached)" and frames in skipped.get("eigen (first)", {}):
                skipped.setdefault(name, {})[frames] = "its factorisation is skipped"
                continue
            available[name] = method
        for method in available.values():
            if hasattr(method, "warm"):
                method.warm()
        outputs: dict[str, torch.Tensor] = {}
        best = {name: math.inf for name in available}
        for _ in range(args.repeats):
            for name, method in list(available.items()):
                start = time.perf_counter()
                outputs[name] = method()
                best[name] = min(best[name], time.perf_counter() - start)
                if best[name] > args.budget:  # one call is enough to know it does not fit
                    available.pop(name)
        if "eigen (cached)" in outputs:
            reference = outputs["eigen (cached)"]
        else:
            columns, vectors = systems(GaussianProcess(kernel, frames, spatial))
            solved, _ = pcg(columns, (x @ vectors).transpose(1, 2), rtol=1e-13)
            reference = -(solved.transpose(1, 2) @ vectors.T)
        for name in outputs:
            _, mib = peak_memory(methods[name])
            results.setdefault(name, {})[frames] = (best[name], mib, relative_error(outputs[name], reference))
        print(f"H={frames} done ({', '.join(f'{n} {best[n]:.3g}s' for n in outputs)})", flush=True)

    print("\n| method | " + " | ".join(f"H={h}" for h in args.frames) + " | exponent (4096..) |")
    print("|---|" + "---|" * (len(args.frames) + 1))
    for name in EXPONENTS:
        if name not in results and name not in skipped:
            continue
        cells = []
        for frames in args.frames:
            if frames in results.get(name, {}):
                seconds, mib, error = results[name][frames]
                cells.append(f"{seconds:.3g} s, {mib:.0f} MiB, err {error:.1e}")
            else:
                cells.append(f"skipped ({skipped.get(name, {}).get(frames, 'not run')})")
        sizes = [h for h in sorted(results.get(name, {})) if h >= 4096]
        if len(sizes) >= 2:
            fit = scipy.stats.linregress(np.log(sizes), np.log([results[name][h][0] for h in sizes]))
            exponent = f"{fit.slope:.2f} ± {fit.stderr:.2f}" if len(sizes) > 2 else f"{fit.slope:.2f}"
        else:
            exponent = "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {exponent} |")

    print("\n| H | project's best (cached) | best peer | peer / project | toeplitz vs its FFT count | "
          "eigen vs its GEMM count |")
    print("|---|---|---|---|---|---|")
    for frames in args.frames:
        project = {n: results[n][frames][0] for n in PROJECT if frames in results.get(n, {})}
        peers = {n: results[n][frames][0] for n in PEERS if frames in results.get(n, {})}
        bounds = {}  # a skipped peer: its time at the largest smaller H it ran, grown linearly (a lower bound: each
        for name in PEERS:  # peer here is O(H^2) or worse in H, and every solver at least reads its O(H) input)
            if name not in peers and results.get(name):
                smaller = [h for h in results[name] if h < frames]
                if smaller:
                    bounds[name] = results[name][max(smaller)][0] * frames / max(smaller)
        if not project:
            continue
        best_name = min(project, key=project.get)
        candidates = {**{n: (v, "") for n, v in peers.items()}, **{n: (v, ">= ") for n, v in bounds.items()}}
        if candidates:
            peer_name = min(candidates, key=lambda n: candidates[n][0])
            peer_seconds, prefix = candidates[peer_name]
            ratio = f"{prefix}{peer_seconds / project[best_name]:.1f}x ({peer_name})"
            peer = f"{peer_name} {prefix}{peer_seconds:.3g} s"
        else:
            ratio = peer = "-"
        size = embedding_size(frames)
        toeplitz_floor = 8 * BATCH * DIM * fft_seconds(size) + 2 * (2 * BATCH * frames * DIM * DIM) / gemm
        eigen_floor = (2 * frames * frames * BATCH * DIM + 4 * BATCH * frames * DIM * DIM) / gemm
        toeplitz = (f"{results['toeplitz (cached)'][frames][0] / toeplitz_floor:.2f}x of {toeplitz_floor:.3g} s"
                    if frames in results.get("toeplitz (cached)", {}) else "-")
        eigen = (f"{results['eigen (cached)'][frames][0] / eigen_floor:.2f}x of {eigen_floor:.3g} s"
                 if frames in results.get("eigen (cached)", {}) else "-")
        print(f"| {frames} | {best_name} {project[best_name]:.3g} s | {peer} | {ratio} | {toeplitz} | {eigen} |")


if __name__ == "__main__":
    main()
