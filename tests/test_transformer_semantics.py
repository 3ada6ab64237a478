"""Semantic tests of ``unroll.model.transformer`` written to kill the survivors of mutation testing (issue 15).

The oracle is a plainly written forward pass (``plain_forward``): Python loops over samples, frames, heads and
attended frames, each formula of the module docstring written out from the parameters, with the frame and time
features built here from their definitions (not from the model's buffers or methods).  Besides it: state_dict
round trips, the initialisation's documented values and scales, seeding, and the weight-norm report against
numpy's SVD.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from unroll._validate import NonFiniteError
from unroll.model import transformer as transformer_module
from unroll.model.transformer import Transformer, attend

#: float64 rounding on O(1) tokens through a few blocks: a few hundred operations, so 1e-10 is ~5e5 ulp of margin
ROUNDING = 1e-10


def frame_features(frames: int, count: int, frame_scale: float) -> torch.Tensor:
    """e(i) = [cos(w_f i), sin(w_f i)], w_f = pi / (frame_scale 2^f), f = 0..count-1 (the documented init)."""
    rows = []
    for i in range(frames):
        w = [math.pi / (frame_scale * 2.0**f) for f in range(count)]
        rows.append([math.cos(wf * i) for wf in w] + [math.sin(wf * i) for wf in w])
    return torch.tensor(rows, dtype=torch.float64)


def time_feature_vector(model: Transformer, t: float) -> torch.Tensor:
    """phi(t) from the module docstring, per kind."""
    config = model.config
    kind, k = config["time_embedding"], config["time_features"]
    if kind == "rational":
        a = torch.tensor([math.exp(-t), -math.expm1(-t), 1.0])
        groups = config["time_groups"]
        per_group = k // groups
        weight, norm = model.time_weight.detach().double(), model.time_norm.detach().double()
        return torch.stack([weight[f] @ a / (norm[f // per_group] @ a) for f in range(k)])
    half = k // 2
    frequencies = [2.0 ** (-2.0 + 4.0 * j / (half - 1)) if half > 1 else 0.25 for j in range(half)]
    angles = [f * math.log(t) for f in frequencies]
    features = torch.tensor([math.sin(a) for a in angles] + [math.cos(a) for a in angles])
    if kind == "mlp":
        first, second = model.time_mlp[0], model.time_mlp[2]
        hidden = first.weight.detach().double() @ features + first.bias.detach().double()
        hidden = hidden * torch.sigmoid(hidden)  # SiLU
        features = second.weight.detach().double() @ hidden + second.bias.detach().double()
    return features


def layer_norm(v: torch.Tensor, norm: Any, enabled: bool) -> torch.Tensor:
    """(v - mean)/sqrt(var + 1e-5) * weight + bias (biased variance, torch's default eps) if the config asks for
    layer norms (the module must then be a LayerNorm), else v itself."""
    if not enabled:
        return v
    assert isinstance(norm, torch.nn.LayerNorm)
    centred = v - v.mean()
    return centred / torch.sqrt((centred**2).mean() + 1e-5) * norm.weight.detach() + norm.bias.detach()


def plain_forward(model: Transformer, x: torch.Tensor, times: list[float]) -> list[torch.Tensor]:
    """The read-outs after the input map and after each block, by loops (``(batch, H, d)`` each)."""
    config = model.config
    p = {name: value.detach().double() for name, value in model.named_parameters()}
    batch, frames, _ = x.shape
    e = frame_features(frames, config["frequencies"], config["frame_scale"])
    window, scale = config["window"], config["qk_scale"]
    depth_blocks = [model.blocks[0]] * config["blocks"] if config["looped"] else list(model.blocks)
    readouts = [torch.zeros(batch, frames, config["dim"]) for _ in range(config["blocks"] + 1)]
    for b in range(batch):
        phi = time_feature_vector(model, times[b])
        z = [p["input_x"] @ x[b, i] + p["input_frame"] @ e[i] + p["input_time"] @ phi + p["input_bias"]
             for i in range(frames)]
        readouts[0][b] = torch.stack([p["readout_weight"] @ zi + p["readout_bias"] for zi in z])
        for depth, block in enumerate(depth_blocks):
            q_w, k_w, v_w, o_w = (getattr(block, n).detach().double() for n in ("query", "key", "value", "output"))
            u = [layer_norm(zi, block.norm1, config["layer_norm"]) for zi in z]
            update = [torch.zeros(config["width"]) for _ in range(frames)]
            for h in range(config["heads"]):
                for i in range(frames):
                    allowed = [j for j in range(frames) if window is None or abs(i - j) <= window]
                    scores = [scale * float((q_w[h] @ u[i]) @ (k_w[h] @ u[j])) for j in allowed]
                    if config["attention"] == "relu":
                        weights = [max(0.0, s) for s in scores]
                    else:
                        top = max(scores)
                        exps = [math.exp(s - top) for s in scores]
                        weights = [w / sum(exps) for w in exps]
                    mixed = sum(w * (v_w[h] @ u[j]) for w, j in zip(weights, allowed, strict=True))
                    update[i] = update[i] + o_w[h] @ mixed
            z = [zi + ui for zi, ui in zip(z, update, strict=True)]
            ffn_in, ffn_in_bias = block.ffn_in.detach().double(), block.ffn_in_bias.detach().double()
            ffn_out, ffn_out_bias = block.ffn_out.detach().double(), block.ffn_out_bias.detach().double()
            z = [zi + ffn_out @ torch.relu(ffn_in @ layer_norm(zi, block.norm2, config["layer_norm"]) + ffn_in_bias)
                 + ffn_out_bias for zi in z]
            readouts[depth + 1][b] = torch.stack([p["readout_weight"] @ zi + p["readout_bias"] for zi in z])
    return readouts


def perturbed(model: Transformer, seed: int = 7) -> Transformer:
    """Move every parameter (biases and LayerNorm affine terms start at 0 and 1) so that each one matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.2 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
        if hasattr(model, "time_norm"):
            model.time_norm.abs_().add_(0.5)  # keep every denominator v_g . a_t positive
    return model


CONFIGURATIONS = [
    dict(),
    dict(attention="softmax"),
    dict(window=1),
    dict(attention="softmax", window=1, attention_path="banded"),
    dict(window=2, attention_path="banded"),
    dict(window=0, heads=1),
    dict(layer_norm=True, value_dim=2),
    dict(time_embedding="sinusoidal", time_features=4),
    dict(time_embedding="mlp", time_features=6, attention="softmax"),
    dict(time_embedding="sinusoidal", time_features=2),
    dict(time_features=4, time_groups=2),
    dict(looped=True, blocks=3),
    dict(qk_scale=-0.6, frequencies=3, frame_scale=5.0),
]


@pytest.mark.parametrize("overrides", CONFIGURATIONS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_forward_readouts_and_tokens_match_the_plain_loops(overrides):
    """Every read-out (after the input map and after each block), the forward output and the token streams equal
    the plainly written forward pass, batched and unbatched, with per-sample times."""
    config = dict(dim=2, width=6, blocks=2, heads=2, head_dim=3, ffn_width=5, frequencies=2, seed=11,
                  dtype=torch.float64)
    config.update(overrides)
    model = perturbed(Transformer(**config))
    x = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(1))
    times = [0.3, 2.5]
    expected = plain_forward(model, x, times)
    with torch.no_grad():
        got = model.readouts(x, torch.tensor(times))
        assert len(got) == config["blocks"] + 1
        for depth, (g, e) in enumerate(zip(got, expected, strict=True)):
            torch.testing.assert_close(g, e, rtol=ROUNDING, atol=ROUNDING, msg=f"read-out {depth}")
        torch.testing.assert_close(model(x, torch.tensor(times)), expected[-1], rtol=ROUNDING, atol=ROUNDING)
        tokens = model.tokens(x, torch.tensor(times))
        assert len(tokens) == config["blocks"] + 1
        for token, e in zip(tokens, expected, strict=True):
            torch.testing.assert_close(model.readout(token), e, rtol=ROUNDING, atol=ROUNDING)
        single = model.readouts(x[1], 2.5)
        torch.testing.assert_close(single[-1], expected[-1][1], rtol=ROUNDING, atol=ROUNDING)
        scalar = model(x, 2.5)
        torch.testing.assert_close(scalar[1], expected[-1][1], rtol=ROUNDING, atol=ROUNDING)


def test_attention_weights_match_the_plain_scores():
    """attention_weights: per block (batch, heads, H, H) = ReLU(s <Q u_i, K u_j>) masked to |i-j| <= window."""
    model = perturbed(Transformer(dim=2, width=6, blocks=2, heads=2, head_dim=3, ffn_width=4, window=1, seed=2))
    x = torch.randn(1, 4, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        weights = model.attention_weights(x, 0.7)
        tokens = model.tokens(x, 0.7)
    assert len(weights) == 2
    for block, w, z in zip(model.blocks, weights, tokens[:-1], strict=True):
        q = torch.einsum("mkD,hD->mhk", block.query.detach(), z[0])
        k = torch.einsum("mkD,hD->mhk", block.key.detach(), z[0])
        for h in range(2):
            for i in range(4):
                for j in range(4):
                    score = float(q[h, i] @ k[h, j]) if abs(i - j) <= 1 else 0.0
                    assert float(w[0, h, i, j]) == pytest.approx(max(score, 0.0), abs=ROUNDING)


@pytest.mark.parametrize("kind", ["relu", "softmax"])
@pytest.mark.parametrize("window", [None, 0, 1, 3, 4, 5, 9])
def test_attend_dense_and_banded_paths_agree_with_a_loop(kind, window):
    """attend on both paths equals sum_j A(i, j) v_j with A the masked ReLU or the masked softmax, and returns the
    dense weights only when asked.  H = 6: window 4 = H - 2 still masks the corner pairs, 5 and 9 mask nothing."""
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 2, 6, c, generator=g) for c in (3, 3, 2))
    for path in ("dense", "banded", "auto"):
        out, weights = attend(q, k, v, kind, window, 0.8, path)
        none_out, none_weights = attend(q, k, v, kind, window, 0.8, path, need_weights=False)
        assert none_weights is None
        torch.testing.assert_close(none_out, out, rtol=ROUNDING, atol=ROUNDING)
        for b in range(2):
            for h in range(2):
                for i in range(6):
                    allowed = [j for j in range(6) if window is None or abs(i - j) <= window]
                    scores = torch.tensor([0.8 * float(q[b, h, i] @ k[b, h, j]) for j in allowed])
                    a = torch.relu(scores) if kind == "relu" else torch.softmax(scores, 0)
                    dense = torch.zeros(6)
                    dense[allowed] = a
                    torch.testing.assert_close(weights[b, h, i], dense, rtol=ROUNDING, atol=ROUNDING)
                    torch.testing.assert_close(out[b, h, i], dense @ v[b, h], rtol=ROUNDING, atol=ROUNDING)
    with pytest.raises(ValueError, match="path"):
        attend(q, k, v, kind, window, 0.8, "sparse")


