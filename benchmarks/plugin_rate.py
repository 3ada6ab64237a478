"""Experiment: the sample complexity of the plug-in score (``unroll.experiments.plugin``), the parametric reference.

For a GP (default: gamma-exponential nu=1, ell=4, H=16, d=2, ``Sigma[a, b] = 0.5^|a-b|``), for each seed the
training sets are nested prefixes of one draw of ``max(--sizes)`` clean samples; for each n the plug-in
``plugin_score(data[:n], structure=...)`` is scored on one held-out set (``--heldout`` clean samples noised at
each diffusion time, ``unroll.experiments.compare.heldout_set``):

    score error(n)  = mean over t of ||s_hat(x_t, t) - s(x_t, t)||_F / ||s(x_t, t)||_F   (whole held-out batch)
    matrix error(n) = mean over t of linear_response(s_hat, gp, t).error
                    = mean over t of ||C_hat_t^{-1} - C_t^{-1}||_F / ||C_t^{-1}||_F        (s_hat is linear)

Prints both per n (mean and spread over seeds) and their fitted log-log slopes
(``unroll.experiments.claims.fit_loglog`` on the seed means; the parametric rate is -1/2), and writes the numbers
to ``--out`` (JSON, atomically) if given.

    python benchmarks/plugin_rate.py [--sizes 16 32 ... 8192] [--seeds 0 1 2] [--structures general toeplitz]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import unroll
from unroll.experiments.claims import fit_loglog
from unroll.experiments.compare import heldout_set, make_gp, score_error, write_json_atomic
from unroll.experiments.plugin import plugin_score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kernel", default="gamma-exponential")
    parser.add_argument("--nu", type=float, default=1.0)
    parser.add_argument("--ell", type=float, default=4.0)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16 * 2**k for k in range(10)])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--times", type=float, nargs="+", default=[0.05, 0.1, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--heldout", type=int, default=512)
    parser.add_argument("--structures", nargs="+", default=["general", "toeplitz"], choices=["general", "toeplitz"])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    gp = make_gp(args.kernel, args.nu, args.ell, args.frames, args.dim)
    held = heldout_set(gp, args.heldout, tuple(args.times), seed=10_000)
    sizes = sorted(args.sizes)
    print(f"plug-in score: {gp!r}, held-out {args.heldout} at t = {args.times}, seeds {args.seeds}")
    results: dict = {"gp": repr(gp), "sizes": sizes, "seeds": args.seeds, "times": args.times, "structures": {}}
    started = time.perf_counter()
    for structure in args.structures:
        score = np.full((len(args.seeds), len(sizes)), np.nan)
        matrix = np.full_like(score, np.nan)
        for i, seed in enumerate(args.seeds):
            pool = gp.sample(sizes[-1], generator=torch.Generator().manual_seed(seed))
            for j, n in enumerate(sizes):
                estimate = plugin_score(pool[:n], structure=structure, iterations=500)
                score[i, j] = score_error(estimate, held)["score_error"]
                matrix[i, j] = np.mean([unroll.linear_response(estimate, gp, t, samples=2).error
                                        for t in args.times])
        entry = {}
        for name, values in (("score_error", score), ("matrix_error", matrix)):
            means = values.mean(axis=0)
            entry[name] = {"per_seed": values.tolist(), "mean": means.tolist(), **fit_loglog(sizes, means)}
        results["structures"][structure] = entry
        print(f"\nstructure = {structure}")
        print(f"{'n':>6} {'score error':>12} {'(min..max)':>21} {'matrix error':>13} {'(min..max)':>21}")
        for j, n in enumerate(sizes):
            print(f"{n:>6} {score[:, j].mean():12.4e} {score[:, j].min():10.3e}..{score[:, j].max():.3e} "
                  f"{matrix[:, j].mean():13.4e} {matrix[:, j].min():10.3e}..{matrix[:, j].max():.3e}")
        for name in ("score_error", "matrix_error"):
            fit = entry[name]
            low, high = fit["slope_ci95"]
            print(f"log-log slope of the {name.replace('_', ' ')}: {fit['slope']:.3f} ± {fit['slope_se']:.3f} (se; "
                  f"95% interval [{low:.3f}, {high:.3f}])")
    print(f"\n{time.perf_counter() - started:.1f} s")
    if args.out:
        write_json_atomic(results, args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
