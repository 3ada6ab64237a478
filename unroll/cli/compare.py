"""``unroll compare``: trained score networks against the construction, with the statistics that decide the paper's
claims — (a) attention follows the kernel, (c) the error falls like n^(-1/2), (d) a DiT beats a U-Net — on the
gamma-exponential kernel and on the damped cosine (whose correlation is not monotone in the lag).

Every training (learned models, white-data and no-position controls with the same budget, the sample-complexity
grid with its infinite-data floor, the DiT/U-Net learning-rate grid) is an independent task run through one
executor: ``--workers`` local processes (default 2), or a Dask cluster with ``--scheduler tcp://host:port``.
Each finished task is cached in OUT/tasks, so an interrupted run resumes.  Writes OUT/results.json (every number),
OUT/verdicts.md (the verdict table, also printed) and figures.  The comparison of record takes about an hour on 2
cores; ``--quick`` is the same design at a size that runs in minutes (it decides nothing).  OUT is checked before the
first task starts; ``--workers`` above the cores this process may use is capped at them.
"""

from __future__ import annotations

import argparse

from unroll.cli.options import add_seed_argument, capped_at_cores, integer, positive
from unroll.cli.paths import check_output_folder
from unroll.cli.resources import check_memory, compare_estimate, core_count
from unroll.training.compare import CompareConfig

#: the files ``unroll compare`` writes into --out (besides the figures and tasks/)
OUTPUT_FILES = ("results.json", "verdicts.md")


workers_type = capped_at_cores("--workers", 0)  # 0 runs the tasks inline


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CompareConfig()
    parser.add_argument("--out", required=True, help="output folder (results.json, verdicts.md, tasks/, figures)")
    parser.add_argument("--quick", action="store_true", help="the same design at a size that runs in minutes")
    parser.add_argument("--kernel", default=defaults.kernel,
                        choices=("gamma-exponential", "matern", "polynomial", "logarithmic", "damped-cosine"),
                        help="the primary kernel (default gamma-exponential)")
    parser.add_argument("--control-kernel", default=None,
                        help=f"the second kernel, 'none' for the primary only (default {defaults.control_kernel}; "
                             "--quick: none)")
    parser.add_argument("--nu", type=positive, default=defaults.nu, help="decay exponent nu > 0")
    parser.add_argument("--ell", type=positive, default=defaults.ell, help="length scale ell > 0")
    parser.add_argument("--period", type=positive, default=defaults.period,
                        help="damped cosine period > 0 (default 6)")
    parser.add_argument("--frames", type=integer(2, 256), default=defaults.frames, help="H, 2 <= H <= 256 (default 16)")
    parser.add_argument("--dim", type=integer(1, 256), default=defaults.dim, help="d, 1 <= d <= 256 (default 2)")
    parser.add_argument("--train-size", type=integer(1), default=None,
                        help="training samples n >= 1 of the fixed-n arms")
    parser.add_argument("--steps", type=integer(1), default=None, help="training budget (steps >= 1) of every arm")
    add_seed_argument(parser, "first seed")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    parser.add_argument("--workers", type=workers_type, default=min(2, core_count()),
                        help="local worker processes, one torch thread each, 0 <= workers, capped at the cores "
                             "(default 2, or 1 on one core; 0: run inline)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the tasks on a Dask cluster (tcp://host:port; pip install 'unroll-gp[dask]')")
    parser.add_argument("--sweeps", default=None,
                        help="extra sweeps, comma-separated subset of H,size,decay (default none)")
    parser.add_argument("--video", action="store_true", help="also run the moving-ball video experiment")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def config_from_arguments(args: argparse.Namespace) -> CompareConfig:
    overrides = dict(kernel=args.kernel, nu=args.nu, ell=args.ell, period=args.period, frames=args.frames,
                     dim=args.dim, seed=args.seed, device=args.device, workers=args.workers, scheduler=args.scheduler,
                     figures=not args.no_figures, progress=not args.no_progress, video=args.video)
    if args.control_kernel is not None:
        overrides["control_kernel"] = None if args.control_kernel.lower() == "none" else args.control_kernel
    if args.train_size is not None:
        overrides["train_size"] = args.train_size
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.sweeps is not None:
        overrides["sweeps"] = () if args.sweeps == "none" else tuple(s.strip() for s in args.sweeps.split(","))
    config = CompareConfig.quick(**overrides) if args.quick else CompareConfig(**overrides)
    return config.validate()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="trained score networks vs the construction: verdicts on the "
                                                   "paper's claims", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_compare_arguments(parser)
    parser.set_defaults(run=run, interrupt_note="rerun the same command to resume (finished tasks are kept in "
                                                "{out}/tasks)")


def run(args: argparse.Namespace) -> int:
    import torch

    from unroll.training.compare import run_comparison, verdict_table

    config = config_from_arguments(args)
    check_output_folder("--out", args.out, OUTPUT_FILES, folders=("tasks",))
    check_memory(compare_estimate(config))
    torch.set_num_threads(1)
    results = run_comparison(config, args.out)
    print(f"{'model':<24}{'score_error':>12}{'lin. resp.':>11}{'lag prof.':>10}")
    for name, entry in results["models"].items():
        print(f"{name:<24}{entry['score_error']:>12.4g}{entry['linear_response_error']:>11.4g}"
              f"{entry['lag_profile_error']:>10.4g}")
    sweep = results["n_sweep"]
    interval = sweep["interval"] or [float("nan"), float("nan")]
    slope = float("nan") if sweep["slope"] is None else sweep["slope"]
    print(f"n-sweep ({sweep['model']}): slope {slope:.3f}, 95% interval [{interval[0]:.3f}, {interval[1]:.3f}], "
          f"{sweep['verdict']}")
    print(verdict_table(results))
    print(f"wrote {args.out}/results.json and {args.out}/verdicts.md in {results['timings_seconds']['total']:.1f} s")
    return 0