# ------------------------------------------------------------------------------------------ initialisation
def test_initial_buffers_and_time_parameters_follow_the_docstring():
    """frame_frequencies = pi/(frame_scale 2^f); sinusoidal frequencies 2^linspace(-2, 2, k/2); the rational
    denominators start at v_g = [1, 1, 0] (so v_g . a_t = 1), one row per group; biases start at 0."""
    model = Transformer(dim=2, width=4, blocks=1, heads=1, frequencies=4, frame_scale=3.0, time_features=6,
                        time_groups=3)
    np.testing.assert_allclose(model.frame_frequencies.numpy(), [math.pi / (3.0 * 2.0**f) for f in range(4)],
                               rtol=1e-15)
    assert model.frame_frequencies.dtype == torch.float64
    torch.testing.assert_close(model.time_norm.detach(), torch.tensor([[1.0, 1.0, 0.0]] * 3), rtol=0, atol=0)
    assert model.time_weight.shape == (6, 3)
    for name in ("input_bias", "readout_bias"):
        assert bool((getattr(model, name) == 0).all())
    block = model.blocks[0]
    assert bool((block.ffn_in_bias == 0).all()) and bool((block.ffn_out_bias == 0).all())
    sinusoidal = Transformer(dim=2, width=4, blocks=1, heads=1, time_embedding="sinusoidal", time_features=10)
    np.testing.assert_allclose(sinusoidal.time_frequencies.numpy(), [2.0 ** (-2.0 + j) for j in range(5)],
                               rtol=1e-15)
    assert not hasattr(sinusoidal, "time_mlp")
    mlp = Transformer(dim=2, width=4, blocks=1, heads=1, time_embedding="mlp", time_features=4)
    assert [type(m).__name__ for m in mlp.time_mlp] == ["Linear", "SiLU", "Linear"]
    assert mlp.time_mlp[0].in_features == mlp.time_mlp[2].out_features == 4


