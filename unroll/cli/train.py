"""``unroll train``: train one score model by denoising score matching on GP sequences (or moving-ball
video) and write OUT/checkpoint.pt (atomic, resumable: rerun the same command to continue an interrupted
run to the same result) and OUT/results.json (held-out relative score error per diffusion time).

OUT is checked before training starts (a writable folder, or one that can be created). Ctrl-C stops at the end
of the step in progress, saves it and exits with status 130 (a second Ctrl-C stops at once); after Ctrl-C,
SIGTERM or kill -9 the rerun continues, bit for bit, from the last saved step. The checkpoint carries a SHA-256
of its content: a damaged one is refused (--no-resume starts afresh over it). A diverging run (non-finite loss)
exits with 5.
"""

from __future__ import annotations

import argparse
import time

from unroll.cli.options import add_seed_argument, add_threads_argument, integer, positive, real
from unroll.cli.paths import check_output_folder
from unroll.cli.resources import check_memory, train_estimate
from unroll.training.compare import CompareConfig

#: --lr: Adam's learning rate; beyond 1 every step overshoots (and 1e300 overflows float32)
LEARNING_RATE_MAX = 1.0
#: the files ``unroll train`` writes into --out
OUTPUT_FILES = ("checkpoint.pt", "results.json")


def register(subparsers: argparse._SubParsersAction) -> None:
    defaults = CompareConfig()
    parser = subparsers.add_parser("train", help="train a score model by denoising score matching (issue 5)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=("relu_transformer", "dit", "unet"))
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--data", choices=("gp", "video"), default="gp")
    parser.add_argument("--kernel", default=defaults.kernel,
                        choices=("gamma-exponential", "matern", "polynomial", "logarithmic"))
    parser.add_argument("--nu", type=positive, default=defaults.nu, help="decay exponent nu > 0")
    parser.add_argument("--ell", type=positive, default=defaults.ell, help="length scale ell > 0")
    parser.add_argument("--frames", type=integer(2, 256), default=defaults.frames, help="H, 2 <= H <= 256")
    parser.add_argument("--dim", type=integer(1, 256), default=defaults.dim, help="d (GP data), 1 <= d <= 256")
    parser.add_argument("--image-size", type=integer(2, 64), default=defaults.video_size,
                        help="video: frame side S, 2 <= S <= 64")
    parser.add_argument("--train-size", type=integer(1), default=defaults.train_size, help="training samples >= 1")
    parser.add_argument("--steps", type=integer(1), default=defaults.steps, help="training steps >= 1")
    parser.add_argument("--batch-size", type=integer(1), default=defaults.batch_size, help="batch size >= 1")
    parser.add_argument("--lr", type=real(0.0, LEARNING_RATE_MAX, open_minimum=True), default=defaults.learning_rate,
                        help=f"learning rate 0 < lr <= {LEARNING_RATE_MAX:g}")
    add_seed_argument(parser, "seed of the data, the initialisation and the training draws")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:k]")
    add_threads_argument(parser)
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if a checkpoint exists")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run, interrupt_note="rerun the same command to resume (progress is kept in "
                                                   "{out}/checkpoint.pt)")


def run(args: argparse.Namespace) -> int:
    import torch

    from unroll.training.compare import (
        float64_score,
        heldout_set,
        make_gp,
        model_options,
        score_error,
        write_json_atomic,
    )
    from unroll.training.models import build_model, parameter_count
    from unroll.training.trainer import TrainConfig, seeded_model, train

    config = CompareConfig(kernel=args.kernel, nu=args.nu, ell=args.ell, frames=args.frames, dim=args.dim,
                           train_size=args.train_size, steps=args.steps, batch_size=args.batch_size,
                           learning_rate=args.lr, seed=args.seed, device=args.device,
                           video_size=args.image_size).validate()
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
        gp = make_gp(args.kernel, args.nu, args.ell, args.frames, args.dim, config.spatial_correlation)
        data = gp.sample(args.train_size, generator=generator)
    else:
        from unroll.training.video import moving_ball_video

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
    summary = {"model": args.model, "options": options, "parameters": parameter_count(model),
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
