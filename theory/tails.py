"""Truncation tails ``T_J = sum_{J < m <= H-1} |gamma(m)|`` per kernel family: sympy forms, numbers, J(eps).

The four decay families of ``unroll.data.kernels`` are positive and non-increasing in the lag ``r``, so two
elementary inequalities hold for them (``f`` = gamma as a function of a real lag):

* (I)  integral bound  ``sum_{m=J+1}^{N} f(m) <= int_J^N f(r) dr``   (f non-increasing);
* (F)  finite bound    ``sum_{m=J+1}^{H-1} f(m) <= (H-1-J) f(J+1)``  (f non-increasing).

Family bounds on the infinite tail ``sum_{m>J} gamma(m)`` (``inf`` where it diverges):

* gamma-exponential ``exp(-(r/ell)^nu)``: by (I), ``(ell/nu) * Gamma(1/nu, (J/ell)^nu)`` (upper incomplete
  gamma function);
* polynomial ``(1+r/ell)^-nu``: by (I) on ``[J, H-1]``,
  ``ell/(1-nu) * ((1+(H-1)/ell)^(1-nu) - (1+J/ell)^(1-nu))`` (``ell*log((ell+H-1)/(ell+J))`` at nu = 1);
  as ``H -> inf`` this is ``ell/(nu-1) * (1+J/ell)^(1-nu)`` for nu > 1 and diverges for nu <= 1;
* Matérn ``c_nu x^nu K_nu(x)``, ``x = k r``, ``k = sqrt(2 nu)/ell``, ``c_nu = 2^(1-nu)/Gamma(nu)``: from
  ``K_nu(x) = sqrt(pi/(2x)) e^-x / Gamma(nu+1/2) * int_0^inf e^-u u^(nu-1/2) (1 + u/(2x))^(nu-1/2) du``
  (valid for nu > -1/2), ``g(x) = sqrt(x) e^x K_nu(x)`` is non-increasing in x for nu >= 1/2 and
  non-decreasing with limit ``sqrt(pi/2)`` for nu < 1/2.  Hence, with ``x_1 = k (J+1)``:
  - nu >= 1/2: ``gamma(m) <= gamma(J+1) (m/(J+1))^(nu-1/2) e^{-k(m-J-1)}
    <= gamma(J+1) q^(m-J-1)``, ``q = exp((nu-1/2)/(J+1) - k)`` (using ``log(1+z) <= z``), so
    ``T_J <= gamma(J+1) / (1 - q)`` when ``q < 1`` (else no H-free bound from this argument);
  - nu < 1/2: ``gamma(r) <= c_nu sqrt(pi/2) x^(nu-1/2) e^-x`` with ``x^(nu-1/2)`` decreasing, so
    ``T_J <= c_nu sqrt(pi/2) x_1^(nu-1/2) e^{-x_1} / (1 - e^{-k})``;
* logarithmic ``(1+log(1+r/ell))^-nu``: the tail diverges for every nu (slower than any power): only the
  finite bound (F) is available and J must grow with H.

The bound used for a configuration with H frames is ``min(family bound, (F))`` (and 0 once ``J >= H-1``).

The damped cosine ``exp(-r/ell) cos(2 pi r/period)`` is neither positive nor monotone, so (I) and (F) do not
apply to it; instead ``|gamma(m)| <= q^m``, ``q = exp(-1/ell)``, and the geometric sum gives, for every period,

    T_J <= sum_{m=J+1}^{H-1} q^m = q^(J+1) (1 - q^(H-1-J)) / (1 - q)      (H-free: q^(J+1) / (1 - q)),

which is below ``(H-1-J) q^(J+1)``, so it is the bound used.  Its ``nu`` argument is ignored (it has none);
the functions that evaluate gamma itself (``lag_values``, ``tail_sum``, ``taper_bias_sum``) need ``period``.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import scipy.special
import sympy as sp

from unroll._validate import check_int, check_positive

__all__ = [
    "FAMILIES",
    "SYMBOLS",
    "lag_expression",
    "lag_values",
    "tail_sum",
    "taper_bias_sum",
    "family_tail_bound",
    "tail_bound",
    "tail_bound_expression",
    "bands_needed",
    "bands_needed_expression",
    "summable",
]

FAMILIES = ("gamma-exponential", "matern", "polynomial", "logarithmic", "damped-cosine")
_DAMPED_COSINE = "damped-cosine"  # the family without a decay exponent nu

r = sp.Symbol("r", nonnegative=True)
nu = sp.Symbol("nu", positive=True)
ell = sp.Symbol("ell", positive=True)
period = sp.Symbol("period", positive=True)
J = sp.Symbol("J", integer=True, nonnegative=True)
H = sp.Symbol("H", integer=True, positive=True)
eps = sp.Symbol("epsilon", positive=True)

#: the symbols of this module by name
SYMBOLS = {"r": r, "nu": nu, "ell": ell, "period": period, "J": J, "H": H, "epsilon": eps}


def _check_family(family: str) -> str:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    return family


def _check_period(family: str, period_value: float | None) -> float:
    if period_value is None:
        raise ValueError(f"family {family!r} needs period > 0 (gamma(m) = exp(-m/ell) cos(2 pi m/period))")
    return check_positive("period", period_value)


def _check_parameters(family: str, nu_value: float, ell_value: float) -> None:
    """``ell > 0``, and ``nu > 0`` for the families that have one (the damped cosine's nu is ignored)."""
    _check_family(family)
    if family != _DAMPED_COSINE:
        check_positive("nu", nu_value)
    check_positive("ell", ell_value)


def lag_expression(family: str) -> sp.Expr:
    """``gamma(r)`` of a family as a sympy expression in ``r, nu, ell`` (and ``period`` for the damped cosine;
    same formulas as unroll.data.kernels)."""
    _check_family(family)
    if family == _DAMPED_COSINE:
        return sp.exp(-r / ell) * sp.cos(2 * sp.pi * r / period)
    if family == "gamma-exponential":
        return sp.exp(-((r / ell) ** nu))
    if family == "polynomial":
        return (1 + r / ell) ** (-nu)
    if family == "logarithmic":
        return (1 + sp.log(1 + r / ell)) ** (-nu)
    x = sp.sqrt(2 * nu) * r / ell
    return 2 ** (1 - nu) / sp.gamma(nu) * x**nu * sp.besselk(nu, x)


def lag_values(family: str, nu_value: float, ell_value: float, lags: np.ndarray,
               period: float | None = None) -> np.ndarray:
    """``gamma(lags)`` (float64) for a family, computed here independently of ``unroll.data.kernels``
    (``period`` only, and required, for the damped cosine)."""
    _check_family(family)
    lags = np.abs(np.asarray(lags, dtype=np.float64))
    if family == _DAMPED_COSINE:
        return np.exp(-lags / ell_value) * np.cos(2.0 * math.pi * lags / _check_period(family, period))
    if family == "gamma-exponential":
        return np.exp(-((lags / ell_value) ** nu_value))
    if family == "polynomial":
        return (1.0 + lags / ell_value) ** (-nu_value)
    if family == "logarithmic":
        return (1.0 + np.log1p(lags / ell_value)) ** (-nu_value)
    x = math.sqrt(2.0 * nu_value) * lags / ell_value
    out = np.ones_like(x)
    pos = x > 0
    xp = x[pos]
    log_value = (
        (1.0 - nu_value) * math.log(2.0) - math.lgamma(nu_value) + nu_value * np.log(xp)
        + np.log(scipy.special.kve(nu_value, xp)) - xp
    )
    out[pos] = np.exp(log_value)
    return out


def summable(family: str, nu_value: float) -> bool:
    """Whether ``sum_m |gamma(m)|`` converges (an H-independent tail bound exists)."""
    _check_family(family)
    if family == "logarithmic":
        return False
    if family == "polynomial":
        return nu_value > 1.0
    return True


def _check_bands_frames(bands: int, frames: int | None) -> tuple[int, int | None]:
    bands = check_int("bands", bands, minimum=0)
    if frames is not None:
        frames = check_int("frames", frames, minimum=1)
    return bands, frames


def tail_sum(family: str, nu_value: float, ell_value: float, bands: int, frames: int,
             period: float | None = None) -> float:
    """Exact finite tail ``sum_{m=J+1}^{H-1} |gamma(m)|`` by summation (the oracle for the bounds)."""
    bands, frames = check_int("bands", bands, minimum=0), check_int("frames", frames, minimum=1)
    if bands >= frames - 1:
        return 0.0
    lags = np.arange(bands + 1, frames, dtype=np.float64)
    return float(np.sum(np.abs(lag_values(family, nu_value, ell_value, lags, period))))


def taper_bias_sum(family: str, nu_value: float, ell_value: float, bands: int, frames: int,
                   period: float | None = None) -> float:
    """``sum_{m=1}^{min(J, H-1)} |gamma(m)| m/(J+1)``: what the triangular taper removes inside the band."""
    bands, frames = check_int("bands", bands, minimum=0), check_int("frames", frames, minimum=1)
    top = min(bands, frames - 1)
    if top < 1:
        return 0.0
    lags = np.arange(1, top + 1, dtype=np.float64)
    return float(np.sum(np.abs(lag_values(family, nu_value, ell_value, lags, period)) * lags / (bands + 1)))


def _geometric_tail(ell_value: float, bands: int, frames: int | None) -> float:
    """``sum_{m=J+1}^{H-1} q^m`` (``H = inf`` if ``frames`` is None), ``q = exp(-1/ell)``."""
    first = math.exp(-(bands + 1) / ell_value)
    if frames is None:
        return first / -math.expm1(-1.0 / ell_value)
    if bands >= frames - 1:
        return 0.0
    return first * -math.expm1(-(frames - 1 - bands) / ell_value) / -math.expm1(-1.0 / ell_value)


def family_tail_bound(family: str, nu_value: float, ell_value: float, bands: int,
                      frames: int | None = None) -> float:
    """The family's bound on ``sum_{m>J} |gamma(m)|`` (module docstring); ``inf`` if none exists.

    For the polynomial family the integral is taken up to ``H-1`` when ``frames`` is given (so it is finite
    for every nu), else to infinity; the damped cosine's geometric bound likewise (its ``nu`` is ignored).
    """
    bands, frames = _check_bands_frames(bands, frames)
    _check_parameters(family, nu_value, ell_value)
    if family == _DAMPED_COSINE:
        return _geometric_tail(ell_value, bands, frames)
    j = float(bands)
    if family == "gamma-exponential":
        a = 1.0 / nu_value
        return float(ell_value / nu_value * scipy.special.gamma(a)
                     * scipy.special.gammaincc(a, (j / ell_value) ** nu_value))
    if family == "polynomial":
        if frames is None:
            if nu_value <= 1.0:
                return math.inf
            return ell_value / (nu_value - 1.0) * (1.0 + j / ell_value) ** (1.0 - nu_value)
        top = float(max(frames - 1, bands))
        if nu_value == 1.0:
            return ell_value * math.log((ell_value + top) / (ell_value + j))
        return ell_value / (1.0 - nu_value) * (
            (1.0 + top / ell_value) ** (1.0 - nu_value) - (1.0 + j / ell_value) ** (1.0 - nu_value))
    if family == "matern":
        k = math.sqrt(2.0 * nu_value) / ell_value
        first = float(lag_values("matern", nu_value, ell_value, np.array([j + 1.0]))[0])
        if nu_value >= 0.5:
            log_q = (nu_value - 0.5) / (j + 1.0) - k
            if log_q >= 0.0:
                return math.inf
            return first / (-math.expm1(log_q))
        x1 = k * (j + 1.0)
        c_nu = 2.0 ** (1.0 - nu_value) / math.gamma(nu_value)
        return c_nu * math.sqrt(math.pi / 2.0) * x1 ** (nu_value - 0.5) * math.exp(-x1) / (-math.expm1(-k))
    _check_family(family)
    return math.inf  # logarithmic


def tail_bound(family: str, nu_value: float, ell_value: float, bands: int, frames: int | None = None) -> float:
    """Bound on the tail ``T_J``: ``min(family bound, (H-1-J) gamma(J+1))``; 0 once ``J >= H-1``.

    For the damped cosine: the geometric bound alone (``(F)`` does not hold for it, and its envelope form
    ``(H-1-J) q^(J+1)`` is never smaller).
    """
    bands, frames = _check_bands_frames(bands, frames)
    family_bound = family_tail_bound(family, nu_value, ell_value, bands, frames)
    if frames is None or family == _DAMPED_COSINE:
        return family_bound
    if bands >= frames - 1:
        return 0.0
    first = float(lag_values(family, nu_value, ell_value, np.array([bands + 1.0]))[0])
    return min(family_bound, (frames - 1 - bands) * first)


@cache
def tail_bound_expression(family: str, finite: bool = True) -> sp.Expr:
    """sympy form of :func:`tail_bound` (``finite=True``: with H; else the H-free family bound).

    Symbols: ``J, nu, ell`` (and ``H``).  ``lambdify(..., modules="scipy")`` evaluates it.
    """
    _check_family(family)
    if family == _DAMPED_COSINE:
        q = sp.exp(-1 / ell)
        if not finite:
            return q ** (J + 1) / (1 - q)
        return sp.Piecewise((0, J >= H - 1), (q ** (J + 1) * (1 - q ** (H - 1 - J)) / (1 - q), True))
    first = lag_expression(family).subs(r, J + 1)
    if family == "gamma-exponential":
        family_bound = ell / nu * sp.uppergamma(1 / nu, (J / ell) ** nu)
    elif family == "polynomial":
        if finite:
            family_bound = sp.Piecewise(
                (ell * sp.log((ell + H - 1) / (ell + J)), sp.Eq(nu, 1)),
                (ell / (1 - nu) * ((1 + (H - 1) / ell) ** (1 - nu) - (1 + J / ell) ** (1 - nu)), True),
            )
        else:
            family_bound = sp.Piecewise((ell / (nu - 1) * (1 + J / ell) ** (1 - nu), nu > 1), (sp.oo, True))
    elif family == "matern":
        k = sp.sqrt(2 * nu) / ell
        log_q = (nu - sp.Rational(1, 2)) / (J + 1) - k
        x1 = k * (J + 1)
        small_nu = (2 ** (1 - nu) / sp.gamma(nu) * sp.sqrt(sp.pi / 2) * x1 ** (nu - sp.Rational(1, 2))
                    * sp.exp(-x1) / (1 - sp.exp(-k)))
        family_bound = sp.Piecewise(
            (small_nu, nu < sp.Rational(1, 2)),
            (first / (1 - sp.exp(log_q)), log_q < 0),
            (sp.oo, True),
        )
    else:
        family_bound = sp.oo
    if not finite:
        return family_bound
    return sp.Piecewise((0, J >= H - 1), (sp.Min(family_bound, (H - 1 - J) * first), True))


def bands_needed(family: str, nu_value: float, ell_value: float, epsilon: float,
                 frames: int | None = None) -> int | None:
    """Smallest ``J >= 0`` with ``tail_bound(J) <= epsilon`` (the bound is non-increasing in J).

    Returns ``None`` when no J works (no frames given and the tail is not summable, or the Matérn
    argument gives no H-free bound).  With ``frames`` the answer is at most ``H-1``.
    """
    check_positive("epsilon", epsilon)
    if frames is None and not summable(family, nu_value):
        return None
    upper = frames - 1 if frames is not None else None

    def ok(j: int) -> bool:
        return tail_bound(family, nu_value, ell_value, j, frames) <= epsilon

    if ok(0):
        return 0
    # exponential search then bisection on the monotone predicate
    high = 1
    while not ok(high):
        high *= 2
        if upper is not None and high >= upper:
            high = upper
            break
        if high > 2**40:
            return None
    low = high // 2
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high


def bands_needed_expression(family: str) -> sp.Expr:
    """J(eps, nu, ell) in closed form (polynomial, exponential) or to leading order as ``eps -> 0``.

    * polynomial, nu > 1: solving ``ell/(nu-1) (1+J/ell)^(1-nu) = eps`` exactly;
    * gamma-exponential: ``J ~ ell * log(ell/(nu eps))^(1/nu)`` (exact for nu = 1: ``ell log(ell/eps)``);
    * Matérn: ``J ~ ell/sqrt(2 nu) * log(1/eps)`` (the exponential rate of the tail);
    * logarithmic: no H-free J exists (``oo``): J must grow with H;
    * damped cosine: solving ``q^(J+1)/(1-q) = eps`` exactly, ``J = ell log(1/(eps (1 - e^(-1/ell)))) - 1``
      (for every period).
    """
    _check_family(family)
    if family == _DAMPED_COSINE:
        return ell * sp.log(1 / (eps * (1 - sp.exp(-1 / ell)))) - 1
    if family == "polynomial":
        return sp.Piecewise((ell * ((ell / (eps * (nu - 1))) ** (1 / (nu - 1)) - 1), nu > 1), (sp.oo, True))
    if family == "gamma-exponential":
        return ell * sp.log(ell / (nu * eps)) ** (1 / nu)
    if family == "matern":
        return ell / sp.sqrt(2 * nu) * sp.log(1 / eps)
    return sp.oo
