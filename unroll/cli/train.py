"""``unroll train``: train one score model by denoising score matching on GP sequences (or moving-ball
video) and write OUT/checkpoint.pt (atomic, resumable: rerun the same command to continue an interrupted
run to the same result) and OUT/results.json (held-out relative score error per diffusion time).

OUT is checked before training starts (a writable folder, or one that can be created). Ctrl-C stops at the end
of the step in progress, saves it and exits with status 130 (a second Ctrl-C stops at once); after Ctrl-C,
SIGTERM or kill -9 the rerun continues, bit for bit, from the last saved step. The checkpoint carries a SHA-256
of its content: a damaged one is refused (--no-resume starts afresh over it). A diverging run (non-finite loss)
exits with 5.

The Gaussian-process options and their defaults are ``unroll verify``'s (``H = 32``, ``d = 4``, gamma-exponential
``nu = 1``, ``ell = 2``, a random Sigma drawn from ``--spatial-seed``, default ``--seed``), so that ``unroll train``
and ``unroll verify`` with the same options describe the same data.  ``results.json`` carries the run's
``configuration`` (the GP, the model and its options, the training settings, every seed) and ``provenance``;
``unroll.provenance.rebuild`` rebuilds the GP and the network from it.
"""

from __future__ import annotations

import argparse
import time

from unroll.cli.options import (
    DEFAULT_NU,
    DEFAULT_PERIOD,
    add_gp_arguments,
    add_progress_argument,
    add_threads_argument,
    gp_from_arguments,
    gp_spec_from_arguments,
    integer,
    real,
    spatial_fields,
)
from unroll.cli.paths import check_output_folder
from unroll.cli.resources import check_memory, train_estimate
from unroll.experiments.compare import CompareConfig

