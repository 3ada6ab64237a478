"""``unroll verify``: build the transformer that unrolls gradient descent on the score objective and
check it against the closed-form score, printing each error part (measured and bound), the
block-by-block certificate and the model size.

The spatial covariance Sigma is by default a seeded random SPD d x d matrix (``unroll.data.gp_spec``:
``Q diag(mu) Q^T``, random orthogonal ``Q``, eigenvalues log-uniform in ``[1, --spatial-condition]``,
default 4, seed ``--spatial-seed``, default ``--seed``); ``--spatial correlated`` takes the fixed
``Sigma[a, b] = rho^|a-b|`` instead.  The data are ``--batch`` draws of the noised GP at ``--time`` (seed ``--seed``).

``--steps chebyshev`` unrolls Chebyshev step sizes (block k takes its own step ``eta_k(t)``, Leja order) instead of
plain gradient descent; the table prints the gd-part bound of both schedules at the same L.  ``--looped`` shares
one block's weights across all L blocks (plain GD only).

``--json PATH`` also writes the report as JSON with the run's ``configuration`` (every option as a field) and
``provenance`` (versions, git commit, command line, UTC time; ``unroll.provenance``), from which
``unroll.provenance.rebuild`` rebuilds the GP and the model (``--json -``: to standard output, the table then goes
to stderr; a character device such as ``/dev/null`` is written straight through; a FIFO or a folder is refused
before the run starts).  The report's own ``config`` is the network's (its ``seed`` initialises a network before
its weights are set by hand, not the data); the run's seeds are ``configuration.seed`` (the data) and
``configuration.gp.spatial_seed`` (Sigma).

``--mode softmax`` builds the softmax variant (one softmax head per block over all frames,
``unroll.construction.softmax``; ``--bands`` and ``--taper`` do not apply) and adds its row-normalisation
(boundary) error to the table; theory's bounds do not cover it, so its parts carry no bound.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from unroll.cli.options import (
    add_construction_arguments,
    add_gp_arguments,
    add_json_argument,
    add_progress_argument,
    add_threads_argument,
    check_bands,
    gp_from_arguments,
    gp_spec_from_arguments,
    integer,
    real,
)
from unroll.cli.output import check_json_output, show, write_json
from unroll.cli.resources import check_memory, verify_estimate

DTYPES = {"float64": torch.float64, "float32": torch.float32}
#: runs with frames x blocks x batch above this (a few seconds on one core) show a progress bar over verify's stages
PROGRESS_WORK = 40_000
#: --range: the paper-mode multiplier's range R; beyond it the multiplier's products overflow float64
VALUE_RANGE_MAX = 1e6


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="constructed unrolled-GD transformer vs the closed-form score (the main check)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_gp_arguments(parser)
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
    add_json_argument(group, "the report")
    add_threads_argument(group, ": the tensors are small, and on a shared machine a second thread only adds "
                                "contention")
    add_progress_argument(group)
    parser.set_defaults(run=run)


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as fields (``unroll.provenance``): the GP, the construction, the data's seed and size."""
    return {"command": "verify", "gp": gp_spec_from_arguments(args).to_dict(),
            "construction": {"bands": args.bands, "blocks": args.blocks, "mode": args.mode, "steps": args.steps,
                             "taper": None if args.taper == "none" else args.taper, "looped": args.looped,
                             "frame_frequency": args.frame_frequency, "knots": args.knots, "range": args.value_range,
                             "dtype": args.dtype},
            "time": args.time, "seed": args.seed, "batch": args.batch, "threads": args.threads}


def _check_before_work(args: argparse.Namespace) -> None:
    """The options that must fit together, the output location and the memory the run needs, before anything is
    built."""
    check_bands(args)
    check_json_output(args)
    check_memory(verify_estimate(frames=args.frames, dim=args.dim, bands=args.bands, blocks=args.blocks,
                                 batch=args.batch, mode=args.mode, steps=args.steps, looped=args.looped,
                                 knots=args.knots))


def run(args: argparse.Namespace) -> int:
    from unroll.construction.constructor import construct_unrolled
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
    long_run = args.frames * args.blocks * args.batch > PROGRESS_WORK
    report = verify(gp, model, args.time, generator=generator, batch=args.batch,
                    progress=long_run and not args.no_progress)
    seconds = time.perf_counter() - start
    show(args, report.table())
    show(args, f"runtime {seconds:.2f} s")
    write_json(args, {**report.to_dict(), "runtime_seconds": seconds}, configuration(args))
    return 0


def _run_softmax(args: argparse.Namespace, gp: object, generator: torch.Generator, start: float) -> int:
    from unroll.construction.softmax import construct_softmax, measure_softmax

    model = construct_softmax(gp, blocks=args.blocks, paper_knots=args.knots, paper_range=args.value_range,
                              dtype=DTYPES[args.dtype])
    errors = measure_softmax(gp, model, args.time, generator=generator, batch=args.batch)
    construction = model.construction
    show(args, errors.report.table())
    show(args, f"softmax: beta = {construction.softmax_beta:.4g}, kernel mismatch max_m |gamma_vM(m) - gamma(m)| "
                f"= {errors.kernel_mismatch:.3e}")
    show(args, f"row normalisation: one layer's boundary error {errors.boundary:.3e} (Nbar/N_i - 1 up to "
                f"{errors.boundary_factor_max:.3g} at the ends, {errors.boundary_factor_middle:.3g} mid-sequence); "
                f"one block vs exact GD step {errors.step:.3e}")
    show(args, f"certificate vs GD on the row-normalised operator (multiplier error only): "
                f"{errors.certificate_row_normalised:.3e}")
    seconds = time.perf_counter() - start
    show(args, f"runtime {seconds:.2f} s")
    if args.json is not None:
        payload = {**errors.report.to_dict(), "runtime_seconds": seconds, "softmax": {
            "beta": construction.softmax_beta, "kernel_mismatch": errors.kernel_mismatch,
            "boundary": errors.boundary, "boundary_factor_max": errors.boundary_factor_max,
            "boundary_factor_middle": errors.boundary_factor_middle, "step": errors.step,
            "certificate_row_normalised": errors.certificate_row_normalised}}
        write_json(args, payload, configuration(args))
    return 0