def test_initial_weight_scales_are_fan_in():
    """Each random weight matrix is N(0, 1/fan_in): 1/width for the maps out of the token (Q, K, V, W_1, input
    maps, read-out), 1/(heads value_dim) for W_O, 1/ffn_width for W_2, 1/4 for the rational W_t.  With n >= 1600
    entries the sample standard deviation has a relative standard error 1/sqrt(2n) <= 1.8%, so the 15% allowed is
    over 8 standard errors (the draws are seeded, seed=5), while a wrong scale is off by a factor sqrt(2) or more;
    the mean is checked at 5 standard errors."""
    width, heads, head_dim, value_dim, ffn_width = 40, 5, 8, 8, 50
    model = Transformer(dim=40, width=width, blocks=2, heads=heads, head_dim=head_dim, value_dim=value_dim,
                        ffn_width=ffn_width, frequencies=20, time_features=600, seed=5)
    expected = {"input_x": 1 / width, "input_frame": 1 / width, "input_time": 1 / width,
                "readout_weight": 1 / width, "time_weight": 0.25}
    for name, variance in expected.items():
        values = getattr(model, name).detach()
        assert values.numel() >= 1600, name
        assert float(values.std()) == pytest.approx(math.sqrt(variance), rel=0.15, abs=0), name
        assert abs(float(values.mean())) < 5 * math.sqrt(variance / values.numel()), name
    for block in model.blocks:
        block_variances = {"query": 1 / width, "key": 1 / width, "value": 1 / width,
                           "output": 1 / (heads * value_dim), "ffn_in": 1 / width, "ffn_out": 1 / ffn_width}
        for name, variance in block_variances.items():
            values = getattr(block, name).detach()
            assert values.numel() >= 1600, name
            assert float(values.std()) == pytest.approx(math.sqrt(variance), rel=0.15, abs=0), name
    assert model.blocks[0].query.shape == (heads, head_dim, width)
    assert model.blocks[0].value.shape == (heads, value_dim, width)
    assert model.blocks[0].output.shape == (heads, width, value_dim)


