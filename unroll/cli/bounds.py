"""``unroll bounds``: the assumptions and bounds for one configuration — formulas and numbers.

Prints the assumption table (holds / margin), each bound's formula (plain text, or LaTeX with
``--latex``) with its value, the family tail bound against the exact tail, the J and L needed for
``--epsilon``, and the t -> 0 behaviour.  The gd part and the blocks needed are printed for both step schedules,
plain gradient descent and Chebyshev steps (``unroll verify --steps``).  No network is built (use ``unroll verify``
for measurements).  ``--json PATH`` also writes the assumptions, the bounds' values, the tail and the J and L
needed as JSON, with the run's ``configuration`` and ``provenance`` (``--json -``: to standard output, the text
then goes to stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from unroll.cli.options import (
    TIME_MAX,
    add_construction_arguments,
    add_gp_arguments,
    add_json_argument,
    check_bands,
    diffusion_time_type,
    gp_from_arguments,
    gp_spec_from_arguments,
    positive,
)
from unroll.cli.output import check_json_output, show, write_json
from unroll.cli.resources import bounds_estimate, check_memory


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bounds", help="assumptions and bounds (formulas and numbers) for one configuration",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gp_arguments(parser)
    group = add_construction_arguments(parser)
    group.add_argument("--mode", choices=("exact", "paper"), default="exact",
                       help="exact (t-scalars through ReLU homogeneity) or paper (FFN multiplier) construction "
                            "(default exact)")
    group.add_argument("--t0", type=diffusion_time_type, default=1e-3,
                       help=f"early-stopping time 0 < t0 <= {TIME_MAX:g} (default 1e-3)")
    group.add_argument("--epsilon", type=positive, default=1e-3,
                       help="target error epsilon > 0 for J and L needed (default 1e-3)")
    group.add_argument("--latex", action="store_true", help="print formulas as LaTeX")
    add_json_argument(group, "the assumptions and bounds")
    parser.set_defaults(run=run)


def configuration(args: argparse.Namespace) -> dict[str, Any]:
    """The run's settings as fields (``unroll.provenance``)."""
    return {"command": "bounds", "gp": gp_spec_from_arguments(args).to_dict(),
            "construction": {"bands": args.bands, "blocks": args.blocks, "mode": args.mode,
                             "taper": None if args.taper == "none" else args.taper, "dtype": "float64"},
            "time": args.time, "t0": args.t0, "epsilon": args.epsilon, "seed": args.seed}


def _spatial_condition(args: argparse.Namespace, gp: Any) -> float:
    """The bound on Sigma's condition number the assumptions use: ``--spatial-condition`` for a random Sigma (its
    eigenvalues lie in ``[1, condition]``), the exact condition number of a correlated one."""
    if args.spatial == "random":
        return max(args.spatial_condition, 1.0)
    import torch

    eigenvalues = torch.linalg.eigvalsh(gp.spatial)
    return float(eigenvalues[-1] / eigenvalues[0])


