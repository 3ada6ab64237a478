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

import mpmath
import numpy as np
import scipy.linalg
import scipy.special
import torch

from unroll._validate import InputTypeError, NonFiniteError, check_int, check_positive, check_real, to_real_tensor

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
        """``gamma(|lags|)``: float64, of the shape of ``lags``.

        Raises:
            TypeError: complex, bool, string or object lags (a complex lag is never cut to its real part).
            ValueError: NaN or infinite lags.
            NonFiniteError: the kernel produced a NaN or inf (a bug or a user function's fault: never silent).
        """
        as_torch = isinstance(lags, torch.Tensor)
        array = np.abs(to_real_tensor("lags", lags).detach().cpu().numpy().astype(np.float64, copy=False))
        if not np.all(np.isfinite(array)):
            raise ValueError("lags must be finite numbers")
        values = np.asarray(self._values(array), dtype=np.float64)
        if not np.all(np.isfinite(values)):
            bad = array[~np.isfinite(values)]
            raise NonFiniteError(f"{self!r} produced {bad.size} NaN or infinite value(s), first at lag {bad[0]!r}")
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
        return type(self) is type(other) and self.params() == other.params()

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
        with np.errstate(over="ignore"):  # (r/ell)**nu = inf gives exp(-inf) = 0, the correct limit
            return np.exp(-((lags / self.ell) ** self.nu))


#: Matérn arguments ``z = sqrt(2 nu) r/ell`` at or above which ``gamma`` underflows to 0 for every ``nu <= MAX_NU``
#: (``log gamma(1e4) < -9000`` at ``nu = 100``, less for smaller ``nu``; ``gamma`` decreases in ``z``).  Beyond
#: ``z ~ 1.7e9`` scipy's ``kve`` returns NaN, so these are not evaluated.
MATERN_ZERO_ARGUMENT = 1e4
#: below this argument ``gamma`` has its small-argument form: 1 for ``nu >= 1``, ``_matern_near_zero`` for ``nu < 1``
#: (scipy's ``kve`` overflows there for every order ``<= 2``)
MATERN_TINY_ARGUMENT = 1e-150


