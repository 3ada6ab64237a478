"""``unroll figures``: draw the docs' figures (tent heads, Gamma vs Gamma_J, error vs blocks and bands, the two
step schedules, constructed vs learned attention maps) into the folder ``--out`` (required: the docs' own figures
are drawn with ``--out docs/figures``), each computed by the toolkit when drawn, with a progress bar.
Needs matplotlib (``pip install 'unroll-gp[plot]'``).  The training figure takes a minute on 2 CPU cores; ``--only``
picks figures, ``--train-steps`` sets its size.  ``--results runs/record/results.json`` also draws the comparison
figures of a finished ``unroll compare`` run (its measurements, not recomputed).  Without matplotlib the command
exits with status 6.
"""

from __future__ import annotations

import argparse

from unroll.cli.options import TIME_MAX, add_seed_argument, diffusion_time_type, integer
from unroll.cli.paths import check_input_file, check_output_folder
from unroll.cli.resources import check_memory, figures_estimate


def register(subparsers: argparse._SubParsersAction) -> None:
    from unroll.figures.gallery import FIGURES

    parser = subparsers.add_parser(
        "figures",
        help="draw the docs' figures into a folder (matplotlib needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder, created if missing (the docs' figures: --out docs/figures)")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), default=None, metavar="NAME",
                        help=f"draw only these figures: {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--time", type=diffusion_time_type, default=0.5,
                        help=f"diffusion time 0 < t <= {TIME_MAX:g} of the figures (default 0.5)")
    parser.add_argument("--train-steps", type=integer(1), default=200,
                        help="attention maps: training steps >= 1 per model and per control (default 200)")
    parser.add_argument("--results", default=None, metavar="PATH",
                        help="results.json of a finished unroll compare run: draw its comparison figures too")
    add_seed_argument(parser, "seed of data, training and held-out sets")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over the figures")
    parser.set_defaults(run=run)


def _require_matplotlib() -> None:
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError("unroll figures needs matplotlib: pip install 'unroll-gp[plot]'")


def run(args: argparse.Namespace) -> int:
    from unroll.figures.gallery import FigureSettings, comparison_figures_from, generate_figures

    _require_matplotlib()
    if args.results is not None:
        check_input_file("--results", args.results)
    check_output_folder("--out", args.out)
    check_memory(figures_estimate(train_steps=args.train_steps))
    settings = FigureSettings(diffusion_time=args.time, train_steps=args.train_steps, seed=args.seed)
    if args.results is not None:
        for path in comparison_figures_from(args.results, args.out).values():
            print(path)
    if args.results is None or args.only:
        from tqdm.auto import tqdm

        progress = not args.no_progress
        generate_figures(args.out, args.only, settings, log=tqdm.write if progress else print, progress=progress)
    return 0
