"""Attention extraction: softmax rows sum to one, summed maps are sums of heads, alignment is a correlation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments.attention import alignment_summary, attention_maps, lag_alignment, lag_profile
from unroll.experiments.models import DiT
from unroll.experiments.relu import build_relu_transformer


def _x(frames: int = 8, dim: int = 2) -> torch.Tensor:
    return torch.randn(5, frames, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float32)


def test_dit_softmax_rows_sum_to_one_and_summed_map_is_sum_of_heads():
    torch.manual_seed(0)
    model = DiT(8, 2, width=16, blocks=2, heads=4).float()
    raw = model.attention_weights(_x(), 0.4)
    assert len(raw) == 2 and raw[0].shape == (5, 4, 8, 8)
    for w in raw:
        assert torch.allclose(w.sum(dim=-1), torch.ones(5, 4, 8, dtype=w.dtype), atol=1e-6)
        assert bool((w >= 0).all())
    maps = attention_maps(model, _x(), 0.4)
    assert maps.per_head.shape == (2, 4, 8, 8) and maps.per_head.dtype == torch.float64
    # averaged over samples, each head's rows still sum to 1; a layer's summed map has row sums = heads
    assert torch.allclose(maps.per_head.sum(dim=-1), torch.ones(2, 4, 8, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(maps.summed.sum(dim=-1), torch.full((2, 8), 4.0, dtype=torch.float64), atol=1e-5)
    # summed map equals the plain loop over heads of the sample-mean of the raw weights
    for block in range(2):
        loop = sum(raw[block][:, h].double().mean(dim=0) for h in range(4))
        assert torch.allclose(maps.summed[block], loop, atol=1e-12)
    assert torch.allclose(maps.total, maps.summed.mean(dim=0))


def test_relu_transformer_maps_are_nonnegative_and_sum_over_heads():
    model = build_relu_transformer(8, 2, width=12, blocks=2, heads=3, ffn_width=8).float()
    maps = attention_maps(model, _x(), 0.4)
    assert maps.per_head.shape == (2, 3, 8, 8)
    assert bool((maps.per_head >= 0).all())
    assert torch.allclose(maps.summed, maps.per_head.sum(dim=1))


def test_lag_alignment_is_one_for_the_kernel_itself_and_minus_one_for_its_negative():
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=3.0), 10, torch.eye(1))
    gamma_values = gp.kernel(np.arange(10))
    assert np.allclose(lag_profile(gp.temporal), gamma_values)
    assert lag_alignment(gp.temporal, gamma_values) == pytest.approx(1.0)
    assert lag_alignment(-gp.temporal, gamma_values, first_lag=1) == pytest.approx(-1.0)
    assert np.isnan(lag_alignment(torch.ones(10, 10), gamma_values))


def test_alignment_summary_reports_every_block_and_head():
    torch.manual_seed(1)
    model = DiT(8, 2, width=16, blocks=2, heads=4).float()
    gamma_values = np.exp(-np.arange(8) / 3.0)
    summary = alignment_summary(attention_maps(model, _x(), 0.4), gamma_values)
    assert len(summary["per_block"]) == 2 and len(summary["total_lag_profile"]) == 8
    assert -1.0 <= summary["total"]["lag_corr"] <= 1.0


def test_models_without_attention_are_rejected():
    with pytest.raises(ValueError, match="attention"):
        attention_maps(torch.nn.Identity(), _x(), 0.4)
