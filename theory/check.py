"""``theory.check(bound, measured)``: does a bound hold for a measurement, and by what slack?"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from unroll._validate import check_real

__all__ = ["CheckResult", "check", "check_report"]


@dataclass(frozen=True)
class CheckResult:
    """``holds = measured <= bound``; ``slack = bound / measured`` (``inf`` if measured is 0, ``nan`` if the
    bound is unknown).  A slack below 1 is a violated bound: a bug in the bound or in the code."""

    bound: float
    measured: float
    holds: bool
    slack: float

    def __bool__(self) -> bool:
        return self.holds

    def __str__(self) -> str:
        verdict = "holds" if self.holds else "VIOLATED"
        return f"measured {self.measured:.3e} <= bound {self.bound:.3e}: {verdict} (slack {self.slack:.3g})"


def check(bound: Any, measured: float) -> CheckResult:
    """Compare a measured error with a bound (a float, or anything with ``.bound``/a ``float()``).

    Raises ``ValueError`` for a negative or NaN measurement (an error is a norm: ``>= 0``) and for a negative
    bound (a bound on a norm is ``>= 0``; ``inf`` is allowed, NaN or ``None`` means unknown); ``TypeError`` for
    values that are not real numbers.
    """
    raw = getattr(bound, "bound", bound)
    value = math.nan if raw is None else check_real("bound", raw)
    measured = check_real("measured", measured)
    if math.isnan(measured) or measured < 0:
        raise ValueError(f"measured must be a number >= 0, got {measured!r}")
    if value < 0:
        raise ValueError(f"bound must be >= 0 (a bound on a norm; NaN or None if unknown), got {value!r}")
    if math.isnan(value):
        return CheckResult(value, measured, False, math.nan)
    slack = math.inf if measured == 0 else value / measured
    return CheckResult(value, measured, measured <= value, slack)


def check_report(report: Any) -> dict[str, CheckResult]:
    """``check`` every part of an ``unroll.verify`` report (parts with ``bound=None`` give slack nan)."""
    return {name: check(part.bound, part.measured) for name, part in report.parts.items()}
