"""A generic transformer on sequences ``(batch, H, d)`` conditioned on a diffusion time (docs/design.md §5).

Nothing here knows about Gaussian processes; the constructor (``unroll.construction.constructor``) only chooses
weights.  Shapes: ``x (batch, H, d)`` (or ``(H, d)``), ``diffusion_time`` a positive scalar or ``(batch,)``;
tokens ``z (batch, H, D)``.

Input map (one token per frame ``i``):

    z_i = W_x x_i + W_e e(i) + W_phi phi(t) + b,
    e(i) = [cos(w_1 i), ..., cos(w_F i), sin(w_1 i), ..., sin(w_F i)]   (frequencies ``w`` a buffer).

Diffusion-time features ``phi(t)`` (``time_embedding``):

- ``"rational"`` (default): ``phi(t)_f = (W_t a_t)_f / (v_g · a_t)`` with ``a_t = [alpha_t^2, sigma_t^2, 1]``,
  parameters ``W_t (k, 3)`` and ``V = [v_1; ...; v_G] (G, 3)`` — a rational function of the OU schedule.  The
  ``k`` features form ``G = time_groups`` consecutive groups of ``k/G``, group ``g`` sharing the denominator
  ``v_g · a_t``.  With ``W_t = I`` and ``v = [P, 1, 0]`` (one group) it equals ``[eta_t alpha_t^2,
  eta_t sigma_t^2, eta_t]`` for ``eta_t = 1/(alpha_t^2 P + sigma_t^2)``, which is what makes the unrolled-GD
  construction exact for every t; one group per block carries per-block step sizes (the Chebyshev schedule).
  Training must keep ``v_g · a_t`` away from 0 (initialised at ``v_g = [1, 1, 0]``, so ``v_g · a_t = 1``).
- ``"sinusoidal"``: ``phi(t) = [sin(f_j log t), cos(f_j log t)]`` for ``k/2`` fixed log-spaced ``f_j``.
- ``"mlp"``: the sinusoidal features followed by ``Linear(k, k) -> SiLU -> Linear(k, k)`` (DiT-style).

Each block: multi-head attention then an FFN, both residual,

    z_i <- z_i + sum_h W_O^h sum_j A_h(i, j) V_h z_j,
        A_h(i, j) = ReLU(s <Q_h z_i, K_h z_j>)              (attention="relu", no normalisation)
        A_h(i, j) = softmax_j(s <Q_h z_i, K_h z_j>)          (attention="softmax")
    z_i <- z_i + W_2 ReLU(W_1 z_i + b_1) + b_2,

with ``s = qk_scale`` and, if ``window`` is set, only ``|i - j| <= window`` attended (a mask on the dense
H x H scores, or the O(H J) banded path of ``unroll.model.banded``: ``attention_path="auto"`` picks it when the band
is narrow enough to pay, ``"dense"``/``"banded"`` force one; the two agree up to rounding).  Optional pre-layer
norms (``layer_norm=True``) for training; the constructions use none.  Read-out: ``W_r z_i + b_r`` (d outputs).

**Looped** (``looped=True``, weight sharing): the model holds one block and applies it ``blocks`` times, as a
looped transformer does (Giannou et al. 2023; Yang et al. 2024): the same function of depth ``L`` with the block
parameters of depth 1.  ``model.block_sequence()`` lists the block applied at each depth in both cases.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from unroll._validate import (
    InputTypeError,
    NonFiniteError,
    check_bool,
    check_diffusion_time,
    check_finite,
    check_int,
    check_memory,
    check_positive,
    check_real,
    to_real_tensor,
)
from unroll.data import diffusion
from unroll.model.banded import band_to_dense, banded_attend, banded_pays

__all__ = ["Transformer", "attend", "ATTENTION_KINDS", "ATTENTION_PATHS", "TIME_EMBEDDINGS"]

ATTENTION_KINDS = ("relu", "softmax")
ATTENTION_PATHS = ("auto", "dense", "banded")
TIME_EMBEDDINGS = ("rational", "sinusoidal", "mlp")


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, kind: str, window: int | None,
           scale: float, path: str = "auto", need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention, dense or banded (``unroll.model.banded``).

    Args:
        query: ``(batch, M, H, dk)``.
        key: ``(batch, M, H, dk)``.
        value: ``(batch, M, H, dv)``.
        kind: ``"relu"`` (weights ``ReLU(scale q_i·k_j)``) or ``"softmax"``.
        window: attend only to ``|i - j| <= window`` (``None``: all frames).
        path: ``"auto"`` (banded when ``unroll.model.banded.banded_pays(H, window)``), ``"dense"`` or ``"banded"``.
        need_weights: return the ``(batch, M, H, H)`` weights (on the banded path this costs O(H^2)).
    Returns:
        ``(out (batch, M, H, dv), weights (batch, M, H, H) or None if not need_weights)``.
    """
    if path not in ATTENTION_PATHS:
        raise ValueError(f"path must be one of {ATTENTION_PATHS}, got {path!r}")
    frames = query.shape[-2]
    if path == "banded" or (path == "auto" and banded_pays(frames, window)):
        out, band_weights = banded_attend(query, key, value, kind, frames - 1 if window is None else window, scale,
                                          need_weights)
        return out, None if band_weights is None else band_to_dense(band_weights, frames)
    scores = scale * (query @ key.transpose(-1, -2))
    mask = None
    if window is not None and window < frames - 1:
        index = torch.arange(frames, device=scores.device)
        mask = (index[:, None] - index[None, :]).abs() <= window
    if kind == "relu":
        weights = torch.relu(scores)
        if mask is not None:
            weights = torch.where(mask, weights, torch.zeros_like(weights))
    else:
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
    return weights @ value, weights if need_weights else None