def test_seed_determines_the_parameters_and_leaves_the_global_generator_alone():
    """Same seed, same parameters; another seed, other parameters; torch's global RNG state is restored."""
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    first = Transformer(dim=2, width=4, blocks=2, heads=1, seed=9)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = Transformer(dim=2, width=4, blocks=2, heads=1, seed=9)
    other = Transformer(dim=2, width=4, blocks=2, heads=1, seed=10)
    for (name, a), b, c in zip(first.named_parameters(), second.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b), name
        if a.numel() > 1 and bool((a != 0).any()) and name != "time_norm":
            assert not torch.equal(a, c), name
    zero = Transformer(dim=2, width=4, blocks=1, heads=1, seed=0)
    default = Transformer(dim=2, width=4, blocks=1, heads=1)
    assert all(torch.equal(a, b) for a, b in zip(zero.parameters(), default.parameters(), strict=True))
    top = Transformer(dim=1, width=1, blocks=1, heads=1, seed=2**63 - 1)
    assert top.config["seed"] == 2**63 - 1
    with pytest.raises(ValueError, match="seed"):
        Transformer(dim=1, width=1, blocks=1, heads=1, seed=2**63)


def test_looped_model_shares_one_block():
    """looped=True holds one Block and applies it `blocks` times; the distinct blocks are listed once."""
    looped = Transformer(dim=2, width=4, blocks=3, heads=1, looped=True)
    assert len(looped.distinct_blocks()) == 1 and len(looped.block_sequence()) == 3
    assert all(b is looped.blocks[0] for b in looped.block_sequence())
    plain = Transformer(dim=2, width=4, blocks=3, heads=1)
    assert len(plain.distinct_blocks()) == 3 and plain.block_sequence() == plain.distinct_blocks()
    assert sum(p.numel() for p in plain.parameters()) > sum(p.numel() for p in looped.parameters())