#: --lr: Adam's learning rate; beyond 1 every step overshoots (and 1e300 overflows float32)
LEARNING_RATE_MAX = 1.0
#: the files ``unroll train`` writes into --out
OUTPUT_FILES = ("checkpoint.pt", "results.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = CompareConfig()
    parser = subparsers.add_parser("train", help="train a score model by denoising score matching",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=("relu_transformer", "dit", "unet"),
                        help="the network: relu_transformer (the construction's architecture, trained), dit or unet")
    parser.add_argument("--out", required=True, help="output folder (checkpoint.pt, results.json)")
    parser.add_argument("--data", choices=("gp", "video"), default="gp",
                        help="training data: samples of the Gaussian process (gp, default) or moving-ball video")
    add_gp_arguments(parser, frames_range=(2, 256), dim_max=256,
                     seed_help="seed of the data, the initialisation and the training draws (and, unless "
                               "--spatial-seed, of a random Sigma)")
    group = parser.add_argument_group("training")
    group.add_argument("--image-size", type=integer(2, 64), default=defaults.video_size,
                       help=f"video: frame side S, 2 <= S <= 64 (default {defaults.video_size})")
    group.add_argument("--train-size", type=integer(1), default=defaults.train_size,
                       help=f"training samples >= 1 (default {defaults.train_size})")
    group.add_argument("--steps", type=integer(1), default=defaults.steps,
                       help=f"training steps >= 1 (default {defaults.steps})")
    group.add_argument("--batch-size", type=integer(1), default=defaults.batch_size,
                       help=f"batch size >= 1 (default {defaults.batch_size})")
    group.add_argument("--lr", type=real(0.0, LEARNING_RATE_MAX, open_minimum=True), default=defaults.learning_rate,
                       help=f"learning rate 0 < lr <= {LEARNING_RATE_MAX:g} (default {defaults.learning_rate:g})")
    group.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    add_threads_argument(group)
    group.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    add_progress_argument(group)
    parser.set_defaults(run=run, interrupt_note="rerun the same command to resume (progress is kept in "
                                                   "{out}/checkpoint.pt)")


def run(args: argparse.Namespace) -> int:
    import torch

    from unroll.experiments.compare import (
        float64_score,
        heldout_set,
        model_options,
        score_error,
        write_json_atomic,
    )
    from unroll.experiments.models import build_model, parameter_count
    from unroll.experiments.trainer import TrainConfig, seeded_model, train
    from unroll.provenance import provenance

    spatial = spatial_fields(args)
    config = CompareConfig(kernel=args.kernel, control_kernel=None, nu=DEFAULT_NU if args.nu is None else args.nu,
                           ell=args.ell,
                           period=DEFAULT_PERIOD if args.period is None else args.period, frames=args.frames,
                           dim=args.dim, spatial=spatial["spatial"], spatial_seed=spatial["spatial_seed"],
                           spatial_condition=spatial["spatial_condition"],
                           spatial_correlation=spatial["spatial_correlation"], train_size=args.train_size,
                           steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                           device=args.device, video_size=args.image_size).validate()
    train_config = TrainConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                               warmup=min(50, max(args.steps // 10, 1)), t_min=config.t0, t_max=config.t_start,
                               seed=args.seed, device=args.device, progress=not args.no_progress).validate()
    out = check_output_folder("--out", args.out, OUTPUT_FILES)
    dim = args.image_size**2 if args.data == "video" else args.dim
    check_memory(train_estimate(model=args.model, frames=args.frames, dim=dim, train_size=args.train_size,
                                batch_size=args.batch_size, steps=args.steps,
                                heldout=config.heldout * len(config.eval_times) if args.data == "gp" else 0))
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    gp = None
    if args.data == "gp":
        gp = gp_from_arguments(args)
        data = gp.sample(args.train_size, generator=generator)
    else:
        from unroll.experiments.video import moving_ball_video

        data = moving_ball_video(args.train_size, frames=args.frames, size=args.image_size, generator=generator)
    options = model_options(args.model, config, gp) if gp is not None or args.model != "relu_transformer" \
        else {}
    frames, dim = data.shape[1], data.shape[2]
    model = seeded_model(lambda: build_model(args.model, frames, dim, **options), args.seed)
    started = time.perf_counter()
    result = train(model, data, train_config, checkpoint=out / "checkpoint.pt", resume=not args.no_resume,
                   model_kind=args.model)
    if result.interrupted:  # the checkpoint holds the progress; main reports it (exit code 130)
        raise KeyboardInterrupt
    configuration = {"command": "train", "gp": gp_spec_from_arguments(args).to_dict() if gp is not None else None,
                     "data": args.data, "data_shape": [frames, dim], "image_size": args.image_size if gp is None
                     else None, "model": args.model, "model_options": options, "seed": args.seed,
                     "heldout_seed": args.seed + 1000, "heldout": config.heldout,
                     "eval_times": list(config.eval_times), "train_size": args.train_size,
                     "training": vars(train_config), "dtype": "float32 training, float64 evaluation"}
    summary = {"configuration": configuration, "provenance": provenance(getattr(args, "command_line", None)),
               "model": args.model, "options": options, "parameters": parameter_count(model),
               "data": args.data, "train_size": args.train_size, "train_config": vars(train_config),
               "steps": result.steps, "resumed_from": result.resumed_from,
               "first_loss": result.losses[0] if result.losses else None,
               "final_loss": sum(result.losses[-50:]) / max(len(result.losses[-50:]), 1),
               "seconds": time.perf_counter() - started}
    if gp is not None:
        held = heldout_set(gp, config.heldout, config.eval_times, seed=args.seed + 1000)
        summary.update(score_error(float64_score(result.model), held))
        print(f"{args.model}: held-out relative score error {summary['score_error']:.4g} "
              f"(per diffusion time {summary['per_time']})")
    write_json_atomic(summary, out / "results.json")
    print(f"wrote {out}/results.json and {out}/checkpoint.pt ({result.steps} steps, {summary['seconds']:.1f} s)")
    return 0