class Matern(Kernel):
    """Matérn: ``gamma(r) = 2**(1-nu)/Gamma(nu) * (k r)**nu * K_nu(k r)``, ``k = sqrt(2 nu)/ell``.

    ``nu`` is the smoothness (``nu -> inf`` gives the Gaussian ``exp(-r**2 / (2 ell**2))``).  Accurate (to 2e-13
    relative, checked against mpmath) for every ``0 < nu <= 100``, ``ell > 0`` and lag, with ``z = k r``:

    * in log form with the exponentially scaled Bessel function ``kve`` wherever it is finite;
    * ``z`` is handled through ``log z`` (``z`` itself underflows for ``r/ell < 1e-308``, where ``gamma`` is far from
      1 for small ``nu``: 0.018 at ``nu = 1e-5``, ``r/ell = 1e-400``);
    * ``z >= 1e4``: 0 (``gamma`` underflows there for every ``nu <= 100``; scipy's ``kve`` is NaN past 1.7e9);
    * where ``K_nu(z)`` overflows (small ``z``: below 0.036 at ``nu = 100``, 1e-122 at ``nu = 2.5``) by the
      three-term recurrence of ``g_nu(z) = gamma`` in the order, ``g_{nu+1} = g_nu + z^2 g_{nu-1} / (4 nu (nu-1))``
      (``K_{nu+1} = K_{nu-1} + (2 nu/z) K_nu``; all terms positive, so no cancellation) from orders in ``(0, 2]``;
      the value is 1 to rounding once ``z^2 / (4 (nu - 1)) < 2^-54`` (``1 - gamma <= z^2 Var/2`` with ``Var =
      1/(2(nu-1))`` the variance of the spectral law, ``nu > 1``), and used there;
    * ``z < 1e-150``: 1 for ``nu >= 1``, and for ``nu < 1`` (where scipy's ``kve`` overflows below 1.2e-305 even
      though ``K_nu`` does not) ``1 - Gamma(1-nu)/Gamma(1+nu) (z/2)^(2 nu)`` up to a relative ``O(z^2)``.

    ``nu`` is capped at ``MAX_NU = 100``: beyond it the kernel is within 1/(4 nu) of its Gaussian limit — use
    ``GammaExponential(nu=2)``.
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
        values = np.ones_like(lags)
        positive = lags > 0
        # log z = log r - log ell + log sqrt(2 nu): z itself can underflow to 0 (r/ell = 1e-400) where gamma is
        # far from 1 for small nu (nu = 1e-5: 0.018), or overflow
        log_argument = np.log(lags[positive]) + (0.5 * math.log(2.0 * self.nu) - math.log(self.ell))
        with np.errstate(over="ignore", under="ignore"):
            argument = (lags[positive] / self.ell) * math.sqrt(2.0 * self.nu)  # exact to rounding where it exists
        values[positive] = _matern_correlation(self.nu, argument, log_argument)
        return values


def _matern_direct(nu: float, z: np.ndarray) -> np.ndarray:
    """``g_nu(z) = 2**(1-nu)/Gamma(nu) z**nu K_nu(z)`` in log form; NaN or inf where ``kve`` overflows."""
    with np.errstate(all="ignore"):
        log_value = ((1.0 - nu) * math.log(2.0) - math.lgamma(nu) + nu * np.log(z)
                     + np.log(scipy.special.kve(nu, z)) - z)
        return np.exp(log_value)


def _matern_correlation(nu: float, z: np.ndarray, log_z: np.ndarray) -> np.ndarray:
    """The Matérn correlation ``g_nu(z) = 2**(1-nu)/Gamma(nu) z**nu K_nu(z)``, ``0 < nu <= 100``, given ``z`` (which
    may have under- or overflowed to 0 or inf) and ``log z`` (float64 arrays of one shape); see :class:`Matern` for
    how each range of ``z`` is evaluated."""
    values = np.full_like(log_z, np.nan)
    zero = log_z >= math.log(MATERN_ZERO_ARGUMENT)
    values[zero] = 0.0
    tiny = log_z < math.log(MATERN_TINY_ARGUMENT)
    if nu >= 1.0:
        # nu > 1: 1 - g <= z^2 Var/2 = z^2/(4 (nu - 1)) < 2^-54 rounds to 1; nu = 1: 1 - g ~ z^2 log(2/z)/2 < 1e-297
        near_one = tiny.copy()
        if nu > 1.0:
            near_one |= 2.0 * log_z < math.log(4.0 * (nu - 1.0)) - 54.0 * math.log(2.0)
        values[near_one] = 1.0
    else:
        near_one = tiny  # the log form would lose |nu log z| eps, and kve overflows below 1e-305
        if tiny.any():
            values[tiny] = _matern_near_zero(nu, log_z[tiny])
    rest = ~zero & ~near_one
    values[rest] = _matern_direct(nu, z[rest])
    overflowed = rest & ~np.isfinite(values)
    if overflowed.any() and nu > 2.0:  # K_nu(z) overflows: small z, large nu
        values[overflowed] = _matern_recurrence(nu, z[overflowed])
    still = ~np.isfinite(values)
    if still.any():  # not expected (see Matern): the exact value at high precision rather than a wrong one
        values[still] = [_matern_mpmath(nu, float(argument)) for argument in z[still]]
    return values


def _matern_recurrence(nu: float, z: np.ndarray) -> np.ndarray:
    """``g_nu(z)`` for ``nu > 2`` by ``g_{m+1} = g_m + z^2 g_{m-1} / (4 m (m - 1))`` from the orders
    ``mu = nu - ceil(nu) + 1`` in ``(0, 1]`` and ``mu + 1`` (where ``kve`` is finite for ``z > 1.2e-152``)."""
    steps = math.ceil(nu) - 1
    order = nu - steps + 1.0  # mu + 1, in (1, 2]
    previous, current = _matern_direct(order - 1.0, z), _matern_direct(order, z)
    for _ in range(steps - 1):
        previous, current = current, current + z * z * previous / (4.0 * order * (order - 1.0))
        order += 1.0
    return current


def _matern_near_zero(nu: float, log_z: np.ndarray) -> np.ndarray:
    """``g_nu(z) = 1 - Gamma(1-nu)/Gamma(1+nu) (z/2)^(2 nu)`` for ``nu < 1``, ``z < 1e-150``: the leading terms of
    ``K_nu = pi/2 (I_-nu - I_nu)/sin(nu pi)``; the next are a relative ``O(z^2/(1 - nu)) < 1e-284``.  Evaluated as
    ``-expm1(log ratio + 2 nu (log z - log 2))`` from ``log z`` (``z`` may underflow), the log ratio by mpmath at a
    precision that keeps ``1 -+ nu`` exact (it is about ``2 euler nu`` for small ``nu``, which
    ``lgamma(1 - nu) - lgamma(1 + nu)`` in float64 would lose)."""
    if nu < 1e-8:  # log Gamma(1-nu) - log Gamma(1+nu) = 2 (euler nu + zeta(3) nu^3/3 + ...)
        log_ratio = 2.0 * float(mpmath.euler) * nu
    else:
        with mpmath.workprec(64 + max(0, -math.frexp(nu)[1])):
            order = mpmath.mpf(nu)
            log_ratio = float(mpmath.loggamma(1 - order) - mpmath.loggamma(1 + order))
    return -np.expm1(log_ratio + 2.0 * nu * (log_z - math.log(2.0)))


def _matern_mpmath(nu: float, z: float) -> float:
    """``g_nu(z)`` with mpmath's ``besselk`` at 40 digits (slow: the last resort; the tests have their own oracle)."""
    with mpmath.workdps(40):
        order, argument = mpmath.mpf(nu), mpmath.mpf(z)
        return float(mpmath.power(2, 1 - order) / mpmath.gamma(order) * mpmath.power(argument, order)
                     * mpmath.besselk(order, argument))


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
        # exp(-nu log1p(r/ell)), not (1 + r/ell)**-nu: 1 + r/ell rounds to 1 for r/ell < 1e-16, which a large
        # nu would turn into gamma = 1 instead of exp(-nu r/ell) (nu = ell = 1e300: 1 instead of e^-1)
        with np.errstate(over="ignore"):
            return np.exp(-self.nu * np.log1p(lags / self.ell))


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
        # exp(-nu log1p(log1p(r/ell))): accurate for r/ell << 1 and any nu (see Polynomial)
        with np.errstate(over="ignore"):
            return np.exp(-self.nu * np.log1p(np.log1p(lags / self.ell)))


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
        # the phase from fmod (exact in IEEE arithmetic): 2 pi r/period itself overflows, or loses all its
        # digits, for a period far below the lag
        with np.errstate(over="ignore"):
            envelope = np.exp(-lags / self.ell)
            return envelope * np.cos(2.0 * math.pi * (np.fmod(lags, self.period) / self.period))

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
            raise InputTypeError(f"function must be callable, got {function!r}")
        if not isinstance(name, str):
            raise InputTypeError(f"name must be a string, got {name!r}")
        self.function = function
        self.name = name
        self.nu = check_real("nu", nu)
        self.ell = check_real("ell", ell)
        at_zero = float(self._values(np.zeros(1))[0])
        if not math.isclose(at_zero, 1.0, rel_tol=0.0, abs_tol=1e-12):
            raise ValueError(f"a lag function must have gamma(0) = 1, got gamma(0) = {at_zero!r}")

    def _values(self, lags: np.ndarray) -> np.ndarray:
        returned = self.function(lags)
        values = to_real_tensor(f"the values of lag function {self.name!r}", returned).numpy().astype(np.float64)
        if values.shape != lags.shape:
            try:
                values = np.broadcast_to(values, lags.shape).copy()
            except ValueError:
                raise ValueError(f"lag function {self.name!r} returned shape {values.shape} for lags of shape "
                                 f"{lags.shape}") from None
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
KERNEL_FAMILIES: dict[str, type[GammaExponential | Matern | Polynomial | Logarithmic]] = {
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
    if not isinstance(name, str) or name not in NAMED_KERNELS:
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
