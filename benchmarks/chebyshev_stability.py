"""Experiment: rounding in the Chebyshev step schedule — natural order against the Leja order — and the
float32 behaviour of the Chebyshev construction, from one run.

Part 1 (the order).  A random symmetric matrix with eigenvalues in [1, kappa] (both ends included, the rest
log-uniform; n = 400; seed 0) and a random right-hand side.  L Chebyshev steps ``y <- y - eta_k (C y - x)`` in the
natural order ``theta_0, theta_1, ...`` and in ``unroll.construction.gd.chebyshev_order`` (Leja), run in float64 and
float32 with dense products; the reference is the exact residual polynomial applied in the eigenbasis (float64).
Printed: the polynomial's own error ``|p_L(C) y*| / |y*|`` (what exact arithmetic gives), the rounding error of each run
``|y_L - y_L^exact| / |y*|``, and the largest iterate ``max_k |y_k| / |y*|``.

Part 2 (the network in float32).  The comparison of record's GP (gamma-exponential nu=1, ell=4, H=16, d=2,
Sigma[a,b] = 0.5^|a-b|), all bands, t = --time: the exact-mode construction with each schedule in float32 and in
float64 for L in --blocks; printed the float32 certificate (max_k |net_k - y_k| / |y_k|), the float32 and float64
net parts and the float64 gd part.

    python benchmarks/chebyshev_stability.py [--kappas 56 129 1000] [--lengths 16 32 64 128 200]
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch
from bench_utils import configure

from unroll import construct_unrolled
from unroll.construction import gd
from unroll.experiments.compare import make_gp
from unroll.verification import verify


def run_order(kappa: float, order: np.ndarray, dtype: type, size: int = 400, seed: int = 0) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    eigenvalues = np.concatenate([[1.0, kappa], np.exp(rng.uniform(0, math.log(kappa), size - 2))])
    basis, _ = np.linalg.qr(rng.standard_normal((size, size)))
    matrix = (basis * eigenvalues) @ basis.T
    x = rng.standard_normal(size)
    blocks = order.size
    theta = (2 * order + 1) * math.pi / (2 * blocks)
    steps = 1.0 / (0.5 * (kappa + 1) + 0.5 * (kappa - 1) * np.cos(theta))
    solution = (basis.T @ x) / eigenvalues
    residual = np.prod(1.0 - np.outer(steps, eigenvalues), axis=0)
    exact = basis @ ((1.0 - residual) * solution)
    scale = np.linalg.norm(solution)
    y = np.zeros(size, dtype=dtype)
    matrix_d, x_d = matrix.astype(dtype), x.astype(dtype)
    peak = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for step in steps:
            y = y - dtype(step) * (matrix_d @ y - x_d)
            peak = max(peak, float(np.linalg.norm(y.astype(np.float64))))
    rounding = float(np.linalg.norm(y.astype(np.float64) - exact)) / scale
    return float(np.linalg.norm(residual * solution)) / scale, rounding, peak / scale


def order_table(args) -> None:
    print("part 1: Chebyshev steps on a random SPD matrix (n = 400), natural order vs Leja order")
    print(f"{'kappa':>6} {'L':>4} {'order':>8} {'|p_L(C)y*|':>11} {'rounding f64':>13} {'rounding f32':>13} "
          f"{'max|y_k|/|y*|':>14}")
    for kappa in args.kappas:
        for blocks in args.lengths:
            for name, order in (("natural", np.arange(blocks)), ("Leja", gd.chebyshev_order(blocks).numpy())):
                polynomial, rounding64, peak = run_order(kappa, order, np.float64)
                _, rounding32, _ = run_order(kappa, order, np.float32)
                print(f"{kappa:>6g} {blocks:>4} {name:>8} {polynomial:>11.2e} {rounding64:>13.2e} "
                      f"{rounding32:>13.2e} {peak:>14.2e}")


def network_table(args) -> None:
    gp = make_gp("gamma-exponential", 1.0, 4.0, 16, 2)
    bands = gp.frames - 1
    t = args.time
    print(f"\npart 2: exact-mode construction, H=16, d=2, ell=4, all bands, t={t:g}, kappa = "
          f"{float(gd.condition_number(gp, t, bands)):.4g}, batch 8 (seed 0)")
    print(f"{'steps':>9} {'L':>4} {'f32 certificate':>16} {'f32 net':>10} {'f64 net':>10} {'f64 gd part':>12}")
    for steps in ("gd", "chebyshev"):
        for blocks in args.blocks:
            reports = {}
            for dtype in (torch.float32, torch.float64):
                model = construct_unrolled(gp, blocks=blocks, bands=bands, steps=steps, dtype=dtype)
                reports[dtype] = verify(gp, model, t, generator=torch.Generator().manual_seed(0), batch=8)
            f32, f64 = reports[torch.float32], reports[torch.float64]
            print(f"{steps:>9} {blocks:>4} {f32.certificate:>16.2e} {f32.parts['net'].measured:>10.2e} "
                  f"{f64.parts['net'].measured:>10.2e} {f64.parts['gd'].measured:>12.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kappas", type=float, nargs="+", default=[56.0, 129.0, 1000.0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64, 128, 200])
    parser.add_argument("--time", type=float, default=0.01)
    parser.add_argument("--blocks", type=int, nargs="+", default=[20, 40, 80, 200])
    args = parser.parse_args()
    print(f"{configure(threads=1)}; numpy {np.__version__}")
    order_table(args)
    network_table(args)


if __name__ == "__main__":
    main()