def run(args: argparse.Namespace) -> int:
    import theory
    from theory import tails

    check_bands(args)
    check_json_output(args)
    check_memory(bounds_estimate(frames=args.frames, dim=args.dim, blocks=args.blocks))
    epsilon = args.epsilon
    gp = gp_from_arguments(args)
    taper = None if args.taper == "none" else args.taper
    config = theory.Configuration.from_gp(gp, bands=args.bands, blocks=args.blocks, diffusion_time=args.time,
                                          taper=taper, mode=args.mode, t0=args.t0,
                                          max_condition=_spatial_condition(args, gp))
    table = theory.check_assumptions(config)

    def out(text: str = "") -> None:
        show(args, text)

    out(str(table))
    out()
    values = theory.symbol_values(config)
    values["epsilon"] = epsilon
    formula = (lambda b: b.latex()) if args.latex else (lambda b: b.text())
    chebyshev = dataclasses.replace(config, steps="chebyshev")
    chebyshev_values = theory.symbol_values(chebyshev)
    chebyshev_values["epsilon"] = epsilon
    out("bounds (numbers for this configuration; float64 model)")
    net = "net_exact" if config.mode == "exact" else "net_paper"
    names = ["kappa_t", "kappa_J", "contraction", "gd", "trunc", net, "blocks_needed",
             "contraction_chebyshev", "gd_chebyshev", f"{net}_chebyshev", "blocks_needed_chebyshev"]
    out(f"  (Chebyshev steps: sub-product bounds A_pre = {chebyshev_values['A_pre']:.4g}, A_suf = "
          f"{chebyshev_values['A_suf']:.4g}, A_all = {chebyshev_values['A_all']:.4g}; 1 for gd)")
    results = {}
    for name in names:
        bound = theory.BOUNDS[name]
        if name.startswith("net_paper"):
            results[name] = math.nan
            value_text = "needs a run (unroll verify): depends on |y*| and the multiplier peak"
        else:
            results[name] = bound.evaluate(chebyshev_values if name.endswith("chebyshev") else values)
            value_text = f"{results[name]:.4g}"
        out(f"  {name:<14} = {value_text}")
        out(f"      formula: {formula(bound)}")
        out(f"      needs: {', '.join(bound.needs) or 'none'}; uses: {bound.inequalities}")
    if config.mode == "exact":
        for label, suffix in (("total", ""), ("total_chebyshev", "_chebyshev")):
            total = results[f"gd{suffix}"] + results["trunc"] + results[f"net_exact{suffix}"]
            out(f"  {label:<14} = {total:.4g}   (gd + trunc + net, triangle inequality)")
    family = config.family
    assert family is not None  # the command line builds Gamma from a named family
    out()
    out(f"tail T_J (J={config.bands}): exact sum {config.tail:.4g}; family bound "
          f"{tails.tail_bound(family, config.nu, config.ell, config.bands, config.frames):.4g}")
    tail_expression = tails.tail_bound_expression(family)
    out(f"      formula: {theory.bounds.sp.latex(tail_expression) if args.latex else tail_expression}")
    needed = tails.bands_needed(family, config.nu, config.ell, epsilon, config.frames)
    needed_free = tails.bands_needed(family, config.nu, config.ell, epsilon)
    out(f"J needed for T_J <= {epsilon:g}: {needed} with H={config.frames}; "
          f"{'none exists (tail not summable / no H-free bound)' if needed_free is None else needed_free} "
          f"for H = inf;  J(eps, nu, ell) ~ {tails.bands_needed_expression(family)}")
    out(f"heads M(J) = {theory.heads_expression(config.mode)} = "
          f"{3 * (config.bands + 1) if config.mode == 'exact' else 3 * config.bands + 1}; tent slope "
          f"K = {theory.tent_slope_expression(config.mode)} = {values['K']:.4g} (weight norm B >= K)")
    small = theory.small_time_behaviour()
    out(f"t -> 0: kappa_t <= {small['kappa_upper']} ~ {small['kappa_leading']}; "
          f"L needed ~ {small['blocks_leading']}; |y*| scale ~ {small['score_scale_leading']}")
    rate = theory.sample_complexity()
    out(f"sample complexity: statistical term {rate['statistical_term']}  (rate n^{rate['rate_exponent']})")
    payload = {"assumptions": [dataclasses.asdict(result) for result in table],
               "bounds": results, "total": None if config.mode != "exact" else {
                   "gd": results["gd"] + results["trunc"] + results["net_exact"],
                   "chebyshev": results["gd_chebyshev"] + results["trunc"] + results["net_exact_chebyshev"]},
               "tail": {"bands": config.bands, "exact": config.tail,
                        "bound": tails.tail_bound(family, config.nu, config.ell, config.bands, config.frames)},
               "bands_needed": {"frames": needed, "infinite": needed_free}, "epsilon": epsilon}
    write_json(args, payload, configuration(args))
    return 0
