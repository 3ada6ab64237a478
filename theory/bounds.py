"""Bounds on the parts of the score error (docs/design.md §6), symbolic (sympy) and numeric.

Every :class:`Bound` is a sympy expression in named symbols (``SYMBOLS``), a numeric evaluation written
independently in plain Python (``Bound.numeric``), and the names of the assumptions it needs
(``theory.assumptions``).  ``str(bound)`` gives the formula as plain text, ``bound.latex()`` as LaTeX;
``bound.evaluate(values)`` and ``bound.evaluate_symbolic(values)`` (sympy ``lambdify``) must agree.

Notation: ``a = alpha_t^2 = e^-t``, ``s = sigma_t^2 = 1 - e^-t``; ``C = C_t = a Gamma ⊗ Sigma + s I``,
``C_J = a Gamma_J ⊗ Sigma + s I``; ``y* = C^-1 x``, ``y*_J = C_J^-1 x``, ``y_L`` the L-th GD iterate
(``y_0 = 0``, step ``eta = 2/(lambda_max(C_J) + lambda_min(C_J))``), ``y_net`` the network's.  All errors are
relative to ``|y*|`` (Frobenius over the batch).

Inequalities used (exact arithmetic part):

* spectra of Kronecker products are the products of the factors' eigenvalues, so
  ``lambda_min(C_J) = s + a min(lJ mu_min, lJ mu_max)``, ``lambda_max(C_J) = s + a max(LJ mu_max, lJ mu_min)``
  (``lJ, LJ`` the extreme eigenvalues of Gamma_J);
* GD: ``y_L - y*_J = -(I - eta C_J)^L y*_J`` and ``||I - eta C_J||_2 = rho = (kappa_J - 1)/(kappa_J + 1)``;
* ``|y*_J| <= G |y*|`` with ``G = min(1 + E_trunc bound, lambda_max(C)/lambda_min(C_J))`` — from
  ``|y*_J| <= |y*| + |y*_J - y*|`` and from ``y*_J = C_J^-1 C y*``;
* truncation: ``y*_J - y* = C_J^-1 (C - C_J) y*``, ``C - C_J = a (Gamma - Gamma_J) ⊗ Sigma``, and for the
  symmetric Toeplitz ``Gamma - Gamma_J``: ``||.||_2 <= max row sum <= 2 (T_J + taper bias)`` with
  ``T_J = sum_{J<m<H} |gamma(m)|`` (bounded per family in ``theory.tails``) and
  ``taper bias = sum_{1<=m<=J} |gamma(m)| (1 - w(m))``; hence
  ``E_trunc <= 2 a mu_max (T_J + bias) / lambda_min(C_J)``;
* network: if each block, computed, deviates from the exact GD step of its computed input by
  ``delta_k`` then the error ``e_k = y_net,k - y_k`` obeys ``e_(k+1) = (I - eta C_J) e_k + delta_k``, so
  ``|e_L| <= sum_k rho^(L-1-k) |delta_k|``.

Chebyshev steps (``*_chebyshev`` bounds; docs/design.md §7): ``y_L - y*_J = -p_L(C_J) y*_J`` with
``max |p_L| = 2 rho_C^L / (1 + rho_C^(2L))``, ``rho_C = (sqrt(kappa_J) - 1)/(sqrt(kappa_J) + 1)``, on
``[lambda_min, lambda_max]``; the steps are computed from eigenvalues known to ``c_eig u lambda_max``, so the true
spectrum lies in an interval wider by that much, where ``|T_L|`` grows to at most ``cosh(L acosh(1 + w))``,
``w = 4 c_eig u kappa_J / (kappa_J - 1)``.  Rounding propagates through sub-products of the factors
``1 - eta_j C_J``, which are not contractions: with ``A_pre, A_suf, A_all`` their largest prefix, suffix and
any-range norms (``theory.schedules``, certified; 1 for GD), ``|y_k| <= (1 + A_pre) G |y*|``, and a perturbation
``delta_k <= b + g |e_k|`` per step gives (discrete Gronwall) ``|e_L| <= A_suf L b (1 + A_all g)^L``.

Floating point (standard model ``fl(a op b) = (a op b)(1 + d)``, ``|d| <= u``; ``gamma_n = n u/(1 - n u)``):
a sum/product program evaluated in any order deviates from its exact value by at most ``gamma_n`` times
the same program run on absolute values, ``n`` the number of roundings on the longest path (ReLU is
1-Lipschitz, so it passes errors through).  For the eigen-solves (``numpy``/LAPACK ``eigh``) the toolkit
*assumes* a backward error ``<= c_eig u ||A||`` with ``c_eig = H + d + 10``, giving relative solve errors
``<= 2 c_eig u kappa``: these floors keep every bound true when the exact-arithmetic part underflows
below rounding (e.g. ``rho^L ~ 1e-30``).  The constants are generous, not tight.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from theory import tails
from theory.configuration import UNIT_ROUNDOFF, Configuration
from unroll.construction.constructor import frequency_period

__all__ = [
    "Bound",
    "SYMBOLS",
    "BOUNDS",
    "PART_BOUNDS",
    "symbol_values",
    "evaluate_all",
    "attach_bounds",
    "tail_bound",
    "bands_needed_bound",
    "small_time_behaviour",
    "sample_complexity",
    "heads_expression",
    "tent_slope_expression",
]

# ---------------------------------------------------------------------------------------------- symbols
_names = {
    "t": "diffusion time", "a": "alpha_t^2 = e^-t", "s": "sigma_t^2 = 1 - e^-t",
    "lam_min": "lambda_min(Gamma)", "lam_max": "lambda_max(Gamma)",
    "lamJ_min": "lambda_min(Gamma_J)", "lamJ_max": "lambda_max(Gamma_J)",
    "mu_min": "lambda_min(Sigma)", "mu_max": "lambda_max(Sigma)", "Sigma_F": "||Sigma||_F",
    "T_J": "tail sum_{J<m<H} |gamma(m)|", "bias_J": "taper bias sum_{m<=J} |gamma(m)|(1-w(m))",
    "S_J": "band sum sum_{1<=m<=J} |gamma_J(m)|",
    "u": "unit roundoff of the model dtype", "u64": "unit roundoff of float64 (references)",
    "K": "tent slope", "c_max": "largest tent height", "h": "multiplier knot spacing",
    "omega": "frame frequency omega = pi / W of the embeddings (cos omega i, sin omega i)",
    "R_mult": "multiplier range", "X": "|x| / |y*|", "root": "sqrt(batch H d) / |y*|",
    "epsilon": "target relative error", "n": "sample size",
    "A_pre": "largest prefix product of the step factors 1 - eta_j C_J (theory.schedules; 1 for GD)",
    "A_suf": "largest suffix product of the step factors (theory.schedules; 1 for GD)",
    "A_all": "largest product of the step factors over any range of steps (theory.schedules; 1 for GD)",
    "phi_max": "largest time feature max(1, 1/min_k P_k) (paper mode multiplies by it)",
}
_integer_names = {"L": "blocks (GD steps)", "J": "bands (lags kept)", "H": "frames", "d": "dimension",
                  "M": "heads per layer", "F_w": "FFN width", "D": "token width"}
SYMBOLS: dict[str, sp.Symbol] = {name: sp.Symbol(name, positive=True) for name in _names}
SYMBOLS.update({name: sp.Symbol(name, integer=True, nonnegative=True) for name in _integer_names})
SYMBOLS["J"] = tails.J
SYMBOLS["H"] = tails.H
SYMBOL_MEANINGS = {**_names, **_integer_names}
_S = SYMBOLS
t, a, s = _S["t"], _S["a"], _S["s"]
lam_min, lam_max, lamJ_min, lamJ_max = _S["lam_min"], _S["lam_max"], _S["lamJ_min"], _S["lamJ_max"]
mu_min, mu_max, Sigma_F = _S["mu_min"], _S["mu_max"], _S["Sigma_F"]
T_J, bias_J, S_J = _S["T_J"], _S["bias_J"], _S["S_J"]
u, u64, K, c_max, omega = _S["u"], _S["u64"], _S["K"], _S["c_max"], _S["omega"]
L, J, H, d, M = _S["L"], _S["J"], _S["H"], _S["d"], _S["M"]
h_knot, R_mult, X, root, F_w, D = _S["h"], _S["R_mult"], _S["X"], _S["root"], _S["F_w"], _S["D"]
eps, n_samples = _S["epsilon"], _S["n"]
A_pre, A_suf, A_all, phi_max = _S["A_pre"], _S["A_suf"], _S["A_all"], _S["phi_max"]


def _gamma_n(count: sp.Expr, unit: sp.Expr) -> sp.Expr:
    return count * unit / (1 - count * unit)


def _growth_power(rate: float, exponent: float) -> float:
    """``(1 + rate)^exponent`` for ``rate >= 0``, ``inf`` where it overflows (a vacuous bound, not an exception)."""
    try:
        return math.exp(exponent * math.log1p(rate))
    except OverflowError:
        return math.inf


def _gamma_num(count: float, unit: float) -> float:
    value = count * unit
    return math.inf if value >= 1 else value / (1 - value)


# ---------------------------------------------------------------------------------- shared expressions
c_min_e = s + a * lam_min * mu_min  # lambda_min(C) (Gamma PD)
c_max_e = s + a * lam_max * mu_max
cJ_min_e = s + a * sp.Min(lamJ_min * mu_min, lamJ_min * mu_max)
cJ_max_e = s + a * sp.Max(lamJ_max * mu_max, lamJ_min * mu_min)
kappa_t_e = c_max_e / c_min_e
kappa_J_e = cJ_max_e / cJ_min_e
rho_e = (kappa_J_e - 1) / (kappa_J_e + 1)
eta_e = 2 / (cJ_max_e + cJ_min_e)
c_eig_e = H + d + 10
trunc_main_e = 2 * a * mu_max * (T_J + bias_J) / cJ_min_e
G_e = sp.Min(1 + trunc_main_e, c_max_e / cJ_min_e)
rho_eff_e = sp.Min(1, rho_e + 4 * c_eig_e * u64 * kappa_J_e)
steps_e = sp.Min(L, 1 / (1 - rho_e))
loop_count_e = 2 * J + d + 8
loop_floor_e = _gamma_n(loop_count_e, u64) * steps_e * (
    2 * G_e * (1 + eta_e * (a * Sigma_F * (1 + 2 * S_J) + s)) + eta_e * c_max_e)
rhoC_e = (kappa_J_e - 1) / (sp.sqrt(kappa_J_e) + 1) ** 2  # = (sqrt(kappa_J) - 1)/(sqrt(kappa_J) + 1)
eta_max_e = 1 / cJ_min_e
_step_work_e = 1 + eta_max_e * (a * Sigma_F * (1 + 2 * S_J) + s)
_g_loop_e = _gamma_n(loop_count_e, u64)
loop_floor_C_e = _g_loop_e * L * A_suf * ((1 + A_pre) * G_e * _step_work_e + eta_max_e * c_max_e) * (
    1 + A_all * _g_loop_e * _step_work_e) ** L
widen_e = 4 * c_eig_e * u64 * kappa_J_e / (kappa_J_e - 1)
chebyshev_factor_e = sp.Piecewise(
    (0, sp.Eq(kappa_J_e, 1)), (sp.cosh(L * sp.acosh(1 + widen_e)) * 2 * rhoC_e**L / (1 + rhoC_e ** (2 * L)), True))


def _num_common(v: dict[str, float]) -> dict[str, float]:
    """The shared quantities of the numeric path (plain Python, same formulas as above)."""
    out: dict[str, float] = {}
    out["c_min"] = v["s"] + v["a"] * v["lam_min"] * v["mu_min"]
    out["c_max"] = v["s"] + v["a"] * v["lam_max"] * v["mu_max"]
    out["cJ_min"] = v["s"] + v["a"] * min(v["lamJ_min"] * v["mu_min"], v["lamJ_min"] * v["mu_max"])
    out["cJ_max"] = v["s"] + v["a"] * max(v["lamJ_max"] * v["mu_max"], v["lamJ_min"] * v["mu_min"])
    out["kappa_t"] = out["c_max"] / out["c_min"] if out["c_min"] > 0 else math.inf
    out["kappa_J"] = out["cJ_max"] / out["cJ_min"] if out["cJ_min"] > 0 else math.inf
    kJ = out["kappa_J"]
    out["rho"] = 1.0 if math.isinf(kJ) else (kJ - 1) / (kJ + 1)
    out["eta"] = 2 / (out["cJ_max"] + out["cJ_min"])
    out["c_eig"] = v["H"] + v["d"] + 10
    out["trunc_main"] = (2 * v["a"] * v["mu_max"] * (v["T_J"] + v["bias_J"]) / out["cJ_min"]
                         if out["cJ_min"] > 0 else math.inf)
    out["G"] = min(1 + out["trunc_main"], out["c_max"] / out["cJ_min"] if out["cJ_min"] > 0 else math.inf)
    out["rho_eff"] = min(1.0, out["rho"] + 4 * out["c_eig"] * v["u64"] * kJ)
    out["steps"] = v["L"] if out["rho"] >= 1 else min(v["L"], 1 / (1 - out["rho"]))
    out["loop_floor"] = _gamma_num(2 * v["J"] + v["d"] + 8, v["u64"]) * out["steps"] * (
        2 * out["G"] * (1 + out["eta"] * (v["a"] * v["Sigma_F"] * (1 + 2 * v["S_J"]) + v["s"]))
        + out["eta"] * out["c_max"])
    # (sqrt(k) - 1)/(sqrt(k) + 1) written without the cancellation of sqrt(k) - 1 at k ~ 1
    out["rho_C"] = 1.0 if math.isinf(kJ) else (kJ - 1) / (math.sqrt(kJ) + 1) ** 2
    out["eta_max"] = 1 / out["cJ_min"] if out["cJ_min"] > 0 else math.inf
    step_work = 1 + out["eta_max"] * (v["a"] * v["Sigma_F"] * (1 + 2 * v["S_J"]) + v["s"])
    g_loop = _gamma_num(2 * v["J"] + v["d"] + 8, v["u64"])
    out["loop_floor_C"] = g_loop * v["L"] * v["A_suf"] * (
        (1 + v["A_pre"]) * out["G"] * step_work + out["eta_max"] * out["c_max"]) * _growth_power(
        v["A_all"] * g_loop * step_work, v["L"])
    return out


_NAMED = [
    (G_e, sp.Symbol("G")), (rho_eff_e, sp.Symbol("rho_eff")), (rhoC_e, sp.Symbol("rho_C")), (rho_e, sp.Symbol("rho")),
    (kappa_J_e, sp.Symbol("kappa_J")), (kappa_t_e, sp.Symbol("kappa_t")), (eta_e, sp.Symbol("eta")),
    (cJ_min_e, sp.Symbol("lambda_min(C_J)")), (cJ_max_e, sp.Symbol("lambda_max(C_J)")),
    (c_min_e, sp.Symbol("lambda_min(C)")), (c_max_e, sp.Symbol("lambda_max(C)")),
]


def _compact(expression: sp.Expr) -> sp.Expr:
    for sub, name in _NAMED:
        expression = expression.subs(sub, name)
    return expression


# ------------------------------------------------------------------------------------------ Bound
@dataclass
class Bound:
    """A bound: sympy ``expression``, the ``numeric`` evaluation, the assumptions it ``needs``.

    ``numeric(values) -> float`` takes the symbol values by name (see :func:`symbol_values`).
    """

    name: str
    description: str
    expression: sp.Expr
    numeric: Callable[[dict[str, float]], float]
    needs: tuple[str, ...] = ()
    inequalities: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def symbols(self) -> list[sp.Symbol]:
        return sorted(self.expression.free_symbols, key=lambda symbol: symbol.name)

    @cached_property
    def _lambdified(self) -> Callable[..., Any]:
        return sp.lambdify(self.symbols, self.expression, modules=["scipy", "numpy"])

    def evaluate(self, values: dict[str, float] | Configuration) -> float:
        """Numeric path (plain Python): the bound's value."""
        if isinstance(values, Configuration):
            values = symbol_values(values)
        return float(self.numeric(values))

    def evaluate_symbolic(self, values: dict[str, float] | Configuration) -> float:
        """Symbolic path: ``sympy.lambdify`` of :attr:`expression` at the same values."""
        if isinstance(values, Configuration):
            values = symbol_values(values)
        missing = [sym.name for sym in self.symbols if sym.name not in values]
        if missing:
            raise ValueError(f"bound {self.name!r} needs values for {missing}")
        # numpy scalars, not Python numbers: lambdify turns Piecewise into numpy.select, which evaluates
        # every branch; a branch that is undefined at these values (1/(1 - nu) at nu = 1) must give
        # inf/nan there and be discarded, not raise ZeroDivisionError.
        args = [np.int64(values[sym.name]) if sym.is_integer else np.float64(values[sym.name]) for sym in self.symbols]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return float(self._lambdified(*args))

    @cached_property
    def compact(self) -> sp.Expr:
        """The expression with the shared sub-expressions named (``rho``, ``kappa_J``, ``G``,
        ``lambda_min(C_J)``, ...): the form that is printed."""
        return _compact(self.expression)

    def text(self) -> str:
        return sp.sstr(self.compact)

    def latex(self) -> str:
        return sp.latex(self.compact)

    def __str__(self) -> str:
        needs = ", ".join(self.needs) or "none"
        return f"{self.name} <= {self.text()}\n    ({self.description}; needs: {needs})"