# ------------------------------------------------------------------------------------------ config and dtype
@pytest.mark.parametrize("overrides", CONFIGURATIONS[:9], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_state_dict_round_trip_through_the_config(overrides):
    """Transformer(**model.config) with model.state_dict() reproduces the outputs bit for bit, and the config
    records every argument as given."""
    arguments = dict(dim=2, width=6, blocks=2, heads=2, head_dim=3, ffn_width=5, frequencies=2, seed=4)
    arguments.update(overrides)
    model = perturbed(Transformer(**arguments))
    config = model.config
    for key, value in arguments.items():
        assert config[key] == value, key
    fresh = Transformer(**config)
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, 5, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fresh(x, torch.tensor([0.4, 1.1])), model(x, torch.tensor([0.4, 1.1])))


def test_smallest_model_and_config_defaults():
    """Every size may be 1 (and window 0); the defaults are head_dim 3, value_dim = dim, ffn_width 1, relu, no
    window, qk_scale 1, one frequency, frame_scale 32, rational time features of size 3 in one group."""
    tiny = Transformer(dim=1, width=1, blocks=1, heads=1, head_dim=1, value_dim=1, ffn_width=1, frequencies=1,
                       time_features=1, time_groups=1, window=0)
    assert tiny(torch.ones(1, 1), 0.5).shape == (1, 1)
    assert Transformer(dim=1, width=1, blocks=1, heads=1, time_embedding="sinusoidal", time_features=2)(
        torch.ones(2, 1), 0.5).shape == (2, 1)
    config = Transformer(dim=2, width=3, blocks=1, heads=1).config
    assert {key: config[key] for key in ("head_dim", "value_dim", "ffn_width", "attention", "window", "qk_scale",
                                         "frequencies", "frame_scale", "time_embedding", "time_features",
                                         "layer_norm", "seed", "attention_path", "time_groups", "looped")} == {
        "head_dim": 3, "value_dim": 2, "ffn_width": 1, "attention": "relu", "window": None, "qk_scale": 1.0,
        "frequencies": 1, "frame_scale": 32.0, "time_embedding": "rational", "time_features": 3,
        "layer_norm": False, "seed": 0, "attention_path": "auto", "time_groups": 1, "looped": False}


@pytest.mark.parametrize(("dtype", "expected"), [("float32", torch.float32), ("float64", torch.float64),
                                                 ("float16", torch.float16), ("bfloat16", torch.bfloat16),
                                                 (torch.float32, torch.float32)])
