"""The assumptions of the unrolled-GD construction and its bounds, as checkable objects.

Each :class:`Assumption` has a ``name``, a one-line ``statement`` and a numeric check on a
:class:`theory.Configuration` returning an :class:`AssumptionResult` (``holds`` and a signed ``margin``:
positive when it holds, in the units of the inequality).  :func:`check_assumptions` lists them all for a
configuration as an :class:`AssumptionTable` (``print(table)`` gives the table).

Example::

    >>> from theory import Configuration, check_assumptions
    >>> from unroll.data.kernels import Polynomial
    >>> config = Configuration.from_kernel(Polynomial(nu=0.5, ell=4.0), 32, [[1.0]], bands=3, blocks=20,
    ...                                    diffusion_time=0.1)
    >>> table = check_assumptions(config)
    >>> table["tail_summable"].holds
    False
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from theory.configuration import Configuration
from unroll.construction.constructor import frequency_period

__all__ = [
    "Assumption",
    "AssumptionResult",
    "AssumptionTable",
    "ASSUMPTIONS",
    "check_assumptions",
    "default_lag_values",
]


@dataclass(frozen=True)
class AssumptionResult:
    """Outcome of one assumption on one configuration: ``holds`` and the signed ``margin``."""

    name: str
    statement: str
    holds: bool
    margin: float
    detail: str = ""

    def verdict(self) -> str:
        return "holds" if self.holds else "FAILS"


@dataclass(frozen=True)
class Assumption:
    """An assumption: ``check(config) -> (holds, margin, detail)``; ``sufficient_only`` marks a
    condition that is sufficient for another (its failure alone breaks nothing)."""

    name: str
    statement: str
    check_fn: Callable[[Configuration], tuple[bool, float, str]]
    sufficient_only: bool = False

    def check(self, config: Configuration) -> AssumptionResult:
        holds, margin, detail = self.check_fn(config)
        return AssumptionResult(self.name, self.statement, bool(holds), float(margin), detail)

    def __str__(self) -> str:
        return f"{self.name}: {self.statement}"


def default_lag_values(frames: int, bands: int | None = None) -> np.ndarray:
    """``c_m = cos(pi m / W)``, ``m = 0..H-1``: inner products of the docs/design.md §5 embeddings
    ``e_i = (cos w i, sin w i)`` with the constructor's default frequency ``w = pi/W``, ``W = min(H, J+2)``
    (``W = H`` when ``bands`` is None); used when the model does not report its own lag values."""
    period = frames if bands is None else frequency_period(frames, bands)
    return np.cos(np.pi * np.arange(frames, dtype=np.float64) / period)


def _gamma_pd(c: Configuration) -> tuple[bool, float, str]:
    lam_min, lam_max = c.temporal_spectrum
    return lam_min > 0, lam_min, f"lambda_min(Gamma) = {lam_min:.3e}, lambda_max = {lam_max:.3e}"


def _truncated_pd(c: Configuration) -> tuple[bool, float, str]:
    lam_min, lam_max = c.truncated_spectrum
    # numerically positive definite: the same tolerance as unroll.construction.gd.check_truncation
    detail = f"lambda_min(Gamma_J) = {lam_min:.3e} (J={c.bands}, taper={c.taper})"
    return lam_min > 1e-12 * abs(lam_max), lam_min, detail


def _diagonal_dominance(c: Configuration) -> tuple[bool, float, str]:
    margin = 1.0 - 2.0 * c.band_sum
    return margin > 0, margin, f"2 sum_(1<=m<=J) |gamma_J(m)| = {2.0 * c.band_sum:.4g}"


def _gd_converges(c: Configuration) -> tuple[bool, float, str]:
    lo, hi = c.cj_spectrum
    return lo > 0, lo, f"lambda_min(C_tJ) = {lo:.3e}, kappa_J = {c.kappa_j:.4g}, rho = {c.contraction:.6f}"


def _lags_separated(c: Configuration) -> tuple[bool, float, str]:
    values = c.lag_values if c.lag_values is not None else default_lag_values(c.frames, c.bands)
    # the heads are windowed at J: their tents only see lags 0..J+1 (band J must vanish at lag J+1)
    seen = values[: min(c.bands + 2, values.size)]
    if seen.size < 2:
        return True, math.inf, "one frame: no lags to separate"
    gap = float(np.min(seen[:-1] - seen[1:]))
    source = "model" if c.lag_values is not None else "default cos(pi m/min(H, J+2))"
    return gap > 0, gap, f"min_m (c_m - c_(m+1)) = {gap:.3e} over lags 0..{seen.size - 1} ({source})"


def _spatial_bounded(c: Configuration) -> tuple[bool, float, str]:
    kappa = c.spatial_condition
    return kappa <= c.max_condition, c.max_condition - kappa, (
        f"mu in [{c.mu_min:.3g}, {c.mu_max:.3g}], kappa(Sigma) = {kappa:.4g} <= {c.max_condition:g}")


def _time_after_t0(c: Configuration) -> tuple[bool, float, str]:
    margin = c.diffusion_time - c.t0
    return margin >= 0, margin, f"t = {c.diffusion_time:g}, t0 = {c.t0:g}"


def _tail_summable(c: Configuration) -> tuple[bool, float, str]:
    if c.family is None:
        finite = float(np.sum(np.abs(c.gamma)))
        return False, math.nan, f"user lag function: summability unknown (sum over H lags = {finite:.4g})"
    if c.family == "polynomial":
        return c.nu > 1, c.nu - 1.0, f"polynomial decay (1+r/ell)^-nu needs nu > 1, nu = {c.nu:g}"
    if c.family == "logarithmic":
        return False, -math.inf, "logarithmic decay: sum_m gamma(m) diverges for every nu; J must grow with H"
    if c.family == "damped-cosine":
        return True, math.inf, "damped-cosine: |gamma(m)| <= exp(-m/ell), summable for every period"
    return True, math.inf, f"{c.family}: exponential decay, summable"


def _truncation_informative(c: Configuration) -> tuple[bool, float, str]:
    lo, _ = c.cj_spectrum
    if lo <= 0:
        return False, -math.inf, "C_tJ not positive definite: no truncation bound"
    value = 2.0 * c.a * c.mu_max * c.removed / lo
    return value < 1.0, 1.0 - value, (
        f"E_trunc bound 2 a mu_max (T_J + taper bias)/lambda_min(C_tJ) = {value:.4g}; T_J = {c.tail:.4g}")


def _multiplier_in_range(c: Configuration) -> tuple[bool, float, str]:
    multiplier = getattr(c.construction, "multiplier", None) if c.construction is not None else None
    if c.mode != "paper" or multiplier is None:
        return True, math.inf, "exact mode: no multiplier"
    if c.multiplier_peak is None:
        return False, math.nan, "paper mode: peak |c|+|v| of a run unknown (run unroll.verify)"
    margin = float(multiplier.range) - c.multiplier_peak
    return margin >= 0, margin, f"max |c|+|v| = {c.multiplier_peak:.4g} <= range {multiplier.range:g}"


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption("gamma_pd", "Gamma is positive definite: lambda_min(Gamma) > 0", _gamma_pd),
    Assumption("truncated_pd", "Gamma_J (cut or tapered) is positive definite: lambda_min(Gamma_J) > 1e-12 lambda_max",
               _truncated_pd),
    Assumption("diagonal_dominance", "Gamma_J is diagonally dominant: 2 sum_(1<=m<=J) |gamma_J(m)| < 1 "
               "(sufficient for truncated_pd)", _diagonal_dominance, sufficient_only=True),
    Assumption("gd_converges", "C_tJ = a Gamma_J (x) Sigma + s I is positive definite, so GD with eta_t "
               "contracts: lambda_min(C_tJ) > 0", _gd_converges),
    Assumption("lags_separated", "the frame embeddings separate the lags: c_m = e_i.e_j strictly decreasing "
               "in m = |i-j| on the lags 0..J+1 the windowed heads see", _lags_separated),
    Assumption("spatial_bounded", "Sigma has a bounded spectrum: 0 < mu_min, kappa(Sigma) <= kappa_max",
               _spatial_bounded),
    Assumption("time_after_t0", "the diffusion time is at least the early-stopping time: t >= t0",
               _time_after_t0),
    Assumption("tail_summable", "the kernel tail is summable: sum_m |gamma(m)| < inf (H-free J exists)",
               _tail_summable, sufficient_only=True),
    Assumption("truncation_informative", "the truncation bound is below 1 (not vacuous) at this J",
               _truncation_informative, sufficient_only=True),
    Assumption("multiplier_in_range", "paper mode: every product c v fed to the FFN multiplier has "
               "|c| + |v| <= its range (else its error is not h^2/16)", _multiplier_in_range),
)

_BY_NAME = {assumption.name: assumption for assumption in ASSUMPTIONS}


class AssumptionTable:
    """The results of every assumption on one configuration."""

    def __init__(self, config: Configuration, results: list[AssumptionResult]) -> None:
        self.config = config
        self.results = results

    def __iter__(self) -> Iterator[AssumptionResult]:
        return iter(self.results)

    def __getitem__(self, name: str) -> AssumptionResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no assumption {name!r}; known: {[r.name for r in self.results]}")

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.holds]

    @property
    def failed_required(self) -> list[str]:
        """Failed assumptions that are not merely sufficient conditions."""
        return [r.name for r in self.results if not r.holds and not _BY_NAME[r.name].sufficient_only]

    def holds(self, *names: str) -> bool:
        """Whether all the named assumptions (all if none given) hold."""
        wanted = names or tuple(r.name for r in self.results)
        return all(self[name].holds for name in wanted)

    def __str__(self) -> str:
        lines = [f"assumptions for {self.config.describe()}",
                 f"{'name':<24} {'verdict':<7} {'margin':>11}  statement / numbers"]
        for result in self.results:
            lines.append(f"{result.name:<24} {result.verdict():<7} {result.margin:>11.4g}  {result.statement}")
            if result.detail:
                lines.append(f"{'':<45}{result.detail}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        rows = ["| assumption | verdict | margin | statement | numbers |", "|---|---|---|---|---|"]
        rows += [f"| {r.name} | {r.verdict()} | {r.margin:.4g} | {r.statement} | {r.detail} |" for r in self.results]
        return "\n".join(rows)


def check_assumptions(config: Configuration, names: tuple[str, ...] | None = None) -> AssumptionTable:
    """Check every assumption (or the named ones) on ``config``."""
    if names is None:
        chosen = ASSUMPTIONS
    else:
        unknown = [n for n in names if n not in _BY_NAME]
        if unknown:
            raise ValueError(f"unknown assumption(s) {unknown}; known: {sorted(_BY_NAME)}")
        chosen = tuple(_BY_NAME[n] for n in names)
    return AssumptionTable(config, [a.check(config) for a in chosen])


def get(name: str) -> Assumption:
    """The assumption called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown assumption {name!r}; known: {sorted(_BY_NAME)}") from None

