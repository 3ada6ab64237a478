"""Gaussian-process sequence data ``vec(x) ~ N(0, Gamma ⊗ Sigma)`` and its exact diffusion score.

Shapes: a sample is ``(H, d)`` (H frames, d features per frame); batches are ``(..., H, d)``.  Row-major
flattening ``x.reshape(-1)`` gives ``vec(x)``, whose covariance is ``kron(Gamma, Sigma)``.

The score of the noised data at diffusion time ``t`` is ``s(x, t) = -C_t^{-1} vec(x)`` with
``C_t = alpha_t^2 (Gamma ⊗ Sigma) + sigma_t^2 I``.  With ``Gamma = U diag(lam) U^T`` and
``Sigma = V diag(mu) V^T``,

    C_t^{-1} vec(x) = vec( U [ (U^T x V) / (alpha_t^2 lam_i mu_a + sigma_t^2) ] V^T ),

which costs O(H^3 + d^3) once (cached) and O(H^2 d + H d^2) per sample; ``C_t`` is formed only by the
dense oracle ``score_dense`` for tests at small sizes.

**Centrosymmetric split.**  Gamma is symmetric Toeplitz, hence centrosymmetric: ``P Gamma P = Gamma`` with
``P`` the exchange (flip) matrix.  With ``n = H // 2``, the orthogonal ``Q = [Q_s | Q_k]``,

    Q_s[:, i] = (e_i + e_{H-1-i}) / sqrt(2)  (i < n),  plus e_mid for odd H,
    Q_k[:, i] = (e_i - e_{H-1-i}) / sqrt(2)  (i < n),

block-diagonalises it, ``Q^T Gamma Q = diag(Gamma_sym, Gamma_skew)``:

    Gamma_sym[i, j]  = Gamma[i, j] + Gamma[i, H-1-j]            (i, j < n),
    Gamma_sym[i, mid] = sqrt(2) Gamma[i, mid],  Gamma_sym[mid, mid] = Gamma[mid, mid]   (odd H only),
    Gamma_skew[i, j] = Gamma[i, j] - Gamma[i, H-1-j]            (i, j < n).

Two half-size ``eigh`` (about 4x cheaper than one of size H) give the eigenpairs; ``precision_apply``
rotates by the halves (``H^2 d`` instead of ``2 H^2 d`` multiply-adds per sample).  The split needs only
``Gamma`` symmetric and centrosymmetric (not Toeplitz); a ``temporal`` that is not exactly centrosymmetric
(warped frame times, a user matrix, one replaced by hand) falls back to one full ``eigh``.

**Non-stationary data.**  ``GaussianProcess(kernel, H, Sigma, times=tau)`` puts the stationary kernel on
strictly increasing frame times ``tau_0 < ... < tau_{H-1}``: ``Gamma[i, j] = k(|tau_i - tau_j|)``, no longer
Toeplitz (``power_warp`` gives ``tau_i = (H-1) (i/(H-1))**p``).  ``GaussianProcess.from_temporal(Gamma, Sigma)``
takes any symmetric positive-semidefinite ``Gamma``.  Everything here (sampling, the score, densities) only
uses the eigendecomposition of Gamma, so it holds unchanged; the banded construction (``unroll.construction.gd``,
``unroll.construction.constructor``, ``theory``) needs a Toeplitz Gamma and raises for a non-stationary one
(``GaussianProcess.stationary``).  ``lag_profile()`` gives the mean of Gamma over each diagonal.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Any

import numpy as np
import torch

from unroll._validate import (
    InputTypeError,
    all_finite,
    as_tensor,
    check_diffusion_time,
    check_finite,
    check_finite_result,
    check_generator,
    check_int,
    check_memory,
    check_positive,
    check_sample_shape,
    check_spd,
    to_real_tensor,
)
from unroll.data import diffusion
from unroll.data.kernels import Kernel
from unroll.linalg.circulant import IndefiniteEmbeddingError, embedding_eigenvalues, sample_stationary
from unroll.linalg.toeplitz import DEFAULT_RTOL, KroneckerToeplitzSolver, SolveInfo

__all__ = ["GaussianProcess", "power_warp"]

#: an eigenvalue of Gamma below -INDEFINITE_TOLERANCE * lambda_max means Gamma is not positive semidefinite
INDEFINITE_TOLERANCE = 1e-10
#: |Gamma - toeplitz(Gamma[0])| <= TOEPLITZ_TOLERANCE entrywise counts as Toeplitz (as in
#: ``unroll.construction.gd.factors``)
TOEPLITZ_TOLERANCE = 1e-12


def power_warp(frames: int, power: float) -> np.ndarray:
    """Frame times ``tau_i = (H-1) (i/(H-1))**p = i**p (H-1)**(1-p)``, ``i = 0..H-1`` (float64 ``(H,)``).

    Strictly increasing for ``p > 0``, from ``tau_0 = 0`` to ``tau_{H-1} = H-1``; ``p = 1`` gives exactly
    ``0, 1, ..., H-1`` (the stationary GP), ``p > 1`` frames that start dense and spread out.
    """
    frames = check_int("frames", frames, minimum=1)
    power = check_positive("power", power)
    index = np.arange(frames, dtype=np.float64)
    if frames == 1 or power == 1.0:
        return index
    return index**power * float(frames - 1) ** (1.0 - power)


SCORE_PATHS = ("auto", "eigen", "toeplitz")
SAMPLE_PATHS = ("auto", "eigen", "circulant")
#: ``score_path("auto")`` takes the eigen path up to this H.  Measured by benchmarks/peers.py (d = 16, batch 32, one
#: thread): at H = 1024 the eigen path's first call (factorisation included) took 0.090 s against the Toeplitz path's
#: 0.051 s, and every later call 0.025 s against 0.045 s, so the eigen path wins from the second call on; at H = 4096
#: 3.19 s and 0.348 s against 0.145 s and 0.127 s, the Toeplitz path wins from the first.
EIGEN_MAX_FRAMES = 1024
#: ... and up to this H when Gamma's eigendecomposition is already cached (the cached eigen apply, O(H^2 d), against
#: the Toeplitz apply with cached generators)
EIGEN_CACHED_MAX_FRAMES = 2048
#: Gohberg–Semencul generators kept per GaussianProcess (one set per diffusion time)
TOEPLITZ_CACHE_SIZE = 8
#: FFT work space per chunk of samples on the Toeplitz path
TOEPLITZ_CHUNK_BYTES = 64e6

#: bytes per entry of Gamma that a GaussianProcess holds at most at once (Gamma, its eigenvectors, the square root
#: and the work space of the eigensolver: about four (H, H) float64 matrices)
GAMMA_BYTES_PER_ENTRY = 32


def _frame_times(times: Any, frames: int) -> np.ndarray:
    array = to_real_tensor("times", times).detach().cpu().numpy().astype(np.float64)
    if array.shape != (frames,):
        raise ValueError(f"times must have shape (frames,) = ({frames},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("times must be finite numbers")
    steps = np.diff(array)
    if steps.size and not np.all(steps > 0):
        first = int(np.argmax(steps <= 0))
        raise ValueError(f"times must be strictly increasing, got times[{first}] = {float(array[first])!r} >= "
                         f"times[{first + 1}] = {float(array[first + 1])!r}")
    return array


def _kernel_matrix(kernel: Kernel, times: np.ndarray) -> np.ndarray:
    """``k(|tau_i - tau_j|)`` as an ``(H, H)`` float64 array, evaluating ``k`` once per distinct lag (so unit
    times ``0..H-1`` give exactly ``kernel.toeplitz(H)``, and the matrix is exactly symmetric)."""
    lags = np.abs(times[:, None] - times[None, :])
    distinct, inverse = np.unique(lags, return_inverse=True)
    return np.asarray(kernel(distinct), dtype=np.float64)[inverse].reshape(lags.shape)


def _apply_left(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix @ x`` for ``matrix (m, n)`` and ``x (..., n, d)`` as one ``(m, n) @ (n, batch * d)`` product.

    Broadcasting ``matrix @ x`` runs one thin ``(m, n) @ (n, d)`` product per sample, about 5x slower at
    ``n = 2048, d = 16``, batch 32 on 2 cores; same arithmetic per entry.
    """
    if x.ndim == 2:
        return matrix @ x
    lead = tuple(x.shape[:-2])
    flat = x.movedim(-2, 0).reshape(x.shape[-2], -1)  # (n, batch * d)
    return (matrix @ flat).reshape((matrix.shape[0],) + lead + (x.shape[-1],)).movedim(0, -2)