# -------------------------------------------------------------------------------- numeric formulas
def _kappa_t(v: dict[str, float]) -> float:
    return _num_common(v)["kappa_t"]


def _kappa_J(v: dict[str, float]) -> float:
    return _num_common(v)["kappa_J"]


def _rho(v: dict[str, float]) -> float:
    return _num_common(v)["rho"]


def _trunc(v: dict[str, float]) -> float:
    c = _num_common(v)
    if c["cJ_min"] <= 0:
        return math.inf
    floor = 2 * c["c_eig"] * v["u64"] * (c["kappa_t"] + c["kappa_J"] * c["G"])
    return c["trunc_main"] + floor


def _gd(v: dict[str, float]) -> float:
    c = _num_common(v)
    if c["cJ_min"] <= 0:
        return math.inf
    return (c["rho_eff"] ** v["L"] * c["G"] + 2 * c["c_eig"] * v["u64"] * c["kappa_J"] * c["G"]
            + c["loop_floor"])


def _net_common(v: dict[str, float], c: dict[str, float], delta_block: float, growth: float) -> float:
    """``sum_{k<L} r^k * delta_block + reference-loop floor + eta-mismatch``, ``r = rho + growth``."""
    ratio = c["rho"] + growth
    if ratio == 1.0:
        series = v["L"]
    elif math.isinf(ratio):  # gamma_n vacuous (n u >= 1): so is the bound, not (inf - 1)/(inf - 1) = nan
        series = math.inf
    else:
        try:
            series = (ratio ** v["L"] - 1) / (ratio - 1)
        except OverflowError:  # ratio^L past the float range: a vacuous bound, not an exception
            series = math.inf
    mismatch = 20 * (v["u"] + v["u64"]) * v["L"] * c["rho"] ** max(v["L"] - 1, 0) * c["G"]
    return series * delta_block + c["loop_floor"] + mismatch


