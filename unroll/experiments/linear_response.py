"""A score network read as a linear operator: its Jacobian held against the exact precision.

The exact score of the GP data is linear in ``x`` (docs/design.md §3),

    s(x, t) = -C_t^{-1} vec(x),        C_t = alpha_t^2 (Gamma ⊗ Sigma) + sigma_t^2 I,

so its Jacobian is the same matrix ``-C_t^{-1}`` at every point.  For any score ``S(x, t)`` (a trained
network, the constructed one, a plug-in estimate) ``linear_response`` computes the Jacobians
``J_s = dvec(S(x_s, t)) / dvec(x_s)`` (``(H d, H d)``, row-major ``vec`` = ``x.reshape(-1)``) at points
``x_1..x_n`` (default: draws of the noised data ``x_t``) and reports

    mean              = (1/n) sum_s J_s                                  (the average linear response)
    error             = ||mean - (-C_t^{-1})||_F / ||C_t^{-1}||_F          (against the exact linear score)
    nonlinearity      = sqrt((1/n) sum_s ||J_s - mean||_F^2) / ||mean||_F   (0 for a linear score)
    lag_profile[m]    = mean of the d x d blocks mean[i, j] with |i - j| = m,  m = 0..H-1
    lag_profile_error = sqrt(sum_m w_m ||P_m - E_m||_F^2) / sqrt(sum_m w_m ||E_m||_F^2)

with ``P``/``E`` the lag profiles of ``mean``/``exact`` and ``w_0 = H``, ``w_m = 2 (H - m)`` the number of
blocks at lag ``m``: the relative Frobenius distance between the block-Toeplitz projections of the two
matrices (the nearest matrices whose ``(i, j)`` block depends only on ``|i - j|``; averaging the blocks of
each lag is that orthogonal projection).  ``lag_profile_scalar[m] = trace(lag_profile[m]) / d`` is one number
per lag for plotting.  The lag profile of ``-C_t^{-1}`` is not ``Gamma``'s: ``C_t^{-1}`` is a precision and
not block Toeplitz in general, so ``lag_profile_error`` ignores the part of both matrices that is not a
function of the lag (and, relative to the projection's norm, can be larger or smaller than ``error``).
Ratios never give NaN: ``nonlinearity`` is 0 if all Jacobians are 0 and ``inf`` if they vary around a zero
mean.

A linear score has ``nonlinearity = 0``; for the constructed network in exact mode
(``unroll.construct_unrolled(gp, blocks=L, bands=J)``, linear in ``x`` at fixed ``t``: its heads depend only
on the frame embeddings and ``t``) every ``J_s`` is the network's own matrix and the nonlinearity is 0 up to
rounding; ``error`` is then its relative matrix error against the exact score.

**Jacobians.**  ``method="autograd"`` (default): the samples of a batch are independent, so the Jacobian of
``x_batch -> sum_s S(x_batch)_s`` with respect to ``x_batch`` holds every per-sample Jacobian.  Per chunk of
samples it takes one forward pass and ``H d`` backward passes, one per output coordinate, each over the whole
chunk.  ``benchmarks/linear_response_speed.py`` compares the ways to batch this, on one CPU thread with 64
points of a float64 DiT (width 48, 3 blocks, 4 heads; best chunk of 4, 16, 64).  At ``H d = 32 / 64 / 128``
the loop took 0.22 / 0.82 / 3.9 s, and one vmapped backward over all output coordinates
(``torch.autograd.grad(..., is_grads_batched=True)``, what ``torch.autograd.functional.jacobian(...,
vectorize=True)`` does) took 0.24 / 1.3 / 15 s.  A second run, with the machine loaded by other jobs, gave
0.33 / 1.5 / 7.0 s against 0.37 / 1.8 / 9.7 s.  ``torch.func.vmap(torch.func.jacrev(...))`` was slower still,
and it rejects the ``bool(...)`` input checks of ``gp.score`` and ``unroll.Transformer``.  ``vectorize=True``
selects the vmapped backward.  It pays for cheap maps such as ``gp.score`` (0.011 s against 0.040 s for a
whole call at ``H d = 32``) and may pay on a GPU.  If the model's backward cannot be vmapped it falls back to
the loop, which needs nothing but a differentiable forward.  The sum trick is only right if samples do not
interact, so the first chunk is checked: ``score_fn`` of sample 0 alone must match its value inside the chunk
(to ``INDEPENDENCE_TOLERANCE`` relative), else ``ValueError`` (batch statistics, dropout in train mode).

``method="finite-difference"``: central differences ``(S(x + h e_k) - S(x - h e_k)) / 2h`` with
``h = eps^(1/3) max(1, max|x_s|)`` (``eps`` the float64 machine epsilon).  It is meant for a ``score_fn``
that autograd cannot see through, e.g. one wrapped in ``torch.no_grad`` like
``unroll.experiments.compare.float64_score`` (pass its ``.model`` instead when you can).  For a linear score
only rounding remains, of order ``eps |S| / h``: we measured 1e-11 to 2e-11 relative for ``gp.score`` (H = 16,
d = 2) and 4e-10 for the constructed network (6 blocks, H = 8), whose large weights amplify the rounding.
For a nonlinear score, the truncation error ``h^2 |S'''| / 6`` adds to that.

Under ``method="autograd"``, an output without a ``grad_fn`` raises an error, because it usually means a
``torch.no_grad`` wrapper rather than a constant.  An output that has a ``grad_fn`` but does not involve
``x`` has Jacobian 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from unroll._validate import check_diffusion_time, check_finite, check_int, to_real_tensor

__all__ = ["linear_response", "LinearResponse", "lag_profile", "lag_profile_error", "METHODS"]

METHODS = ("autograd", "finite-difference")

#: relative gap allowed between ``score_fn`` of one sample alone and of the same sample inside a batch
INDEPENDENCE_TOLERANCE = 1e-8


@dataclass
class LinearResponse:
    """Result of :func:`linear_response` (``Hd = H d``; matrices act on row-major ``vec(x)``).

    ``mean``/``exact`` ``(Hd, Hd)``; ``lag_profile``/``exact_lag_profile`` ``(H, d, d)``;
    ``lag_profile_scalar``/``exact_lag_profile_scalar`` ``(H,)``; ``jacobians`` ``(n, Hd, Hd)`` only with
    ``keep_jacobians``.  Statistics as in the module docstring.
    """

    mean: torch.Tensor
    exact: torch.Tensor
    error: float
    nonlinearity: float
    lag_profile: torch.Tensor
    exact_lag_profile: torch.Tensor
    lag_profile_error: float
    lag_profile_scalar: torch.Tensor
    exact_lag_profile_scalar: torch.Tensor
    samples: int
    diffusion_time: float
    frames: int
    dim: int
    method: str
    seconds: float
    jacobians: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self, *, matrices: bool = False) -> dict[str, Any]:
        """JSON-ready numbers: the statistics and the lag profiles as lists (``mean``/``exact`` only with
        ``matrices=True``; the per-sample Jacobians never)."""
        out: dict[str, Any] = {
            "error": self.error, "nonlinearity": self.nonlinearity, "lag_profile_error": self.lag_profile_error,
            "lag_profile": self.lag_profile.tolist(), "exact_lag_profile": self.exact_lag_profile.tolist(),
            "lag_profile_scalar": self.lag_profile_scalar.tolist(),
            "exact_lag_profile_scalar": self.exact_lag_profile_scalar.tolist(),
            "samples": self.samples, "diffusion_time": self.diffusion_time, "frames": self.frames, "dim": self.dim,
            "method": self.method, "seconds": self.seconds,
        }
        if matrices:
            out["mean"] = self.mean.tolist()
            out["exact"] = self.exact.tolist()
        return out


# ----------------------------------------------------------------------------- lag profiles
def _check_matrix(name: str, matrix: Any, frames: int, dim: int) -> torch.Tensor:
    tensor = to_real_tensor(name, matrix).to(torch.float64)
    size = frames * dim
    if tuple(tensor.shape) != (size, size):
        raise ValueError(f"{name} must have shape (H d, H d) = ({size}, {size}) for frames={frames}, dim={dim}, "
                         f"got {tuple(tensor.shape)}")
    return check_finite(name, tensor)


def lag_profile(matrix: Any, frames: int, dim: int) -> torch.Tensor:
    """Block-Toeplitz averages of an ``(H d, H d)`` matrix: ``(H, d, d)``, entry ``m`` the mean of its ``d x d``
    blocks ``(i, j)`` (rows ``i d .. i d + d - 1``, columns ``j d .. j d + d - 1``) with ``|i - j| = m``.

    Lag ``m >= 1`` averages the ``2 (H - m)`` blocks above and below the diagonal together, lag 0 the ``H``
    diagonal blocks; a matrix whose blocks depend only on ``|i - j|`` gets its own blocks back.
    """
    frames = check_int("frames", frames, minimum=1)
    dim = check_int("dim", dim, minimum=1)
    tensor = _check_matrix("matrix", matrix, frames, dim)
    blocks = tensor.reshape(frames, dim, frames, dim).permute(0, 2, 1, 3)  # (H, H, d, d): blocks[i, j]
    profile = torch.empty(frames, dim, dim, dtype=torch.float64)
    for lag in range(frames):
        upper = torch.diagonal(blocks, offset=lag, dim1=0, dim2=1)  # (d, d, H - lag)
        if lag == 0:
            profile[0] = upper.mean(dim=-1)
        else:
            lower = torch.diagonal(blocks, offset=-lag, dim1=0, dim2=1)
            profile[lag] = (upper.sum(dim=-1) + lower.sum(dim=-1)) / (2 * (frames - lag))
    return profile


def lag_profile_error(profile: Any, reference: Any) -> float:
    """``sqrt(sum_m w_m ||P_m - R_m||_F^2 / sum_m w_m ||R_m||_F^2)`` for lag profiles ``(H, d, d)``,
    ``w_0 = H``, ``w_m = 2 (H - m)``: the relative Frobenius distance between the block-Toeplitz matrices
    the two profiles describe (``inf`` if ``reference`` is 0 and ``profile`` is not, 0 if both are)."""
    p = to_real_tensor("profile", profile).to(torch.float64)
    r = to_real_tensor("reference", reference).to(torch.float64)
    if p.ndim != 3 or p.shape != r.shape or p.shape[1] != p.shape[2]:
        raise ValueError(f"profile and reference must both have shape (H, d, d), got {tuple(p.shape)} and "
                         f"{tuple(r.shape)}")
    frames = p.shape[0]
    weights = 2.0 * (frames - torch.arange(frames, dtype=torch.float64))
    weights[0] = frames
    gap = float((weights * ((p - r) ** 2).sum(dim=(1, 2))).sum())
    scale = float((weights * (r**2).sum(dim=(1, 2))).sum())
    return _ratio(math.sqrt(gap), math.sqrt(scale))


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with ``0/0 = 0`` and ``x/0 = inf`` (never NaN)."""
    if denominator > 0:
        return numerator / denominator
    return 0.0 if numerator == 0 else math.inf


