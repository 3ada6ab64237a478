"""Stationary temporal covariance functions ``gamma(lag)`` and their Toeplitz matrices (docs/design.md §2).

Every decay family has a decay exponent ``nu > 0`` and a length scale ``ell > 0`` (the damped cosine has
``ell`` and a ``period`` instead), and every kernel is normalised so that ``gamma(0) = 1``; the spatial
covariance ``Sigma`` carries the scale.  Positive definiteness of the
H x H Toeplitz matrix ``Gamma[i, j] = gamma(|i - j|)``, for every H, is guaranteed in the ranges stated
per family (the reason is in each class's ``positive_definite_reason``).  It is a guarantee in exact
arithmetic: for very smooth kernels (Gaussian, large Matérn ``nu``) with long length scales the smallest
eigenvalue of Gamma underflows to rounding level, so ``GaussianProcess`` always measures
``lambda_min(Gamma)``.

Families (lag ``r >= 0``).  Each but ``LagFunction`` is positive definite as a function on the real line
(gamma-exponential for ``nu <= 2`` and Matérn by Bochner, polynomial and logarithmic as completely monotone
mixtures of ``exp(-s r)`` (they are also convex decreasing: Pólya), the damped cosine as a product of
characteristic functions), so it also gives a valid Gamma on any increasing frame times,
``GaussianProcess(kernel, H, Sigma, times=...)``:

=====================  ======================================  ==============  ======================
class                  gamma(r)                                nu range        decay of the tail
=====================  ======================================  ==============  ======================
``GammaExponential``   ``exp(-(r/ell)**nu)``                   ``0 < nu <= 2``  exponential (stretched)
``Matern``             ``2**(1-nu)/Gamma(nu) (k r)**nu K_nu(k r)``, ``k = sqrt(2 nu)/ell``
                                                               ``0 < nu <= 100`` exponential
``Polynomial``         ``(1 + r/ell)**(-nu)``                  ``nu > 0``       polynomial
``Logarithmic``        ``(1 + log(1 + r/ell))**(-nu)``         ``nu > 0``       logarithmic
``DampedCosine``       ``exp(-r/ell) cos(2 pi r/period)``      — (no ``nu``)    exponential, oscillating
``LagFunction``        any user function with ``gamma(0) = 1``  —               no guarantee
=====================  ======================================  ==============  ======================

``KERNEL_FAMILIES`` holds the four decay families, which all take ``(nu, ell)``; ``NAMED_KERNELS`` adds the
damped cosine (``(ell, period)``, no decay exponent), the control whose correlation is not monotone in the lag.
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
    "DampedCosine",
    "LagFunction",
    "KERNEL_FAMILIES",
    "NAMED_KERNELS",
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


class DampedCosine(Kernel):
    """``gamma(r) = exp(-r/ell) * cos(2 pi r / period)``, ``ell > 0``, ``period > 0``.

    A correlation that is not monotone in the lag: it changes sign near ``r = period/4`` and oscillates
    under the envelope ``exp(-r/ell)`` (the control on which a purely positional decay predicts the wrong
    shape).  It has no decay exponent: ``nu`` is ``nan`` (as for a ``LagFunction``) and ``params()`` is
    ``{"ell", "period"}``.

    **Positive definite for every H**, with ``lambda_min(Gamma) >= (1 - q)/(1 + q)``, ``q = exp(-1/ell)``:

    * ``A[i, j] = q**|i-j|`` is positive definite: its symbol ``sum_m q**|m| e^{-i w m}`` is the Poisson
      kernel ``(1 - q^2)/(1 - 2 q cos w + q^2)``, whose minimum (at ``w = pi``) is ``(1 - q)/(1 + q) > 0``,
      and ``v^T A v = (1/2 pi) int |sum_j v_j e^{i j w}|^2 P(w) dw >= min P |v|^2``;
    * ``B[i, j] = cos(w0 (i - j))``, ``w0 = 2 pi/period``, is positive semidefinite of rank <= 2 with unit
      diagonal: ``cos(w0 (i - j)) = cos(w0 i) cos(w0 j) + sin(w0 i) sin(w0 j)``;
    * ``Gamma = A ∘ B`` (entrywise) and ``A - lambda_min(A) I >= 0``, so by the Schur product theorem
      ``(A - lambda_min(A) I) ∘ B >= 0``, i.e. ``Gamma >= lambda_min(A) (I ∘ B) = lambda_min(A) I``.
      Likewise ``lambda_max(Gamma) <= lambda_max(A) <= (1 + q)/(1 - q)``.

    The same argument on the real line (Bochner: ``exp(-|r|/ell)`` is the characteristic function of a
    Cauchy law and ``cos(w0 r)`` that of the two-point law at ``+-w0``; their product is the characteristic
    function of the convolution, whose density is positive) makes it positive definite on any frame times.
    """

    name = "damped-cosine"
    decay = "exponential, oscillating"
    #: no decay exponent (kept for code that reports ``kernel.nu``)
    nu = math.nan
    positive_definite_reason = (
        "Gamma = A ∘ B with A[i, j] = q^|i-j|, q = exp(-1/ell), positive definite (its symbol, the Poisson kernel "
        "(1-q^2)/(1-2q cos w+q^2), is >= (1-q)/(1+q)) and B[i, j] = cos(2 pi (i-j)/period) = cos cos + sin sin "
        "positive semidefinite with unit diagonal; by Schur's theorem lambda_min(A ∘ B) >= lambda_min(A) min_i "
        "B_ii >= (1-q)/(1+q) for every H. On the real line: the product of the characteristic functions of a "
        "Cauchy law and of the two-point law at +-2 pi/period (Bochner)"
    )

    def __init__(self, *, period: float, ell: float = 1.0) -> None:
        self.ell = check_positive("ell", ell)
        self.period = check_positive("period", period)

    def _values(self, lags: np.ndarray) -> np.ndarray:
        return np.exp(-lags / self.ell) * np.cos(2.0 * math.pi * lags / self.period)

    def params(self) -> dict[str, float]:
        return {"ell": self.ell, "period": self.period}

    def lambda_min_bound(self) -> float:
        """``(1 - q)/(1 + q)``, ``q = exp(-1/ell)``: a lower bound on ``lambda_min(Gamma)`` for every H (class
        docstring); ``tanh(1/(2 ell))``."""
        return math.tanh(0.5 / self.ell)


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


#: the decay families: each is built as ``family(nu=..., ell=...)``
KERNEL_FAMILIES: dict[str, type[Kernel]] = {
    cls.name: cls for cls in (GammaExponential, Matern, Polynomial, Logarithmic)
}
#: every kernel that has a name: the families plus ``"damped-cosine"`` (built as ``DampedCosine(ell=..., period=...)``)
NAMED_KERNELS: dict[str, type[Kernel]] = {**KERNEL_FAMILIES, DampedCosine.name: DampedCosine}


def kernel_from_name(name: str, *, nu: float | None = None, ell: float, period: float | None = None) -> Kernel:
    """Build a kernel from its name (a key of ``NAMED_KERNELS``).

    The families (``"gamma-exponential"``, ``"matern"``, ``"polynomial"``, ``"logarithmic"``) need ``nu`` and
    ``ell``; ``"damped-cosine"`` needs ``ell`` and ``period`` and has no ``nu``.  A parameter the kernel does not
    take, or a missing one, raises ``ValueError``.
    """
    if name not in NAMED_KERNELS:
        raise ValueError(f"kernel must be one of {sorted(NAMED_KERNELS)}, got {name!r}")
    if name == DampedCosine.name:
        if period is None:
            raise ValueError("kernel 'damped-cosine' needs period > 0 (gamma(m) = exp(-m/ell) cos(2 pi m/period))")
        if nu is not None:
            raise ValueError(f"kernel 'damped-cosine' has no decay exponent nu (got nu={nu!r}); give ell and period")
        return DampedCosine(ell=ell, period=period)
    if nu is None:
        raise ValueError(f"kernel {name!r} needs a decay exponent nu > 0")
    if period is not None:
        raise ValueError(f"period applies only to the 'damped-cosine' kernel, not to {name!r} (got period={period!r})")
    return KERNEL_FAMILIES[name](nu=nu, ell=ell)
