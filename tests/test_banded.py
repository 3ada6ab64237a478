"""Banded attention (unroll.model.banded) against the dense masked attention of unroll.model.transformer.attend."""

from __future__ import annotations

import contextlib

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import unroll
import unroll.model.banded
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential
from unroll.model.banded import band_to_dense, banded_attend, banded_pays, banded_toeplitz_apply
from unroll.model.transformer import Transformer, attend


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / scale if scale > 0 else float((a - b).abs().max())


@contextlib.contextmanager
def query_chunks(rows: int | None, batch_heads: int):
    """Run ``banded_attend`` on chunks of ``rows`` query frames (None: the library default)."""
    default = unroll.model.banded.CHUNK_FRAMES
    if rows is not None:
        unroll.model.banded.CHUNK_FRAMES = rows * batch_heads
    try:
        yield
    finally:
        unroll.model.banded.CHUNK_FRAMES = default


def random_qkv(batch: int, heads: int, frames: int, key_dim: int, value_dim: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    shape = (batch, heads, frames)
    query = torch.randn(*shape, key_dim, generator=generator, dtype=torch.float64)
    key = torch.randn(*shape, key_dim, generator=generator, dtype=torch.float64)
    value = torch.randn(*shape, value_dim, generator=generator, dtype=torch.float64)
    return query, key, value


@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(1, 24),
    window=st.integers(0, 30),
    kind=st.sampled_from(["relu", "softmax"]),
    batch=st.integers(1, 2),
    heads=st.integers(1, 3),
    key_dim=st.integers(1, 4),
    value_dim=st.integers(1, 3),
    scale=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**16),
    chunk_rows=st.sampled_from([None, 1, 2, 5]),
)
# the edges of the band a random draw reaches only by luck: window H - 2, H - 1 (all frames), >= H, 0, one frame
@example(frames=7, window=5, kind="relu", batch=1, heads=2, key_dim=2, value_dim=2, scale=1.0, seed=1, chunk_rows=2)
@example(frames=7, window=5, kind="softmax", batch=1, heads=1, key_dim=3, value_dim=1, scale=0.7, seed=2,
         chunk_rows=None)
@example(frames=6, window=5, kind="relu", batch=2, heads=1, key_dim=1, value_dim=2, scale=1.3, seed=3, chunk_rows=1)
@example(frames=6, window=9, kind="softmax", batch=1, heads=1, key_dim=2, value_dim=2, scale=1.0, seed=4,
         chunk_rows=5)
@example(frames=5, window=0, kind="relu", batch=1, heads=1, key_dim=2, value_dim=1, scale=2.0, seed=5, chunk_rows=None)
@example(frames=1, window=3, kind="softmax", batch=1, heads=1, key_dim=1, value_dim=1, scale=1.0, seed=6,
         chunk_rows=None)
def test_banded_equals_dense_on_random_inputs(frames, window, kind, batch, heads, key_dim, value_dim, scale, seed,
                                              chunk_rows):
    query, key, value = random_qkv(batch, heads, frames, key_dim, value_dim, seed)
    dense_out, dense_weights = attend(query, key, value, kind, window, scale, path="dense")
    with query_chunks(chunk_rows, batch * heads):
        band_out, band_weights = banded_attend(query, key, value, kind, window, scale)
    reach = min(window, frames - 1)
    assert band_weights.shape == (batch, heads, frames, 2 * reach + 1)
    assert relative_error(band_out, dense_out) <= 1e-12
    assert relative_error(band_to_dense(band_weights, frames), dense_weights) <= 1e-12
    # the dispatcher's forced banded path is the same computation
    with query_chunks(chunk_rows, batch * heads):
        forced_out, forced_weights = attend(query, key, value, kind, window, scale, path="banded")
    assert torch.equal(forced_out, band_out) and torch.equal(forced_weights, band_to_dense(band_weights, frames))