# ----------------------------------------------------------------------------- Jacobians
def _call(score_fn: Any, x: torch.Tensor, diffusion_time: float) -> torch.Tensor:
    out = score_fn(x, diffusion_time)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"score_fn must return a torch.Tensor, got {type(out).__name__}")
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"score_fn must return the shape of its input x {tuple(x.shape)}, got {tuple(out.shape)}")
    if out.dtype != torch.float64:
        raise ValueError(f"score_fn must return float64 (verification runs in float64), got {out.dtype}; "
                         f"convert a model with .double()")
    if not bool(torch.isfinite(out.detach()).all()):
        raise ValueError("score_fn returned NaN or infinite values; all entries must be finite")
    return out


def _autograd_jacobians(score_fn: Any, x: torch.Tensor, diffusion_time: float, vectorize: bool
                        ) -> tuple[torch.Tensor, bool]:
    """``(J (m, Hd, Hd), vectorize)`` for a chunk ``x (m, H, d)``; ``vectorize`` comes back ``False`` if the
    vectorised backward failed and the loop was used instead."""
    count, size = x.shape[0], x[0].numel()
    leaf = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = _call(score_fn, leaf, diffusion_time)
    if out.grad_fn is None:
        raise ValueError("score_fn's output does not depend differentiably on x (it has no grad_fn: is score_fn "
                         "wrapped in torch.no_grad, e.g. unroll.experiments.compare.float64_score? pass the module "
                         "itself, e.g. float64_score(model).model, or use method='finite-difference')")
    total = out.reshape(count, size).sum(dim=0)  # (Hd,): sample s's Jacobian is d total / d x_s
    if vectorize:
        try:
            eye = torch.eye(size, dtype=torch.float64, device=x.device)
            (grads,) = torch.autograd.grad(total, leaf, grad_outputs=eye, is_grads_batched=True, retain_graph=True,
                                           allow_unused=True)
            if grads is None:
                return x.new_zeros(count, size, size), True
            return grads.reshape(size, count, size).permute(1, 0, 2).contiguous(), True
        except RuntimeError:  # e.g. an op without a batching rule, or in-place ops the vmap cannot follow
            vectorize = False
    jacobians = x.new_empty(count, size, size)
    for row in range(size):
        (grad,) = torch.autograd.grad(total[row], leaf, retain_graph=row < size - 1, allow_unused=True)
        jacobians[:, row, :] = 0.0 if grad is None else grad.reshape(count, size)
    return jacobians, vectorize


