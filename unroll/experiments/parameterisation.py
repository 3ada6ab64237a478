"""The noise parameterisation of a score model: a network ``N`` predicts the noise ``z`` of
``x_t = alpha_t x_0 + sigma_t z`` and the score is

    s(x, t) = -N(x, t) / sigma_t,          sigma_t^2 = 1 - exp(-t)   (docs/design.md §3).

``NoiseParameterised`` wraps the generic ``unroll.Transformer`` (``unroll.experiments.relu``) so;
the DiT and U-Net of ``unroll.experiments.models`` apply it themselves.  ``batch_times`` broadcasts the diffusion
time(s) to one per sample.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from unroll.data.diffusion import sigma as diffusion_sigma
from unroll.model.transformer import Transformer

__all__ = ["NoiseParameterised", "batch_times"]


def batch_times(diffusion_time: Any, batch: int, like: torch.Tensor) -> torch.Tensor:
    """Diffusion time(s) as a ``(batch,)`` tensor with the dtype/device of ``like``; must be > 0."""
    t = torch.as_tensor(diffusion_time, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(batch)
    t = t.reshape(-1)
    if t.shape[0] == 1 and batch != 1:
        t = t.expand(batch)
    if t.shape[0] != batch:
        raise ValueError(f"diffusion_time must be a scalar or have one entry per sample ({batch}), "
                         f"got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        raise ValueError("diffusion_time must satisfy 0 < diffusion_time < inf")
    return t


class NoiseParameterised(nn.Module):
    """Wrap a ``Transformer`` ``net(x, t)`` (read as predicted noise) into a score model ``-net(x, t) / sigma_t``.

    ``attention_weights`` is delegated to the wrapped network.
    """

    def __init__(self, net: Transformer):
        super().__init__()
        self.net = net

    @property
    def config(self) -> dict:
        return dict(self.net.config)

    def forward(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        t = batch_times(diffusion_time, x.shape[0], x)
        return -self.net(x, t) / diffusion_sigma(t)[:, None, None]

    def attention_weights(self, x: torch.Tensor, diffusion_time: Any) -> list[torch.Tensor]:
        t = batch_times(diffusion_time, x.shape[0], x)
        return self.net.attention_weights(x, t)