def test_banded_weights_vanish_outside_the_band_and_rows_normalise_at_the_ends():
    query, key, value = random_qkv(1, 2, 9, 3, 2, seed=5)
    _, weights = banded_attend(query, key, value, "softmax", 3, 1.0)
    dense = band_to_dense(weights, 9)
    lag = (torch.arange(9)[:, None] - torch.arange(9)[None, :]).abs()
    assert float(dense[..., lag > 3].abs().max()) == 0.0
    assert torch.allclose(dense.sum(-1), torch.ones(1, 2, 9, dtype=torch.float64), atol=1e-14, rtol=0)
    _, relu_weights = banded_attend(query, key, value, "relu", 3, 1.0)
    assert float(band_to_dense(relu_weights, 9)[..., lag > 3].abs().max()) == 0.0


@pytest.mark.parametrize("kind", ["relu", "softmax"])
@pytest.mark.parametrize("tracking", [False, True])
def test_raw_band_weights_are_zero_where_the_band_leaves_the_sequence(kind, tracking):
    """The documented ``band_weights[..., i, o + J'] = 0`` where ``i + o`` is outside ``0..H-1``, read directly
    (``band_to_dense`` drops those entries, so it cannot see them), on the in-place path and the autograd one."""
    query, key, value = random_qkv(1, 2, 9, 3, 2, seed=5)
    if tracking:
        query.requires_grad_(True)
    _, weights = banded_attend(query, key, value, kind, 3, 1.0)
    outside = torch.tensor([[not 0 <= i + o <= 8 for o in range(-3, 4)] for i in range(9)])
    assert int(outside.sum()) == 12  # rows 0-2 and 6-8 lose 3 + 2 + 1 frames each
    assert float(weights.detach()[..., outside].abs().max()) == 0.0
    if kind == "softmax":  # positive at every frame inside the sequence
        assert float(weights.detach()[..., ~outside].min()) > 0.0


def test_window_none_forced_banded_is_full_attention():
    query, key, value = random_qkv(2, 2, 7, 3, 2, seed=1)
    dense_out, _ = attend(query, key, value, "relu", None, 1.0, path="dense")
    band_out, _ = attend(query, key, value, "relu", None, 1.0, path="banded")
    assert relative_error(band_out, dense_out) <= 1e-12


@pytest.mark.parametrize("chunk_rows", [None, 6, 5])  # 12 frames: one chunk, exactly two, three
def test_gradients_agree(chunk_rows):
    query, key, value = random_qkv(1, 2, 12, 3, 2, seed=2)
    grads = []
    for path in ("dense", "banded"):
        leaves = [t.clone().requires_grad_(True) for t in (query, key, value)]
        with query_chunks(chunk_rows, 2):
            out, _ = attend(*leaves, "softmax", 2, 0.8, path=path, need_weights=False)
        (out**2).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for dense_grad, band_grad in zip(*grads, strict=True):
        assert relative_error(band_grad, dense_grad) <= 1e-12


@pytest.mark.parametrize(("frames", "bands"), [(1, 0), (1, 3), (7, 2), (7, 6), (7, 9), (40, 5)])
def test_banded_toeplitz_apply_matches_dense_matrix(frames, bands):
    generator = torch.Generator().manual_seed(frames + bands)
    lags = torch.randn(bands + 1, generator=generator, dtype=torch.float64)
    y = torch.randn(2, frames, 3, generator=generator, dtype=torch.float64)
    lag = (torch.arange(frames)[:, None] - torch.arange(frames)[None, :]).abs()
    matrix = torch.where(lag <= bands, lags[lag.clamp(max=bands)], torch.zeros((), dtype=torch.float64))
    assert relative_error(banded_toeplitz_apply(lags, y), matrix @ y) <= 1e-14


@pytest.mark.parametrize("window", [0, 1, 4, 7])
def test_auto_dispatch_rule_at_its_boundary(window):
    """Banded exactly when ``(2 J + 1) * BANDED_SPEEDUP_FACTOR <= H``: at ``H = 4 (2J + 1)`` and not one frame
    below."""
    frames = 4 * (2 * window + 1)
    assert unroll.model.banded.BANDED_SPEEDUP_FACTOR == 4
    assert banded_pays(frames, window) and not banded_pays(frames - 1, window)
    assert banded_pays(10 * frames, window)


def test_auto_dispatch_rule():
    assert banded_pays(64, 4)  # (2*4+1) * 4 = 36 <= 64
    assert not banded_pays(64, 8)
    assert not banded_pays(64, None)
    assert not banded_pays(1, 0)  # span 1, 4 > 1