def _angle_error(v: dict[str, float]) -> float:
    """``6 K omega (H - 1)``: the frame angle ``omega i`` is formed from a rounded ``omega`` (``pi / W``: two
    roundings) times ``i`` (one more), so ``|theta_i - omega i| <= 3 u omega i``; a tent reads
    ``cos(theta_i - theta_j)`` (off by at most both errors) through its slope ``K``.  In units of ``u``."""
    return 6 * v["K"] * v["omega"] * max(v["H"] - 1, 0)


def _score_error(v: dict[str, float]) -> float:
    return v["u"] * (40 * v["K"] + _angle_error(v) + 20 * v["c_max"] + 10)


def _exact_rounding(v: dict[str, float]) -> tuple[dict[str, float], float, float]:
    """Exact mode's rounding model of one block: ``(common, g, delta)``, the block's deviation from the exact step
    being ``<= g |y_net,k| + ...``; ``delta`` bounds it with ``|y_k| <= (1 + A_pre) G |y*|`` (``A_pre = 1`` for GD)."""
    c = _num_common(v)
    gn = _gamma_num(2 * v["J"] + 1 + v["M"] + v["d"] + 8, v["u"])
    es = _score_error(v)
    band = (4 * es + 4 * gn * (2 * v["K"] + v["c_max"] + 1)) * (1 + 2 * v["S_J"]) * v["Sigma_F"]
    zero = (es + gn * v["c_max"]) * (v["Sigma_F"] + 1)
    growth = band + zero
    delta = growth * (1 + v["A_pre"]) * c["G"] + (es + gn * v["c_max"] + v["u"] * v["c_max"]) * v["X"]
    return c, growth, delta


