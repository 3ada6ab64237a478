"""Experiment: blocks needed by the unrolled solver, gradient descent against Chebyshev steps, from one run.

``unroll verify``'s default configuration (gamma-exponential nu=1, ell=2, H=32, d=4, Sigma seeded with 0 and
condition 4, 8 seeded draws of the noised data) with all bands (J = H - 1), at t in --times.  For each t: kappa_t of
C_{t,J}; the blocks L that bring the gd part |y_L - y*_J| / |y*| below --epsilon, measured (the eigenbasis iterates
``unroll.construction.gd.spectral_iterates``, the smallest such L) and by the bound (``theory`` ``blocks_needed`` and
``blocks_needed_chebyshev``, exact-arithmetic part); the ratio GD / Chebyshev beside sqrt(kappa_t).  The Chebyshev
network at its measured depth is then run through ``unroll.verify`` (the frame-by-frame loop oracle) to confirm the
gd part and print its certificate.

Then the sampler: the comparison of record's GP (gamma-exponential nu=1, ell=4, H=16, d=2, Sigma[a,b] = 0.5^|a-b|),
the reverse SDE from t=8 to t0=0.01 in --sampler-steps geometric steps with the constructed network (all bands) as
the score, its output law in closed form (the network is linear in x) and the exact KL to the data law, for both
schedules and L in --sampler-blocks, next to the exact score's KL.

    python benchmarks/unrolled_solvers.py [--times 0.01 0.1 0.5 2] [--epsilon 1e-6]
"""

from __future__ import annotations

import argparse
import math
import time

import torch
from bench_utils import configure

import theory
from unroll import construct_unrolled
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential
from unroll.experiments import distribution
from unroll.experiments.compare import float64_score, make_gp
from unroll.verification import verify


def measured_blocks(gp, x, t, bands, epsilon, steps, limit=4000):
    """Smallest L with |y_L - y*_J| / |y*| <= epsilon (GD: one run of the iterates; Chebyshev: one schedule per L)."""
    scale = float(gp.precision_apply(x, t).norm())
    fixed = gd.fixed_point(gp, x, t, bands)
    if steps == "gd":
        errors = (gd.spectral_iterates(gp, x, t, limit, bands) - fixed).flatten(1).norm(dim=1) / scale
        below = torch.nonzero(errors <= epsilon)
        return int(below[0]) if below.numel() else None
    for blocks in range(1, limit):
        last = gd.spectral_iterates(gp, x, t, blocks, bands, steps="chebyshev")[-1]
        if float((last - fixed).norm()) / scale <= epsilon:
            return blocks
    return None


def blocks_table(args) -> None:
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 32, random_spatial_covariance(4, 0))
    bands = gp.frames - 1
    print(f"blocks for gd part <= {args.epsilon:g}: gamma-exponential nu=1 ell=2, H=32, d=4, J={bands}, "
          "batch 8 (seed 0)")
    print(f"{'t':>6} {'kappa_t':>9} {'sqrt':>6} | {'GD meas':>8} {'GD bound':>9} | {'Cheb meas':>9} "
          f"{'Cheb bound':>10} | {'ratio meas':>10} {'ratio bound':>11} | verify: gd part, certificate")
    for t in args.times:
        g = torch.Generator().manual_seed(0)
        x = gp.noised(gp.sample(8, generator=g), t, generator=g)
        kappa = float(gd.condition_number(gp, t, bands))
        config = theory.Configuration.from_gp(gp, bands=bands, blocks=1, diffusion_time=t)
        values = {**theory.symbol_values(config), "epsilon": args.epsilon}
        bound_gd = math.ceil(theory.BOUNDS["blocks_needed"].evaluate(values))
        bound_cheb = math.ceil(theory.BOUNDS["blocks_needed_chebyshev"].evaluate(values))
        meas_gd = measured_blocks(gp, x, t, bands, args.epsilon, "gd")
        meas_cheb = measured_blocks(gp, x, t, bands, args.epsilon, "chebyshev")
        model = construct_unrolled(gp, blocks=meas_cheb, bands=bands, steps="chebyshev")
        report = verify(gp, model, t, x=x)
        print(f"{t:>6g} {kappa:>9.4g} {math.sqrt(kappa):>6.3g} | {meas_gd:>8} {bound_gd:>9} | {meas_cheb:>9} "
              f"{bound_cheb:>10} | {meas_gd / meas_cheb:>10.2f} {bound_gd / bound_cheb:>11.2f} | "
              f"{report.parts['gd'].measured:.2e} (bound {report.parts['gd'].bound:.2e}), {report.certificate:.1e}")


def sampler_table(args) -> None:
    gp = make_gp("gamma-exponential", 1.0, 4.0, 16, 2)
    target = gp.covariance()
    sampler = dict(t_start=8.0, t0=0.01, steps=args.sampler_steps)
    exact_kl = distribution.gaussian_kl(distribution.sampler_gaussian_law(gp.score, 16, 2, **sampler), target)
    kappa = float(gd.condition_number(gp, 0.01, 15))
    print(f"\nsampler: reverse SDE t=8 -> 0.01, {args.sampler_steps} steps; H=16, d=2, ell=4, kappa(C_t0) = "
          f"{kappa:.4g}; exact score KL to the data law {exact_kl:.4g}")
    print(f"{'L':>5} | {'GD KL':>8} {'/ exact':>8} | {'Cheb KL':>8} {'/ exact':>8} | seconds")
    for blocks in args.sampler_blocks:
        row = []
        start = time.perf_counter()
        for steps in ("gd", "chebyshev"):
            model = construct_unrolled(gp, blocks=blocks, bands=15, steps=steps)
            law = distribution.sampler_gaussian_law(float64_score(model), 16, 2, **sampler)
            kl = distribution.gaussian_kl(law, target)
            row.append(f"{kl:>8.4g} {kl / exact_kl:>8.3f}")
        print(f"{blocks:>5} | {row[0]} | {row[1]} | {time.perf_counter() - start:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--times", type=float, nargs="+", default=[0.01, 0.1, 0.5, 2.0])
    parser.add_argument("--epsilon", type=float, default=1e-6)
    parser.add_argument("--sampler-steps", type=int, default=60)
    parser.add_argument("--sampler-blocks", type=int, nargs="+", default=[20, 40, 80])
    args = parser.parse_args()
    print(configure(threads=1))
    blocks_table(args)
    sampler_table(args)


if __name__ == "__main__":
    main()