@torch.no_grad()
def _finite_difference_jacobians(score_fn: Any, x: torch.Tensor, diffusion_time: float) -> torch.Tensor:
    """Central differences for a chunk ``x (m, H, d)`` -> ``(m, Hd, Hd)``, all ``2 Hd`` shifts in one call."""
    count, size = x.shape[0], x[0].numel()
    step = torch.finfo(torch.float64).eps ** (1 / 3) * x.reshape(count, size).abs().amax(dim=1).clamp_min(1.0)
    shifts = torch.eye(size, dtype=torch.float64, device=x.device)[None] * step[:, None, None]  # (m, Hd, Hd)
    flat = x.reshape(count, 1, size)
    points = torch.cat([flat + shifts, flat - shifts], dim=1).reshape((count * 2 * size,) + tuple(x.shape[1:]))
    out = _call(score_fn, points, diffusion_time).reshape(count, 2, size, size)  # [s, sign, k, :] = S(x_s +- h e_k)
    # out[s, 0, k] - out[s, 1, k] is column k of J_s times 2h
    return ((out[:, 0] - out[:, 1]) / (2 * step[:, None, None])).transpose(1, 2).contiguous()


def _check_independent(score_fn: Any, x: torch.Tensor, diffusion_time: float) -> None:
    """``score_fn(x)[0]`` must equal ``score_fn(x[:1])``: the Jacobians rely on samples not interacting."""
    with torch.no_grad():
        together = _call(score_fn, x, diffusion_time)[0]
        alone = _call(score_fn, x[:1], diffusion_time)[0]
    gap = _ratio(float((together - alone).norm()), float(alone.norm()))
    if not gap <= INDEPENDENCE_TOLERANCE:
        raise ValueError(f"score_fn mixes the samples of a batch or is not deterministic: sample 0 scored alone "
                         f"and inside a batch of {x.shape[0]} differ by {gap:.3g} (relative); score_fn must treat "
                         f"samples independently and deterministically (a module in eval mode: no dropout, no "
                         f"batch statistics)")


