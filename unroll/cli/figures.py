"""``unroll figures``: draw the docs' figures (tent heads, Gamma vs Gamma_J, error vs blocks and bands,
constructed vs learned attention maps, sample-complexity curve) into a folder, each computed by the
toolkit when drawn.  Needs matplotlib (``pip install 'unroll[plot]'``).  The two training figures take a
minute or two on 2 CPU cores; ``--only`` picks figures, ``--train-steps`` / ``--sweep-steps`` set their size.
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
    parser.add_argument("--sweep-steps", type=int, default=600,
                        help="sample complexity: training steps per training-set size (default 600; at 150 the "
                             "error is optimisation-limited and the fitted slope is near 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, training and held-out sets (default 0)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from unroll._validate import check_int, check_positive
    from unroll.figures import FigureSettings, generate_figures

    settings = FigureSettings(diffusion_time=check_positive("time", args.time),
                              train_steps=check_int("train-steps", args.train_steps, minimum=1),
                              sweep_steps=check_int("sweep-steps", args.sweep_steps, minimum=1),
                              seed=check_int("seed", args.seed, minimum=0))
    try:
        generate_figures(args.out, args.only, settings, log=print)
    except ImportError as error:
        print(f"unroll figures: error: {error}")
        return 2
    return 0
