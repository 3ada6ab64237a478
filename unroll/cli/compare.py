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

The Gaussian-process options are those of every command, with the record configuration's defaults (``H = 16``,
``d = 2``, ``ell = 4``, the fixed ``Sigma[a, b] = 0.5^|a-b|``: ``--spatial correlated``) so that a bare
``unroll compare`` reproduces the comparison of record; ``--spatial random`` draws Sigma from ``--spatial-seed`` as
``unroll verify`` does.  Status lines go to stderr (``unroll -q compare`` silences them); ``--no-progress`` silences
only the progress bar.  ``results.json`` carries the run's ``configuration`` and ``provenance``; ``--json PATH``
also writes it elsewhere (``-``: standard output, the table then on stderr).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from unroll.cli.options import (
    DEFAULT_NU,
    DEFAULT_PERIOD,
    add_gp_arguments,
    add_json_argument,
    add_progress_argument,
    capped_at_cores,
    integer,
    spatial_fields,
)
from unroll.cli.output import check_json_output, show
from unroll.cli.paths import check_output_folder, write_output_text
from unroll.cli.resources import check_memory, compare_estimate, core_count
from unroll.experiments.compare import CompareConfig

#: the files ``unroll compare`` writes into --out (besides the figures and tasks/)
OUTPUT_FILES = ("results.json", "verdicts.md")


workers_type = capped_at_cores("--workers", 0)  # 0 runs the tasks inline


#: the GP of the comparison of record (``CompareConfig``'s), the defaults of ``unroll compare``
RECORD_GP: dict[str, Any] = dict(ell=4.0, frames=16, dim=2, spatial="correlated")
#: the extra sweeps ``--sweeps`` may name
SWEEPS = ("H", "size", "decay")


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CompareConfig()
    parser.add_argument("--out", required=True, help="output folder (results.json, verdicts.md, tasks/, figures)")
    parser.add_argument("--quick", action="store_true", help="the same design at a size that runs in minutes")
    add_gp_arguments(parser, defaults=RECORD_GP, reason="the comparison of record's",
                     frames_range=(2, 256), dim_max=256, seed_help="first seed (of the data, the initialisations "
                     "and, unless --spatial-seed, of a random Sigma)")
    parser.add_argument("--control-kernel", default=None,
                        help=f"the second kernel, 'none' for the primary only (default {defaults.control_kernel}; "
                             "--quick: none)")
    parser.add_argument("--train-size", type=integer(1), default=None,
                        help=f"training samples n >= 1 of the fixed-n arms (default {defaults.train_size}; --quick: "
                             f"{CompareConfig.quick().train_size})")
    parser.add_argument("--steps", type=integer(1), default=None,
                        help=f"training budget (steps >= 1) of every arm (default {defaults.steps}; --quick: "
                             f"{CompareConfig.quick().steps})")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    parser.add_argument("--workers", type=workers_type, default=min(2, core_count()),
                        help="local worker processes, one torch thread each, 0 <= workers, capped at the cores "
                             "(default 2, or 1 on one core; 0: run inline)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run the tasks on a Dask cluster (tcp://host:port; pip install 'unroll-gp[dask]')")
    parser.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=None, metavar="NAME",
                        help=f"extra sweeps, any of {', '.join(SWEEPS)} (space-separated; default none)")
    parser.add_argument("--video", action="store_true", help="also run the moving-ball video experiment")
    parser.add_argument("--no-figures", action="store_true", help="do not draw the comparison figures")
    add_progress_argument(parser)
    add_json_argument(parser, "results.json")


def config_from_arguments(args: argparse.Namespace) -> CompareConfig:
    spatial = spatial_fields(args)
    overrides = dict(kernel=args.kernel, nu=DEFAULT_NU if args.nu is None else args.nu, ell=args.ell,
                     period=DEFAULT_PERIOD if args.period is None else args.period, frames=args.frames,
                     dim=args.dim, seed=args.seed, device=args.device, workers=args.workers, scheduler=args.scheduler,
                     figures=not args.no_figures, progress=not args.no_progress, video=args.video,
                     spatial=spatial["spatial"], spatial_seed=args.spatial_seed,
                     spatial_condition=spatial["spatial_condition"],
                     spatial_correlation=spatial["spatial_correlation"])
    if args.kernel == "damped-cosine" and args.nu is not None:
        raise ValueError("--nu does not apply to the damped cosine (it has no decay exponent)")

    if args.control_kernel is not None:
        overrides["control_kernel"] = None if args.control_kernel.lower() == "none" else args.control_kernel
    if args.train_size is not None:
        overrides["train_size"] = args.train_size
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.sweeps is not None:
        overrides["sweeps"] = tuple(dict.fromkeys(args.sweeps))
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

    from unroll.experiments.compare import run_comparison, verdict_table

    config = config_from_arguments(args)
    check_output_folder("--out", args.out, OUTPUT_FILES, folders=("tasks",))
    check_json_output(args)
    check_memory(compare_estimate(config))
    torch.set_num_threads(1)
    results = run_comparison(config, args.out, command_line=getattr(args, "command_line", None))
    show(args, f"{'model':<24}{'score_error':>12}{'lin. resp.':>11}{'lag prof.':>10}")
    for name, entry in results["models"].items():
        show(args, f"{name:<24}{entry['score_error']:>12.4g}{entry['linear_response_error']:>11.4g}"
              f"{entry['lag_profile_error']:>10.4g}")
    sweep = results["n_sweep"]
    interval = sweep["interval"] or [float("nan"), float("nan")]
    slope = float("nan") if sweep["slope"] is None else sweep["slope"]
    show(args, f"n-sweep ({sweep['model']}): slope {slope:.3f}, 95% interval [{interval[0]:.3f}, {interval[1]:.3f}], "
          f"{sweep['verdict']}")
    show(args, verdict_table(results))
    show(args, f"wrote {args.out}/results.json and {args.out}/verdicts.md in "
               f"{results['timings_seconds']['total']:.1f} s")
    if args.json is not None:
        write_output_text(args.json, json.dumps(results, indent=2, default=str) + "\n")
    return 0