def _paper_rounding(v: dict[str, float]) -> tuple[dict[str, float], float, float]:
    """Paper mode's model of one block (rounding of the height-1 tents, times the largest time feature, plus three
    multiplier products per entry): ``(common, g, delta)`` as :func:`_exact_rounding`."""
    c = _num_common(v)
    gn = _gamma_num(2 * v["J"] + 1 + v["M"] + v["d"] + 8, v["u"])
    es = v["u"] * (40 * v["K"] + _angle_error(v) + 30)
    acc = (4 * es + 4 * gn * (2 * v["K"] + 2)) * (1 + 2 * v["S_J"]) * v["Sigma_F"]
    growth = v["phi_max"] * acc
    g_ffn = _gamma_num(v["F_w"] + v["D"] + 8, v["u"])
    per_entry = 3 * v["h"] ** 2 / 16 + g_ffn * 40 * v["R_mult"] ** 2
    delta = growth * (1 + v["A_pre"]) * c["G"] + per_entry * v["root"]
    return c, growth, delta


def _net_exact(v: dict[str, float]) -> float:
    c, growth, delta = _exact_rounding(v)
    return math.inf if c["cJ_min"] <= 0 else _net_common(v, c, delta, growth)


def _net_paper(v: dict[str, float]) -> float:
    c, growth, delta = _paper_rounding(v)
    return math.inf if c["cJ_min"] <= 0 else _net_common(v, c, delta, growth)


def _blocks_needed(v: dict[str, float]) -> float:
    c = _num_common(v)
    if c["rho"] >= 1:
        return math.inf
    if c["rho"] == 0:
        return 0.0
    return math.log(c["G"] / v["epsilon"]) / math.log(1 / c["rho"])


def _rho_cheb(v: dict[str, float]) -> float:
    return _num_common(v)["rho_C"]


def _chebyshev_factor(v: dict[str, float], c: dict[str, float]) -> float:
    """``cosh(L acosh(1 + w)) 2 rho_C^L / (1 + rho_C^(2L))`` (0 when kappa_J = 1: one step is exact)."""
    kJ, blocks = c["kappa_J"], v["L"]
    if kJ <= 1.0:
        return 0.0
    widen = 4 * c["c_eig"] * v["u64"] * kJ / (kJ - 1)
    rho = c["rho_C"]
    if rho == 0.0:
        return 0.0
    # in logs: both factors can over/underflow (kappa_J -> 1: cosh -> inf while rho_C^L -> 0)
    z = blocks * math.acosh(1 + widen)
    log_cosh = z + math.log1p(math.exp(-2 * z)) - math.log(2.0)
    return math.exp(log_cosh + math.log(2.0) + blocks * math.log(rho) - math.log1p(rho ** (2 * blocks)))


