"""``unroll verify``: build the transformer that unrolls gradient descent on the score objective and
check it against the closed-form score, printing each error part (measured and bound), the
block-by-block certificate and the model size.

The spatial covariance Sigma is a seeded random SPD d x d matrix (``unroll.cli.options``:
``Q diag(mu) Q^T``, random orthogonal ``Q``, eigenvalues log-uniform in ``[1, --spatial-condition]``,
default 4); the data are ``--batch`` draws of the noised GP at ``--time`` (seed ``--seed``).

``--steps chebyshev`` unrolls Chebyshev step sizes (block k takes its own step ``eta_k(t)``, Leja order) instead of
plain gradient descent; the table prints the gd-part bound of both schedules at the same L.  ``--looped`` shares
one block's weights across all L blocks (plain GD only).

``--mode softmax`` builds the softmax variant (one softmax head per block over all frames,
``unroll.softmax_construction``; ``--bands`` and ``--taper`` do not apply) and adds its row-normalisation
(boundary) error to the table; theory's bounds do not cover it, so its parts carry no bound.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from unroll._atomic import write_text_atomic
from unroll.cli.options import add_gp_arguments, gp_from_arguments

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="constructed unrolled-GD transformer vs the closed-form score (the main check)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_gp_arguments(parser, frames=32, dim=4)
    group = parser.add_argument_group("construction")
    group.add_argument("--bands", type=int, default=8, help="lags kept J, 0 <= J <= frames-1 (default 8)")
    group.add_argument("--blocks", type=int, default=40, help="blocks L = GD steps (default 40)")
    group.add_argument("--time", type=float, default=0.5, help="diffusion time t > 0 (default 0.5)")
    group.add_argument("--mode", choices=("exact", "paper", "softmax"), default="exact",
                       help="exact (t-scalars through ReLU homogeneity), paper (FFN multiplier) or softmax "
                            "(one softmax head per block; boundary error reported)")
    group.add_argument("--taper", choices=("none", "triangular"), default="none",
                       help="band truncation: plain cut (none) or triangular taper")
    group.add_argument("--steps", choices=("gd", "chebyshev"), default="gd",
                       help="step schedule: plain gradient descent (gd) or Chebyshev steps, one per block")
    group.add_argument("--looped", action="store_true",
                       help="one block's weights applied L times (weight sharing; --steps gd only)")
    group.add_argument("--frame-frequency", choices=("window", "sequence"), default="window",
                       help="frame embedding frequency w = pi/min(H, J+2) (window, default: weight norm "
                            "independent of H) or pi/H (sequence)")
    group.add_argument("--knots", type=int, default=257, help="paper mode: multiplier knots N (default 257)")
    group.add_argument("--range", type=float, default=16.0, dest="value_range",
                       help="paper mode: multiplier range R (default 16)")
    group.add_argument("--batch", type=int, default=8, help="sampled sequences (default 8)")
    group.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="model dtype (default float64)")
    group.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON")
    group.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (default 1: the tensors are small, and on a shared machine a second "
                            "thread only adds contention)")
    parser.set_defaults(run=run)


def _write_json(path: str, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")


def run(args: argparse.Namespace) -> int:
    from unroll._validate import check_int
    from unroll.constructor import construct_unrolled
    from unroll.verify import verify

    torch.set_num_threads(check_int("threads", args.threads, minimum=1))
    start = time.perf_counter()
    gp = gp_from_arguments(args)
    generator = torch.Generator().manual_seed(args.seed)
    if args.mode == "softmax":
        return _run_softmax(args, gp, generator, start)
    taper = None if args.taper == "none" else args.taper
    model = construct_unrolled(gp, blocks=args.blocks, bands=args.bands, mode=args.mode, taper=taper,
                               steps=args.steps, looped=args.looped, paper_knots=args.knots,
                               paper_range=args.value_range,
                               frame_frequency=args.frame_frequency, dtype=DTYPES[args.dtype])
    report = verify(gp, model, args.time, generator=generator, batch=args.batch)
    print(report.table())
    print(f"runtime {time.perf_counter() - start:.2f} s")
    if args.json:
        _write_json(args.json, report.to_dict())
    return 0


def _run_softmax(args: argparse.Namespace, gp: object, generator: torch.Generator, start: float) -> int:
    from unroll.softmax_construction import construct_softmax, measure_softmax

    model = construct_softmax(gp, blocks=args.blocks, paper_knots=args.knots, paper_range=args.value_range,
                              dtype=DTYPES[args.dtype])
    errors = measure_softmax(gp, model, args.time, generator=generator, batch=args.batch)
    print(errors.report.table())
    construction = model.construction
    print(f"softmax: beta = {construction.softmax_beta:.4g}, kernel mismatch max_m |gamma_vM(m) - gamma(m)| = "
          f"{errors.kernel_mismatch:.3e}")
    print(f"row normalisation: one layer's boundary error {errors.boundary:.3e} (Nbar/N_i - 1 up to "
          f"{errors.boundary_factor_max:.3g} at the ends, {errors.boundary_factor_middle:.3g} mid-sequence); "
          f"one block vs exact GD step {errors.step:.3e}")
    print(f"certificate vs GD on the row-normalised operator (multiplier error only): "
          f"{errors.certificate_row_normalised:.3e}")
    print(f"runtime {time.perf_counter() - start:.2f} s")
    if args.json:
        payload = {**errors.report.to_dict(), "softmax": {
            "beta": construction.softmax_beta, "kernel_mismatch": errors.kernel_mismatch,
            "boundary": errors.boundary, "boundary_factor_max": errors.boundary_factor_max,
            "boundary_factor_middle": errors.boundary_factor_middle, "step": errors.step,
            "certificate_row_normalised": errors.certificate_row_normalised}}
        _write_json(args.json, payload)
    return 0
