"""Symmetric positive-definite Toeplitz systems in O(H log H) per right-hand side.

A symmetric Toeplitz ``T (H, H)`` is given by its first column ``c (H,)``: ``T[i, j] = c[|i - j|]``.  Everything
here is batched: a column ``(..., H)`` describes one system per leading index, and a right-hand side ``(..., H)``
broadcasts against it.  Frames are on the last axis (contiguous), where the FFTs run.

**Products.**  ``T`` is the top-left block of the circulant of size ``n >= 2H - 1`` with first column
``[c_0, ..., c_{H-1}, 0, ..., 0, c_{H-1}, ..., c_1]``, so ``T y = irfft(rfft(y, n) * rfft(embedding))[:H]``
(:func:`toeplitz_matmul`, two FFTs of size ``n`` per vector).

**Generators by preconditioned CG.**  :func:`pcg` solves ``T y = b`` by conjugate gradients with a circulant
preconditioner of size ``H`` (Strang's, ``s_k = c_k`` for ``k <= H/2`` and ``c_{H-k}`` beyond, or T. Chan's optimal
one, ``s_k = ((H - k) c_k + k c_{H-k}) / H``), applied by two FFTs of size ``H``.

**The inverse by the Gohberg–Semencul formula.**  With ``g = T^{-1} e_0`` (the generator, one PCG solve per
system) and ``h = (0, g_{H-1}, ..., g_1)``,

    T^{-1} = ( L(g) L(g)^T - L(h) L(h)^T ) / g_0,

``L(v)`` the lower-triangular Toeplitz matrix with first column ``v``.  Each product with ``L(v)`` or ``L(v)^T``
is a truncated convolution or correlation of length ``H`` done by FFTs of size ``n``; with the generators'
spectra cached, ``T^{-1} b`` costs six FFTs (one forward of ``b``, two inverse, two forward, one inverse).  The
formula is exact; in floating point its error grows with the condition number of ``T``, so
:meth:`ToeplitzInverse.solve` measures the true relative residual ``|b - T y| / |b|`` of every right-hand side
(two more FFTs) and refines ``y <- y + T^{-1} (b - T y)`` until it is below ``rtol``; a target it cannot reach
raises :class:`ToeplitzSolveError`, never a silently inaccurate solution.

Why Gohberg–Semencul and not PCG for every right-hand side: PCG needs 5-30 iterations of four FFTs each, the
formula eight FFTs in all once its generators are known, and the generators are shared by every right-hand side
of the same system (the d features of every sample at one diffusion time).  ``benchmarks/peers.py`` measures both.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import scipy.fft
import torch

from unroll.data import diffusion

__all__ = ["PRECONDITIONERS", "KroneckerToeplitzSolver", "SolveInfo", "ToeplitzInverse", "ToeplitzSolveError",
           "circulant_preconditioner",
           "embedding_size", "pcg", "toeplitz_matmul"]

PRECONDITIONERS = ("strang", "chan")

#: default target of the relative residual ``|b - T y| / |b|`` of a solve.  Rounding alone leaves a residual of
#: about ``eps * log2(n) * cond(T)``-ish in the FFT products, so a target much below this is not reachable for the
#: condition numbers of the diffusion covariances at small t (up to ~1e4 here).
DEFAULT_RTOL = 1e-11
#: restarts from the true residual after which PCG gives up (the residual has reached its rounding floor)
MAX_RESTARTS = 3


class ToeplitzSolveError(FloatingPointError):
    """A Toeplitz solve did not reach its residual target (an ill-conditioned or indefinite system)."""


@dataclass(frozen=True)
class SolveInfo:
    """What a solve did: ``iterations`` (PCG iterations, or refinement sweeps of the Gohberg–Semencul apply) and
    ``residual``, the largest true relative residual ``|b - T y| / |b|`` over the right-hand sides."""

    iterations: int
    residual: float


def embedding_size(frames: int) -> int:
    """The FFT size ``n >= 2H - 1`` used for products with an ``H x H`` Toeplitz matrix (a fast size for FFTs)."""
    return int(scipy.fft.next_fast_len(max(2 * int(frames) - 1, 1), real=True))


def _check_column(column: torch.Tensor) -> torch.Tensor:
    if not isinstance(column, torch.Tensor) or column.ndim < 1 or column.shape[-1] < 1:
        raise ValueError(f"column must be a tensor (..., H) with H >= 1, got "
                         f"{tuple(column.shape) if isinstance(column, torch.Tensor) else type(column).__name__}")
    if not bool(torch.isfinite(column).all()):
        raise ValueError("column must be finite")
    return column.to(torch.float64)


def _rfft(vectors: torch.Tensor, size: int) -> torch.Tensor:
    """``rfft`` of ``vectors (..., m)`` zero-padded to ``size``: padded into a contiguous buffer first, which is 2.4x
    faster than ``torch.fft.rfft(vectors, size)`` for (16, 65536) -> 131072 (torch 2.13, one thread)."""
    if vectors.shape[-1] == size:
        return torch.fft.rfft(vectors)
    padded = vectors.new_zeros(tuple(vectors.shape[:-1]) + (size,))
    padded[..., : vectors.shape[-1]] = vectors
    return torch.fft.rfft(padded)


def _embedded_product(spectrum: torch.Tensor, vectors: torch.Tensor, size: int, frames: int) -> torch.Tensor:
    """``T y`` from the circulant embedding's spectrum ``(..., size // 2 + 1)``: the first ``frames`` entries of the
    circulant product of size ``size`` (two FFTs per vector).  The spectrum is applied in place when no broadcasting
    widens the product."""
    product = _rfft(vectors, size)
    if torch.broadcast_shapes(product.shape, spectrum.shape) == product.shape:
        product.mul_(spectrum)
    else:
        product = product * spectrum
    return torch.fft.irfft(product, size)[..., :frames]


def _embedding_spectrum(column: torch.Tensor, size: int) -> torch.Tensor:
    """``rfft`` of the circulant embedding of ``T`` (real up to rounding, kept real): ``(..., size // 2 + 1)``."""
    frames = column.shape[-1]
    embedding = column.new_zeros(tuple(column.shape[:-1]) + (size,))
    embedding[..., :frames] = column
    if frames > 1:
        embedding[..., size - frames + 1:] = column[..., 1:].flip(-1)
    return torch.fft.rfft(embedding).real


def toeplitz_matmul(column: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``T y`` for the symmetric Toeplitz ``T[i, j] = column[|i - j|]``.

    Args:
        column: ``(..., H)`` first columns.
        y: ``(..., H)`` vectors (broadcast against ``column``'s leading shape).
    Returns:
        ``(..., H)`` float64, by two FFTs of size :func:`embedding_size` per vector.
    """
    column = _check_column(column)
    frames = column.shape[-1]
    if y.shape[-1] != frames:
        raise ValueError(f"y must have H = {frames} entries on its last axis, got shape {tuple(y.shape)}")
    size = embedding_size(frames)
    spectrum = _embedding_spectrum(column, size)
    return _embedded_product(spectrum, y.to(torch.float64), size, frames)


def circulant_preconditioner(column: torch.Tensor, kind: str = "strang") -> torch.Tensor:
    """Eigenvalues ``(..., H // 2 + 1)`` (the ``rfft`` of the first column) of a circulant approximating ``T``.

    ``"strang"``: ``s_k = c_k`` for ``k <= H/2``, ``c_{H-k}`` beyond (may be indefinite for a short, slowly decaying
    ``c``); ``"chan"``: T. Chan's optimal circulant ``s_k = ((H - k) c_k + k c_{H-k}) / H``, positive definite
    whenever ``T`` is.
    """
    if kind not in PRECONDITIONERS:
        raise ValueError(f"preconditioner must be one of {PRECONDITIONERS}, got {kind!r}")
    column = _check_column(column)
    frames = column.shape[-1]
    lags = torch.arange(frames)
    mirrored = torch.cat([column[..., :1], column[..., 1:].flip(-1)], dim=-1)  # c_{H-k}, with c_H read as c_0
    if kind == "strang":
        first = torch.where(lags <= frames // 2, column, mirrored)
    else:
        weight = lags.to(torch.float64) / frames
        first = (1.0 - weight) * column + weight * torch.where(lags > 0, mirrored, torch.zeros_like(column))
    return torch.fft.rfft(first).real


def _no_systems(shape: torch.Size) -> tuple[torch.Tensor, SolveInfo]:
    """The solution of an empty batch of systems: zeros of ``shape``, no iterations (torch's FFT refuses an empty
    batch, so the solvers return this before any transform)."""
    return torch.zeros(shape, dtype=torch.float64), SolveInfo(iterations=0, residual=0.0)


def pcg(column: torch.Tensor, rhs: torch.Tensor, *, rtol: float = DEFAULT_RTOL, max_iterations: int | None = None,
        preconditioner: str = "strang", on_failure: str = "raise") -> tuple[torch.Tensor, SolveInfo]:
    """Solve ``T y = rhs`` by preconditioned conjugate gradients, batched over systems and right-hand sides.

    Args:
        column: ``(..., H)`` first columns of symmetric positive-definite Toeplitz matrices.
        rhs: ``(..., H)``, broadcast against ``column``.
        rtol: target true relative residual ``|rhs - T y| / |rhs|`` of every right-hand side.
        max_iterations: cap on iterations (default ``max(200, 4 sqrt(H))``).
        preconditioner: ``"strang"`` (falls back to ``"chan"`` if Strang's circulant is not positive definite) or
            ``"chan"``.
        on_failure: ``"raise"`` (:class:`ToeplitzSolveError` if the target is not reached) or ``"return"`` (the best
            iterate, with its residual in the ``SolveInfo``).
    Returns:
        ``(y (..., H) float64, SolveInfo)``.
    Raises:
        ToeplitzSolveError: the target was not reached in ``max_iterations`` iterations or ``MAX_RESTARTS`` restarts
            from the true residual (its rounding floor), or ``T`` is not positive definite.
    """
    if on_failure not in ("raise", "return"):
        raise ValueError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    column = _check_column(column)
    if not rtol > 0:
        raise ValueError(f"rtol must be > 0, got {rtol!r}")
    frames = column.shape[-1]
    rhs = rhs.to(torch.float64)
    if rhs.shape[-1] != frames:
        raise ValueError(f"rhs must have H = {frames} entries on its last axis, got shape {tuple(rhs.shape)}")
    shape = torch.broadcast_shapes(tuple(column.shape), tuple(rhs.shape))
    if column.numel() == 0:
        return _no_systems(shape)
    cap = max(200, int(4 * math.sqrt(frames))) if max_iterations is None else int(max_iterations)
    size = embedding_size(frames)
    spectrum = _embedding_spectrum(column, size)
    circulant = circulant_preconditioner(column, preconditioner)
    if preconditioner == "strang" and not bool((circulant > 0).all()):
        circulant = circulant_preconditioner(column, "chan")
    if not bool((circulant > 0).all()):
        raise ToeplitzSolveError("the Toeplitz matrix is not positive definite (its optimal circulant has a "
                                 "non-positive eigenvalue)")
    if rhs.numel() == 0:
        return _no_systems(shape)

    def matmul(vectors: torch.Tensor) -> torch.Tensor:
        return _embedded_product(spectrum, vectors, size, frames)

    def precondition(vectors: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft(torch.fft.rfft(vectors) / circulant, frames)

    rhs = rhs.expand(shape)
    scale = torch.linalg.vector_norm(rhs, dim=-1, keepdim=True)
    target = rtol * scale
    solution = torch.zeros(shape, dtype=torch.float64)
    residual = rhs.clone()
    direction = precondition(residual)
    inner = (residual * direction).sum(-1, keepdim=True)
    iterations = restarts = 0
    while True:
        norm = torch.linalg.vector_norm(residual, dim=-1, keepdim=True)
        if bool((norm <= 0.5 * target).all()):
            true_residual = rhs - matmul(solution)
            if bool((torch.linalg.vector_norm(true_residual, dim=-1, keepdim=True) <= target).all()):
                break
            restarts += 1
            residual = true_residual  # the recursion drifted below the true residual: restart from it
            direction = precondition(residual)
            inner = (residual * direction).sum(-1, keepdim=True)
        if iterations >= cap or restarts > MAX_RESTARTS:
            if on_failure == "return":
                break
            worst = float((torch.linalg.vector_norm(rhs - matmul(solution), dim=-1, keepdim=True)
                           / scale.clamp(min=torch.finfo(torch.float64).tiny)).max())
            raise ToeplitzSolveError(f"PCG reached relative residual {worst:.3g} after {iterations} iterations, "
                                     f"above the target rtol={rtol:g}: the system is too ill-conditioned")
        product = matmul(direction)
        curvature = (direction * product).sum(-1, keepdim=True)
        active = curvature > 0
        step = torch.where(active, inner / torch.where(active, curvature, torch.ones_like(curvature)),
                           torch.zeros_like(curvature))
        solution = solution + step * direction
        residual = residual - step * product
        preconditioned = precondition(residual)
        new_inner = (residual * preconditioned).sum(-1, keepdim=True)
        ratio = torch.where(inner > 0, new_inner / torch.where(inner > 0, inner, torch.ones_like(inner)),
                            torch.zeros_like(inner))
        direction = preconditioned + ratio * direction
        inner = new_inner
        iterations += 1
    final = torch.linalg.vector_norm(rhs - matmul(solution), dim=-1) / scale.squeeze(-1).clamp(
        min=torch.finfo(torch.float64).tiny)
    return solution, SolveInfo(iterations=iterations, residual=float(final.max()))


class ToeplitzInverse:
    """``T^{-1}`` of a batch of symmetric positive-definite Toeplitz matrices by the Gohberg–Semencul formula.

    Args:
        column: ``(..., H)`` first columns (e.g. ``(d, H)``: one system per feature).
        rtol: residual target of the generator solve ``T g = e_0`` (default :data:`DEFAULT_RTOL` / 10).  Reaching it
            is not required: an inaccurate generator only costs refinement sweeps in :meth:`solve`, whose residual
            is checked, so the best generator PCG finds is kept (its residual is in ``generator_info``).
        preconditioner: of the generator solve (:func:`pcg`).
    Attributes:
        frames: ``H``; generator_info: the :class:`SolveInfo` of the generator solve.
    Raises:
        ToeplitzSolveError: ``T`` is not positive definite (a non-positive circulant preconditioner or
            ``(T^-1)_00 <= 0``).
    """

    def __init__(self, column: torch.Tensor, *, rtol: float = DEFAULT_RTOL / 10, preconditioner: str = "strang"
                 ) -> None:
        column = _check_column(column)
        if column.numel() == 0:
            raise ValueError(f"column must hold at least one system, got shape {tuple(column.shape)}")
        self.column = column
        self.frames = frames = int(column.shape[-1])
        self.size = embedding_size(frames)
        unit = column.new_zeros(column.shape)
        unit[..., 0] = 1.0
        generator, self.generator_info = pcg(column, unit, rtol=rtol, preconditioner=preconditioner,
                                             on_failure="return")
        first = generator[..., :1]
        if not bool((first > 0).all()):
            raise ToeplitzSolveError("the Toeplitz matrix is not positive definite: (T^-1)_00 <= 0")
        shifted = torch.zeros_like(generator)
        shifted[..., 1:] = generator[..., 1:].flip(-1)
        self._scale = 1.0 / first
        self._generator = _rfft(generator, self.size)
        self._shifted = _rfft(shifted, self.size)
        self._generator_conj = self._generator.conj().resolve_conj()
        self._shifted_conj = self._shifted.conj().resolve_conj()
        self._embedding = _embedding_spectrum(column, self.size)

    def apply(self, rhs: torch.Tensor) -> torch.Tensor:
        """``T^{-1} rhs`` by the formula alone (six FFTs per vector): ``rhs (..., H)`` -> ``(..., H)`` float64."""
        size, frames = self.size, self.frames
        spectrum = _rfft(rhs.to(torch.float64), size)
        inner_g = torch.fft.irfft(spectrum * self._generator_conj, size)[..., :frames]  # L(g)^T rhs
        inner_h = torch.fft.irfft(spectrum.mul_(self._shifted_conj), size)[..., :frames]  # L(h)^T rhs
        outer = _rfft(inner_g, size).mul_(self._generator)  # in place: no temporaries of the spectra's size
        outer.sub_(_rfft(inner_h, size).mul_(self._shifted))
        return torch.fft.irfft(outer, size)[..., :frames].mul_(self._scale)

    def matmul(self, y: torch.Tensor) -> torch.Tensor:
        """``T y`` (two FFTs per vector)."""
        return _embedded_product(self._embedding, y, self.size, self.frames)

    def solve(self, rhs: torch.Tensor, *, rtol: float = DEFAULT_RTOL, max_refinements: int = 3
              ) -> tuple[torch.Tensor, SolveInfo]:
        """``T^{-1} rhs`` with its true relative residual checked and refined to ``rtol``.

        Args:
            rhs: ``(..., H)``, broadcast against the systems' leading shape.
            rtol: target ``|rhs - T y| / |rhs|`` for every right-hand side.
            max_refinements: refinement sweeps allowed after the first apply.
        Returns:
            ``(y (..., H) float64, SolveInfo(iterations = applies used, residual = the worst one))``.
        Raises:
            ToeplitzSolveError: the target was not reached after ``max_refinements`` sweeps.
        """
        if not rtol > 0:
            raise ValueError(f"rtol must be > 0, got {rtol!r}")
        rhs = rhs.to(torch.float64)
        if rhs.shape[-1] != self.frames:
            raise ValueError(f"rhs must have H = {self.frames} entries on its last axis, got {tuple(rhs.shape)}")
        if rhs.numel() == 0:
            return _no_systems(torch.broadcast_shapes(tuple(self.column.shape), tuple(rhs.shape)))
        scale = torch.linalg.vector_norm(rhs, dim=-1).clamp(min=torch.finfo(torch.float64).tiny)
        solution = self.apply(rhs)
        for sweep in range(max_refinements + 1):
            residual = rhs - self.matmul(solution)
            worst = float((torch.linalg.vector_norm(residual, dim=-1) / scale).max())
            if worst <= rtol:
                return solution, SolveInfo(iterations=sweep + 1, residual=worst)
            if sweep < max_refinements:
                solution = solution + self.apply(residual)
        raise ToeplitzSolveError(f"the Gohberg-Semencul solve reached relative residual {worst:.3g} after "
                                 f"{max_refinements} refinements, above the target rtol={rtol:g}: the system is "
                                 "too ill-conditioned for the requested accuracy")


class KroneckerToeplitzSolver:
    """``(alpha_t^2 Gamma ⊗ Sigma + sigma_t^2 I)^{-1} vec(x)`` for a symmetric Toeplitz ``Gamma``, O(H log H) per
    sample and feature.

    With ``Sigma = V diag(mu) V^T`` the system splits into the ``d`` Toeplitz systems
    ``(alpha_t^2 mu_a Gamma + sigma_t^2 I) y_a = (x V)_a``; each diffusion time's :class:`ToeplitzInverse` (the ``d``
    Gohberg–Semencul generators) is cached, the last ``cache_size`` of them.

    Args:
        lag_values: ``(H,)`` float64, Gamma's first row.
        spatial_eigen: ``(mu (d,), V (d, d))`` of Sigma.
        cache_size: diffusion times whose generators are kept.
        chunk_bytes: FFT work space per chunk of samples.
    Attributes:
        last_solve: :class:`SolveInfo` of the last :meth:`solve` (worst over its chunks).
    """

    def __init__(self, lag_values: torch.Tensor, spatial_eigen: tuple[torch.Tensor, torch.Tensor], *,
                 cache_size: int = 8, chunk_bytes: float = 64e6) -> None:
        self.lag_values = _check_column(lag_values)
        self.mu, self.vectors = (value.to(torch.float64) for value in spatial_eigen)
        self.frames, self.dim = int(self.lag_values.shape[-1]), int(self.mu.shape[0])
        self.cache_size, self.chunk_bytes = int(cache_size), float(chunk_bytes)
        self._inverses: OrderedDict[float, ToeplitzInverse] = OrderedDict()
        self.last_solve: SolveInfo | None = None

    def inverse(self, diffusion_time: float) -> ToeplitzInverse:
        """The cached :class:`ToeplitzInverse` of the ``d`` systems ``(d, H)`` at one diffusion time."""
        t = float(diffusion_time)
        cached = self._inverses.get(t)
        if cached is not None:
            self._inverses.move_to_end(t)
            return cached
        time = torch.tensor(t, dtype=torch.float64)
        a2, s2 = float(diffusion.alpha(time) ** 2), float(diffusion.sigma2(time))
        columns = a2 * self.mu.clamp(min=0.0)[:, None] * self.lag_values[None, :]  # (d, H)
        columns[:, 0] += s2
        inverse = ToeplitzInverse(columns)
        self._inverses[t] = inverse
        while len(self._inverses) > self.cache_size:
            self._inverses.popitem(last=False)
        return inverse

    def solve(self, x: torch.Tensor, diffusion_time: torch.Tensor, rtol: float = DEFAULT_RTOL) -> torch.Tensor:
        """``C_t^{-1} vec(x)`` as ``(..., H, d)`` float64 for ``x (..., H, d)`` and ``diffusion_time`` a 0-d tensor
        or one per sample (shape ``x.shape[:-2]``); every feature system solved to relative residual ``rtol``.

        Raises:
            ToeplitzSolveError: ``rtol`` was not reached.
        """
        if not rtol > 0:
            raise ValueError(f"rtol must be > 0, got {rtol!r}")
        frames, dim = self.frames, self.dim
        flat = x.reshape(-1, frames, dim)
        count = flat.shape[0]
        times = (diffusion_time.reshape(()).expand(count) if diffusion_time.ndim == 0
                 else diffusion_time.expand(tuple(x.shape[:-2])).reshape(-1))
        spectrum_bytes = 16.0 * dim * (embedding_size(frames) // 2 + 1)
        chunk = max(1, int(self.chunk_bytes // (6 * spectrum_bytes)))
        out = torch.empty_like(flat)
        sweeps, worst = 0, 0.0
        values = times.tolist()
        for time in sorted(set(values)):
            inverse = self.inverse(time)
            members = [index for index, value in enumerate(values) if value == time]
            for first in range(0, len(members), chunk):
                rows = members[first:first + chunk]
                index: torch.Tensor | slice = torch.tensor(rows) if len(rows) < count else slice(None)
                rotated = (flat[index] @ self.vectors).transpose(-1, -2)  # (c, d, H)
                solved, info = inverse.solve(rotated, rtol=rtol)
                out[index] = solved.transpose(-1, -2) @ self.vectors.T
                sweeps, worst = max(sweeps, info.iterations), max(worst, info.residual)
        self.last_solve = SolveInfo(iterations=sweeps, residual=worst)
        return out.reshape(x.shape)