class Block(nn.Module):
    """One attention layer (``heads`` heads) and one FFN, both with residual connections."""

    def __init__(self, width: int, heads: int, head_dim: int, value_dim: int, ffn_width: int,
                 layer_norm: bool) -> None:
        super().__init__()
        scale = 1.0 / math.sqrt(width)
        self.query = nn.Parameter(torch.randn(heads, head_dim, width) * scale)
        self.key = nn.Parameter(torch.randn(heads, head_dim, width) * scale)
        self.value = nn.Parameter(torch.randn(heads, value_dim, width) * scale)
        self.output = nn.Parameter(torch.randn(heads, width, value_dim) * (1.0 / math.sqrt(heads * value_dim)))
        self.ffn_in = nn.Parameter(torch.randn(ffn_width, width) * scale)
        self.ffn_in_bias = nn.Parameter(torch.zeros(ffn_width))
        self.ffn_out = nn.Parameter(torch.randn(width, ffn_width) * (1.0 / math.sqrt(ffn_width)))
        self.ffn_out_bias = nn.Parameter(torch.zeros(width))
        self.norm1 = nn.LayerNorm(width) if layer_norm else nn.Identity()
        self.norm2 = nn.LayerNorm(width) if layer_norm else nn.Identity()

    def attention(self, z: torch.Tensor, kind: str, window: int | None, scale: float, path: str = "auto",
                  need_weights: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(sum_h W_O^h (A_h V_h z), A)`` for ``z (batch, H, D)``."""
        u = self.norm1(z)
        q = torch.einsum("mkD,bhD->bmhk", self.query, u)
        k = torch.einsum("mkD,bhD->bmhk", self.key, u)
        v = torch.einsum("mkD,bhD->bmhk", self.value, u)
        out, weights = attend(q, k, v, kind, window, scale, path, need_weights)
        return torch.einsum("mDk,bmhk->bhD", self.output, out), weights

    def ffn(self, z: torch.Tensor) -> torch.Tensor:
        """``W_2 ReLU(W_1 z + b_1) + b_2`` (without the residual)."""
        hidden = torch.relu(self.norm2(z) @ self.ffn_in.T + self.ffn_in_bias)
        return hidden @ self.ffn_out.T + self.ffn_out_bias


class Transformer(nn.Module):
    """Generic score transformer ``(x (batch, H, d), t) -> (batch, H, d)``.

    Args:
        dim: feature dimension ``d`` of a frame (input and output).
        width: token width ``D``.
        blocks: number of blocks ``L >= 1``.
        heads: heads per attention layer ``M >= 1``.
        head_dim: query/key dimension per head; value_dim: value dimension per head (default ``dim``).
        ffn_width: hidden width of each FFN.
        attention: ``"relu"`` or ``"softmax"``; window: max ``|i-j|`` attended (``None``: all).
        qk_scale: factor on the scores ``<Q z_i, K z_j>``.
        frequencies: number ``F`` of frame-embedding frequencies (embedding size ``2F``); their initial
            values are ``pi / (frame_scale * 2**f)``, ``f = 0..F-1`` (a buffer, overwritten by the constructor).
        time_embedding: ``"rational"``, ``"sinusoidal"`` or ``"mlp"``; time_features: its size ``k``.
        time_groups: ``"rational"`` only: number ``G`` of denominators (``k`` divisible by ``G``).
        looped: one shared block applied ``blocks`` times (weight sharing) instead of ``blocks`` blocks.
        layer_norm: pre-norm LayerNorm before attention and FFN.
        attention_path: ``"auto"``, ``"dense"`` or ``"banded"`` execution of windowed attention (see ``attend``).
        seed: seed of the random initialisation (for trainable use).
        dtype: parameter dtype (``None``: torch's default dtype); ``model.config`` records the current one.
    """

    # buffers (register_buffer), declared for type checkers
    frame_frequencies: torch.Tensor
    time_frequencies: torch.Tensor

    def __init__(self, *, dim: int, width: int, blocks: int, heads: int, head_dim: int = 3,
                 value_dim: int | None = None, ffn_width: int = 1, attention: str = "relu",
                 window: int | None = None, qk_scale: float = 1.0, frequencies: int = 1,
                 frame_scale: float = 32.0, time_embedding: str = "rational", time_features: int = 3,
                 layer_norm: bool = False, seed: int = 0, dtype: str | torch.dtype | None = None,
                 attention_path: str = "auto", time_groups: int = 1, looped: bool = False) -> None:
        super().__init__()
        dim = check_int("dim", dim, minimum=1)
        width = check_int("width", width, minimum=1)
        blocks = check_int("blocks", blocks, minimum=1)
        heads = check_int("heads", heads, minimum=1)
        head_dim = check_int("head_dim", head_dim, minimum=1)
        value_dim = dim if value_dim is None else check_int("value_dim", value_dim, minimum=1)
        ffn_width = check_int("ffn_width", ffn_width, minimum=1)
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        if window is not None:
            window = check_int("window", window, minimum=0)
        if attention_path not in ATTENTION_PATHS:
            raise ValueError(f"attention_path must be one of {ATTENTION_PATHS}, got {attention_path!r}")
        qk_scale = check_real("qk_scale", qk_scale)
        if not math.isfinite(qk_scale):
            raise ValueError(f"qk_scale must be finite, got {qk_scale!r}")
        frequencies = check_int("frequencies", frequencies, minimum=1)
        frame_scale = check_positive("frame_scale", frame_scale)
        if time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(f"time_embedding must be one of {TIME_EMBEDDINGS}, got {time_embedding!r}")
        time_features = check_int("time_features", time_features, minimum=1)
        if time_embedding != "rational" and time_features % 2:
            raise ValueError(f"time_features must be even for time_embedding={time_embedding!r}, "
                             f"got {time_features}")
        time_groups = check_int("time_groups", time_groups, minimum=1)
        if time_groups > 1 and time_embedding != "rational":
            raise ValueError(f"time_groups must be 1 unless time_embedding='rational', got {time_groups}")
        if time_features % time_groups:
            raise ValueError(f"time_features must be divisible by time_groups = {time_groups}, got {time_features}")
        check_bool("looped", looped)
        check_bool("layer_norm", layer_norm)
        seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
        if dtype is None:
            resolved_dtype = torch.get_default_dtype()
        elif isinstance(dtype, torch.dtype):
            resolved_dtype = dtype
        elif dtype in ("float32", "float64", "float16", "bfloat16"):
            resolved_dtype = getattr(torch, dtype)
        else:
            raise ValueError(f"dtype must be None, a torch float dtype or its name, got {dtype!r}")
        if not resolved_dtype.is_floating_point:
            raise InputTypeError(f"dtype must be a floating dtype, got {resolved_dtype}")
        per_block = heads * (2 * head_dim + 2 * value_dim) * width + 2 * ffn_width * width + ffn_width + width
        parameters = (1 if looped else blocks) * per_block + width * (dim + 2 * frequencies + time_features + 2 + dim)
        check_memory(f"a Transformer with width={width}, blocks={blocks}, heads={heads}, ffn_width={ffn_width}",
                     2 * 8.0 * parameters)  # float32 at creation and the copy in the conversion, 8 bytes at most
        self._config: dict[str, Any] = dict(
            dim=dim, width=width, blocks=blocks, heads=heads, head_dim=head_dim, value_dim=value_dim,
            ffn_width=ffn_width, attention=attention, window=window, qk_scale=qk_scale,
            frequencies=frequencies, frame_scale=frame_scale, time_embedding=time_embedding,
            time_features=time_features, layer_norm=bool(layer_norm), seed=int(seed), attention_path=attention_path,
            time_groups=time_groups, looped=looped,
        )
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(int(seed))
        try:
            scale = 1.0 / math.sqrt(width)
            self.input_x = nn.Parameter(torch.randn(width, dim) * scale)
            self.input_frame = nn.Parameter(torch.randn(width, 2 * frequencies) * scale)
            self.input_time = nn.Parameter(torch.randn(width, time_features) * scale)
            self.input_bias = nn.Parameter(torch.zeros(width))
            self.register_buffer("frame_frequencies",
                                 math.pi / (frame_scale * 2.0 ** torch.arange(frequencies, dtype=torch.float64)))
            if time_embedding == "rational":
                self.time_weight = nn.Parameter(torch.randn(time_features, 3) * 0.5)
                self.time_norm = nn.Parameter(torch.tensor([[1.0, 1.0, 0.0]]).repeat(time_groups, 1))
            else:
                half = time_features // 2
                self.register_buffer("time_frequencies", 2.0 ** torch.linspace(-2.0, 2.0, half,
                                                                                dtype=torch.float64))
                if time_embedding == "mlp":
                    self.time_mlp = nn.Sequential(nn.Linear(time_features, time_features), nn.SiLU(),
                                                  nn.Linear(time_features, time_features))
            self.blocks = nn.ModuleList(
                Block(width, heads, head_dim, value_dim, ffn_width, bool(layer_norm))
                for _ in range(1 if looped else blocks)
            )
            self.readout_weight = nn.Parameter(torch.randn(dim, width) * scale)
            self.readout_bias = nn.Parameter(torch.zeros(dim))
        finally:
            torch.random.set_rng_state(generator_state)
        self.to(resolved_dtype)

    @property
    def config(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this architecture: ``Transformer(**model.config)`` (with the current
        parameter dtype, so that loading this model's ``state_dict`` reproduces its outputs bit for bit)."""
        return {**self._config, "dtype": str(self.dtype).replace("torch.", "")}

    # ----------------------------------------------------------------- helpers
    @property
    def dtype(self) -> torch.dtype:
        return self.input_x.dtype

    def _prepare(self, x: Any, diffusion_time: Any) -> tuple[torch.Tensor, torch.Tensor, bool]:
        x = to_real_tensor("x", x)
        dim = self._config["dim"]
        if x.ndim not in (2, 3) or x.shape[-1] != dim:
            raise ValueError(f"x must have shape (batch, H, d) or (H, d) with d = {dim}, got {tuple(x.shape)}")
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(0)
        if x.shape[1] < 1:
            raise ValueError("x must have at least one frame (H >= 1)")
        check_finite("x", x)
        t = check_diffusion_time(diffusion_time.detach().cpu() if isinstance(diffusion_time, torch.Tensor)
                                 else diffusion_time, (x.shape[0],))
        t = t.expand(x.shape[0]) if t.ndim else t.repeat(x.shape[0])
        return x.to(self.dtype), t.to(self.input_x.device), unbatched

    def time_features(self, diffusion_time: torch.Tensor) -> torch.Tensor:
        """``phi(t)``: ``(batch,)`` diffusion times -> ``(batch, k)`` features (model dtype)."""
        kind = self._config["time_embedding"]
        t = diffusion_time.to(torch.float64)
        if kind == "rational":
            schedule = torch.stack([diffusion.alpha(t) ** 2, diffusion.sigma2(t), torch.ones_like(t)], dim=-1)
            schedule = schedule.to(self.dtype)
            denominators = (schedule @ self.time_norm.T).repeat_interleave(
                self._config["time_features"] // self._config["time_groups"], dim=-1)
            return (schedule @ self.time_weight.T) / denominators
        angles = torch.log(t)[..., None].to(self.dtype) * self.time_frequencies.to(self.dtype)
        features = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
        return self.time_mlp(features) if kind == "mlp" else features

    def frame_embeddings(self, frames: int) -> torch.Tensor:
        """``e(i)`` for ``i = 0..H-1``: ``(H, 2F)`` = ``[cos(w i), sin(w i)]``, cast to the model's dtype.

        The angles ``w i`` are formed in float64 whatever the model's dtype: in float32 their rounding error
        grows like ``i w eps`` with the frame index (about 5e-6 at i = 512), which shifts ``e_i·e_j`` by a
        position-dependent amount instead of a rounding-level one.
        """
        angles = torch.arange(frames, device=self.frame_frequencies.device, dtype=torch.float64)[:, None] \
            * self.frame_frequencies.to(torch.float64)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).to(self.dtype)

    def embed(self, x: torch.Tensor, diffusion_time: torch.Tensor) -> torch.Tensor:
        """Input map: ``x (batch, H, d)``, ``t (batch,)`` -> tokens ``(batch, H, D)``."""
        frames = x.shape[-2]
        tokens = x @ self.input_x.T + (self.frame_embeddings(frames) @ self.input_frame.T)
        time_part = self.time_features(diffusion_time) @ self.input_time.T
        return tokens + time_part[:, None, :] + self.input_bias

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, H, D) -> (batch, H, d)``."""
        return z @ self.readout_weight.T + self.readout_bias

    def distinct_blocks(self) -> list[Block]:
        """The model's ``Block`` modules: ``L``, or the one shared block of a looped model."""
        return [cast(Block, block) for block in self.blocks]  # nn.ModuleList is not generic: its items are Blocks

    def block_sequence(self) -> list[Block]:
        """The block applied at each depth ``1..L``: ``L`` distinct blocks, or the shared one ``L`` times (looped)."""
        blocks = self.distinct_blocks()
        if self._config["looped"]:
            return [blocks[0]] * self._config["blocks"]
        return blocks

    def _run(self, x: Any, diffusion_time: Any, collect: bool
             ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], bool]:
        x, t, unbatched = self._prepare(x, diffusion_time)
        z = self.embed(x, t)
        readouts = [self.readout(z)] if collect else []
        weights: list[torch.Tensor] = []
        kind, window, scale = self._config["attention"], self._config["window"], self._config["qk_scale"]
        for block in self.block_sequence():
            update, block_weights = block.attention(z, kind, window, scale, self._config["attention_path"], collect)
            z = z + update
            z = z + block.ffn(z)
            if collect:
                assert block_weights is not None  # need_weights=collect
                readouts.append(self.readout(z))
                weights.append(block_weights)
        return z, readouts, weights, unbatched

    def _checked(self, what: str, outputs: list[torch.Tensor], x: Any) -> list[torch.Tensor]:
        """``outputs`` if all finite, else :class:`NonFiniteError` saying which input or weight overflowed."""
        bad = sum(int((~torch.isfinite(out)).sum()) for out in outputs)
        if not bad:
            return outputs
        broken = sum(int((~torch.isfinite(p)).sum()) for p in self.parameters())
        if broken:
            cause = f"{broken} of its parameters are NaN or infinite (a diverged training? lower the learning rate)"
        else:
            largest = max(float(p.detach().abs().max()) for p in self.parameters() if p.numel())
            cause = (f"the input x (max |x| = {float(torch.as_tensor(x).abs().max()):.3g}), the weights (largest "
                     f"|entry| {largest:.3g}) or qk_scale = {self._config['qk_scale']:g} overflow {self.dtype}")
        raise NonFiniteError(f"Transformer.{what} produced {bad} NaN or infinite value(s) from finite inputs: "
                             f"{cause}")

    # ----------------------------------------------------------------- public API
    def forward(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """``(batch, H, d)`` (or ``(H, d)``) and a diffusion time -> read-out of the last block, same shape.

        Raises ``NonFiniteError`` (a ``ValueError``) if the output is not finite (inputs, weights or ``qk_scale``
        beyond what the dtype can represent, or parameters that are NaN/inf).
        """
        z, _, _, unbatched = self._run(x, diffusion_time, collect=False)
        out = self._checked("forward", [self.readout(z)], x)[0]
        return out[0] if unbatched else out

    def tokens(self, x: Any, diffusion_time: Any) -> list[torch.Tensor]:
        """Residual streams ``(batch, H, D)`` after the input map and after each block (``L + 1`` entries)."""
        x_in, t, _ = self._prepare(x, diffusion_time)
        z = self.embed(x_in, t)
        out = [z]
        kind, window, scale = self._config["attention"], self._config["window"], self._config["qk_scale"]
        for block in self.block_sequence():
            z = z + block.attention(z, kind, window, scale, self._config["attention_path"], False)[0]
            z = z + block.ffn(z)
            out.append(z)
        return self._checked("tokens", out, x)

    def readouts(self, x: Any, diffusion_time: Any, *, check_finite: bool = True) -> list[torch.Tensor]:
        """Read-out after the input map and after each block: ``L + 1`` tensors of the output's shape.

        ``check_finite=False`` returns non-finite read-outs instead of raising (``unroll.verify`` reports them).
        """
        _, readouts, _, unbatched = self._run(x, diffusion_time, collect=True)
        if check_finite:
            self._checked("readouts", readouts, x)
        return [r[0] for r in readouts] if unbatched else readouts

    def attention_weights(self, x: Any, diffusion_time: Any) -> list[torch.Tensor]:
        """Per block, the attention weights ``(batch, heads, H, H)`` (ReLU scores after the ReLU, or the
        softmax probabilities)."""
        _, _, weights, _ = self._run(x, diffusion_time, collect=True)
        return self._checked("attention_weights", weights, x)

    def max_weight_norm(self) -> dict[str, float]:
        """Largest spectral norm (operator 2-norm) and largest absolute entry over all weight matrices
        (per head: ``Q_h, K_h, V_h, W_O^h``; FFN ``W_1, W_2``; input and read-out maps; biases as vectors).
        Both are NaN if a parameter is NaN or infinite."""
        spectral, entry = 0.0, 0.0
        for _, parameter in self.named_parameters():
            p = parameter.detach().to(torch.float64)
            if not bool(torch.isfinite(p).all()):
                return {"spectral": math.nan, "entry": math.nan}
            mats = p.reshape(-1, *p.shape[-2:]) if p.ndim >= 2 else p.reshape(1, 1, -1)
            spectral = max(spectral, float(torch.linalg.matrix_norm(mats, ord=2).max()))
            entry = max(entry, float(p.abs().max()) if p.numel() else 0.0)
        return {"spectral": spectral, "entry": entry}
