"""``unroll verify``: build the transformer that unrolls gradient descent on the score objective and
check it against the closed-form score, printing each error part (measured and bound), the
block-by-block certificate and the model size.

The spatial covariance Sigma is a seeded random SPD d x d matrix (``unroll.cli.options``:
``Q diag(mu) Q^T``, random orthogonal ``Q``, eigenvalues log-uniform in ``[1, --spatial-condition]``,
default 4); the data are ``--batch`` draws of the noised GP at ``--time`` (seed ``--seed``).

``--steps chebyshev`` unrolls Chebyshev step sizes (block k takes its own step ``eta_k(t)``, Leja order) instead of
plain gradient descent; the table prints the gd-part bound of both schedules at the same L.  ``--looped`` shares
one block's weights across all L blocks (plain GD only).

``--json PATH`` also writes the report as JSON (``--json -``: to standard output, the table then goes to stderr;
a character device such as ``/dev/null`` is written straight through; a FIFO or a folder is refused before the
run starts).

``--mode softmax`` builds the softmax variant (one softmax head per block over all frames,
``unroll.softmax_construction``; ``--bands`` and ``--taper`` do not apply) and adds its row-normalisation
(boundary) error to the table; theory's bounds do not cover it, so its parts carry no bound.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from unroll.cli.options import (
    add_construction_arguments,
    add_gp_arguments,
    add_threads_argument,
    check_bands,
    gp_from_arguments,
    integer,
    real,
)
from unroll.cli.paths import STDOUT, check_output_file, write_output_text
from unroll.cli.resources import check_memory, verify_estimate

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: --range: the paper-mode multiplier's range R; beyond it the multiplier's products overflow float64
VALUE_RANGE_MAX = 1e6


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="constructed unrolled-GD transformer vs the closed-form score (the main check)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_gp_arguments(parser, frames=32, dim=4)
    group = add_construction_arguments(parser)
    group.add_argument("--mode", choices=("exact", "paper", "softmax"), default="exact",
                       help="exact (t-scalars through ReLU homogeneity), paper (FFN multiplier) or softmax "
                            "(one softmax head per block; boundary error reported)")
    group.add_argument("--steps", choices=("gd", "chebyshev"), default="gd",
                       help="step schedule: plain gradient descent (gd) or Chebyshev steps, one per block")
    group.add_argument("--looped", action="store_true",
                       help="one block's weights applied L times (weight sharing; --steps gd only)")
    group.add_argument("--frame-frequency", choices=("window", "sequence"), default="window",
                       help="frame embedding frequency w = pi/min(H, J+2) (window, default: weight norm "
                            "independent of H) or pi/H (sequence)")
    group.add_argument("--knots", type=integer(3), default=257,
                       help="paper mode: multiplier knots N >= 3 (default 257)")
    group.add_argument("--range", type=real(0.0, VALUE_RANGE_MAX, open_minimum=True), default=16.0,
                       dest="value_range",
                       help=f"paper mode: multiplier range 0 < R <= {VALUE_RANGE_MAX:g} (default 16)")
    group.add_argument("--batch", type=integer(1), default=8, help="sampled sequences >= 1 (default 8)")
    group.add_argument("--dtype", choices=sorted(DTYPES), default="float64", help="model dtype (default float64)")
    group.add_argument("--json", default=None, metavar="PATH",
                       help="also write the report as JSON (- for standard output, the table then on stderr)")
    add_threads_argument(group, ": the tensors are small, and on a shared machine a second thread only adds "
                                "contention")
    parser.set_defaults(run=run)


def _write_json(path: str, payload: dict) -> None:
    write_output_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def _show(args: argparse.Namespace, text: str) -> None:
    """Print the human-readable report: to stdout, or to stderr when the JSON goes to stdout (``--json -``)."""
    print(text, file=sys.stderr if args.json == STDOUT else sys.stdout)


def _check_before_work(args: argparse.Namespace) -> None:
    """The options that must fit together, the output location and the memory the run needs, before anything is
    built."""
    check_bands(args)
    if args.json is not None:
        check_output_file("--json", args.json)
    check_memory(verify_estimate(frames=args.frames, dim=args.dim, bands=args.bands, blocks=args.blocks,
                                 batch=args.batch, mode=args.mode, steps=args.steps, looped=args.looped,
                                 knots=args.knots))


def run(args: argparse.Namespace) -> int:
    from unroll.constructor import construct_unrolled
    from unroll.verification import verify

    _check_before_work(args)
    torch.set_num_threads(args.threads)
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
    _show(args, report.table())
    _show(args, f"runtime {time.perf_counter() - start:.2f} s")
    if args.json is not None:
        _write_json(args.json, report.to_dict())
    return 0


def _run_softmax(args: argparse.Namespace, gp: object, generator: torch.Generator, start: float) -> int:
    from unroll.softmax_construction import construct_softmax, measure_softmax

    model = construct_softmax(gp, blocks=args.blocks, paper_knots=args.knots, paper_range=args.value_range,
                              dtype=DTYPES[args.dtype])
    errors = measure_softmax(gp, model, args.time, generator=generator, batch=args.batch)
    construction = model.construction
    _show(args, errors.report.table())
    _show(args, f"softmax: beta = {construction.softmax_beta:.4g}, kernel mismatch max_m |gamma_vM(m) - gamma(m)| "
                f"= {errors.kernel_mismatch:.3e}")
    _show(args, f"row normalisation: one layer's boundary error {errors.boundary:.3e} (Nbar/N_i - 1 up to "
                f"{errors.boundary_factor_max:.3g} at the ends, {errors.boundary_factor_middle:.3g} mid-sequence); "
                f"one block vs exact GD step {errors.step:.3e}")
    _show(args, f"certificate vs GD on the row-normalised operator (multiplier error only): "
                f"{errors.certificate_row_normalised:.3e}")
    _show(args, f"runtime {time.perf_counter() - start:.2f} s")
    if args.json is not None:
        payload = {**errors.report.to_dict(), "softmax": {
            "beta": construction.softmax_beta, "kernel_mismatch": errors.kernel_mismatch,
            "boundary": errors.boundary, "boundary_factor_max": errors.boundary_factor_max,
            "boundary_factor_middle": errors.boundary_factor_middle, "step": errors.step,
            "certificate_row_normalised": errors.certificate_row_normalised}}
        _write_json(args.json, payload)
    return 0