def test_dtype_names_and_dtypes(dtype, expected):
    """dtype by name or as a torch dtype sets every parameter's dtype and is recorded in the config."""
    model = Transformer(dim=2, width=3, blocks=1, heads=1, dtype=dtype)
    assert model.dtype == expected and all(p.dtype == expected for p in model.parameters())
    assert model.config["dtype"] == str(expected).replace("torch.", "")
    if expected in (torch.float32, torch.float64):
        out = model(torch.randn(4, 2, dtype=torch.float64), 0.3)
        assert out.dtype == expected
        for kind in ("sinusoidal", "mlp"):  # the log-time features are formed in the model's dtype too
            other = Transformer(dim=2, width=3, blocks=1, heads=1, dtype=dtype, time_embedding=kind, time_features=4)
            assert other(torch.randn(4, 2, dtype=torch.float64), 0.3).dtype == expected


@pytest.mark.parametrize(("arguments", "error", "match"), [
    (dict(dim=0), ValueError, r"^dim must satisfy 1 <= dim"), (dict(width=0), ValueError, r"^width must satisfy"),
    (dict(blocks=0), ValueError, r"^blocks must satisfy"), (dict(heads=0), ValueError, r"^heads must satisfy"),
    (dict(window=-1), ValueError, r"^window must satisfy 0 <= window"),
    (dict(qk_scale="a"), TypeError, r"^qk_scale must be a real number"),
    (dict(head_dim=0), ValueError, r"^head_dim must satisfy"),
    (dict(value_dim=0), ValueError, r"^value_dim must satisfy"), (dict(ffn_width=0), ValueError, r"^ffn_width must"),
    (dict(frequencies=0), ValueError, r"^frequencies must satisfy"),
    (dict(frame_scale=0.0), ValueError, r"^frame_scale must satisfy"),
    (dict(time_features=0), ValueError, r"^time_features must satisfy"),
    (dict(time_groups=0), ValueError, r"^time_groups must satisfy"), (dict(seed=-1), ValueError, r"^seed must"),
    (dict(time_embedding="sinusoidal", time_features=3), ValueError, "even"),
    (dict(time_embedding="mlp", time_features=4, time_groups=2), ValueError, "time_groups must be 1"),
    (dict(time_features=3, time_groups=2), ValueError, "divisible"),
    (dict(attention_path="sparse"), ValueError, "attention_path"),
    (dict(qk_scale=math.inf), ValueError, "qk_scale must be finite"),
    (dict(qk_scale=math.nan), ValueError, "qk_scale must be finite"),
    (dict(looped=1), TypeError, r"^looped must be True or False"),
    (dict(layer_norm="yes"), TypeError, r"^layer_norm must be True or False"),
    (dict(dtype="int8"), ValueError, "dtype"), (dict(dtype=torch.int32), TypeError, "floating"),
])
def test_constructor_rejects_bad_arguments(arguments, error, match):
    base = dict(dim=2, width=4, blocks=1, heads=1)
    base.update(arguments)
    with pytest.raises(error, match=match):
        Transformer(**base)


def test_memory_guard_estimates_sixteen_bytes_per_parameter(monkeypatch):
    """The guard is given 2 x 8 bytes per parameter (float32 at creation plus the converted copy, 8 bytes at
    most): within 5% of 16 x the real parameter count for a model whose uncounted parameters (time weights and
    LayerNorms) are few, for both the looped (one block) and the plain layout."""
    seen: list[float] = []
    monkeypatch.setattr(transformer_module, "check_memory", lambda what, nbytes: seen.append(nbytes))
    for looped in (False, True):
        model = Transformer(dim=3, width=30, blocks=3, heads=2, head_dim=4, value_dim=5, ffn_width=20,
                            frequencies=2, time_features=3, looped=looped)
        count = sum(p.numel() for p in model.parameters())
        assert seen[-1] == pytest.approx(16.0 * count, rel=0.05, abs=0)


