"""Statistics that decide a claim: paired differences over seeds with a t-interval, and the verdict they give.

A comparison here is always *learned minus control* (or *model A minus model B*) of one statistic, measured on
independent training seeds; the two arms of one seed share the seed (data draw, initialisation, minibatches),
so the differences are paired:

    delta_s = stat(control, seed s) - stat(learned, seed s),     s = 1..n,
    mean(delta) ± t_{0.975, n-1} sd(delta) / sqrt(n)                  (95% Student-t interval).

``verdict_for_difference`` reads the interval: ``"supported"`` when it lies entirely on the side the claim
predicts, ``"not supported"`` when it lies entirely on the other side, ``"undecided"`` when it contains 0 — with
the number of seeds that would shrink the interval's half-width below the observed ``|mean|`` (the half-width
falls like ``1/sqrt(n)``), so the reader sees what would decide it.  ``verdict_for_slope`` does the same for a
fitted rate: supported if the interval contains the predicted slope and excludes 0, not supported if it
excludes the predicted slope, undecided otherwise.  ``fit_loglog`` is the fitted rate: ``log y = a + b log x`` by
ordinary least squares over k points, ``b ± t_{0.975, k-2} se(b)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Interval", "mean_interval", "paired_difference", "verdict_for_difference", "verdict_for_slope",
           "fit_loglog", "normalised_profile_distance"]


@dataclass(frozen=True)
class Interval:
    """``mean`` of ``n`` values with its 95% Student-t interval ``[low, high]`` (``nan`` bounds if ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int
    sd: float

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Mean and Student-t interval of ``values`` (finite numbers; NaN or inf raise ``ValueError``)."""
    from scipy import stats

    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or data.size < 1:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError(f"values must be finite, got {data.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must satisfy 0 < confidence < 1, got {confidence}")
    mean = float(data.mean())
    if data.size < 2:
        return Interval(mean, math.nan, math.nan, 1, math.nan)
    sd = float(data.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, data.size - 1)) * sd / math.sqrt(data.size)
    return Interval(mean, mean - half, mean + half, int(data.size), sd)


def paired_difference(control: Sequence[float] | np.ndarray, learned: Sequence[float] | np.ndarray) -> Interval:
    """Interval of ``control - learned`` over paired seeds (equal lengths)."""
    controls, learneds = np.asarray(control, dtype=np.float64), np.asarray(learned, dtype=np.float64)
    if controls.shape != learneds.shape:
        raise ValueError(f"control and learned must pair up seed by seed, got {controls.shape} and {learneds.shape}")
    return mean_interval(controls - learneds)


def _seeds_to_decide(interval: Interval, limit: int = 100_000) -> int | None:
    """The smallest n whose 95% half-width ``t_{0.975, n-1} sd / sqrt(n)`` (the same sd) is below ``|mean|``;
    None if the mean is 0 or no n up to ``limit`` does it."""
    from scipy import stats

    if interval.n < 2 or interval.mean == 0 or not math.isfinite(interval.sd):
        return None
    for n in range(max(interval.n, 2), limit + 1):
        if float(stats.t.ppf(0.975, n - 1)) * interval.sd / math.sqrt(n) < abs(interval.mean):
            return n
    return None


def verdict_for_difference(interval: Interval, predicted_sign: int = 1) -> dict[str, Any]:
    """Verdict on ``predicted_sign * difference > 0`` from its interval (module docstring)."""
    if predicted_sign not in (1, -1):
        raise ValueError(f"predicted_sign must be +1 or -1, got {predicted_sign}")
    out: dict[str, Any] = {"interval": interval.to_dict()}
    if interval.n < 2:
        out.update(verdict="undecided", decide="needs at least 2 seeds for an interval")
        return out
    low, high = sorted((predicted_sign * interval.low, predicted_sign * interval.high))
    if low > 0:
        out["verdict"] = "supported"
    elif high < 0:
        out["verdict"] = "not supported"
    else:
        needed = _seeds_to_decide(interval)
        out["verdict"] = "undecided"
        out["decide"] = (f"the interval contains 0: about {needed} seeds at the same spread would separate a "
                         "difference of this size from 0" if needed else "no difference was measured")
        out["seeds_to_decide"] = needed
    return out


def fit_loglog(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """OLS fit of ``log y = a + b log x`` (``scipy.stats.linregress``) over k >= 3 points with distinct x.

    Returns ``slope`` b, ``intercept`` a, ``slope_se`` se(b), ``slope_ci95`` ``b ± t_{0.975, k-2} se(b)`` and
    ``points`` k.  ``ValueError`` for fewer than 3 pairs, unequal lengths, a value <= 0 or not finite, or a
    single x.
    """
    from scipy import stats

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or xs.size < 3:
        raise ValueError(f"x and y must be two 1-D sequences of the same length >= 3 (a slope with an interval), "
                         f"got shapes {xs.shape} and {ys.shape}")
    if not (np.all(np.isfinite(xs) & (xs > 0)) and np.all(np.isfinite(ys) & (ys > 0))):
        raise ValueError(f"x and y must be finite and > 0 for a log-log fit, got x={xs.tolist()}, y={ys.tolist()}")
    if np.ptp(xs) == 0:
        raise ValueError(f"x must hold at least two distinct values, got {xs.tolist()}")
    lx, ly = np.log(xs), np.log(ys)
    fit = stats.linregress(lx, ly)
    half = float(stats.t.ppf(0.975, lx.size - 2)) * float(fit.stderr)
    slope = float(fit.slope)
    return {"slope": slope, "intercept": float(fit.intercept), "slope_se": float(fit.stderr),
            "slope_ci95": [slope - half, slope + half], "points": int(lx.size)}


def verdict_for_slope(interval: Interval, predicted: float = -0.5) -> dict[str, Any]:
    """Verdict on a fitted log-log slope: supported if its interval holds ``predicted`` and excludes 0; not
    supported if it excludes ``predicted``; else undecided (the interval holds both)."""
    out: dict[str, Any] = {"interval": interval.to_dict(), "predicted": predicted}
    if interval.n < 2 or not math.isfinite(interval.half_width):
        out.update(verdict="undecided", decide="needs at least 2 seeds for an interval")
    elif not interval.contains(predicted):
        out["verdict"] = "not supported"
    elif not interval.contains(0.0):
        out["verdict"] = "supported"
    else:
        out["verdict"] = "undecided"
        seeds = _seeds_to_decide(replace(interval, mean=abs(predicted) / 2))
        out["decide"] = (f"the interval holds both {predicted} and 0; its half-width must fall below "
                         f"{abs(predicted) / 2:g}, about {seeds} seeds at the same spread")
        out["seeds_to_decide"] = seeds
    return out


def normalised_profile_distance(profile: Sequence[float] | np.ndarray, reference: Sequence[float] | np.ndarray, *,
                                first_lag: int = 1, max_lag: int | None = None) -> float:
    """Root-mean-square gap between ``profile(m)/profile(0)`` and ``reference(m)/reference(0)`` over lags
    ``first_lag..max_lag``: a scale-aware distance (unlike a Pearson correlation, a profile that barely moves
    with the lag is far from a reference that falls from 1 to 0.2).  ``nan`` if ``profile(0) = 0``."""
    p, r = np.asarray(profile, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    last = min(p.size, r.size) - 1 if max_lag is None else int(max_lag)
    if not 0 <= first_lag <= last < min(p.size, r.size):
        raise ValueError(f"need 0 <= first_lag <= max_lag < {min(p.size, r.size)}, got {first_lag}, {last}")
    if p[0] == 0 or r[0] == 0:
        return math.nan
    gap = p[first_lag: last + 1] / p[0] - r[first_lag: last + 1] / r[0]
    return float(np.sqrt(np.mean(gap**2)))
