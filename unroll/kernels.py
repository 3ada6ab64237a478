"""Stationary temporal covariance functions ``gamma(lag)`` and their Toeplitz matrices (docs/design.md §2).

Every family has a decay exponent ``nu > 0`` and a length scale ``ell > 0`` and is normalised so that
``gamma(0) = 1``; the spatial covariance ``Sigma`` carries the scale.  Positive definiteness of the
H x H Toeplitz matrix ``Gamma[i, j] = gamma(|i - j|)``, for every H, is guaranteed in the ranges stated
per family (the reason is in each class's ``positive_definite_reason``).  It is a guarantee in exact
arithmetic: for very smooth kernels (Gaussian, large Matérn ``nu``) with long length scales the smallest
eigenvalue of Gamma underflows to rounding level, so ``GaussianProcess`` always measures
``lambda_min(Gamma)``.

Families (lag ``r >= 0``):

=====================  ======================================  ==============  ======================
class                  gamma(r)                                nu range        decay of the tail
=====================  ======================================  ==============  ======================
``GammaExponential``   ``exp(-(r/ell)**nu)``                   ``0 < nu <= 2``  exponential (stretched)
``Matern``             ``2**(1-nu)/Gamma(nu) (k r)**nu K_nu(k r)``, ``k = sqrt(2 nu)/ell``
                                                               ``0 < nu <= 100`` exponential
``Polynomial``         ``(1 + r/ell)**(-nu)``                  ``nu > 0``       polynomial
``Logarithmic``        ``(1 + log(1 + r/ell))**(-nu)``         ``nu > 0``       logarithmic
``LagFunction``        any user function with ``gamma(0) = 1``  —               no guarantee
=====================  ======================================  ==============  ======================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special
import torch

from unroll._validate import check_int, check_positive

__all__ = [
    "Kernel",
    "GammaExponential",
    "Matern",
    "Polynomial",
    "Logarithmic",
    "LagFunction",
    "KERNEL_FAMILIES",
    "kernel_from_name",
]


class Kernel:
    """A stationary temporal covariance ``gamma`` of the lag, with ``gamma(0) = 1``.

    Call it on an array of lags (any shape; negative lags are read as ``|lag|``) to get the gamma
    values (a float64 ``numpy.ndarray``, or a float64 ``torch.Tensor`` if given a tensor).
    """

    #: short name used by the CLI and in reports
    name: str = "kernel"
    #: how the tail ``gamma(r)`` decays as ``r -> inf``
    decay: str = "unknown"
    #: why Gamma is positive definite for every H in the allowed range (or that it is not guaranteed)
    positive_definite_reason: str = "not guaranteed: measure lambda_min(Gamma)"

    nu: float
    ell: float

    def _values(self, lags: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, lags: Any) -> Any:
        as_torch = isinstance(lags, torch.Tensor)
        array = lags.detach().cpu().numpy() if as_torch else np.asarray(lags)
        array = np.abs(np.asarray(array, dtype=np.float64))
        if not np.all(np.isfinite(array)):
            raise ValueError("lags must be finite numbers")
        values = np.asarray(self._values(array), dtype=np.float64)
        return torch.from_numpy(values) if as_torch else values

    def toeplitz(self, frames: int) -> np.ndarray:
        """The ``(frames, frames)`` Toeplitz matrix ``Gamma[i, j] = gamma(|i - j|)`` (float64)."""
        frames = check_int("frames", frames, minimum=1)
        return scipy.linalg.toeplitz(self(np.arange(frames)))

    def params(self) -> dict[str, float]:
        """The keyword arguments that rebuild this kernel."""
        return {"nu": self.nu, "ell": self.ell}

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value:g}" for key, value in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params() == other.params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.params().items()))))


class GammaExponential(Kernel):
    """``gamma(r) = exp(-(r/ell)**nu)``, ``0 < nu <= 2`` (nu = 1 exponential, nu = 2 Gaussian)."""

    name = "gamma-exponential"
    decay = "exponential"
    nu_range = (0.0, 2.0)
    positive_definite_reason = (
        "for 0 < nu <= 2, exp(-|r|**nu) is the characteristic function of a symmetric nu-stable law, so it "
        "is positive definite on the real line (Bochner) and on every grid of frames; for nu > 2 it is not"
    )

    def __init__(self, *, nu: float = 1.0, ell: float = 1.0) -> None:
        self.nu = check_positive("nu", nu, upper=2.0)
        self.ell = check_positive("ell", ell)

    def _values(self, lags: np.ndarray) -> np.ndarray:
        return np.exp(-((lags / self.ell) ** self.nu))


class Matern(Kernel):
    """Matérn: ``gamma(r) = 2**(1-nu)/Gamma(nu) * (k r)**nu * K_nu(k r)``, ``k = sqrt(2 nu)/ell``.

    ``nu`` is the smoothness (``nu -> inf`` gives the Gaussian ``exp(-r**2 / (2 ell**2))``).
    Evaluated in log form with the exponentially scaled Bessel function so that long lags do not
    underflow early.  ``nu`` is capped at ``MAX_NU = 100``: beyond it ``K_nu`` overflows float64 at short
    lags, and the kernel is within 1/(4 nu) of its Gaussian limit — use ``GammaExponential(nu=2)``.
    """

    name = "matern"
    decay = "exponential"
    MAX_NU = 100.0
    nu_range = (0.0, MAX_NU)
    positive_definite_reason = (
        "the Matérn function is positive definite on R^n for every nu > 0 and ell > 0 (its spectral "
        "density (2 nu/ell^2 + w^2)^-(nu + n/2) is positive), hence on every grid of frames"
    )

    def __init__(self, *, nu: float = 1.5, ell: float = 1.0) -> None:
        self.nu = check_positive("nu", nu, upper=self.MAX_NU)
        self.ell = check_positive("ell", ell)

    def _values(self, lags: np.ndarray) -> np.ndarray:
        scaled = math.sqrt(2.0 * self.nu) * lags / self.ell
        values = np.ones_like(scaled)
        positive = scaled > 0
        argument = scaled[positive]
        log_value = (
            (1.0 - self.nu) * math.log(2.0)
            - math.lgamma(self.nu)
            + self.nu * np.log(argument)
            + np.log(scipy.special.kve(self.nu, argument))
            - argument
        )
        values[positive] = np.exp(log_value)
        return values


class Polynomial(Kernel):
    """``gamma(r) = (1 + r/ell)**(-nu)``, ``nu > 0``: the tail decays polynomially."""

    name = "polynomial"
    decay = "polynomial"
    nu_range = (0.0, math.inf)
    positive_definite_reason = (
        "(1 + r/ell)^-nu is completely monotone in r >= 0, i.e. a mixture of exp(-s r) (Bernstein), each "
        "positive definite on the real line; so is the mixture. It is also convex and decreasing to 0 "
        "(Pólya's criterion)"
    )

    def __init__(self, *, nu: float = 2.0, ell: float = 1.0) -> None:
        self.nu = check_positive("nu", nu)
        self.ell = check_positive("ell", ell)

    def _values(self, lags: np.ndarray) -> np.ndarray:
        return (1.0 + lags / self.ell) ** (-self.nu)


class Logarithmic(Kernel):
    """``gamma(r) = (1 + log(1 + r/ell))**(-nu)``, ``nu > 0``: the tail decays logarithmically."""

    name = "logarithmic"
    decay = "logarithmic"
    nu_range = (0.0, math.inf)
    positive_definite_reason = (
        "u^-nu is completely monotone and 1 + log(1 + r/ell) is a Bernstein function, so their composition "
        "is completely monotone in r >= 0, a mixture of exp(-s r), hence positive definite on the real line"
    )

    def __init__(self, *, nu: float = 1.0, ell: float = 1.0) -> None:
        self.nu = check_positive("nu", nu)
        self.ell = check_positive("ell", ell)

    def _values(self, lags: np.ndarray) -> np.ndarray:
        return (1.0 + np.log1p(lags / self.ell)) ** (-self.nu)


class LagFunction(Kernel):
    """A user-supplied ``gamma``: a vectorised function of a float64 array of lags ``>= 0``.

    ``gamma(0)`` must be 1 (the spatial covariance carries the scale).  Positive definiteness is not
    guaranteed: ``GaussianProcess`` measures ``lambda_min(Gamma)`` and rejects an indefinite Gamma.
    ``nu`` and ``ell`` are carried for reporting only.
    """

    decay = "user-supplied"

    def __init__(
        self,
        function: Callable[[np.ndarray], Any],
        *,
        name: str = "lag-function",
        nu: float = float("nan"),
        ell: float = float("nan"),
    ) -> None:
        if not callable(function):
            raise ValueError(f"function must be callable, got {function!r}")
        self.function = function
        self.name = name
        self.nu = nu
        self.ell = ell
        at_zero = float(np.asarray(function(np.zeros(1)), dtype=np.float64).reshape(-1)[0])
        if not math.isclose(at_zero, 1.0, rel_tol=0.0, abs_tol=1e-12):
            raise ValueError(f"a lag function must have gamma(0) = 1, got gamma(0) = {at_zero!r}")

    def _values(self, lags: np.ndarray) -> np.ndarray:
        values = np.asarray(self.function(lags), dtype=np.float64)
        if values.shape != lags.shape:
            values = np.broadcast_to(values, lags.shape).copy()
        if not np.all(np.isfinite(values)):
            raise ValueError(f"lag function {self.name!r} returned NaN or infinite values")
        return values

    def params(self) -> dict[str, float]:
        return {"nu": self.nu, "ell": self.ell}

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


KERNEL_FAMILIES: dict[str, type[Kernel]] = {
    cls.name: cls for cls in (GammaExponential, Matern, Polynomial, Logarithmic)
}


def kernel_from_name(name: str, *, nu: float, ell: float) -> Kernel:
    """Build a kernel from its family name (``"gamma-exponential"``, ``"matern"``, ``"polynomial"``,
    ``"logarithmic"``)."""
    try:
        family = KERNEL_FAMILIES[name]
    except KeyError:
        raise ValueError(f"kernel must be one of {sorted(KERNEL_FAMILIES)}, got {name!r}") from None
    return family(nu=nu, ell=ell)
