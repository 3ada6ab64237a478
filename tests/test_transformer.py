"""unroll.Transformer: a generic model; shapes, attention against a loop oracle, masks, config round-trip,
dtypes, trainability, input validation."""

from __future__ import annotations

import math

import pytest
import torch

import unroll
from unroll._validate import NonFiniteError
from unroll.model.transformer import Transformer, attend


def small(**overrides):
    config = dict(dim=3, width=10, blocks=2, heads=2, head_dim=4, ffn_width=7, frequencies=2, seed=3)
    config.update(overrides)
    return Transformer(**config)


def data(batch=2, frames=5, dim=3, seed=0):
    return torch.randn(batch, frames, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_exported_name_and_shapes():
    assert unroll.Transformer is Transformer
    model = small()
    x = data()
    assert model(x, 0.5).shape == (2, 5, 3)
    assert model(x[0], 0.5).shape == (5, 3)
    assert torch.allclose(model(x[0], 0.5), model(x, 0.5)[0])
    readouts = model.readouts(x, torch.tensor([0.5, 1.0]))
    assert len(readouts) == 3 and all(r.shape == (2, 5, 3) for r in readouts)
    assert torch.equal(readouts[-1], model(x, torch.tensor([0.5, 1.0])))
    weights = model.attention_weights(x, 0.5)
    assert len(weights) == 2 and all(w.shape == (2, 2, 5, 5) for w in weights)
    assert all(bool((w >= 0).all()) for w in weights)


def test_relu_attention_matches_plain_loop():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 2, 6, 3, generator=g), torch.randn(1, 2, 6, 3, generator=g)
    v = torch.randn(1, 2, 6, 4, generator=g)
    out, weights = attend(q, k, v, "relu", window=2, scale=0.7)
    for h in range(2):
        for i in range(6):
            expected = torch.zeros(4)
            for j in range(6):
                if abs(i - j) <= 2:
                    expected += max(0.0, 0.7 * float(q[0, h, i] @ k[0, h, j])) * v[0, h, j]
            assert torch.allclose(out[0, h, i], expected, atol=1e-12)
    assert float(weights[0, :, 0, 4].abs().max()) == 0.0


def test_softmax_attention_rows_and_window():
    model = small(attention="softmax", window=1, heads=3)
    with torch.no_grad():
        weights = model.attention_weights(data(), 0.3)
    for w in weights:
        assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]))
        index = torch.arange(5)
        far = (index[:, None] - index[None, :]).abs() > 1
        assert float(w[..., far].abs().max()) == 0.0


@pytest.mark.parametrize("time_embedding", ["rational", "sinusoidal", "mlp"])
@pytest.mark.parametrize("attention", ["relu", "softmax"])
def test_config_round_trip_is_bit_identical(time_embedding, attention):
    model = small(time_embedding=time_embedding, time_features=4, attention=attention, layer_norm=True)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(7), dtype=p.dtype))
    fresh = Transformer(**model.config)
    fresh.load_state_dict(model.state_dict())
    x, t = data(), torch.tensor([0.2, 3.0])
    assert torch.equal(fresh(x, t), model(x, t))


def test_rational_time_features_formula():
    model = small(time_features=3)
    with torch.no_grad():
        model.time_weight.copy_(torch.eye(3))
        model.time_norm.copy_(torch.tensor([2.5, 1.0, 0.0]))
    t = torch.tensor([0.1, 1.0, 5.0])
    a2, s2 = torch.exp(-t), 1 - torch.exp(-t)
    eta = 1 / (2.5 * a2 + s2)
    assert torch.allclose(model.time_features(t), torch.stack([eta * a2, eta * s2, eta], -1), rtol=1e-14)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_and_trainability(dtype):
    model = small().to(dtype)
    x = data().to(dtype)
    out = model(x, 0.5)
    assert out.dtype == dtype
    loss = out.pow(2).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_input_validation_names_the_parameter():
    model = small()
    x = data()
    with pytest.raises(ValueError, match="diffusion_time"):
        model(x, 0.0)
    with pytest.raises(ValueError, match="diffusion_time"):
        model(x, torch.tensor([0.1, 0.2, 0.3]))
    bad = x.clone()
    bad[0, 1, 1] = math.nan
    with pytest.raises(ValueError, match="x contains"):
        model(bad, 0.5)
    with pytest.raises(ValueError, match="x must have shape"):
        model(x[..., :2], 0.5)
    for name, value in [("heads", 0), ("blocks", 0), ("width", 0), ("window", -1)]:
        with pytest.raises(ValueError, match=name):
            small(**{name: value})
    with pytest.raises(ValueError, match="attention"):
        small(attention="linear")
    with pytest.raises(ValueError, match="time_embedding"):
        small(time_embedding="fourier")


def test_config_records_dtype_so_round_trip_is_exact_under_any_default_dtype():
    model = small().to(torch.float64)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        fresh = Transformer(**model.config)
        plain = Transformer(**{k: v for k, v in model.config.items() if k != "dtype"})
    finally:
        torch.set_default_dtype(previous)
    assert model.config["dtype"] == "float64" and fresh.dtype == torch.float64 and plain.dtype == torch.float32
    fresh.load_state_dict(model.state_dict())
    x = data()
    assert torch.equal(fresh(x, 0.5), model(x, 0.5))
    assert model.to(torch.float32).config["dtype"] == "float32"
    with pytest.raises(ValueError, match="dtype"):
        small(dtype="int8")


def test_float32_frame_embeddings_give_position_independent_lag_values():
    """e_i·e_j must depend on the lag only; float32 angles w*i would add an error growing like i w eps."""
    model = Transformer(dim=1, width=4, blocks=1, heads=1, frame_scale=18.0, dtype="float32")
    embeddings = model.frame_embeddings(4096).double()  # (H, 2)
    assert model.frame_embeddings(4096).dtype == torch.float32
    for lag in (0, 1, 5, 17):
        lag_values = (embeddings[lag:] * embeddings[: 4096 - lag]).sum(-1)
        # each float32 entry is its float64 value rounded once (<= 2^-24 relative): products of two
        # such entries, summed over 2 coordinates, move by a few 2^-24 at most
        assert float(lag_values.max() - lag_values.min()) <= 8 * 2.0**-24


def test_non_finite_outputs_are_an_error_naming_the_cause():
    """qk_scale = 1e300 (accepted: finite) and x * 1e300 gave NaN outputs silently."""
    x = data()
    with pytest.raises(NonFiniteError, match=r"Transformer\.forward produced .*qk_scale = 1e\+300"):
        with torch.no_grad():
            small(qk_scale=1e300)(x, 0.5)
    with pytest.raises(NonFiniteError, match=r"max \|x\| = "):
        with torch.no_grad():
            small()(x.double() * 1e300, 0.5)
    broken = small()
    with torch.no_grad():
        broken.readout_bias[0] = math.inf
    with pytest.raises(FloatingPointError, match="parameters are NaN or infinite"):
        broken(x, 0.5)
    assert math.isnan(broken.max_weight_norm()["spectral"])
    with pytest.raises(TypeError, match="qk_scale"):
        small(qk_scale="1")
    with pytest.raises(TypeError, match="x must be real"):
        small()(x.to(torch.complex64), 0.5)