def _gd_cheb(v: dict[str, float]) -> float:
    c = _num_common(v)
    if c["cJ_min"] <= 0:
        return math.inf
    return (_chebyshev_factor(v, c) * c["G"] + 2 * c["c_eig"] * v["u64"] * c["kappa_J"] * c["G"]
            + c["loop_floor_C"])


def _net_cheb_common(v: dict[str, float], c: dict[str, float], delta_block: float, growth: float) -> float:
    """``A_suf L delta (1 + A_all g)^L`` + reference-loop floor + step-size mismatch (any schedule)."""
    blocks, unit = v["L"], 20 * (v["u"] + v["u64"])
    mismatch = unit * blocks * v["A_suf"] * v["A_pre"] * c["kappa_J"] * _growth_power(
        unit * v["A_all"] * c["kappa_J"], blocks) * c["G"]
    return (v["A_suf"] * blocks * delta_block * _growth_power(v["A_all"] * growth, blocks) + c["loop_floor_C"]
            + mismatch)


def _net_exact_cheb(v: dict[str, float]) -> float:
    c, growth, delta = _exact_rounding(v)
    return math.inf if c["cJ_min"] <= 0 else _net_cheb_common(v, c, delta, growth)


def _net_paper_cheb(v: dict[str, float]) -> float:
    c, growth, delta = _paper_rounding(v)
    return math.inf if c["cJ_min"] <= 0 else _net_cheb_common(v, c, delta, growth)


def _blocks_needed_cheb(v: dict[str, float]) -> float:
    c = _num_common(v)
    if c["rho_C"] >= 1:
        return math.inf
    ratio = v["epsilon"] / c["G"]
    if ratio >= 1 or c["rho_C"] == 0:
        return 0.0
    return math.log((1 + math.sqrt(1 - ratio**2)) / ratio) / math.log(1 / c["rho_C"])


# ------------------------------------------------------------------------------- symbolic formulas
def _net_common_e(delta_block: sp.Expr, growth: sp.Expr) -> sp.Expr:
    ratio = rho_e + growth
    series = sp.Piecewise((L, sp.Eq(ratio, 1)), ((ratio**L - 1) / (ratio - 1), True))
    mismatch = 20 * (u + u64) * L * rho_e ** sp.Max(L - 1, 0) * G_e
    return series * delta_block + loop_floor_e + mismatch


_angle_e = 6 * K * omega * (H - 1)  # the rounding of the frame angle omega i, read through the tents (_angle_error)
_es_exact = u * (40 * K + _angle_e + 20 * c_max + 10)
_gn_e = _gamma_n(2 * J + 1 + M + d + 8, u)
_band_e = (4 * _es_exact + 4 * _gn_e * (2 * K + c_max + 1)) * (1 + 2 * S_J) * Sigma_F
_zero_e = (_es_exact + _gn_e * c_max) * (Sigma_F + 1)
_growth_exact = _band_e + _zero_e
net_exact_e = _net_common_e(_growth_exact * 2 * G_e + (_es_exact + _gn_e * c_max + u * c_max) * X,
                            _growth_exact)

_es_paper = u * (40 * K + _angle_e + 30)
_acc_e = (4 * _es_paper + 4 * _gn_e * (2 * K + 2)) * (1 + 2 * S_J) * Sigma_F
_growth_paper = phi_max * _acc_e
_per_entry_e = 3 * h_knot**2 / 16 + _gamma_n(F_w + D + 8, u) * 40 * R_mult**2
net_paper_e = _net_common_e(_growth_paper * 2 * G_e + _per_entry_e * root, _growth_paper)

trunc_e = trunc_main_e + 2 * c_eig_e * u64 * (kappa_t_e + kappa_J_e * G_e)
gd_e = rho_eff_e**L * G_e + 2 * c_eig_e * u64 * kappa_J_e * G_e + loop_floor_e
gd_C_e = chebyshev_factor_e * G_e + 2 * c_eig_e * u64 * kappa_J_e * G_e + loop_floor_C_e


def _net_cheb_common_e(delta_block: sp.Expr, growth: sp.Expr) -> sp.Expr:
    unit = 20 * (u + u64)
    mismatch = unit * L * A_suf * A_pre * kappa_J_e * (1 + unit * A_all * kappa_J_e) ** L * G_e
    return A_suf * L * delta_block * (1 + A_all * growth) ** L + loop_floor_C_e + mismatch


net_exact_C_e = _net_cheb_common_e(_growth_exact * (1 + A_pre) * G_e + (_es_exact + _gn_e * c_max + u * c_max) * X,
                                   _growth_exact)
net_paper_C_e = _net_cheb_common_e(_growth_paper * (1 + A_pre) * G_e + _per_entry_e * root, _growth_paper)
_ratio_e = eps / G_e
blocks_needed_C_e = sp.log((1 + sp.sqrt(1 - _ratio_e**2)) / _ratio_e) / sp.log(1 / rhoC_e)

_GD_INEQ = ("y_L - y*_J = -(I - eta C_J)^L y*_J, ||I - eta C_J|| = rho; |y*_J| <= G |y*|; float64 floors "
            "for the eigen-solve and the GD loop")