def test_non_finite_output_messages_name_the_overflow():
    """The NonFiniteError says how large x and the weights were, so the cause can be told apart."""
    model = Transformer(dim=3, width=10, blocks=2, heads=2, head_dim=4, ffn_width=7, frequencies=2, seed=3,
                        qk_scale=1e300)
    x = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0] = -7.25  # the largest |x|
    largest = max(float(p.detach().abs().max()) for p in model.parameters())
    message = (r"^Transformer\.forward produced 30 NaN or infinite value\(s\) from finite inputs: "
               r"the input x \(max \|x\| = 7\.25\), "
               rf"the weights \(largest \|entry\| {largest:.3g}\) or qk_scale = 1e\+300 overflow torch\.float64")
    with pytest.raises(NonFiniteError, match=message):
        with torch.no_grad():
            model(x, 0.5)
    with pytest.raises(NonFiniteError, match=r"Transformer\.tokens produced"):
        with torch.no_grad():
            model.tokens(x, 0.5)
    with pytest.raises(NonFiniteError, match=r"Transformer\.attention_weights produced"):
        with torch.no_grad():
            model.attention_weights(x, 0.5)
    with torch.no_grad():
        unchecked = model.readouts(x, 0.5, check_finite=False)
        assert not bool(torch.isfinite(unchecked[-1]).all())
        with pytest.raises(NonFiniteError, match=r"Transformer\.readouts produced"):
            model.readouts(x, 0.5)
    broken = Transformer(dim=3, width=4, blocks=1, heads=1)
    with torch.no_grad():
        broken.input_bias[1] = math.nan
        broken.input_bias[2] = math.inf
    with pytest.raises(NonFiniteError, match=r"2 of its parameters are NaN or infinite"):
        broken(x, 0.5)
    assert math.isnan(broken.max_weight_norm()["spectral"]) and math.isnan(broken.max_weight_norm()["entry"])


