"""``unroll compare``: the constructed network against trained ReLU-Transformer, DiT and U-Net score models.

Trains the three models by denoising score matching on GP sequences of one kernel, measures their
held-out relative score error against the closed form beside the construction's, their attention maps'
alignment with gamma(m) against positional-only controls, the n-sweep slope with a 95% interval, the
covariance error of reverse-SDE samples and (construction) the exact KL. Writes OUT/results.json
(atomically) and figures. ``--quick`` is a reduced run (< 2 minutes).
"""

from __future__ import annotations

import argparse

from unroll.training.compare import CompareConfig


def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CompareConfig()
    parser.add_argument("--out", required=True, help="output folder (results.json, figures, checkpoints)")
    parser.add_argument("--quick", action="store_true", help="reduced comparison, under 2 minutes")
    parser.add_argument("--kernel", default=defaults.kernel,
                        choices=("gamma-exponential", "matern", "polynomial", "logarithmic"))
    parser.add_argument("--nu", type=float, default=defaults.nu)
    parser.add_argument("--ell", type=float, default=defaults.ell)
    parser.add_argument("--frames", type=int, default=defaults.frames, help="H (default 16)")
    parser.add_argument("--dim", type=int, default=defaults.dim, help="d (default 2)")
    parser.add_argument("--train-size", type=int, default=None, help="training samples n")
    parser.add_argument("--steps", type=int, default=None, help="optimisation steps per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: small models run fastest on one thread)")
    parser.add_argument("--sweeps", default=None,
                        help="comma-separated subset of n,H,size,decay (default n; 'none' for no sweep)")
    parser.add_argument("--sweep-model", default=None, choices=("relu_transformer", "dit", "unet"))
    parser.add_argument("--no-video", action="store_true", help="skip the moving-ball video experiment")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--no-progress", action="store_true")


def config_from_arguments(args: argparse.Namespace) -> CompareConfig:
    overrides = dict(kernel=args.kernel, nu=args.nu, ell=args.ell, frames=args.frames, dim=args.dim,
                     seed=args.seed, device=args.device, figures=not args.no_figures,
                     progress=not args.no_progress)
    if args.train_size is not None:
        overrides["train_size"] = args.train_size
    if args.steps is not None:
        overrides["steps"] = overrides["control_steps"] = args.steps
    if args.sweeps is not None:
        overrides["sweeps"] = () if args.sweeps == "none" else tuple(s.strip() for s in args.sweeps.split(","))
    if args.sweep_model is not None:
        overrides["sweep_model"] = args.sweep_model
    if args.no_video:
        overrides["video"] = False
    config = CompareConfig.quick(**overrides) if args.quick else CompareConfig(**overrides)
    return config.validate()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="constructed vs trained score networks (issue 5)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_compare_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from unroll._validate import check_int
    from unroll.training.compare import run_comparison

    torch.set_num_threads(check_int("threads", args.threads, minimum=1))
    config = config_from_arguments(args)
    results = run_comparison(config, args.out)
    print(f"{'model':<32}{'score_error':>12}{'cov_error':>11}")
    for name, entry in results["models"].items():
        cov = entry.get("covariance_error")
        print(f"{name:<32}{entry['score_error']:>12.4g}{'' if cov is None else format(cov, '11.4g')}")
    print(f"wrote {args.out}/results.json in {results['timings_seconds']['total']:.1f} s")
    return 0
