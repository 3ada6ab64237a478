"""``unroll bounds``: the assumptions and bounds for one configuration — formulas and numbers.

Prints the assumption table (holds / margin), each bound's formula (plain text, or LaTeX with
``--latex``) with its value, the family tail bound against the exact tail, the J and L needed for
``--epsilon``, and the t -> 0 behaviour.  The gd part and the blocks needed are printed for both step schedules,
plain gradient descent and Chebyshev steps (``unroll verify --steps``).  No network is built (use ``unroll verify``
for measurements).
"""

from __future__ import annotations

import argparse
import dataclasses
import math

from unroll.cli.options import (
    TIME_MAX,
    add_construction_arguments,
    add_gp_arguments,
    check_bands,
    diffusion_time_type,
    gp_from_arguments,
    positive,
)
from unroll.cli.resources import bounds_estimate, check_memory


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bounds", help="assumptions and bounds (formulas and numbers) for one configuration",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_gp_arguments(parser, frames=32, dim=4)
    group = add_construction_arguments(parser)
    group.add_argument("--mode", choices=("exact", "paper"), default="exact")
    group.add_argument("--t0", type=diffusion_time_type, default=1e-3,
                       help=f"early-stopping time 0 < t0 <= {TIME_MAX:g} (default 1e-3)")
    group.add_argument("--epsilon", type=positive, default=1e-3,
                       help="target error epsilon > 0 for J and L needed (default 1e-3)")
    group.add_argument("--latex", action="store_true", help="print formulas as LaTeX")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import theory
    from theory import tails

    check_bands(args)
    check_memory(bounds_estimate(frames=args.frames, dim=args.dim, blocks=args.blocks))
    epsilon = args.epsilon
    gp = gp_from_arguments(args)
    taper = None if args.taper == "none" else args.taper
    config = theory.Configuration.from_gp(gp, bands=args.bands, blocks=args.blocks, diffusion_time=args.time,
                                          taper=taper, mode=args.mode, t0=args.t0,
                                          max_condition=max(args.spatial_condition, 1.0))
    print(theory.check_assumptions(config))
    print()
    values = theory.symbol_values(config)
    values["epsilon"] = epsilon
    show = (lambda b: b.latex()) if args.latex else (lambda b: b.text())
    chebyshev = dataclasses.replace(config, steps="chebyshev")
    chebyshev_values = theory.symbol_values(chebyshev)
    chebyshev_values["epsilon"] = epsilon
    print("bounds (numbers for this configuration; float64 model)")
    net = "net_exact" if config.mode == "exact" else "net_paper"
    names = ["kappa_t", "kappa_J", "contraction", "gd", "trunc", net, "blocks_needed",
             "contraction_chebyshev", "gd_chebyshev", f"{net}_chebyshev", "blocks_needed_chebyshev"]
    print(f"  (Chebyshev steps: sub-product bounds A_pre = {chebyshev_values['A_pre']:.4g}, A_suf = "
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
        print(f"  {name:<14} = {value_text}")
        print(f"      formula: {show(bound)}")
        print(f"      needs: {', '.join(bound.needs) or 'none'}; uses: {bound.inequalities}")
    if config.mode == "exact":
        for label, suffix in (("total", ""), ("total_chebyshev", "_chebyshev")):
            total = results[f"gd{suffix}"] + results["trunc"] + results[f"net_exact{suffix}"]
            print(f"  {label:<14} = {total:.4g}   (gd + trunc + net, triangle inequality)")
    family = config.family
    assert family is not None  # the command line builds Gamma from a named family
    print()
    print(f"tail T_J (J={config.bands}): exact sum {config.tail:.4g}; family bound "
          f"{tails.tail_bound(family, config.nu, config.ell, config.bands, config.frames):.4g}")
    tail_expression = tails.tail_bound_expression(family)
    print(f"      formula: {theory.bounds.sp.latex(tail_expression) if args.latex else tail_expression}")
    needed = tails.bands_needed(family, config.nu, config.ell, epsilon, config.frames)
    needed_free = tails.bands_needed(family, config.nu, config.ell, epsilon)
    print(f"J needed for T_J <= {epsilon:g}: {needed} with H={config.frames}; "
          f"{'none exists (tail not summable / no H-free bound)' if needed_free is None else needed_free} "
          f"for H = inf;  J(eps, nu, ell) ~ {tails.bands_needed_expression(family)}")
    print(f"heads M(J) = {theory.heads_expression(config.mode)} = "
          f"{3 * (config.bands + 1) if config.mode == 'exact' else 3 * config.bands + 1}; tent slope "
          f"K = {theory.tent_slope_expression(config.mode)} = {values['K']:.4g} (weight norm B >= K)")
    small = theory.small_time_behaviour()
    print(f"t -> 0: kappa_t <= {small['kappa_upper']} ~ {small['kappa_leading']}; "
          f"L needed ~ {small['blocks_leading']}; |y*| scale ~ {small['score_scale_leading']}")
    rate = theory.sample_complexity()
    print(f"sample complexity: statistical term {rate['statistical_term']}  (rate n^{rate['rate_exponent']})")
    return 0
