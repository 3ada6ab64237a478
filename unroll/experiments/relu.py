"""The generic ReLU ``unroll.Transformer`` as a trainable score model (model (a) of issue 5).

The trained network is the same class as the construction, with the construction's width D, blocks L
and heads M (or larger), learnable weights and three training-only options the class offers:

- ``layer_norm=True``: pre-norm LayerNorm before attention and FFN;
- ``qk_scale = 1/H``: ReLU attention is not normalised, so an untrained head sums ``H`` terms of size
  ``O(|q||k|)``; dividing the scores by ``H`` keeps the update of order one at initialisation;
- the output is read as predicted noise (``NoiseParameterised``): score ``= -Transformer(x, t) / sigma_t``.

``relu_config_from_construction(model, ...)`` turns a constructed model's config into a training config.
"""

from __future__ import annotations

from typing import Any

from unroll.experiments.parameterisation import NoiseParameterised

__all__ = ["build_relu_transformer", "relu_transformer_from_config", "relu_config_from_construction",
           "TRAINING_OVERRIDES"]

TRAINING_OVERRIDES: dict[str, Any] = dict(layer_norm=True, time_embedding="mlp", time_features=16, frequencies=4)


def relu_config_from_construction(constructed: Any, *, frames: int, width: int | None = None,
                                  blocks: int | None = None, heads: int | None = None, seed: int = 0,
                                  **overrides: Any) -> dict:
    """A trainable ``Transformer`` config at least as large (D, L, M) as ``constructed.config``.

    Keeps the attention kind and window of the construction, replaces the hand-set parts that only make
    sense for hand-built weights (rational time map, single frame frequency) by ``TRAINING_OVERRIDES``,
    and sets ``qk_scale = 1/frames``; the construction's parameter dtype is not copied (the trainer's
    applies). ``width/blocks/heads`` below the construction's raise ValueError.
    """
    config = dict(constructed.config)
    config.pop("dtype", None)  # the trainer picks the parameter dtype (float32 training), not the construction
    for name, value in (("width", width), ("blocks", blocks), ("heads", heads)):
        if value is not None:
            if value < config[name]:
                raise ValueError(f"{name} must be >= the construction's {name} = {config[name]}, got {value}")
            config[name] = int(value)
    config.update(TRAINING_OVERRIDES)
    config.update(qk_scale=1.0 / frames, frame_scale=float(frames), seed=int(seed))
    config.update(overrides)
    return config


def build_relu_transformer(frames: int, dim: int, /, **config: Any) -> NoiseParameterised:
    """``NoiseParameterised(Transformer(**config))``; ``config`` defaults to a small trainable net.

    Missing keys get defaults: width 32, 4 blocks, ``3 * frames`` heads (the construction's heads for
    full bands), head_dim 3, ffn_width 32, ``qk_scale = 1/frames`` and ``TRAINING_OVERRIDES``.
    """
    from unroll.model.transformer import Transformer

    full: dict[str, Any]
    full = dict(dim=dim, width=32, blocks=4, heads=3 * frames, head_dim=3, ffn_width=32, attention="relu",
                qk_scale=1.0 / frames, frame_scale=float(frames), **TRAINING_OVERRIDES)
    if config.get("dim", dim) != dim:
        raise ValueError(f"config dim={config['dim']} does not match the data dimension d={dim}")
    full.update(config)
    return NoiseParameterised(Transformer(**full))


def relu_transformer_from_config(config: dict) -> NoiseParameterised:
    """Rebuild from ``model.config`` (the wrapped Transformer's config)."""
    from unroll.model.transformer import Transformer

    return NoiseParameterised(Transformer(**config))
