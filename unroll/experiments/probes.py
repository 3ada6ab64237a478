"""Layer probes: which iterate of which solver does each block of a network hold?

In the manner of Fu, Chen, Jia, Sharan, "Transformers learn higher-order optimization methods for in-context
learning" (2023): for every residual stream ``z^(b)`` of a network (``b = 0`` after the input map, ``b = 1..L``
after each block), fit a linear read-out on a probe set and compare its prediction on held-out points with the
iterates of candidate solvers.  Here the solvers are the ones the construction can unroll
(docs/design.md §4, §7) at one diffusion time ``t``, from ``y_0 = 0``:

- ``"gd"``: iterate ``k`` of gradient descent with the step ``eta_t`` (``unroll.construction.gd.spectral_iterates``);
- ``"chebyshev"``: the result of the ``k``-step Chebyshev schedule, the best polynomial of degree ``k``
  (``spectral_iterates(..., k, steps="chebyshev")[-1]``; its intermediate iterates are not optimal).

The read-out is per token and shared across frames, ``yhat_i = W z_i^(b) + c`` (``W (d, D)``), fitted by ridge
regression to each target ``y_k`` on ``probe`` samples and scored on ``heldout`` samples.  Part of every iterate is
trivial to read out: ``y_1 = eta x`` is a per-token map of the input frame, and every stream that keeps ``x``
holds it.  The score is therefore normalised by the same probe on the input alone (``z_i = [x_i, 1]``),

    e(b, k) = ||yhat^(b, k) - y_k||_F / ||yhat^(x, k) - y_k||_F,

the part of iterate ``k`` that a frame-local map of the input misses and block ``b`` still misses: 0 when block
``b`` holds ``y_k``, about 1 when it holds nothing beyond the input frame.  ``k`` runs from 2 (``y_1`` is itself
frame-local).  ``best_iterate[b] = argmin_k e(b, k)`` and ``best_error[b]`` say which iterate block ``b`` matches
best and how well.  A per-token read-out can only produce ``y_k`` at frame ``i`` once the network has gathered the
frames ``y_k`` depends on (``y_k`` mixes lags up to ``(k - 1) J``).  For the constructed network
(``unroll.construct_unrolled``, GD) the y slot after block ``b`` *is* ``y_b``: ``e(b, b)`` is at rounding level
and ``best_iterate[b] = b`` for ``b >= 2``.  The fixed point ``y*_J = C_{t,J}^{-1} x`` is probed the same way
(``errors_fixed_point[b]``): how much of the answer block ``b`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from unroll._validate import check_diffusion_time, check_int

__all__ = ["ProbeResult", "residual_streams", "layer_probes", "PROBE_SOLVERS"]

PROBE_SOLVERS = ("gd", "chebyshev")


@dataclass
class ProbeResult:
    """Normalised held-out probe errors ``errors[solver]`` ``(B, len(iterates))`` for streams ``b = 0..B-1`` and the
    iterate counts ``iterates`` (module docstring), the same for the fixed point, and the best match per stream."""

    diffusion_time: float
    iterates: list[int]
    errors: dict[str, np.ndarray]
    errors_fixed_point: np.ndarray
    best_iterate: dict[str, list[int]] = field(default_factory=dict)
    best_error: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"diffusion_time": self.diffusion_time, "iterates": self.iterates,
                "best_iterate": self.best_iterate, "best_error": self.best_error,
                "errors_fixed_point": self.errors_fixed_point.tolist(),
                "errors": {name: value.tolist() for name, value in self.errors.items()}}


def residual_streams(model: Any, x: torch.Tensor, diffusion_time: float) -> list[torch.Tensor]:
    """The residual streams ``(batch, H, D)`` after the input map and after each block, float64.

    Works for an ``unroll.Transformer`` (``tokens``), a wrapper with ``.net`` (``NoiseParameterised``) and any model
    with ``hidden_states(x, t)`` (``unroll.experiments.models.DiT``).
    """
    with torch.no_grad():
        if hasattr(model, "hidden_states"):
            streams = model.hidden_states(x, diffusion_time)
        elif hasattr(model, "tokens"):
            streams = model.tokens(x, diffusion_time)
        elif hasattr(getattr(model, "net", None), "tokens"):
            streams = model.net.tokens(x, diffusion_time)
        else:
            raise ValueError(f"model {type(model).__name__} exposes no residual streams (tokens or hidden_states)")
    return [s.to(torch.float64) for s in streams]


def _design(stream: torch.Tensor) -> torch.Tensor:
    """Per-token features with a constant column: ``(batch * H, D + 1)``."""
    flat = stream.reshape(-1, stream.shape[-1])
    return torch.cat([flat, torch.ones(flat.shape[0], 1, dtype=flat.dtype)], dim=1)


def _ridge(features: torch.Tensor, targets: torch.Tensor, ridge: float) -> torch.Tensor:
    """``argmin_W ||features W - targets||^2 + ridge * tr(F^T F)/D * ||W||^2`` (columns standardised by the trace)."""
    gram = features.T @ features
    scale = float(torch.diagonal(gram).mean()) or 1.0
    system = gram + ridge * scale * torch.eye(gram.shape[0], dtype=gram.dtype)
    return torch.linalg.solve(system, features.T @ targets)


def _targets(gp: Any, x: torch.Tensor, t: float, iterates: list[int], bands: int) -> dict[str, list[torch.Tensor]]:
    from unroll.construction import gd

    largest = max(iterates)
    gd_path = gd.spectral_iterates(gp, x, t, largest, bands)
    out = {"gd": [gd_path[k] for k in iterates], "chebyshev": []}
    for k in iterates:
        out["chebyshev"].append(gd.spectral_iterates(gp, x, t, k, bands, steps="chebyshev")[-1])
    return out


def layer_probes(model: Any, gp: Any, diffusion_time: float, *, probe: int = 1024, heldout: int = 512,
                 iterates: int | list[int] = 40, bands: int | None = None, ridge: float = 1e-8,
                 generator: torch.Generator | None = None) -> ProbeResult:
    """Probe every residual stream of ``model`` for the solvers' iterates (module docstring).

    Args:
        model: a score network exposing residual streams (see :func:`residual_streams`), float64 preferred.
        gp: the ``GaussianProcess`` (stationary: the iterates use the banded ``Gamma_J``).
        diffusion_time: the ``t > 0`` at which points are drawn and iterates computed.
        probe: sample count for fitting the read-outs.
        heldout: sample count for scoring the read-outs.
        iterates: ``K`` (probe ``k = 2..K``) or an explicit list of iterate counts ``k >= 2``.
        bands: ``J`` of the solvers (default all lags, ``H - 1``).
        ridge: relative ridge penalty of the read-out fit.
        generator: draws the clean samples and the noise (default seed 0).
    Returns:
        a :class:`ProbeResult` (errors ``(L + 1, len(iterates))`` per solver, best iterate and error per stream).
    """
    t = float(check_diffusion_time(diffusion_time))
    probe = check_int("probe", probe, minimum=2)
    heldout = check_int("heldout", heldout, minimum=1)
    if isinstance(iterates, int):
        ks = list(range(2, check_int("iterates", iterates, minimum=2) + 1))
    else:
        ks = [check_int("iterates", k, minimum=2) for k in iterates]
        if not ks:
            raise ValueError("iterates must be a count >= 2 or a non-empty list of counts >= 2")
    bands = gp.frames - 1 if bands is None else check_int("bands", bands, minimum=0, maximum=gp.frames - 1)
    if not ridge >= 0:
        raise ValueError(f"ridge must satisfy ridge >= 0, got {ridge}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    x = gp.noised(gp.sample(probe + heldout, generator=generator), t, generator=generator)
    from unroll.construction import gd

    dtype = next(model.parameters()).dtype if hasattr(model, "parameters") else torch.float64
    streams = residual_streams(model, x.to(dtype), t)
    targets = _targets(gp, x, t, ks, bands)
    solvers = list(targets)
    columns = [gd.fixed_point(gp, x, t, bands)] + [target for name in solvers for target in targets[name]]
    fit, score = slice(0, probe), slice(probe, probe + heldout)

    def stack(part: slice) -> torch.Tensor:  # (part * H, d * columns)
        return torch.cat([c[part].reshape(-1, gp.dim) for c in columns], dim=1)

    train_targets, test_targets = stack(fit), stack(score)

    def missed(features: torch.Tensor) -> torch.Tensor:
        """Held-out error norm per column of the read-out fitted on ``features`` (``(n, H, F)``)."""
        weights = _ridge(_design(features[fit]), train_targets, ridge)
        gaps = (_design(features[score]) @ weights - test_targets).reshape(-1, len(columns), gp.dim)
        return gaps.pow(2).sum(dim=(0, 2)).sqrt()

    baseline = missed(x).clamp_min(1e-300)
    errors = {name: np.zeros((len(streams), len(ks))) for name in solvers}
    errors_fixed = np.zeros(len(streams))
    for b, stream in enumerate(streams):
        relative = missed(stream) / baseline
        errors_fixed[b] = float(relative[0])
        for s, name in enumerate(solvers):
            errors[name][b] = relative[1 + s * len(ks): 1 + (s + 1) * len(ks)].numpy()
    result = ProbeResult(diffusion_time=t, iterates=ks, errors=errors, errors_fixed_point=errors_fixed)
    for name in solvers:
        best = errors[name].argmin(axis=1)
        result.best_iterate[name] = [int(ks[i]) for i in best]
        result.best_error[name] = [float(errors[name][b, i]) for b, i in enumerate(best)]
    return result