def numpy_norms(model: Transformer) -> tuple[float, float]:
    """(largest spectral norm, largest |entry|) over the parameters from numpy's float64 SVD: 3-d weights per
    head, matrices as they are, vectors as 1 x n."""
    spectral, entry = 0.0, 0.0
    for parameter in model.parameters():
        array = parameter.detach().double().numpy()
        mats = array.reshape(-1, *array.shape[-2:]) if array.ndim >= 2 else array.reshape(1, 1, -1)
        spectral = max(spectral, max(np.linalg.svd(m, compute_uv=False)[0] for m in mats))
        entry = max(entry, float(np.abs(array).max()))
    return spectral, entry


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_max_weight_norm_against_numpy(dtype):
    """Largest spectral norm over all matrices (per head for the 3-d weights, vectors as 1 x n) and the largest
    absolute entry, from numpy's SVD in float64 (also for a float32 model: the norms are taken in float64); with one
    large entry, and with every weight scaled below 1 (both maxima then lie below 1)."""
    model = perturbed(Transformer(dim=2, width=5, blocks=2, heads=3, head_dim=2, ffn_width=4, layer_norm=True,
                                  dtype=dtype))
    with torch.no_grad():
        model.blocks[1].output[2, 0, 0] = -9.0  # one large entry in one head
    spectral, entry = numpy_norms(model)
    report = model.max_weight_norm()
    assert entry == 9.0
    assert report["entry"] == pytest.approx(entry, rel=1e-15, abs=0)
    assert report["spectral"] == pytest.approx(spectral, rel=1e-12, abs=0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(0.01)
    spectral, entry = numpy_norms(model)
    report = model.max_weight_norm()
    assert spectral < 0.5 and entry < 0.5
    assert report["entry"] == pytest.approx(entry, rel=1e-15, abs=0)
    assert report["spectral"] == pytest.approx(spectral, rel=1e-12, abs=0)
    with torch.no_grad():  # now a plain matrix dominates, with spectral norm 6 < Frobenius norm 6 sqrt(2)
        model.readout_weight[0, 0] = 6.0
        model.readout_weight[1, 1] = 6.0
    spectral, entry = numpy_norms(model)
    assert spectral == pytest.approx(6.0, rel=1e-3, abs=0)
    assert model.max_weight_norm()["spectral"] == pytest.approx(spectral, rel=1e-12, abs=0)


def test_attend_dispatches_as_documented(monkeypatch):
    """path="banded" always takes the banded kernel (window None: the full band H - 1), "dense" never, and "auto"
    exactly when ``banded_pays(H, window)``; the call passes H - 1 for window None and the window otherwise."""
    from unroll.model import banded

    calls: list[int] = []

    def recording(query, key, value, kind, window, scale, need_weights):
        calls.append(window)
        return banded.banded_attend(query, key, value, kind, window, scale, need_weights)

    monkeypatch.setattr(transformer_module, "banded_attend", recording)
    g = torch.Generator().manual_seed(0)
    frames = 64
    q, k, v = (torch.randn(1, 1, frames, 2, generator=g) for _ in range(3))
    for window in (None, 1, 40):
        for path in ("dense", "banded", "auto"):
            calls.clear()
            attend(q, k, v, "relu", window, 1.0, path)
            expected_band = frames - 1 if window is None else window
            uses_banded = path == "banded" or (path == "auto" and banded.banded_pays(frames, window))
            assert calls == ([expected_band] if uses_banded else []), (window, path)
    assert banded.banded_pays(frames, 1) and not banded.banded_pays(frames, 40)  # both branches of "auto" are seen


def test_block_attention_defaults_to_the_auto_path_with_weights():
    """Block.attention(z, kind, window, scale) (as verification and the softmax construction call it) uses the
    "auto" path and returns the weights; they equal the model's attention_weights."""
    model = perturbed(Transformer(dim=2, width=6, blocks=1, heads=2, head_dim=3, ffn_width=4, window=1, seed=2))
    x = torch.randn(1, 5, 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        z = model.tokens(x, 0.7)[0]
        update, weights = model.blocks[0].attention(z, "relu", 1, 1.0)
        explicit, _ = model.blocks[0].attention(z, "relu", 1, 1.0, "dense", False)
        assert weights is not None
        torch.testing.assert_close(weights, model.attention_weights(x, 0.7)[0], rtol=0, atol=0)
        torch.testing.assert_close(update, explicit, rtol=ROUNDING, atol=ROUNDING)


def test_frequency_buffers_are_exact_float64_under_a_float32_default():
    """A float64 model built while torch's default dtype is float32 still has the float64 frequencies
    pi/(frame_scale 2^f) and 2^linspace(-2, 2, k/2) (rounded once in float64, not first in float32)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        model = Transformer(dim=2, width=4, blocks=1, heads=1, frequencies=5, frame_scale=3.3, dtype="float64")
        sinusoidal = Transformer(dim=2, width=4, blocks=1, heads=1, time_embedding="sinusoidal", time_features=14,
                                 dtype="float64")
    finally:
        torch.set_default_dtype(previous)
    assert model.frame_frequencies.dtype == torch.float64
    np.testing.assert_allclose(model.frame_frequencies.numpy(), [math.pi / (3.3 * 2.0**f) for f in range(5)],
                               rtol=1e-15)
    np.testing.assert_allclose(sinusoidal.time_frequencies.numpy(), [2.0 ** (-2.0 + 4.0 * j / 6) for j in range(7)],
                               rtol=1e-15)


def test_inputs_without_frames_and_the_memory_refusal_are_named(monkeypatch):
    """x with H = 0 frames is refused (not read as an empty batch); a model too large for the memory left is
    refused with a message that names its sizes."""
    model = Transformer(dim=3, width=4, blocks=1, heads=1)
    with pytest.raises(ValueError, match=r"^x must have at least one frame"):
        model(torch.zeros(2, 0, 3), 0.5)
    with pytest.raises(ValueError, match=r"^x must have at least one frame"):
        model(torch.zeros(0, 3), 0.5)
    import unroll._validate

    monkeypatch.setattr(unroll._validate, "available_memory", lambda: 1)
    with pytest.raises(ValueError, match=r"^a Transformer with width=4, blocks=2, heads=1, ffn_width=1 needs about"):
        Transformer(dim=3, width=4, blocks=2, heads=1)