BOUNDS: dict[str, Bound] = {
    "kappa_t": Bound("kappa_t", "condition number of C_t", kappa_t_e, _kappa_t, ("gamma_pd",),
                     "Kronecker spectrum"),
    "kappa_J": Bound("kappa_J", "condition number of C_tJ", kappa_J_e, _kappa_J, ("gd_converges",),
                     "Kronecker spectrum"),
    "contraction": Bound("contraction", "GD error factor per step, rho = (kappa_J-1)/(kappa_J+1)", rho_e, _rho,
                         ("gd_converges",), "||I - eta C_J||_2 for eta = 2/(lambda_max + lambda_min)"),
    "gd": Bound("gd", "E_gd = |y_L - y*_J| / |y*|", gd_e, _gd, ("gd_converges",), _GD_INEQ),
    "trunc": Bound("trunc", "E_trunc = |y*_J - y*| / |y*|", trunc_e, _trunc, ("gamma_pd", "gd_converges"),
                   "y*_J - y* = C_J^-1 (C - C_J) y*; ||Gamma - Gamma_J||_2 <= 2 (T_J + bias) (row sums)"),
    "net_exact": Bound("net_exact", "E_net = |y_net - y_L| / |y*|, exact mode (rounding only)", net_exact_e,
                       _net_exact, ("gd_converges", "lags_separated"),
                       "e_(k+1) = (I - eta C_J) e_k + delta_k; |delta_k| from the rounding model of the "
                       "tent heads (score error u(40K + 20 c_max + 10), gamma_n on |head weights| <= 2K + c_max + 1)"),
    "net_paper": Bound("net_paper", "E_net, paper mode (multiplier error h^2/16 per product + rounding)",
                       net_paper_e, _net_paper, ("gd_converges", "lags_separated", "multiplier_in_range"),
                       "as net_exact, plus 3 products per entry each off by <= h^2/16 inside the range"),
    "blocks_needed": Bound("blocks_needed", "blocks L with rho^L G <= epsilon (exact arithmetic)",
                           sp.log(G_e / eps) / sp.log(1 / rho_e), _blocks_needed, ("gd_converges",),
                           "rho^L G <= eps  <=>  L >= log(G/eps)/log(1/rho) ~ (kappa_J/2) log(G/eps)"),
    "contraction_chebyshev": Bound(
        "contraction_chebyshev", "Chebyshev rate rho_C = (sqrt(kappa_J)-1)/(sqrt(kappa_J)+1)", rhoC_e, _rho_cheb,
        ("gd_converges",), "max |p_L| = 1/T_L((kappa+1)/(kappa-1)) = 2 rho_C^L/(1 + rho_C^(2L))"),
    "gd_chebyshev": Bound(
        "gd_chebyshev", "E_gd with Chebyshev steps = |y_L - y*_J| / |y*|", gd_C_e, _gd_cheb, ("gd_converges",),
        "y_L - y*_J = -p_L(C_J) y*_J, max |p_L| on the widened spectrum; |y*_J| <= G |y*|; float64 floors, "
        "rounding of the reference loop through the sub-products A_pre, A_suf, A_all"),
    "net_exact_chebyshev": Bound(
        "net_exact_chebyshev", "E_net with Chebyshev steps, exact mode (rounding only)", net_exact_C_e,
        _net_exact_cheb, ("gd_converges", "lags_separated"),
        "e_(k+1) = (I - eta_k C_J) e_k + delta_k, |y_k| <= (1 + A_pre) G |y*|, delta_k <= b + g |e_k|: "
        "|e_L| <= A_suf L b (1 + A_all g)^L; the tent-head rounding model of net_exact"),
    "net_paper_chebyshev": Bound(
        "net_paper_chebyshev", "E_net with Chebyshev steps, paper mode", net_paper_C_e, _net_paper_cheb,
        ("gd_converges", "lags_separated", "multiplier_in_range"),
        "as net_exact_chebyshev with the multiplier error of net_paper"),
    "blocks_needed_chebyshev": Bound(
        "blocks_needed_chebyshev", "blocks L with 2 rho_C^L/(1 + rho_C^(2L)) G <= epsilon (exact arithmetic)",
        blocks_needed_C_e, _blocks_needed_cheb, ("gd_converges",),
        "2q/(1+q^2) <= r (q = rho_C^L, r = eps/G) <=> q <= (1 - sqrt(1 - r^2))/r, so "
        "L >= log((1 + sqrt(1 - r^2))/r)/log(1/rho_C) ~ (sqrt(kappa_J)/2) log(2G/eps)"),
}

#: the bounds of each part for each step schedule: (gd part, net part in exact mode, net part in paper mode)
PART_BOUNDS = {"gd": ("gd", "net_exact", "net_paper"),
               "chebyshev": ("gd_chebyshev", "net_exact_chebyshev", "net_paper_chebyshev")}


def tail_bound(family: str) -> Bound:
    """The tail bound ``T_J <= ...`` of a kernel family as a :class:`Bound` (symbols ``J, H, nu, ell``)."""
    expression = tails.tail_bound_expression(family)

    def numeric(v: dict[str, float]) -> float:
        return tails.tail_bound(family, v["nu"], v["ell"], int(v["J"]), int(v["H"]))

    return Bound(f"tail[{family}]", f"T_J = sum_(J<m<H) gamma(m) for the {family} family", expression, numeric,
                 ("tail_summable",) if family != "logarithmic" else (), "integral / finite bounds, see theory.tails")


def bands_needed_bound(family: str) -> sp.Expr:
    """J(eps, nu, ell) with ``T_J <= eps`` (closed form or leading order; see ``theory.tails``)."""
    return tails.bands_needed_expression(family)


def _check_mode(mode: Any) -> str:
    if mode not in ("exact", "paper"):
        raise ValueError(f"mode must be 'exact' or 'paper', got {mode!r}")
    return mode


def heads_expression(mode: str = "exact") -> sp.Expr:
    """Heads per layer M(J): exact mode ``3(J+1)`` (three ReLUs per tent, three one-sided band-0 heads),
    paper mode ``3J + 1``; another ``mode`` raises ``ValueError``."""
    return 3 * (J + 1) if _check_mode(mode) == "exact" else 3 * J + 1


def tent_slope_expression(mode: str = "exact") -> sp.Expr:
    """Tent slope ``K = c_max / g`` with the smallest lag gap ``g = 1 - cos(pi/W) ~ pi^2/(2 W^2)`` (lag 0 to 1
    of ``c_m = cos(pi m/W)``, ``W = min(H, J+2)``, the constructor's default window frequency), so
    ``K ~ 2 W^2 c_max / pi^2``: the largest weight norm ``B >= K`` grows like ``(J+2)^2``, and like ``H^2``
    for ``frame_frequency="sequence"`` (``W = H``).  ``c_max = max(1, 1/P)`` in exact mode, 1 in paper mode
    (``slope_margin = 1``); another ``mode`` raises ``ValueError``."""
    height = c_max if _check_mode(mode) == "exact" else sp.Integer(1)
    return height / (1 - sp.cos(sp.pi / sp.Min(H, J + 2)))


