"""One concrete configuration (kernel, nu, ell, H, d, Sigma, J, L, taper, t) and its spectral numbers.

Everything the assumptions and bounds need is computed here once, in float64 numpy, from the lag values
``gamma(0..H-1)`` and the eigenvalues of ``Sigma`` — independently of ``unroll.construction.gd`` (whose numbers the
tests compare against).

Notation (docs/design.md §3-4): ``a = alpha_t^2 = e^-t``, ``s = sigma_t^2 = 1 - e^-t``;
``C_t = a Gamma ⊗ Sigma + s I`` and ``C_{t,J} = a Gamma_J ⊗ Sigma + s I`` with ``Gamma_J = Gamma ∘ W``
(``W`` the plain cut or the triangular taper).  The eigenvalues of a Kronecker product are the products
``lam_i mu_a``, so ``lambda_min(C_{t,J}) = s + a min(lam_min(Gamma_J) mu_min, lam_min(Gamma_J) mu_max)``
(the second term matters only when ``Gamma_J`` is indefinite) and
``lambda_max(C_{t,J}) = s + a max(lam_max(Gamma_J) mu_max, lam_min(Gamma_J) mu_min)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg

from theory import tails
from unroll._validate import NOT_TOEPLITZ_MESSAGE, check_int, check_positive
from unroll.linalg.symbol import DENSE_MAX_FRAMES, symbol_extremes

__all__ = ["Configuration", "UNIT_ROUNDOFF", "DEFAULT_T0", "DEFAULT_MAX_CONDITION"]

#: unit roundoff of IEEE float64, ``u = 2^-53``
UNIT_ROUNDOFF = 2.0**-53
#: default early-stopping diffusion time t0 of the theory
DEFAULT_T0 = 1e-3
#: default bound on the condition number of Sigma assumed by the theory
DEFAULT_MAX_CONDITION = 1e4


def _family_of(kernel: Any) -> str | None:
    name = getattr(kernel, "name", None)
    return name if name in tails.FAMILIES else None




def _toeplitz_extremes(values: np.ndarray) -> tuple[float, float]:
    """Extreme eigenvalues of ``toeplitz(values)``: scipy's dense ``eigvalsh`` up to ``DENSE_MAX_FRAMES``, the symbol's
    range (``unroll.linalg.symbol.symbol_extremes``) beyond."""
    if values.shape[0] > DENSE_MAX_FRAMES:
        return symbol_extremes(values)
    lam = scipy.linalg.eigvalsh(scipy.linalg.toeplitz(values))
    return float(lam[0]), float(lam[-1])

@dataclass
class Configuration:
    """A configuration of the data, the truncation, the network depth and the diffusion time.

    Attributes:
        gamma: lag values ``gamma(m)``, ``m = 0..H-1``, shape ``(H,)``.
        spatial_eigenvalues: eigenvalues of ``Sigma``, shape ``(d,)``, positive.
        bands: ``J``; blocks: ``L``; taper: ``None`` or ``"triangular"``; diffusion_time: ``t > 0``.
        family, nu, ell: the kernel family (``None`` for a user lag function) and its parameters; period: the
            damped cosine's period (``nan`` otherwise; its ``nu`` is ``nan``).
        t0: early-stopping time of the theory; max_condition: allowed ``kappa(Sigma)``.
        lag_values: ``c_m = e_i . e_j`` for ``|i-j| = m`` (the frame-embedding inner products, shape ``(H,)``)
            if known, else ``None``.
        mode: ``"exact"`` or ``"paper"``; size: the model's class parameters (``D, L, M, B, R``) if known.
        steps: the step schedule of the unrolled solver, ``"gd"`` or ``"chebyshev"``
            (``unroll.construction.gd.STEP_RULES``).
    """

    gamma: np.ndarray
    spatial_eigenvalues: np.ndarray
    bands: int
    blocks: int
    diffusion_time: float
    taper: str | None = None
    family: str | None = None
    nu: float = math.nan
    ell: float = math.nan
    period: float = math.nan
    t0: float = DEFAULT_T0
    max_condition: float = DEFAULT_MAX_CONDITION
    lag_values: np.ndarray | None = None
    mode: str = "exact"
    size: dict[str, Any] = field(default_factory=dict)
    construction: Any = None
    multiplier_peak: float | None = None
    steps: str = "gd"

    def __post_init__(self) -> None:
        self.gamma = np.asarray(self.gamma, dtype=np.float64).reshape(-1)
        self.spatial_eigenvalues = np.sort(np.asarray(self.spatial_eigenvalues, dtype=np.float64).reshape(-1))
        if self.gamma.size < 1 or not np.all(np.isfinite(self.gamma)):
            raise ValueError("gamma must be a non-empty array of finite lag values")
        if self.spatial_eigenvalues.size < 1 or not np.all(self.spatial_eigenvalues > 0):
            raise ValueError("spatial_eigenvalues must be positive (Sigma positive definite)")
        self.bands = check_int("bands", self.bands, minimum=0, maximum=self.frames - 1)
        self.blocks = check_int("blocks", self.blocks, minimum=0)
        self.diffusion_time = check_positive("diffusion_time", self.diffusion_time)
        self.t0 = check_positive("t0", self.t0)
        self.max_condition = check_positive("max_condition", self.max_condition)
        if self.taper not in (None, "triangular"):
            raise ValueError(f"taper must be None or 'triangular', got {self.taper!r}")
        if self.mode not in ("exact", "paper"):
            raise ValueError(f"mode must be 'exact' or 'paper', got {self.mode!r}")
        if self.steps not in ("gd", "chebyshev"):
            raise ValueError(f"steps must be 'gd' or 'chebyshev', got {self.steps!r}")
        if self.lag_values is not None:
            self.lag_values = np.asarray(self.lag_values, dtype=np.float64).reshape(-1)

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_kernel(cls, kernel: Any, frames: int, spatial: Any, *, bands: int, blocks: int,
                    diffusion_time: float, taper: str | None = None, **kwargs: Any) -> Configuration:
        """From an ``unroll.data.kernels`` kernel, ``H`` and ``Sigma`` (``(d, d)`` matrix)."""
        frames = check_int("frames", frames, minimum=1)
        spatial = np.asarray(spatial.detach().cpu().numpy() if hasattr(spatial, "detach") else spatial,
                             dtype=np.float64)
        if spatial.ndim != 2 or spatial.shape[0] != spatial.shape[1]:
            raise ValueError(f"spatial must be a square (d, d) matrix, got shape {spatial.shape}")
        gamma = np.asarray(kernel(np.arange(frames, dtype=np.float64)), dtype=np.float64)
        return cls(gamma=gamma, spatial_eigenvalues=np.linalg.eigvalsh(spatial), bands=bands, blocks=blocks,
                   diffusion_time=diffusion_time, taper=taper, family=_family_of(kernel),
                   nu=float(getattr(kernel, "nu", math.nan)), ell=float(getattr(kernel, "ell", math.nan)),
                   period=float(getattr(kernel, "period", math.nan)), **kwargs)

    @classmethod
    def from_gp(cls, gp: Any, *, bands: int, blocks: int, diffusion_time: float, taper: str | None = None,
                **kwargs: Any) -> Configuration:
        """From an ``unroll.GaussianProcess``.

        Raises ``ValueError`` for a non-stationary GP (Gamma not Toeplitz): everything here reads the lag
        values.  A stationary GP whose Gamma is not its kernel on the frames ``0..H-1`` (frame times
        ``c + s i``, or ``GaussianProcess.from_temporal``) gets the lag values ``Gamma[0, :]`` and no family
        (the family tail bounds are for unit lags).
        """
        if not getattr(gp, "stationary", True):
            raise ValueError(f"{NOT_TOEPLITZ_MESSAGE}; got {gp!r}")
        if getattr(gp, "unit_frame_times", True):
            return cls.from_kernel(gp.kernel, gp.frames, gp.spatial, bands=bands, blocks=blocks,
                                   diffusion_time=diffusion_time, taper=taper, **kwargs)
        spatial = gp.spatial.detach().cpu().numpy() if hasattr(gp.spatial, "detach") else np.asarray(gp.spatial)
        gamma = np.asarray(gp.temporal[0].detach().cpu().numpy() if hasattr(gp.temporal, "detach")
                           else gp.temporal[0], dtype=np.float64)
        return cls(gamma=gamma, spatial_eigenvalues=np.linalg.eigvalsh(np.asarray(spatial, dtype=np.float64)),
                   bands=bands, blocks=blocks, diffusion_time=diffusion_time, taper=taper, **kwargs)

    @classmethod
    def from_model(cls, gp: Any, model: Any, diffusion_time: float, **kwargs: Any) -> Configuration:
        """From a GP and a model built by ``unroll.construct_unrolled`` (reads ``model.construction``)."""
        construction = model.construction
        size = _size_dict(model)
        lag_values = getattr(construction, "lag_values", None)
        if lag_values is not None:
            lag_values = np.asarray(lag_values.detach().cpu().numpy() if hasattr(lag_values, "detach")
                                    else lag_values, dtype=np.float64)
        return cls.from_gp(gp, bands=int(construction.bands), blocks=int(construction.blocks),
                           diffusion_time=diffusion_time, taper=construction.taper,
                           mode=str(getattr(construction, "mode", "exact")), lag_values=lag_values,
                           size=size, construction=construction, steps=str(getattr(construction, "steps", "gd")),
                           **kwargs)

    # ------------------------------------------------------------------ sizes
    @property
    def frames(self) -> int:
        return int(self.gamma.size)

    @property
    def dim(self) -> int:
        return int(self.spatial_eigenvalues.size)

    # ------------------------------------------------------------------ schedule
    @property
    def a(self) -> float:
        """``alpha_t^2 = e^-t``."""
        return math.exp(-self.diffusion_time)

    @property
    def s(self) -> float:
        """``sigma_t^2 = 1 - e^-t``."""
        return -math.expm1(-self.diffusion_time)

    # ------------------------------------------------------------------ spectra
    @cached_property
    def weights(self) -> np.ndarray:
        lags = np.arange(self.frames, dtype=np.float64)
        w = (lags <= self.bands).astype(np.float64)
        if self.taper == "triangular":
            w = w * np.clip(1.0 - lags / (self.bands + 1), 0.0, None)
        return w

    @cached_property
    def gamma_truncated(self) -> np.ndarray:
        return self.gamma * self.weights

    @cached_property
    def temporal_spectrum(self) -> tuple[float, float]:
        """``(lam_min, lam_max)`` of Gamma (beyond ``unroll.linalg.symbol.DENSE_MAX_FRAMES`` frames: the symbol's range,
        which contains the spectrum, so every bound built on it stays a bound)."""
        return _toeplitz_extremes(self.gamma)

    @cached_property
    def truncated_spectrum(self) -> tuple[float, float]:
        """``(lam_min, lam_max)`` of Gamma_J (the symbol's range beyond ``DENSE_MAX_FRAMES``, as above)."""
        return _toeplitz_extremes(self.gamma_truncated)

    @property
    def mu_min(self) -> float:
        return float(self.spatial_eigenvalues[0])

    @property
    def mu_max(self) -> float:
        return float(self.spatial_eigenvalues[-1])

    def _c_spectrum(self, lam_min: float, lam_max: float) -> tuple[float, float]:
        lo = self.s + self.a * min(lam_min * self.mu_min, lam_min * self.mu_max)
        hi = self.s + self.a * max(lam_max * self.mu_max, lam_min * self.mu_min)
        return lo, hi

    @property
    def c_spectrum(self) -> tuple[float, float]:
        """``(lambda_min, lambda_max)`` of ``C_t``."""
        return self._c_spectrum(*self.temporal_spectrum)

    @property
    def cj_spectrum(self) -> tuple[float, float]:
        """``(lambda_min, lambda_max)`` of ``C_{t,J}``."""
        return self._c_spectrum(*self.truncated_spectrum)

    @property
    def kappa_t(self) -> float:
        lo, hi = self.c_spectrum
        return hi / lo if lo > 0 else math.inf

    @property
    def kappa_j(self) -> float:
        lo, hi = self.cj_spectrum
        return hi / lo if lo > 0 else math.inf

    @property
    def contraction(self) -> float:
        """``rho = (kappa_J - 1)/(kappa_J + 1)``, the GD error factor per step (1 if C_{t,J} is not PD)."""
        kappa = self.kappa_j
        return 1.0 if math.isinf(kappa) else (kappa - 1.0) / (kappa + 1.0)

    @property
    def product_range(self) -> tuple[float, float]:
        """``(p_min, p_max)``: extreme eigenvalue products ``lam_i(Gamma_J) mu_a``, so that
        ``cj_spectrum = (s + a p_min, s + a p_max)``."""
        lam_lo, lam_hi = self.truncated_spectrum
        return (min(lam_lo * self.mu_min, lam_lo * self.mu_max), max(lam_hi * self.mu_max, lam_lo * self.mu_min))

    @cached_property
    def step_sizes(self) -> np.ndarray:
        """The schedule ``eta_k = 1/(a P_k + s)``, ``(L,)``: ``P_k = (p_min + p_max)/2`` for GD, the Leja-ordered
        Chebyshev centres for ``steps="chebyshev"`` (``theory.schedules.chebyshev_centers``)."""
        p_min, p_max = self.product_range
        if self.steps == "gd" or self.blocks == 0:
            centers = np.full(self.blocks, 0.5 * (p_min + p_max))
        else:
            from theory.schedules import chebyshev_centers

            centers = chebyshev_centers(p_min, p_max, self.blocks)
        return 1.0 / (self.a * centers + self.s)

    @cached_property
    def amplification(self) -> Any:
        """``theory.schedules.Amplification`` (``A_pre, A_suf, A_all``): the largest sub-products of the schedule's
        factors ``1 - eta_j lam`` on the spectrum of ``C_{t,J}`` widened by the eigen-solve error
        ``2 c_eig u lambda_max`` (``c_eig = H + d + 10``, as in ``theory.bounds``); all 1 for GD (every factor is a
        contraction), certified by ``theory.schedules.subproduct_bounds`` for Chebyshev steps; ``inf`` if the
        spectrum of ``C_{t,J}`` is not known to be positive."""
        from theory.schedules import Amplification, subproduct_bounds

        if self.steps == "gd":  # the GD bounds carry the eigen-solve error in rho_eff instead
            return Amplification.contracting()
        lo, hi = self.cj_spectrum
        widen = 2 * (self.frames + self.dim + 10) * UNIT_ROUNDOFF * hi
        if lo <= widen:
            return Amplification(math.inf, math.inf, math.inf)
        return subproduct_bounds(self.step_sizes, lo - widen, hi + widen)

    @property
    def spatial_condition(self) -> float:
        return self.mu_max / self.mu_min

    # ------------------------------------------------------------------ tails
    @cached_property
    def tail(self) -> float:
        """Exact ``T_J = sum_{m=J+1}^{H-1} |gamma(m)|``."""
        return float(np.sum(np.abs(self.gamma[self.bands + 1:])))

    @cached_property
    def taper_bias(self) -> float:
        """``sum_{m=1}^{J} |gamma(m)| (1 - w(m))`` (0 for the plain cut)."""
        return float(np.sum(np.abs(self.gamma[1:self.bands + 1]) * (1.0 - self.weights[1:self.bands + 1])))

    @property
    def removed(self) -> float:
        """``T_J + taper bias``: half the row-sum bound on ``||Gamma - Gamma_J||_2``."""
        return self.tail + self.taper_bias

    @cached_property
    def band_sum(self) -> float:
        """``sum_{m=1}^{J} |gamma_J(m)|`` (diagonal dominance needs ``2 * band_sum < 1``)."""
        return float(np.sum(np.abs(self.gamma_truncated[1:self.bands + 1])))

    @property
    def family_tail_bound(self) -> float:
        """The family's closed-form bound on ``T_J`` (``theory.tails.tail_bound``); nan for a user kernel."""
        if self.family is None:
            return math.nan
        return tails.tail_bound(self.family, self.nu, self.ell, self.bands, self.frames)

    def describe(self) -> str:
        if self.family == "damped-cosine":
            kernel = f"damped-cosine(ell={self.ell:g}, period={self.period:g})"
        else:
            kernel = f"{self.family or 'lag-function'}(nu={self.nu:g}, ell={self.ell:g})"
        return (f"{kernel}, H={self.frames}, d={self.dim}, J={self.bands}, L={self.blocks}, "
                f"taper={self.taper}, t={self.diffusion_time:g}, mode={self.mode}, steps={self.steps}")


def _size_dict(model: Any) -> dict[str, Any]:
    size_fn = getattr(model, "size", None)
    if size_fn is None:
        return {}
    size = size_fn() if callable(size_fn) else size_fn
    if isinstance(size, dict):
        return dict(size)
    if hasattr(size, "_asdict"):
        return dict(size._asdict())
    if hasattr(size, "__dataclass_fields__"):
        return {name: getattr(size, name) for name in size.__dataclass_fields__}
    return dict(vars(size))
