"""Banded attention: heads that only see lags ``|i - j| <= J`` in O(H J) instead of O(H^2) per head.

Shapes as in ``unroll.model.transformer.attend``: ``query, key (batch, M, H, dk)``, ``value (batch, M, H, dv)``.
With ``J' = min(J, H - 1)`` and offsets ``o = -J'..J'`` (band index ``o + J'``), the band scores are

    S[b, h, i, o + J'] = scale * q_i · k_{i+o}          for 0 <= i + o <= H - 1,

computed by shifting zero-padded keys (one pass over ``(batch, M, H, dk)`` per offset, never an ``H x H``
object).  Then

- ``kind="relu"``:    ``A[i, o] = ReLU(S[i, o])`` on valid positions, 0 on the padding;
- ``kind="softmax"``: ``A[i, o] = softmax_o(S[i, o])`` over the valid positions of row i (padding -> -inf),

and ``out_i = sum_o A[i, o] v_{i+o}``.  This is exactly the dense masked attention of ``attend`` (same
weights on ``|i - j| <= J``, zero elsewhere, same row normalisation at the sequence ends for softmax); the
two differ only by floating-point rounding, because the dense path forms ``q_i · k_j`` with a matrix
product whose summation order differs from the elementwise one here.  ``band_to_dense`` scatters the band
weights into the ``(batch, M, H, H)`` matrix of the dense path (for attention maps; that costs O(H^2)).

Cost per head: ``(2J'+1) H (dk + dv)`` multiply-adds and ``(2J'+1) H`` stored weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from unroll._validate import check_int

__all__ = ["banded_attend", "band_to_dense", "banded_pays", "banded_toeplitz_apply", "BANDED_SPEEDUP_FACTOR",
           "KINDS"]

KINDS = ("relu", "softmax")

#: ``banded_pays`` picks the banded path when ``(2 J' + 1) * BANDED_SPEEDUP_FACTOR <= H`` (measured crossover
#: on 2 CPU cores, float64, see benchmarks/attention_speed.py; the dense path uses a BLAS matrix product,
#: the banded one elementwise passes, so the banded path needs a band well below H to win).
BANDED_SPEEDUP_FACTOR = 4

#: ``banded_attend`` runs query frames in chunks of ``CHUNK_FRAMES / (batch * heads)`` rows (at least one) so
#: that the per-band temporaries stay in cache (measured on 2 cores, 51 heads, dk=3, dv=16, J=16, float64:
#: H=4096 in 77-84 ms chunked vs 147-197 ms in one piece; H=512 the same either way).
CHUNK_FRAMES = 32768


def banded_pays(frames: int, window: int | None) -> bool:
    """Whether the banded path is expected to be faster than the dense one for ``H = frames``, ``J = window``."""
    if window is None:
        return False
    span = 2 * min(int(window), max(int(frames) - 1, 0)) + 1
    return span * BANDED_SPEEDUP_FACTOR <= int(frames)


def _check(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, kind: str, window: int) -> int:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    window = check_int("window", window, minimum=0)
    if query.ndim < 2 or key.shape != query.shape or value.shape[:-1] != query.shape[:-1]:
        raise ValueError(f"query and key must have the same shape (..., H, dk) and value (..., H, dv); got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    return window


def banded_attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, kind: str, window: int,
                  scale: float, need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention restricted to ``|i - j| <= window`` (module docstring for the equations).

    Args:
        query: ``(..., H, dk)`` (e.g. ``(batch, M, H, dk)``).
        key: ``(..., H, dk)``.
        value: ``(..., H, dv)``.
        kind: ``"relu"`` or ``"softmax"``.
        window: ``J >= 0`` (``J >= H - 1`` means all frames).
        scale: factor on the scores ``q_i · k_j``.
        need_weights: keep and return the band weights; ``False`` drops each chunk's weights once its output is
            formed, so the extra memory is the output plus one chunk's temporaries (``benchmarks/attention_speed.py``).
    Returns:
        ``(out (..., H, dv), band_weights (..., H, 2J'+1) or None)`` with ``J' = min(J, H - 1)``; ``band_weights[...,
        i, o + J']`` is the weight of frame ``i + o`` in row ``i`` (0 where ``i + o`` is outside ``0..H-1``).
    Raises:
        ValueError: bad ``kind``, negative ``window`` or mismatched shapes.
    """
    window = _check(query, key, value, kind, window)
    frames = query.shape[-2]
    lead = tuple(query.shape[:-2])
    reach = min(window, frames - 1)
    tracking = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    rows = max(1, CHUNK_FRAMES // max(1, math.prod(lead)))
    dv = value.shape[-1]
    out = None if tracking else query.new_empty(lead + (dv, frames), dtype=torch.result_type(query, value))
    outs, weights = [], []
    for first in range(0, frames, rows):  # query frames in chunks: every temporary stays cache-sized
        stop = min(first + rows, frames)
        # frames on the last (contiguous) axis, the chunk's keys and values zero-padded to J' frames either side:
        # copies of one chunk only, never of the whole (..., H, dk) inputs
        low, high = max(first - reach, 0), min(stop + reach, frames)
        padding = (low - (first - reach), (stop + reach) - high)
        query_t = query[..., first:stop, :].transpose(-1, -2).contiguous()  # (..., dk, rows)
        key_t = F.pad(key[..., low:high, :].transpose(-1, -2), padding).contiguous()  # (..., dk, rows + 2J')
        value_t = F.pad(value[..., low:high, :].transpose(-1, -2), padding).contiguous()  # (..., dv, rows + 2J')
        chunk, weight = _band_rows(query_t, key_t, value_t, first, frames, reach, kind, scale, tracking)
        if out is None:
            outs.append(chunk)  # autograd: keep the pieces and concatenate (an in-place write would not record)
        else:
            out[..., first:stop] = chunk
        if need_weights:
            weights.append(weight)
    if out is None:
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
    if not need_weights:
        return out.transpose(-1, -2), None
    weight = weights[0] if len(weights) == 1 else torch.cat(weights, dim=-1)
    return out.transpose(-1, -2), weight.movedim(0, -1)


def _band_rows(query_t: torch.Tensor, key_t: torch.Tensor, value_t: torch.Tensor, first: int, frames: int,
               reach: int, kind: str, scale: float, tracking: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Output ``(..., dv, rows)`` and band weights ``(2J'+1, ..., rows)`` of the query frames ``first..first+rows-1``.

    ``query_t (..., dk, rows)`` holds those frames; ``key_t``/``value_t (..., dk|dv, rows + 2J')`` the key and value
    frames ``first - J' .. first + rows - 1 + J'`` (zero beyond the sequence), so query row ``r`` meets key frame
    ``first + r + o`` at local position ``r + o + J' = r + band``.
    """
    rows = query_t.shape[-1]
    span = 2 * reach + 1
    lead = tuple(query_t.shape[:-2])
    if tracking:  # out= and in-place accumulation do not record gradients
        scores = torch.stack([(query_t * key_t[..., band : band + rows]).sum(-2) for band in range(span)])
    else:
        scores = query_t.new_empty((span,) + lead + (rows,))
        for band in range(span):
            torch.sum(query_t * key_t[..., band : band + rows], dim=-2, out=scores[band])
    device = query_t.device
    position = torch.arange(-reach, reach + 1, device=device)[:, None] + torch.arange(first, first + rows,
                                                                                       device=device)
    valid = ((position >= 0) & (position <= frames - 1)).view((span,) + (1,) * len(lead) + (rows,))
    if tracking:
        scores = scores * scale
        if kind == "relu":
            weights = torch.where(valid, torch.relu(scores), torch.zeros_like(scores))
        else:
            weights = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=0)
    elif kind == "relu":  # in place: no temporaries of the chunk's size beyond the scores themselves
        weights = scores.mul_(scale).relu_().masked_fill_(~valid, 0.0)
    else:
        weights = torch.softmax(scores.mul_(scale).masked_fill_(~valid, float("-inf")), dim=0)
    out = torch.zeros(lead + (value_t.shape[-2], rows), dtype=torch.result_type(weights, value_t), device=device)
    for band in range(span):
        term = (weights[band].unsqueeze(-2), value_t[..., band : band + rows])
        out = out.addcmul(*term) if tracking else out.addcmul_(*term)
    return out, weights


def band_to_dense(band_weights: torch.Tensor, frames: int) -> torch.Tensor:
    """Scatter ``(..., H, 2J'+1)`` band weights (``banded_attend``) into the dense ``(..., H, H)`` matrix."""
    frames = check_int("frames", frames, minimum=1)
    span = band_weights.shape[-1]
    if band_weights.shape[-2] != frames or span % 2 == 0 or span > 2 * frames - 1:
        raise ValueError(f"band_weights must have shape (..., H, 2J'+1) with H = frames = {frames} and "
                         f"J' <= H - 1, got {tuple(band_weights.shape)}")
    reach = span // 2
    dense = band_weights.new_zeros(tuple(band_weights.shape[:-1]) + (frames,))
    for band in range(span):
        offset = band - reach
        diagonal = torch.diagonal(dense, offset=offset, dim1=-2, dim2=-1)  # a view: entries (i, i + offset)
        rows = slice(0, frames - offset) if offset >= 0 else slice(-offset, frames)
        diagonal.copy_(band_weights[..., rows, band])
    return dense


def banded_toeplitz_apply(lag_values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``Gamma_J y`` for the symmetric banded Toeplitz ``Gamma_J[i, j] = g(|i - j|)`` (0 for ``|i - j| > J``).

    Args:
        lag_values: ``(J + 1,)`` values ``g(0), ..., g(J)``.
        y: ``(..., H, d)``.
    Returns:
        ``(..., H, d)``: ``out_i = sum_{|i-j| <= J, 0 <= j < H} g(|i - j|) y_j`` by ``2J + 1`` shifted sums,
        O(H J d) time and O(H d) extra memory (the GD reference at large H).
    """
    if lag_values.ndim != 1 or lag_values.numel() < 1:
        raise ValueError(f"lag_values must have shape (J + 1,), got {tuple(lag_values.shape)}")
    if y.ndim < 2:
        raise ValueError(f"y must have shape (..., H, d), got {tuple(y.shape)}")
    frames = y.shape[-2]
    out = lag_values[0].to(y.dtype) * y
    for lag in range(1, min(lag_values.numel(), frames)):
        weight = lag_values[lag].to(y.dtype)
        out[..., lag:, :] += weight * y[..., : frames - lag, :]  # j = i - lag
        out[..., : frames - lag, :] += weight * y[..., lag:, :]  # j = i + lag
    return out