class GaussianProcess:
    """Sequences of ``frames`` frames of dimension ``d`` with covariance ``Gamma ⊗ Sigma``.

    Args:
        kernel: temporal covariance ``gamma`` (``unroll.data.kernels``); ``Gamma[i, j] = gamma(|i - j|)``.
        frames: number of frames ``H >= 1``.
        spatial: ``Sigma``, a symmetric positive-definite ``(d, d)`` matrix (array-like or tensor).
        times: optional strictly increasing frame times ``tau`` (``(H,)``, e.g. :func:`power_warp`): then
            ``Gamma[i, j] = gamma(|tau_i - tau_j|)``, a non-stationary GP (module docstring).  The kernel must
            then be positive definite on the real line: every ``unroll.data.kernels`` family is (see their
            ``positive_definite_reason``); a ``LagFunction`` is checked only through ``lambda_min(Gamma)``.

    Attributes:
        kernel: the kernel (``None`` for :meth:`from_temporal`).  For warped times ``kernel(np.arange(H))`` is
            *not* Gamma's lag profile (use :meth:`lag_profile`).
        times: the frame times, float64 ``(H,)`` (``0..H-1`` by default; ``None`` for :meth:`from_temporal`).
        temporal: ``Gamma``, float64 ``(H, H)``.

    Raises:
        ValueError: ``frames < 1``, ``spatial`` not square / symmetric / positive definite / finite, ``times``
            of the wrong shape, not finite or not strictly increasing, or ``Gamma`` indefinite (possible only for
            a user-supplied ``LagFunction`` or matrix; raised by :meth:`validate` or on first use).
    """

    def __init__(self, kernel: Kernel, frames: int, spatial: Any, *, times: Any = None) -> None:
        if not isinstance(kernel, Kernel):
            raise InputTypeError(f"kernel must be an unroll.data.kernels.Kernel, got {type(kernel).__name__}")
        self.kernel: Kernel | None = kernel
        self.frames = check_int("frames", frames, minimum=1)
        self.spatial = check_spd("spatial", as_tensor("spatial", spatial))
        self.dim = int(self.spatial.shape[0])
        if times is None:
            # Gamma (H^2 numbers) is built on first use: the Toeplitz paths need only its first row
            self.times: np.ndarray | None = np.arange(self.frames, dtype=np.float64)
        else:
            check_memory(f"a GaussianProcess with frames={self.frames}",
                         GAMMA_BYTES_PER_ENTRY * float(self.frames) ** 2)
            self.times = _frame_times(times, self.frames)
            self.temporal = torch.from_numpy(_kernel_matrix(kernel, self.times))

    @classmethod
    def from_temporal(cls, temporal: Any, spatial: Any) -> GaussianProcess:
        """A GP with a given temporal covariance ``Gamma`` (``(H, H)``, symmetric positive semidefinite, not
        necessarily Toeplitz); ``kernel`` and ``times`` are ``None``.

        ``Gamma`` is symmetrised (``(Gamma + Gamma^T)/2``) after checking ``max |Gamma - Gamma^T| <= 1e-12 max(max
        |Gamma|, 1)`` (relative to its largest entry, absolute below 1); positive semidefiniteness is checked by
        :meth:`validate` (or on first use).
        """
        matrix = as_tensor("temporal", temporal)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
            raise ValueError(f"temporal must be a square (H, H) matrix with H >= 1, got shape {tuple(matrix.shape)}")
        check_memory(f"a GaussianProcess with frames={matrix.shape[0]}",
                     GAMMA_BYTES_PER_ENTRY * float(matrix.shape[0]) ** 2)
        scale = max(float(matrix.abs().max()), 1.0)
        asymmetry = float((matrix - matrix.T).abs().max())
        if asymmetry > 1e-12 * scale:
            raise ValueError(f"temporal must be symmetric; max |temporal - temporal^T| = {asymmetry:.3g}")
        gp = cls.__new__(cls)
        gp.kernel = None
        gp.times = None
        gp.frames = int(matrix.shape[0])
        gp.spatial = check_spd("spatial", as_tensor("spatial", spatial))
        gp.dim = int(gp.spatial.shape[0])
        gp.temporal = 0.5 * (matrix + matrix.T)
        return gp

    def __repr__(self) -> str:
        if self.kernel is None:
            return f"GaussianProcess(temporal=<{self.frames}x{self.frames} matrix>, dim={self.dim})"
        times = ""
        if self.times is not None and not np.array_equal(self.times, np.arange(self.frames)):
            shown = ", ".join(f"{value:.4g}" for value in self.times[:2])
            times = f", times=[{shown}, ..., {self.times[-1]:.4g}]" if self.frames > 3 else (
                f", times=[{', '.join(f'{value:.4g}' for value in self.times)}]")
        return f"GaussianProcess({self.kernel!r}, frames={self.frames}, dim={self.dim}{times})"

    # ----------------------------------------------------------------- stationarity
    @cached_property
    def temporal(self) -> torch.Tensor:
        """``Gamma``, float64 ``(H, H)``: ``kernel.toeplitz(H)``, built on first use (``H^2`` numbers; the Toeplitz
        score and sampling paths never build it).

        Raises:
            MemoryError: ``Gamma`` and its factorisation would not fit in memory.
        """
        check_memory(f"the (H, H) temporal covariance of a GaussianProcess with frames={self.frames}",
                     GAMMA_BYTES_PER_ENTRY * float(self.frames) ** 2)
        assert self.kernel is not None  # from_temporal and warped times set ``temporal`` in the constructor
        return torch.from_numpy(self.kernel.toeplitz(self.frames))

    @cached_property
    def autocovariance(self) -> torch.Tensor:
        """The lag values ``gamma(0), ..., gamma(H-1)`` of a stationary GP, float64 ``(H,)`` (Gamma's first row).

        Raises:
            ValueError: the GP is not stationary (warped frame times, or a non-Toeplitz ``from_temporal`` matrix).
        """
        if self.unit_frame_times:
            assert self.kernel is not None
            return torch.from_numpy(np.asarray(self.kernel(np.arange(self.frames)), dtype=np.float64))
        if not self.stationary:
            raise ValueError(f"{self!r} is not stationary (its Gamma is not Toeplitz), so it has no "
                             "autocovariance; the Toeplitz paths need a stationary GP")
        return self.temporal[0].clone()

    @property
    def stationary(self) -> bool:
        """Whether Gamma is symmetric Toeplitz (to ``1e-12`` entrywise, the test of ``unroll.construction.gd.factors``):
        what the banded construction and ``theory`` need."""
        if self.unit_frame_times:
            return True  # kernel.toeplitz(H) is Toeplitz by construction
        row = self.temporal[0]
        index = torch.arange(self.frames)
        toeplitz = row[(index[:, None] - index[None, :]).abs()]
        return bool(torch.allclose(toeplitz, self.temporal, rtol=0.0, atol=TOEPLITZ_TOLERANCE))

    @property
    def unit_frame_times(self) -> bool:
        """Whether Gamma is ``kernel`` on the frames ``0..H-1`` (so ``kernel(m)`` is its lag-``m`` value)."""
        return (self.kernel is not None and self.times is not None
                and np.array_equal(self.times, np.arange(self.frames, dtype=np.float64)))

    def lag_profile(self) -> torch.Tensor:
        """``g(m) = mean_i Gamma[i, i+m]``, ``m = 0..H-1``: the average of Gamma over the ``m``-th diagonal
        (float64 ``(H,)``).  For a stationary GP it is ``gamma(m)`` (up to rounding); for a non-stationary one
        it is the lag profile to compare against a stationary kernel or an attention map."""
        return torch.stack([torch.diagonal(self.temporal, offset=lag).mean() for lag in range(self.frames)])

    # ----------------------------------------------------------------- factorisations (cached)
    @cached_property
    def _temporal_factors(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """Eigenpairs of the diagonal blocks of ``Q^T Gamma Q`` (module docstring): ``((lam_s, V_s),
        (lam_k, V_k))`` for a centrosymmetric Gamma, else ``((lam, U),)`` of Gamma itself.

        Eigenvalues are raw (not clamped); ``temporal_eigen`` checks and clamps them.
        """
        gamma = self.temporal
        frames = gamma.shape[-1]
        half = frames // 2
        if frames < 2 or not torch.equal(gamma, gamma.flip(0, 1)):
            return (torch.linalg.eigh(gamma),)
        top = gamma[:half]  # rows i < n
        mirrored = top[:, frames - half:].flip(1)  # mirrored[i, j] = Gamma[i, H-1-j], j < n
        left = top[:, :half]
        if frames % 2:
            sym = torch.empty(half + 1, half + 1, dtype=gamma.dtype)
            sym[:half, :half] = left + mirrored
            sym[:half, half] = sym[half, :half] = np.sqrt(2.0) * gamma[:half, half]
            sym[half, half] = gamma[half, half]
        else:
            sym = left + mirrored
        skew = left - mirrored
        return torch.linalg.eigh(sym), torch.linalg.eigh(skew)

    def _expand_symmetric(self, vectors: torch.Tensor) -> torch.Tensor:
        """``Q_s V``: ``(n [+1], ...)`` coefficients of the symmetric block -> ``(H, ...)``."""
        half, frames = self.frames // 2, self.frames
        out = vectors.new_empty((frames,) + tuple(vectors.shape[1:]))
        scaled = vectors[:half] / np.sqrt(2.0)
        out[:half] = scaled
        out[frames - half:] = scaled.flip(0)
        if frames % 2:
            out[half] = vectors[half]
        return out

    def _expand_skew(self, vectors: torch.Tensor) -> torch.Tensor:
        """``Q_k W``: ``(n, ...)`` coefficients of the skew block -> ``(H, ...)`` (middle row 0 for odd H)."""
        half, frames = self.frames // 2, self.frames
        out = vectors.new_zeros((frames,) + tuple(vectors.shape[1:]))
        scaled = vectors / np.sqrt(2.0)
        out[:half] = scaled
        out[frames - half:] = -scaled.flip(0)
        return out

    @cached_property
    def temporal_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lam, U)``: eigenvalues (ascending, ``(H,)``) and orthonormal eigenvectors (``(H, H)``) of Gamma.

        Built from the two half-size blocks of the centrosymmetric split (module docstring), ``O(H^3 / 4)``.
        Eigenvalues in ``[-1e-10 lambda_max, 0]`` (rounding of a semidefinite Gamma) are set to 0.
        """
        factors = self._temporal_factors
        if len(factors) == 1:
            lam, vectors = factors[0]
        else:
            (lam_s, vec_s), (lam_k, vec_k) = factors
            lam = torch.cat([lam_s, lam_k])
            vectors = torch.cat([self._expand_symmetric(vec_s), self._expand_skew(vec_k)], dim=1)
            order = torch.argsort(lam, stable=True)
            lam, vectors = lam[order], vectors[:, order]
        self._check_semidefinite(float(lam[0]), float(lam[-1]))
        return lam.clamp(min=0.0), vectors

    def _check_semidefinite(self, smallest: float, largest: float) -> None:
        if smallest < -INDEFINITE_TOLERANCE * largest:
            source = "the given matrix" if self.kernel is None else f"{self.kernel!r}"
            raise ValueError(
                f"temporal covariance Gamma of {source} with frames={self.frames} is not positive "
                f"semidefinite: lambda_min(Gamma) = {smallest:.3g} (lambda_max = {largest:.3g})"
            )

    @cached_property
    def _temporal_blocks(self) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
        """The factors of ``_temporal_factors`` after the semidefiniteness check, eigenvalues clamped at 0."""
        _ = self.temporal_eigen  # runs the semidefiniteness check
        return tuple((values.clamp(min=0.0), vectors) for values, vectors in self._temporal_factors)

    @cached_property
    def spatial_eigen(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, V)``: eigenvalues (ascending, ``(d,)``) and eigenvectors (``(d, d)``) of Sigma."""
        return torch.linalg.eigh(self.spatial)

    @property
    def lambda_min(self) -> float:
        """Smallest eigenvalue of Gamma as computed (before clamping); may be at rounding level."""
        return min(float(values[0]) for values, _ in self._temporal_factors)

    def validate(self) -> GaussianProcess:
        """Factorise now (instead of on first use) so that an indefinite Gamma raises here."""
        _ = self.temporal_eigen, self.spatial_eigen
        return self

    # ----------------------------------------------------------------- covariance and sampling
    def covariance(self) -> torch.Tensor:
        """The dense ``(H d, H d)`` covariance ``kron(Gamma, Sigma)`` — for small sizes and tests only."""
        return torch.kron(self.temporal, self.spatial)

    def noised_covariance(self, diffusion_time: float) -> torch.Tensor:
        """The dense ``C_t = alpha_t^2 kron(Gamma, Sigma) + sigma_t^2 I`` — small sizes and tests only."""
        t = float(check_diffusion_time(diffusion_time, ()))
        size = self.frames * self.dim
        return diffusion.alpha(t) ** 2 * self.covariance() + diffusion.sigma2(t) * torch.eye(
            size, dtype=torch.float64
        )

    @cached_property
    def _spatial_root(self) -> torch.Tensor:
        """``Sigma^(1/2) (d, d)``, ``V diag(sqrt(mu)) V^T``: the spatial half of :attr:`_square_roots`, without
        touching Gamma."""
        mu, spatial_vectors = self.spatial_eigen
        return (spatial_vectors * mu.clamp(min=0.0).sqrt()) @ spatial_vectors.T

    @cached_property
    def _square_roots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Symmetric square roots ``(Gamma^(1/2) (H, H), Sigma^(1/2) (d, d))``, ``U diag(sqrt(lam)) U^T``.

        Unlike ``U diag(sqrt(lam))`` they do not depend on the signs (or, for repeated eigenvalues, the
        basis) the eigensolver picks, so a seeded sample is the same on every LAPACK build.
        """
        lam, temporal_vectors = self.temporal_eigen
        temporal_root = (temporal_vectors * lam.sqrt()) @ temporal_vectors.T
        return temporal_root, self._spatial_root

    def _chosen_path(self, method: str, paths: tuple[str, ...], structured: str) -> str:
        """``method`` once checked: one of ``paths``, and ``structured`` (a Toeplitz-only path) only for a
        stationary GP."""
        if method not in paths:
            raise ValueError(f"method must be one of {paths}, got {method!r}")
        if method == structured and not self.stationary:
            raise ValueError(f"method={structured!r} needs a stationary GP (Toeplitz Gamma); {self!r} is not")
        return method

    def sample_path(self, method: str = "auto") -> str:
        """The path :meth:`sample` takes for ``method``: ``"eigen"`` or ``"circulant"``.

        ``"auto"``: the eigen path (symmetric square roots) for a non-stationary GP and for ``H <=
        EIGEN_MAX_FRAMES`` (so seeded samples at these sizes are those of earlier versions), circulant embedding
        beyond.
        """
        if self._chosen_path(method, SAMPLE_PATHS, "circulant") != "auto":
            return method
        return "eigen" if not self.stationary or self.frames <= EIGEN_MAX_FRAMES else "circulant"

    @cached_property
    def circulant_embedding(self) -> tuple[torch.Tensor, int]:
        """``(eigenvalues (M // 2 + 1,), M)`` of the smallest non-negative definite circulant embedding of Gamma
        (``unroll.linalg.circulant.embedding_eigenvalues``; grows up to ``MAX_GROWTH`` times the minimal ``2(H - 1)``
        for a kernel GP, only the minimal one for a ``from_temporal`` matrix).

        Raises:
            IndefiniteEmbeddingError: no embedding tried is non-negative definite.
        """
        kernel = self.kernel
        if self.unit_frame_times and kernel is not None:
            return embedding_eigenvalues(kernel, self.frames)  # the kernel itself: the embedding can grow
        return embedding_eigenvalues(self.autocovariance.numpy(), self.frames)

    def sample(self, n: int, generator: torch.Generator | None = None, *, method: str = "auto") -> torch.Tensor:
        """Draw ``n`` sequences, ``(n, H, d)`` float64, with ``Cov(vec x) = Gamma ⊗ Sigma``.

        Eigen path: ``x = A Z B`` with the symmetric square roots ``A = Gamma^(1/2)``, ``B = Sigma^(1/2)`` (from the
        Kronecker factors' eigendecompositions) and ``Z`` standard normal ``(n, H, d)``, so ``Cov(vec x) = A A^T ⊗
        B^T B``; O(H^3) once, O(H^2 d) per sample.  Circulant path (``method="circulant"``, or ``"auto"`` beyond
        ``EIGEN_MAX_FRAMES``): ``x = Z B`` with the ``n d`` columns of ``Z`` exact draws of ``N(0, Gamma)`` by
        circulant embedding (``unroll.linalg.circulant``), O(H log H) per column.  If no embedding is non-negative
        definite, ``"auto"`` falls back to the eigen path with a ``RuntimeWarning`` when Gamma fits in memory and
        raises ``IndefiniteEmbeddingError`` otherwise; ``"circulant"`` always raises.
        """
        n = check_int("n", n, minimum=1)
        check_generator("generator", generator)
        check_memory(f"sample(n={n}) of {self.frames} x {self.dim} frames", 3 * 8.0 * n * self.frames * self.dim)
        path = self.sample_path(method)
        if path == "circulant":
            try:
                eigenvalues, size = self.circulant_embedding
            except IndefiniteEmbeddingError as error:
                if method == "circulant":
                    raise
                check_memory(f"the eigen sampler's fallback for {self!r} (after: {error})",
                             GAMMA_BYTES_PER_ENTRY * float(self.frames) ** 2)
                warnings.warn(f"{error}; falling back to the eigen sampler (O(H^3) once)", RuntimeWarning,
                              stacklevel=2)
            else:
                columns = sample_stationary(eigenvalues, size, self.frames, n * self.dim, generator)
                z = columns.reshape(n, self.dim, self.frames).transpose(-1, -2)
                return check_finite_result("GaussianProcess.sample", z @ self._spatial_root,
                                           "Sigma too large for float64")
        temporal_root, spatial_root = self._square_roots
        z = torch.randn((n, self.frames, self.dim), generator=generator, dtype=torch.float64)
        return check_finite_result("GaussianProcess.sample", _apply_left(temporal_root, z) @ spatial_root,
                                   "Sigma too large for float64")

    def noised(
        self, x0: torch.Tensor, diffusion_time: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``x_t = alpha_t x0 + sigma_t z`` for ``x0`` of shape ``(..., H, d)`` (see ``unroll.data.diffusion``)."""
        x0 = self._check_x("x0", x0)
        return diffusion.noise(x0, diffusion_time, generator=generator)[0]

    # ----------------------------------------------------------------- scores
    def _check_x(self, name: str, x: Any) -> torch.Tensor:
        tensor = to_real_tensor(name, x)
        check_sample_shape(name, tensor, self.frames, self.dim)
        return check_finite(name, tensor.to(torch.float64))

    def _checked_result(self, what: str, result: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``result`` if finite, else :class:`NonFiniteError` saying that ``x`` overflowed float64 in ``what``."""
        if all_finite(result):
            return result
        return check_finite_result(f"GaussianProcess.{what}", result, f"the input x (max |x| = "
                                   f"{float(x.abs().max()):.3g}) overflows float64 there; rescale x")

    def _denominator(self, diffusion_time: torch.Tensor) -> torch.Tensor:
        """``alpha_t^2 lam_i mu_a + sigma_t^2`` with shape ``t.shape + (H, d)``."""
        lam, _ = self.temporal_eigen
        mu, _ = self.spatial_eigen
        a2 = diffusion.alpha(diffusion_time) ** 2
        s2 = diffusion.sigma2(diffusion_time)
        outer = lam[:, None] * mu[None, :]
        return a2[..., None, None] * outer + s2[..., None, None]

    def _divide(self, rotated: torch.Tensor, lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``rotated / (alpha_t^2 lam_i mu_a + sigma_t^2)`` for ``rotated (..., n, d)`` in the eigenbases."""
        mu, _ = self.spatial_eigen
        a2 = diffusion.alpha(t) ** 2
        s2 = diffusion.sigma2(t)
        return rotated / (a2[..., None, None] * (lam[:, None] * mu[None, :]) + s2[..., None, None])

    # ----------------------------------------------------------------- which path
    def score_path(self, method: str = "auto") -> str:
        """The path :meth:`precision_apply` takes for ``method``: ``"eigen"`` or ``"toeplitz"``.

        ``"auto"`` takes the eigen path for a non-stationary GP, for ``H <= EIGEN_MAX_FRAMES`` (where it is faster,
        factorisation included; ``benchmarks/peers.py``) and when Gamma's eigendecomposition is already cached
        with ``H <= EIGEN_CACHED_MAX_FRAMES``; the Toeplitz path otherwise.
        """
        if self._chosen_path(method, SCORE_PATHS, "toeplitz") != "auto":
            return method
        if not self.stationary or self.frames <= EIGEN_MAX_FRAMES:
            return "eigen"
        if "temporal_eigen" in self.__dict__ and self.frames <= EIGEN_CACHED_MAX_FRAMES:
            return "eigen"
        return "toeplitz"

    @cached_property
    def toeplitz_solver(self) -> KroneckerToeplitzSolver:
        """The Toeplitz path's solver (``unroll.linalg.toeplitz.KroneckerToeplitzSolver``): the Gohberg–Semencul
        generators of the ``d`` systems ``alpha_t^2 mu_a Gamma + sigma_t^2 I``, cached for the last
        ``TOEPLITZ_CACHE_SIZE`` diffusion times; its ``last_solve`` reports the refinement sweeps and the residual."""
        return KroneckerToeplitzSolver(self.autocovariance, self.spatial_eigen, cache_size=TOEPLITZ_CACHE_SIZE,
                                       chunk_bytes=TOEPLITZ_CHUNK_BYTES)

    @property
    def last_solve(self) -> SolveInfo | None:
        """:class:`unroll.linalg.toeplitz.SolveInfo` of the last Toeplitz-path solve (``None`` before the first)."""
        solver = self.__dict__.get("toeplitz_solver")
        return None if solver is None else solver.last_solve

    def precision_apply(self, x: Any, diffusion_time: Any, *, method: str = "auto",
                        rtol: float = DEFAULT_RTOL) -> torch.Tensor:
        """``C_t^{-1} vec(x)`` reshaped to ``x``'s shape ``(..., H, d)`` (the GD fixed point ``y*``).

        Args:
            x: ``(..., H, d)``.
            diffusion_time: a positive scalar or one per sample (shape ``x.shape[:-2]``).
            method: ``"auto"`` (:meth:`score_path`), ``"eigen"`` or ``"toeplitz"``.
            rtol: the Toeplitz path's target relative residual ``|x_a - T_a y_a| / |x_a|`` per feature system (the
                worst one reached is in ``self.last_solve``); the eigen path is exact up to rounding.

        Eigen path: with the centrosymmetric split (module docstring): ``x_s = Q_s^T x``, ``x_k = Q_k^T x`` (sums and
        differences of mirrored frames), then ``V_s [(V_s^T x_s V) / den_s] V^T`` on each half and back; O(H^3)
        once and O(H^2 d) per sample.  Toeplitz path: the Gohberg–Semencul solves of ``unroll.linalg.toeplitz``,
        O(H log H) per sample and feature, O(H d) memory.

        Raises:
            ToeplitzSolveError: the Toeplitz path could not reach ``rtol`` (never a silently inaccurate result).
        """
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        if self.score_path(method) == "toeplitz":
            return self._checked_result("precision_apply", self.toeplitz_solver.solve(x, t, float(rtol)), x)
        _, spatial_vectors = self.spatial_eigen
        blocks = self._temporal_blocks
        if len(blocks) == 1:
            lam, temporal_vectors = blocks[0]
            rotated = _apply_left(temporal_vectors.T, x) @ spatial_vectors
            return self._checked_result("precision_apply", _apply_left(
                temporal_vectors, self._divide(rotated, lam, t) @ spatial_vectors.T), x)
        (lam_s, vec_s), (lam_k, vec_k) = blocks
        frames, half = self.frames, self.frames // 2
        top, bottom = x[..., :half, :], x[..., frames - half:, :].flip(-2)
        sym = (top + bottom) / np.sqrt(2.0)
        if frames % 2:
            sym = torch.cat([sym, x[..., half : half + 1, :]], dim=-2)
        skew = (top - bottom) / np.sqrt(2.0)
        sym = _apply_left(vec_s, self._divide(_apply_left(vec_s.T, sym) @ spatial_vectors, lam_s, t)
                          @ spatial_vectors.T)
        skew = _apply_left(vec_k, self._divide(_apply_left(vec_k.T, skew) @ spatial_vectors, lam_k, t)
                           @ spatial_vectors.T)
        out = torch.empty_like(x)
        sym_top = sym[..., :half, :]
        out[..., :half, :] = (sym_top + skew) / np.sqrt(2.0)
        out[..., frames - half:, :] = ((sym_top - skew) / np.sqrt(2.0)).flip(-2)
        if frames % 2:
            out[..., half, :] = sym[..., half, :]
        return self._checked_result("precision_apply", out, x)

    def score(self, x: Any, diffusion_time: Any, *, method: str = "auto", rtol: float = DEFAULT_RTOL) -> torch.Tensor:
        """Exact score ``s(x, t) = -C_t^{-1} vec(x)`` for ``x`` of shape ``(..., H, d)``.

        ``diffusion_time`` is a positive scalar or one per sample (shape ``x.shape[:-2]``); ``method`` and ``rtol``
        choose the path as in :meth:`precision_apply`.
        """
        # precision_apply returns a fresh tensor, negated in place: no second (..., H, d) copy at long H
        return self.precision_apply(x, diffusion_time, method=method, rtol=rtol).neg_()

    def score_dense(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """Dense oracle: solve with the ``(H d, H d)`` matrix ``C_t`` (small sizes and tests only)."""
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        batch_shape = tuple(x.shape[:-2])
        flat = x.reshape(-1, self.frames * self.dim)
        times = t.expand(batch_shape).reshape(-1) if t.ndim else t.repeat(flat.shape[0])
        out = torch.empty_like(flat)
        for row, time in enumerate(times.tolist()):
            out[row] = -torch.linalg.solve(self.noised_covariance(time), flat[row])
        return self._checked_result("score_dense", out.reshape(x.shape), x)

    def log_density(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """``log p_t(x)`` of the noised data, shape ``x.shape[:-2]``, via the Kronecker eigenvalues."""
        x = self._check_x("x", x)
        t = check_diffusion_time(diffusion_time, tuple(x.shape[:-2]))
        denominator = self._denominator(t)
        quadratic = (x * self.precision_apply(x, t)).sum(dim=(-2, -1))
        log_det = torch.log(denominator).sum(dim=(-2, -1))
        size = self.frames * self.dim
        return self._checked_result("log_density", -0.5 * (quadratic + log_det + size * float(np.log(2 * np.pi))), x)