def test_bad_arguments_are_rejected():
    query, key, value = random_qkv(1, 1, 4, 2, 2, seed=0)
    with pytest.raises(ValueError, match="path"):
        attend(query, key, value, "relu", 1, 1.0, path="sparse")
    with pytest.raises(ValueError, match="kind"):
        banded_attend(query, key, value, "linear", 1, 1.0)
    with pytest.raises(ValueError, match="window"):
        banded_attend(query, key, value, "relu", -1, 1.0)
    with pytest.raises(ValueError, match="attention_path"):
        Transformer(dim=2, width=4, blocks=1, heads=1, attention_path="sparse")
    with pytest.raises(ValueError, match="band_weights"):
        band_to_dense(torch.zeros(4, 2), 4)


def _with_path(model: Transformer, path: str) -> Transformer:
    twin = Transformer(**{**model.config, "attention_path": path})
    twin.load_state_dict(model.state_dict())
    return twin


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_constructed_model_banded_forward_equals_dense(mode):
    """The constructor sets ``window = bands``; both execution paths give the same score to 1e-12."""
    frames, bands = 48, 3
    spatial = torch.tensor([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.0]], dtype=torch.float64)
    gp = GaussianProcess(GammaExponential(nu=1.0, ell=0.7), frames, spatial)
    model = unroll.construct_unrolled(gp, blocks=12, bands=bands, mode=mode)
    assert model.config["window"] == bands and model.config["attention_path"] == "auto"
    assert banded_pays(frames, bands)  # so "auto" runs banded here
    x = gp.noised(gp.sample(2, torch.Generator().manual_seed(0)), 0.5, torch.Generator().manual_seed(1))
    with torch.no_grad():
        dense = _with_path(model, "dense")(x, 0.5)
        banded = _with_path(model, "banded")(x, 0.5)
        auto = model(x, 0.5)
    assert relative_error(banded, dense) <= 1e-12
    assert torch.equal(auto, banded)
    with torch.no_grad():
        dense_maps = _with_path(model, "dense").attention_weights(x[:1], 0.5)
        band_maps = _with_path(model, "banded").attention_weights(x[:1], 0.5)
    for dense_map, band_map in zip(dense_maps, band_maps, strict=True):
        assert relative_error(band_map, dense_map) <= 1e-12


