"""theory: the assumptions and bounds of the unrolled-GD construction, symbolic (sympy) and numeric.

* :class:`Configuration` — one concrete (kernel, H, d, Sigma, J, L, taper, t) and its spectra;
* :func:`check_assumptions` — every assumption as a table (holds / margin);
* :data:`BOUNDS`, :func:`evaluate_all`, :func:`attach_bounds` — the bounds on E_gd, E_trunc, E_net, total;
* ``theory.tails`` — per-family tail sums and the J needed for eps;
* :func:`check` — measured vs bound (holds / slack); ``theory.sweep`` — grid sweeps to a table and figure.
"""

from theory.assumptions import ASSUMPTIONS, Assumption, AssumptionResult, AssumptionTable, check_assumptions
from theory.bounds import (
    BOUNDS,
    Bound,
    attach_bounds,
    evaluate_all,
    heads_expression,
    sample_complexity,
    small_time_behaviour,
    symbol_values,
    tail_bound,
    tent_slope_expression,
)
from theory.check import CheckResult, check, check_report
from theory.configuration import Configuration

__all__ = [
    "ASSUMPTIONS", "Assumption", "AssumptionResult", "AssumptionTable", "check_assumptions",
    "BOUNDS", "Bound", "attach_bounds", "evaluate_all", "heads_expression", "sample_complexity",
    "small_time_behaviour", "symbol_values", "tail_bound", "tent_slope_expression",
    "CheckResult", "check", "check_report", "Configuration",
]
