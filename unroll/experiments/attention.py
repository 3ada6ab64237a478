"""Attention maps of a score model and their alignment with the temporal kernel.

``attention_maps(model, x, t)`` averages ``model.attention_weights(x, t)`` (a list over blocks of
``(batch, heads, H, H)``) over the samples: ``per_head (L, M, H, H)``, ``summed = per_head.sum(heads)``
``(L, H, H)`` and ``total = summed.mean(blocks)`` ``(H, H)``, all float64.

Alignment of a map ``A`` with ``gamma``: its lag profile ``p(m) = mean_{|i-j|=m} A[i, j]`` against
``gamma(m)``, as a Pearson correlation over lags ``m = first_lag..max_lag``. Any map that decays with
the lag correlates positively with a decreasing ``gamma``, whatever the data: hence the
positional-only control, the same model trained on temporally uncorrelated data (``Gamma = I``) or at
initialisation, whose alignment is the baseline a learned map must beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unroll.experiments.video import lag_profile_of_matrix

__all__ = ["AttentionMaps", "attention_maps", "lag_profile", "lag_alignment", "alignment_summary", "input_dependence"]


@dataclass
class AttentionMaps:
    """Sample-averaged attention maps (float64): ``per_head (L, M, H, H)``, ``summed (L, H, H)``, ``total (H, H)``."""

    per_head: torch.Tensor
    summed: torch.Tensor
    total: torch.Tensor

    @property
    def blocks(self) -> int:
        return int(self.per_head.shape[0])

    @property
    def heads(self) -> int:
        return int(self.per_head.shape[1])


@torch.no_grad()
def attention_maps(model: Any, x: torch.Tensor, diffusion_time: Any) -> AttentionMaps:
    """Average ``model.attention_weights(x, t)`` over the batch; see the module docstring for shapes."""
    if not hasattr(model, "attention_weights"):
        raise ValueError(f"model {type(model).__name__} has no attention_weights(x, t); it has no attention maps")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, H, d), got {tuple(x.shape)}")
    weights = model.attention_weights(x, diffusion_time)
    if not weights:
        raise ValueError("model.attention_weights returned no blocks")
    per_head = torch.stack([w.detach().to(torch.float64).mean(dim=0) for w in weights]).cpu()
    summed = per_head.sum(dim=1)
    return AttentionMaps(per_head=per_head, summed=summed, total=summed.mean(dim=0))


def lag_profile(matrix: torch.Tensor | np.ndarray) -> np.ndarray:
    """``p(m) = mean_{|i-j|=m} A[i, j]`` for ``m = 0..H-1`` (float64)."""
    return lag_profile_of_matrix(matrix)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def lag_alignment(matrix: torch.Tensor | np.ndarray, gamma_values: np.ndarray, *, first_lag: int = 0,
                  max_lag: int | None = None) -> float:
    """Pearson correlation of the lag profile of ``matrix`` with ``gamma_values[m]`` over ``first_lag..max_lag``.

    NaN when the profile is constant over those lags (a map with no lag structure).
    """
    profile = lag_profile(matrix)
    gamma_values = np.asarray(gamma_values, dtype=np.float64)
    last = len(profile) - 1 if max_lag is None else int(max_lag)
    if not 0 <= first_lag < last <= len(profile) - 1 or len(gamma_values) < last + 1:
        raise ValueError(f"need 0 <= first_lag < max_lag <= H-1 = {len(profile) - 1} and gamma for every lag; "
                         f"got first_lag={first_lag}, max_lag={last}, {len(gamma_values)} gamma values")
    return _pearson(profile[first_lag: last + 1], gamma_values[first_lag: last + 1])


def alignment_summary(maps: AttentionMaps, gamma_values: np.ndarray, *, max_lag: int | None = None) -> dict:
    """Alignment numbers of one model's maps: of the total map, per block (summed map), per head, best head.

    ``lag_corr`` uses lags ``0..max_lag``; ``lag_corr_offdiag`` lags ``1..max_lag`` (without the
    self-attention diagonal, which mostly reflects the residual path).
    """
    def both(matrix: torch.Tensor) -> dict:
        return {"lag_corr": lag_alignment(matrix, gamma_values, max_lag=max_lag),
                "lag_corr_offdiag": lag_alignment(matrix, gamma_values, first_lag=1, max_lag=max_lag)}

    per_head = [[both(maps.per_head[b, h]) for h in range(maps.heads)] for b in range(maps.blocks)]
    flat = [entry["lag_corr_offdiag"] for row in per_head for entry in row]
    finite = [v for v in flat if np.isfinite(v)]
    return {
        "total": both(maps.total),
        "per_block": [both(maps.summed[b]) for b in range(maps.blocks)],
        "best_head_offdiag": max(finite) if finite else float("nan"),
        "median_head_offdiag": float(np.median(finite)) if finite else float("nan"),
        "total_lag_profile": lag_profile(maps.total).tolist(),
    }


def input_dependence(model: Any, x: torch.Tensor, diffusion_time: Any, generator: torch.Generator | None = None
                     ) -> dict[str, float]:
    """Is an attention pattern computed from the input, or a fixed positional bias?

    The sample-averaged map on the data ``x`` (``(batch, H, d)``) against the map on zero inputs and on white
    noise with the data's per-coordinate variance (from ``generator``): ``zero = ||A_data - A_zero||_F /
    ||A_data||_F`` and ``white`` likewise, on the total map (mean over blocks, summed over heads).  Near 0: the
    map is the same whatever the input (a positional bias); large: the pattern is computed from the input.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    scale = x.to(torch.float64).std(dim=0, keepdim=True)
    white = torch.randn(x.shape, generator=generator, dtype=torch.float64) * scale
    data = attention_maps(model, x, diffusion_time).total
    norm = float(data.norm())
    out = {}
    for name, other in (("zero", torch.zeros_like(x)), ("white", white.to(x.dtype))):
        out[name] = float((attention_maps(model, other, diffusion_time).total - data).norm()) / max(norm, 1e-300)
    return out