def test_softmax_window_model_banded_equals_dense():
    model = Transformer(dim=2, width=8, blocks=3, heads=2, attention="softmax", window=2, seed=3,
                        dtype=torch.float64)
    x = torch.randn(2, 30, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with torch.no_grad():
        dense = _with_path(model, "dense")(x, 0.3)
        banded = _with_path(model, "banded")(x, 0.3)
    assert relative_error(banded, dense) <= 1e-12


def test_band_to_dense_of_unbatched_weights_and_its_argument_checks():
    """``(H, 2J'+1)`` weights (no leading axes) scatter like batched ones; spans up to ``2H - 1`` only; a bad ``frames``
    is named (mutation testing, issue 15)."""
    frames, reach = 5, 4  # J' = H - 1: the widest band
    weights = torch.arange(frames * (2 * reach + 1), dtype=torch.float64).reshape(frames, 2 * reach + 1) + 1
    dense = band_to_dense(weights, frames)
    for i in range(frames):
        for j in range(frames):
            assert dense[i, j] == weights[i, j - i + reach]
    assert torch.equal(band_to_dense(weights[None, None], frames)[0, 0], dense)
    with pytest.raises(ValueError, match="band_weights"):
        band_to_dense(torch.zeros(frames, 2 * frames + 1), frames)  # span 2H + 1 > 2H - 1
    with pytest.raises(ValueError, match="^frames must satisfy 1 <= frames"):
        band_to_dense(weights, 0)
    with pytest.raises(TypeError, match="^frames must be an integer"):
        band_to_dense(weights, "5")


def test_banded_toeplitz_apply_unbatched_keeps_the_dtype_of_y_and_checks_lag_values():
    lags = torch.tensor([2.0, -0.5, 0.25], dtype=torch.float64)
    y = torch.arange(12, dtype=torch.float32).reshape(6, 2)  # (H, d): no batch axis
    out = banded_toeplitz_apply(lags, y)
    lag = (torch.arange(6)[:, None] - torch.arange(6)[None, :]).abs()
    matrix = torch.where(lag <= 2, lags[lag.clamp(max=2)], torch.zeros((), dtype=torch.float64))
    assert out.dtype == torch.float32 and torch.allclose(out.double(), matrix @ y.double(), rtol=1e-6)
    with pytest.raises(ValueError, match="lag_values"):
        banded_toeplitz_apply(torch.ones(2, 3), y)  # 2-D lag values, not empty
    with pytest.raises(ValueError, match="lag_values"):
        banded_toeplitz_apply(torch.ones(0), y)
    with pytest.raises(ValueError, match="y must"):
        banded_toeplitz_apply(lags, torch.ones(4))


@pytest.mark.parametrize("lead", [(), (3,), (2, 1, 2)])
@pytest.mark.parametrize("kind", ["relu", "softmax"])
@pytest.mark.parametrize("tracking", [False, True])
def test_banded_equals_dense_for_any_number_of_leading_axes(lead, kind, tracking):
    """``(..., H, dk)``: no leading axis, one, or three; the band axes are counted from the end (both code paths:
    without autograd and with a query that requires grad)."""
    generator = torch.Generator().manual_seed(len(lead))
    frames, window = 6, 2
    query = torch.randn(*lead, frames, 3, generator=generator, dtype=torch.float64).requires_grad_(tracking)
    key = torch.randn(*lead, frames, 3, generator=generator, dtype=torch.float64)
    value = torch.randn(*lead, frames, 2, generator=generator, dtype=torch.float64)
    lag = (torch.arange(frames)[:, None] - torch.arange(frames)[None, :]).abs()
    scores = 0.9 * query @ key.transpose(-1, -2)
    if kind == "relu":
        weights = torch.where(lag <= window, torch.relu(scores), torch.zeros_like(scores))
    else:
        weights = torch.softmax(scores.masked_fill(lag > window, float("-inf")), dim=-1)
    out, band_weights = banded_attend(query, key, value, kind, window, 0.9)
    assert out.requires_grad == tracking
    assert out.shape == (*lead, frames, 2) and band_weights.shape == (*lead, frames, 2 * window + 1)
    assert relative_error(out, weights @ value) <= 1e-12
    assert relative_error(band_to_dense(band_weights, frames), weights) <= 1e-12
    out_only, no_weights = banded_attend(query, key, value, kind, window, 0.9, need_weights=False)
    assert no_weights is None and out_only.shape == out.shape and relative_error(out_only, weights @ value) <= 1e-12


def test_banded_attend_checks_each_shape_and_names_the_window():
    query, key, value = random_qkv(1, 1, 4, 2, 2, seed=0)
    with pytest.raises(ValueError, match="query and key must have the same shape"):
        banded_attend(query, key[..., :1], value, "relu", 1, 1.0)  # key differs, value fits
    with pytest.raises(ValueError, match="query and key must have the same shape"):
        banded_attend(query, key, value[..., :3, :], "relu", 1, 1.0)  # value has other frames
    with pytest.raises(ValueError, match="query and key must have the same shape"):
        banded_attend(query[0, 0, 0], key[0, 0, 0], value[0, 0, 0], "relu", 1, 1.0)  # 1-D
    with pytest.raises(ValueError, match="^window must satisfy 0 <= window"):
        banded_attend(query, key, value, "relu", -1, 1.0)


@pytest.mark.parametrize("kind", ["relu", "softmax"])
def test_mixed_precision_inputs_give_the_promoted_dtype(kind):
    """float32 queries and keys with float64 values give float64 outputs (``torch.result_type``), equal to the dense
    path on the same inputs: the output buffer must not be allocated in the query's dtype (a sampled mutation run of
    unroll/model/banded.py, seed 2, found that nothing checked it)."""
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 12, 3, dtype=torch.float32, generator=generator)
    key = torch.randn(2, 12, 3, dtype=torch.float32, generator=generator)
    value = torch.randn(2, 12, 4, dtype=torch.float64, generator=generator)
    out, _ = unroll.model.banded.banded_attend(query, key, value, kind=kind, window=3, scale=0.5)
    reference, _ = attend(query.double(), key.double(), value, kind, 3, 0.5, path="dense")
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, reference, rtol=1e-6, atol=1e-6)  # float32 scores: float32 rounding