# ------------------------------------------------------------------------- small t and sample size
def small_time_behaviour() -> dict[str, sp.Expr]:
    """Why the theory stops at ``t0``: the t -> 0 behaviour, as sympy expressions.

    * ``kappa_t <= 1 + lam_max mu_max a/s = 1 + lam_max mu_max/(e^t - 1)`` (drop ``a lam_min mu_min >= 0`` in
      lambda_min), so ``kappa_t ~ lam_max mu_max / t`` when ``lam_min(Gamma) mu_min << t`` (smooth kernels:
      ``lam_min(Gamma)`` is at rounding level);
    * blocks needed ``L ~ (kappa_t/2) log(G/eps) ~ lam_max mu_max log(G/eps) / (2 t)``;
    * the score itself grows: ``|y*| <= |x| / lambda_min(C_t) <= |x| / s ~ |x|/t``, so a fixed relative
      error is an absolute error ``~ 1/t``, and ``E|s|^2 = tr(C_t^-1) <= H d / s ~ H d / t``;
    * the truncation bound ``2 a mu_max (T_J + bias)/lambda_min(C_J)`` tends to
      ``2 mu_max (T_J + bias) / (lamJ_min mu_min)`` (finite only if Gamma_J is PD; with an indefinite
      Gamma_J, C_J stops being PD once ``s < a |lamJ_min| mu_max``).
    """
    kappa_upper = 1 + lam_max * mu_max / (sp.exp(t) - 1)
    blocks = kappa_upper / 2 * sp.log(_S["epsilon"] ** -1)
    return {
        "kappa_upper": kappa_upper,
        "kappa_leading": sp.limit(kappa_upper * t, t, 0) / t,
        "blocks_leading": sp.limit(blocks * t, t, 0) / t,
        "score_scale": 1 / (1 - sp.exp(-t)),
        "score_scale_leading": sp.limit(t / (1 - sp.exp(-t)), t, 0) / t,
        "trunc_limit": sp.limit(trunc_main_e.subs({a: sp.exp(-t), s: 1 - sp.exp(-t)}), t, 0),
    }


def sample_complexity() -> dict[str, sp.Expr]:
    """The ``n^(-1/2)`` rate of the learned score / distribution error, with unspecified constants as symbols.

    This project's generic form (the paper's exact constants are not in the repository):

    * the class of transformers with width D, L blocks, M heads, weights ``<= B``, outputs ``<= R`` has
      ``log N(delta) <= C_N L M D^2 log(L B R / delta)`` (parameter counting, Lipschitz in the weights);
    * score matching over ``[t0, T]``: ``err_score^2 <= C_1 (R^2 / t0) L M D^2 log(n L B R) / n + err_approx^2``
      where ``err_approx`` is the total bound of :data:`BOUNDS` (gd + trunc + net) times ``|y*| ~ sqrt(Hd/t0)``;
    * distribution error (Girsanov + data processing): ``TV <= C_2 sqrt(T err_score^2) + C_3 e^-T +
      C_4 sqrt(t0 H d)`` (early stopping at t0 perturbs by ``O(sqrt(t0 H d))``).

    With ``L ~ kappa log(1/eps)``, ``kappa ~ lam_max mu_max / t0``, ``M = 3(J+1)``, ``D = 2d + 6`` the
    statistical term is ``C sqrt(H d ... / n)``: the rate in n is ``n^(-1/2)`` (up to the log).
    """
    C1, C2, C3, C4, CN = sp.symbols("C_1 C_2 C_3 C_4 C_N", positive=True)
    t0, T, B, R, err_approx = sp.symbols("t_0 T B R err_approx", positive=True)
    n = n_samples
    log_cover = CN * L * M * D**2 * sp.log(n * L * B * R)
    score_sq = C1 * R**2 / t0 * log_cover / n + err_approx**2
    tv = C2 * sp.sqrt(T * score_sq) + C3 * sp.exp(-T) + C4 * sp.sqrt(t0 * H * d)
    statistical = C2 * sp.sqrt(T * C1 * R**2 / t0 * log_cover / n)
    return {"log_covering": log_cover, "score_error_squared": score_sq, "total_variation": tv,
            "statistical_term": statistical,
            "rate_exponent": sp.limit(sp.log(statistical.subs(sp.log(n * L * B * R), 1)) / sp.log(n), n, sp.oo)}