def _points(gp: Any, x: Any, samples: int, diffusion_time: float, generator: torch.Generator | None
            ) -> torch.Tensor:
    frames, dim = gp.frames, gp.dim
    if x is None:
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        return gp.noised(gp.sample(samples, generator=generator), diffusion_time, generator=generator)
    tensor = to_real_tensor("x", x).to(torch.float64)
    if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (frames, dim) or tensor.shape[0] < 1:
        raise ValueError(f"x must have shape (n, H, d) = (n, {frames}, {dim}) with n >= 1, got {tuple(tensor.shape)}")
    return check_finite("x", tensor.detach())


def linear_response(score_fn: Any, gp: Any, diffusion_time: float, samples: int = 64,
                    generator: torch.Generator | None = None, *, x: torch.Tensor | None = None,
                    keep_jacobians: bool = False, method: str = "autograd", vectorize: bool = False,
                    chunk: int = 16) -> LinearResponse:
    """Jacobians of ``score_fn`` at ``n`` points, their mean against the exact ``-C_t^{-1}`` (module docstring).

    Args:
        score_fn: ``score_fn(x (batch, H, d) float64, t: float) -> (batch, H, d)`` float64 — a module in eval
            mode (called with grad enabled), ``gp.score``, a lambda.  Samples must not interact (checked on
            the first chunk).
        gp: an ``unroll.GaussianProcess`` (``frames``, ``dim``, ``sample``, ``noised``, ``precision_apply``).
        diffusion_time: a positive scalar ``t``.
        samples: number of points ``n >= 1`` when ``x`` is not given: draws of the noised data ``x_t`` (clean
            samples from ``gp.sample``, noised by ``gp.noised``, both from ``generator``, default seed 0).
        x: the points ``(n, H, d)`` (then ``samples`` and ``generator`` are not used).
        keep_jacobians: keep the per-sample Jacobians ``(n, Hd, Hd)`` in the result.
        method: ``"autograd"`` or ``"finite-difference"`` (module docstring).
        vectorize: autograd only: one vectorised backward per chunk instead of a loop over the ``Hd`` outputs
            (falls back to the loop if the model's backward cannot be vmapped).
        chunk: samples per ``score_fn`` call (bounds memory: the chunk's Jacobians take ``chunk Hd^2`` floats).
    Returns:
        a :class:`LinearResponse`.
    Raises:
        ValueError: bad ``diffusion_time``, ``samples``, ``x``, ``method`` or ``chunk``; ``score_fn`` returning
            another shape, another dtype than float64, NaN/inf, an output without ``grad_fn`` (autograd), or
            mixing the samples of a batch.
    """
    t_tensor = check_diffusion_time(diffusion_time)
    if t_tensor.ndim != 0:
        raise ValueError(f"diffusion_time must be a scalar, got shape {tuple(t_tensor.shape)}")
    t = float(t_tensor)
    samples = check_int("samples", samples, minimum=1)
    chunk = check_int("chunk", chunk, minimum=1)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not callable(score_fn):
        raise ValueError(f"score_fn must be callable, got {type(score_fn).__name__}")
    if not all(hasattr(gp, name) for name in ("frames", "dim", "precision_apply", "sample", "noised")):
        raise ValueError(f"gp must be an unroll.GaussianProcess, got {type(gp).__name__}")
    frames, dim = int(gp.frames), int(gp.dim)
    size = frames * dim
    points = _points(gp, x, samples, t, generator)
    count = points.shape[0]

    started = time.perf_counter()
    mean = torch.zeros(size, size, dtype=torch.float64)
    spread = 0.0  # sum_s ||J_s - mean||_F^2, combined chunk by chunk (Chan et al.) to avoid cancellation
    done = 0
    kept = []
    requested_vectorize = vectorize
    for start in range(0, count, chunk):
        part = points[start: start + chunk]
        if start == 0 and part.shape[0] > 1:
            _check_independent(score_fn, part, t)
        if method == "autograd":
            jacobians, vectorize = _autograd_jacobians(score_fn, part, t, vectorize)
        else:
            jacobians = _finite_difference_jacobians(score_fn, part, t)
        jacobians = jacobians.detach()
        part_mean = jacobians.mean(dim=0)
        part_spread = float(((jacobians - part_mean) ** 2).sum())
        part_count = jacobians.shape[0]
        delta = part_mean - mean
        total = done + part_count
        spread += part_spread + float((delta**2).sum()) * done * part_count / total
        mean = mean + delta * (part_count / total)
        done = total
        if keep_jacobians:
            kept.append(jacobians)
    seconds = time.perf_counter() - started
    if method == "finite-difference":
        used = method
    elif vectorize:
        used = "autograd-vectorized"
    else:
        used = "autograd-loop" + (" (the vectorized backward failed)" if requested_vectorize else "")

    basis = torch.eye(size, dtype=torch.float64).reshape(size, frames, dim)
    precision = gp.precision_apply(basis, t).reshape(size, size).T  # column k = C_t^{-1} e_k
    exact = -precision.contiguous()
    profile, exact_profile = lag_profile(mean, frames, dim), lag_profile(exact, frames, dim)
    return LinearResponse(
        mean=mean, exact=exact,
        error=_ratio(float((mean - exact).norm()), float(exact.norm())),
        nonlinearity=_ratio(math.sqrt(spread / count), float(mean.norm())),
        lag_profile=profile, exact_lag_profile=exact_profile,
        lag_profile_error=lag_profile_error(profile, exact_profile),
        lag_profile_scalar=torch.diagonal(profile, dim1=1, dim2=2).mean(dim=-1),
        exact_lag_profile_scalar=torch.diagonal(exact_profile, dim1=1, dim2=2).mean(dim=-1),
        samples=count, diffusion_time=t, frames=frames, dim=dim, method=used, seconds=seconds,
        jacobians=torch.cat(kept) if keep_jacobians else None,
    )
