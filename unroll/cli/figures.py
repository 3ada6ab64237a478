"""``unroll figures``: draw the docs' figures (tent heads, Gamma vs Gamma_J, error vs blocks and bands, the two
step schedules, constructed vs learned attention maps) into a folder, each computed by the toolkit when drawn.
Needs matplotlib (``pip install 'unroll[plot]'``).  The training figure takes a minute on 2 CPU cores; ``--only``
picks figures, ``--train-steps`` sets its size.  ``--results runs/record/results.json`` also draws the comparison
figures of a finished ``unroll compare`` run (its measurements, not recomputed).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from unroll.figures import FIGURES

    parser = subparsers.add_parser(
        "figures",
        help="draw the docs' figures into a folder (matplotlib needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="docs/figures", help="output folder (default docs/figures)")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), default=None, metavar="NAME",
                        help=f"draw only these figures: {', '.join(FIGURES)} (default: all)")
    parser.add_argument("--time", type=float, default=0.5, help="diffusion time t of the figures (default 0.5)")
    parser.add_argument("--train-steps", type=int, default=200,
                        help="attention maps: training steps per model and per control (default 200)")
    parser.add_argument("--results", default=None, metavar="PATH",
                        help="results.json of a finished unroll compare run: draw its comparison figures too")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, training and held-out sets (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unroll._validate import check_int, check_positive
    from unroll.figures import FigureSettings, comparison_figures_from, generate_figures

    settings = FigureSettings(diffusion_time=check_positive("time", args.time),
                              train_steps=check_int("train-steps", args.train_steps, minimum=1),
                              seed=check_int("seed", args.seed, minimum=0))
    try:
        if args.results is not None:
            for path in comparison_figures_from(args.results, args.out).values():
                print(path)
        if args.results is None or args.only:
            generate_figures(args.out, args.only, settings, log=print)
    except ImportError as error:
        print(f"unroll figures: error: {error}")
        return 2
    return 0