# ------------------------------------------------------------------------------ configuration values
def symbol_values(config: Configuration, *, unit_roundoff: float | None = None, x_ratio: float | None = None,
                  root: float | None = None) -> dict[str, float]:
    """Values of every symbol for a configuration (see ``SYMBOL_MEANINGS``).

    ``x_ratio = |x|/|y*|`` (default: its upper bound ``lambda_max(C_t)``); ``root = sqrt(batch H d)/|y*|``
    (default ``nan``: needed only by the paper-mode bound).  Tent slope and heights come from the model's
    construction when known, else from :func:`tent_slope_expression` (exact mode).
    """
    lam_lo, lam_hi = config.temporal_spectrum
    lamj_lo, lamj_hi = config.truncated_spectrum
    values: dict[str, float] = {
        "t": config.diffusion_time, "a": config.a, "s": config.s,
        "lam_min": max(lam_lo, 0.0), "lam_max": lam_hi, "lamJ_min": lamj_lo, "lamJ_max": lamj_hi,
        "mu_min": config.mu_min, "mu_max": config.mu_max,
        "Sigma_F": float(math.sqrt(float((config.spatial_eigenvalues**2).sum()))),
        "T_J": config.tail, "bias_J": config.taper_bias, "S_J": config.band_sum,
        "u": UNIT_ROUNDOFF if unit_roundoff is None else unit_roundoff, "u64": UNIT_ROUNDOFF,
        "L": config.blocks, "J": config.bands, "H": config.frames, "d": config.dim,
        "nu": config.nu, "ell": config.ell,
    }
    construction = config.construction
    size = config.size
    # the smallest step centre P_k (so the largest time feature): from the schedule's step sizes eta_k = 1/(aP_k + s)
    smallest_center = (float(np.min((1.0 / config.step_sizes - config.s) / config.a)) if config.blocks
                       else 0.5 * sum(config.product_range))
    values["phi_max"] = max(1.0, 1.0 / smallest_center)
    amplification = config.amplification
    values.update(A_pre=amplification.prefix, A_suf=amplification.suffix, A_all=amplification.any)
    if construction is not None:
        values["K"] = float(construction.tent_slope)
        values["c_max"] = float(construction.height_max)
        values["omega"] = float(construction.frequency)
        multiplier = getattr(construction, "multiplier", None)
        if multiplier is not None:
            values["h"] = float(multiplier.spacing)
            values["R_mult"] = float(multiplier.range)
    else:
        values["c_max"] = values["phi_max"] if config.mode == "exact" else 1.0
        period = frequency_period(config.frames, config.bands)
        gaps = (1.0 - math.cos(math.pi / period)) if config.frames > 1 else 1.0
        values["K"] = values["c_max"] / gaps
        values["omega"] = math.pi / period
    values["M"] = float(size.get("M", 3 * (config.bands + 1) if config.mode == "exact" else 3 * config.bands + 1))
    values["F_w"] = float(size.get("ffn_width", 1))
    values["D"] = float(size.get("D", 2 * config.dim + 6))
    values["X"] = x_ratio if x_ratio is not None else config.s + config.a * lam_hi * config.mu_max
    values["root"] = math.nan if root is None else root
    values.setdefault("h", math.nan)
    values.setdefault("R_mult", math.nan)
    return values


def evaluate_all(config: Configuration, **kwargs: Any) -> dict[str, float]:
    """Numeric value of every bound in :data:`BOUNDS` that applies to ``config`` (its mode and step schedule,
    ``config.steps``), plus ``net``, ``total`` and the family tail; ``gd`` and ``net`` are the schedule's."""
    values = symbol_values(config, **kwargs)
    gd_name, exact_name, paper_name = PART_BOUNDS[config.steps]
    net_name = exact_name if config.mode == "exact" else paper_name
    other = [name for names in PART_BOUNDS.values() for name in names if name not in (gd_name, net_name)]
    skip = {"blocks_needed", "blocks_needed_chebyshev", *other}
    out = {name: bound.evaluate(values) for name, bound in BOUNDS.items() if name not in skip}
    if config.mode == "paper" and (math.isnan(values["h"]) or math.isnan(values["root"])):
        out[net_name] = math.inf  # needs the multiplier (a construction) and |y*| (a run): unknown
    out["gd"] = out[gd_name]
    out["net"] = out[net_name]
    out["total"] = out["gd"] + out["trunc"] + out["net"]
    if config.family is not None:
        out["tail_family"] = tails.tail_bound(config.family, config.nu, config.ell, config.bands, config.frames)
    out["tail_exact"] = config.tail
    return out


# ------------------------------------------------------------------------------------ verify hook
_UNIT_ROUNDOFFS = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}


def bounds_for_report(report: Any, gp: Any, model: Any, diffusion_time: float) -> dict[str, float]:
    """The bound of each part of an ``unroll.verify`` report (``inf`` where an assumption fails)."""
    construction = getattr(model, "construction", None)
    if construction is None:
        config = Configuration.from_gp(gp, bands=int(report.bands), blocks=int(report.blocks),
                                       diffusion_time=diffusion_time, taper=report.taper)
    else:
        config = Configuration.from_model(gp, model, diffusion_time)
    unit = _UNIT_ROUNDOFFS.get(str(getattr(report, "dtype", "float64")), 2.0**-53)
    norm = float(report.solution_norm)
    x = getattr(report, "x", None)
    x_ratio = float(x.to(dtype=x.dtype).norm()) / norm if x is not None and norm > 0 else None
    root = math.sqrt(report.batch * gp.frames * gp.dim) / norm if norm > 0 else math.inf
    values = symbol_values(config, unit_roundoff=unit, x_ratio=x_ratio, root=root)
    gd_name, exact_name, paper_name = PART_BOUNDS[config.steps]
    gd_bound = BOUNDS[gd_name].evaluate(values)
    trunc_bound = BOUNDS["trunc"].evaluate(values)
    if construction is None:
        net_bound = math.inf  # a trained model: no a-priori bound on the network error
    elif config.mode == "exact":
        net_bound = BOUNDS[exact_name].evaluate(values)
    else:
        peak = getattr(report, "multiplier_peak", None)
        in_range = peak is not None and peak <= construction.multiplier.range
        net_bound = BOUNDS[paper_name].evaluate(values) if in_range else math.inf
    other = "chebyshev" if config.steps == "gd" else "gd"
    other_values = symbol_values(dataclasses.replace(config, steps=other), unit_roundoff=unit, x_ratio=x_ratio,
                                 root=root)
    return {"gd": gd_bound, "trunc": trunc_bound, "net": net_bound, "total": gd_bound + trunc_bound + net_bound,
            f"gd[{other}]": BOUNDS[PART_BOUNDS[other][0]].evaluate(other_values)}


def attach_bounds(report: Any, gp: Any, model: Any, diffusion_time: float) -> None:
    """Fill ``report.parts[name].bound`` for ``gd``, ``trunc``, ``net`` and ``total`` (called by
    ``unroll.verify``).  A bound is ``inf`` when an assumption it needs fails (e.g. the paper-mode
    multiplier was fed values outside its range); ``total = gd + trunc + net`` (triangle inequality)."""
    for name, value in bounds_for_report(report, gp, model, diffusion_time).items():
        if name in report.parts:
            report.parts[name].bound = float(value)
        elif name.startswith("gd[") and hasattr(report, "other_schedule_gd_bound"):
            report.other_schedule_gd_bound[name[3:-1]] = float(value)
