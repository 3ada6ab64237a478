"""Trainable score models: a softmax DiT-style transformer and a 1-D temporal U-Net over frames.

Every model maps ``(x, diffusion_time)`` with ``x`` of shape ``(batch, H, d)`` to a score estimate of the
same shape, like the constructed network. Trained models use the usual noise parameterisation: the
network ``N`` predicts the noise ``z`` of ``x_t = alpha_t x_0 + sigma_t z`` and the score is

    s(x, t) = -N(x, t) / sigma_t,          sigma_t^2 = 1 - exp(-t)   (docs/design.md §3),

which keeps the network output of order one at every diffusion time (the score itself grows like
``1/sigma_t`` as ``t -> 0``). ``NoiseParameterised`` (``unroll.experiments.parameterisation``, re-exported here)
wraps any ``net(x, t)`` (e.g. the generic ``unroll.Transformer``) the same way.

``model.config`` rebuilds an empty model of the same shape: ``model_from_config(model_kind, config)``.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import nn

from unroll._validate import check_int
from unroll.data.diffusion import sigma as diffusion_sigma
from unroll.experiments.parameterisation import NoiseParameterised, batch_times

__all__ = [
    "DiT",
    "TemporalUNet",
    "NoiseParameterised",
    "time_features",
    "frame_features",
    "build_model",
    "model_from_config",
    "parameter_count",
]


def time_features(diffusion_time: torch.Tensor, features: int) -> torch.Tensor:
    """Sinusoidal features of ``log t``: ``(batch,) -> (batch, features)`` (features even).

    ``[sin(w_k log t), cos(w_k log t)]`` with frequencies ``w_k`` geometric in ``[1/8, 8]``: log-time
    spreads the diffusion times used (1e-3 .. 10) evenly over the features.
    """
    half = features // 2
    freqs = torch.exp(torch.linspace(math.log(1 / 8), math.log(8.0), half, dtype=diffusion_time.dtype,
                                     device=diffusion_time.device))
    angle = torch.log(diffusion_time)[:, None] * freqs[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


def frame_features(frames: int, features: int, dtype: torch.dtype, device: torch.device | None = None
                   ) -> torch.Tensor:
    """Fixed sinusoidal frame (position) embedding ``(H, features)`` as in Vaswani et al. (base 10^4)."""
    position = torch.arange(frames, dtype=dtype, device=device)[:, None]
    half = features // 2
    freqs = torch.exp(-math.log(1e4) * torch.arange(half, dtype=dtype, device=device) / max(half, 1))
    angle = position * freqs[None, :]
    out = torch.zeros(frames, features, dtype=dtype, device=device)
    out[:, 0: 2 * half: 2] = torch.sin(angle)
    out[:, 1: 2 * half: 2] = torch.cos(angle)
    return out


class _TimeEmbedder(nn.Module):
    """``t -> MLP(time_features(t))``, ``(batch,) -> (batch, width)`` (a DiT timestep embedder)."""

    def __init__(self, width: int, features: int):
        super().__init__()
        self.features = features
        self.mlp = nn.Sequential(nn.Linear(features, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(time_features(t, self.features))


class _SoftmaxAttention(nn.Module):
    """Multi-head softmax self-attention that can also return its weights ``(batch, heads, H, H)``."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width must be a multiple of heads, got width={width}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def weights_and_values(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, width = h.shape
        head_dim = width // self.heads
        q, k, v = self.qkv(h).reshape(batch, frames, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head_dim), dim=-1)
        return weights, v

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        weights, v = self.weights_and_values(h)
        out = (weights @ v).transpose(1, 2).reshape(h.shape)
        return self.proj(out)


class _DiTBlock(nn.Module):
    """adaLN-Zero block: ``h += g1 * Attn(LN(h)(1+s1)+b1); h += g2 * MLP(LN(h)(1+s2)+b2)``."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = _SoftmaxAttention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))
        modulation = nn.Linear(width, 6 * width)
        nn.init.zeros_(modulation.weight)
        nn.init.zeros_(modulation.bias)
        self.modulation = nn.Sequential(nn.SiLU(), modulation)

    def _modulated(self, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.modulation(c)[:, None, :].chunk(6, dim=-1)

    def attention_input(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, *_ = self._modulated(h, c)
        return self.norm1(h) * (1 + scale1) + shift1

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self._modulated(h, c)
        h = h + gate1 * self.attn(self.norm1(h) * (1 + scale1) + shift1)
        return h + gate2 * self.mlp(self.norm2(h) * (1 + scale2) + shift2)


class DiT(nn.Module):
    """Softmax DiT-style score model over frames (tokens = frames).

    tokens ``h_i = W_in x_i + W_pos pe(i)`` (fixed sinusoidal ``pe``), ``blocks`` adaLN-Zero blocks
    conditioned on ``c = MLP(time_features(t))``, final adaLN LayerNorm and a zero-initialised linear
    read-out to the predicted noise; the score is ``-noise / sigma_t``.
    Shapes: ``x (batch, H, d)``, ``diffusion_time`` scalar or ``(batch,)`` -> ``(batch, H, d)``.

    ``position="none"`` drops the frame embedding: the network is then equivariant under permutations of the
    frames and cannot know which frames are neighbours — the *no-position* control, in which any lag structure
    of an attention map or a Jacobian must come from the input alone.
    """

    def __init__(self, frames: int, dim: int, width: int = 64, blocks: int = 3, heads: int = 4,
                 mlp_ratio: int = 2, time_embedding: int = 32, position: str = "sinusoidal"):
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {position!r}")
        self.config: dict[str, Any]
        self.config = dict(frames=check_int("frames", frames, minimum=1), dim=check_int("dim", dim, minimum=1),
                           width=check_int("width", width, minimum=2), blocks=check_int("blocks", blocks, minimum=1),
                           heads=check_int("heads", heads, minimum=1),
                           mlp_ratio=check_int("mlp_ratio", mlp_ratio, minimum=1),
                           time_embedding=check_int("time_embedding", time_embedding, minimum=2),
                           position=position)
        self.frames, self.dim = frames, dim
        self.embed = nn.Linear(dim, width)
        position_map = nn.Linear(width, width, bias=False)  # drawn either way: the other weights of a seed agree
        self.position = position_map if position == "sinusoidal" else None
        self.time = _TimeEmbedder(width, time_embedding)
        self.blocks = nn.ModuleList(_DiTBlock(width, heads, mlp_ratio) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        final_modulation = nn.Linear(width, 2 * width)
        self.final_modulation = nn.Sequential(nn.SiLU(), final_modulation)
        self.readout = nn.Linear(width, dim)
        for layer in (final_modulation, self.readout):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _tokens(self, x: torch.Tensor, diffusion_time: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (batch, H, d={self.dim}), got {tuple(x.shape)}")
        t = batch_times(diffusion_time, x.shape[0], x)
        tokens = self.embed(x)
        if self.position is not None:  # position == "sinusoidal"
            tokens = tokens + self.position(frame_features(x.shape[1], self.config["width"], x.dtype, x.device))[None]
        return tokens, self.time(t), t

    def noise(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        """Predicted noise ``(batch, H, d)``."""
        h, c, _ = self._tokens(x, diffusion_time)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c)[:, None, :].chunk(2, dim=-1)
        return self.readout(self.final_norm(h) * (1 + scale) + shift)

    def forward(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        noise = self.noise(x, diffusion_time)
        t = batch_times(diffusion_time, x.shape[0], x)
        return -noise / diffusion_sigma(t)[:, None, None]

    def hidden_states(self, x: torch.Tensor, diffusion_time: Any) -> list[torch.Tensor]:
        """Residual streams ``(batch, H, width)`` after the input map and after each block (``blocks + 1``)."""
        h, c, _ = self._tokens(x, diffusion_time)
        states = [h]
        for block in self.blocks:
            h = block(h, c)
            states.append(h)
        return states

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor, diffusion_time: Any) -> list[torch.Tensor]:
        """Softmax weights per block: list of ``(batch, heads, H, H)``; each row sums to 1."""
        h, c, _ = self._tokens(x, diffusion_time)
        maps = []
        for block in self.blocks:
            block = cast(_DiTBlock, block)  # nn.ModuleList is not generic
            weights, _ = block.attn.weights_and_values(block.attention_input(h, c))
            maps.append(weights)
            h = block(h, c)
        return maps


class _ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, width: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = nn.GroupNorm(min(8, c_in), c_in)
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad)
        self.time = nn.Linear(width, c_out)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out = self.conv1(torch.nn.functional.silu(self.norm1(h))) + self.time(c)[:, :, None]
        out = self.conv2(torch.nn.functional.silu(self.norm2(out)))
        return self.skip(h) + out


class TemporalUNet(nn.Module):
    """1-D U-Net over the frame axis (no attention): the non-attention baseline.

    Pixels/coordinates of a frame are channels; convolutions of width ``kernel_size`` run over frames.
    ``levels`` down-sampling stages (stride-2 convolutions) with skip connections, residual blocks
    conditioned on the diffusion-time embedding, zero-initialised output convolution predicting the
    noise; the score is ``-noise / sigma_t``. Frames are zero-padded to a multiple of ``2**levels``.
    """

    def __init__(self, frames: int, dim: int, channels: int = 32, levels: int = 2, kernel_size: int = 3,
                 time_embedding: int = 32):
        super().__init__()
        self.config: dict[str, Any]
        self.config = dict(frames=check_int("frames", frames, minimum=1), dim=check_int("dim", dim, minimum=1),
                           channels=check_int("channels", channels, minimum=1),
                           levels=check_int("levels", levels, minimum=0, maximum=6),
                           kernel_size=check_int("kernel_size", kernel_size, minimum=1),
                           time_embedding=check_int("time_embedding", time_embedding, minimum=2))
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.frames, self.dim, self.levels = frames, dim, levels
        width = 4 * channels
        self.time = _TimeEmbedder(width, time_embedding)
        self.inp = nn.Conv1d(dim, channels, kernel_size, padding=kernel_size // 2)
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        chans = [channels * 2**k for k in range(levels + 1)]
        for k in range(levels):
            self.down_blocks.append(_ResBlock1d(chans[k], chans[k], width, kernel_size))
            self.downsample.append(nn.Conv1d(chans[k], chans[k + 1], 3, stride=2, padding=1))
        self.middle = _ResBlock1d(chans[-1], chans[-1], width, kernel_size)
        self.upsample = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for k in reversed(range(levels)):
            self.upsample.append(nn.Conv1d(chans[k + 1], chans[k], kernel_size, padding=kernel_size // 2))
            self.up_blocks.append(_ResBlock1d(2 * chans[k], chans[k], width, kernel_size))
        self.out_norm = nn.GroupNorm(min(8, channels), channels)
        self.out = nn.Conv1d(channels, dim, kernel_size, padding=kernel_size // 2)
        assert self.out.bias is not None  # Conv1d(bias=True)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def noise(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        """Predicted noise ``(batch, H, d)``."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape (batch, H, d={self.dim}), got {tuple(x.shape)}")
        t = batch_times(diffusion_time, x.shape[0], x)
        c = self.time(t)
        frames = x.shape[1]
        multiple = 2**self.levels
        padded = -(-frames // multiple) * multiple
        h = torch.nn.functional.pad(x.transpose(1, 2), (0, padded - frames))
        h = self.inp(h)
        skips = []
        for block, down in zip(self.down_blocks, self.downsample, strict=True):
            h = block(h, c)
            skips.append(h)
            h = down(h)
        h = self.middle(h, c)
        for up, block in zip(self.upsample, self.up_blocks, strict=True):
            h = up(torch.nn.functional.interpolate(h, scale_factor=2, mode="nearest"))
            h = block(torch.cat([h, skips.pop()], dim=1), c)
        out = self.out(torch.nn.functional.silu(self.out_norm(h)))
        return out[:, :, :frames].transpose(1, 2)

    def forward(self, x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        noise = self.noise(x, diffusion_time)
        t = batch_times(diffusion_time, x.shape[0], x)
        return -noise / diffusion_sigma(t)[:, None, None]


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


MODEL_KINDS = ("relu_transformer", "dit", "unet")
#: frame-embedding choices of the DiT: the fixed sinusoidal embedding, or none (the no-position control)
POSITIONS = ("sinusoidal", "none")


def build_model(kind: str, frames: int, dim: int, /, **options: Any) -> nn.Module:
    """Build an untrained score model of ``kind`` in ``MODEL_KINDS``; options go to its constructor.

    ``relu_transformer`` is ``NoiseParameterised(unroll.Transformer(**options))``; its options must
    describe a full Transformer config (see ``relu_transformer_config``).
    """
    if kind == "dit":
        return DiT(frames, dim, **options)
    if kind == "unet":
        return TemporalUNet(frames, dim, **options)
    if kind == "relu_transformer":
        from unroll.experiments.relu import build_relu_transformer

        return build_relu_transformer(frames, dim, **options)
    raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")


def model_from_config(kind: str, config: dict) -> nn.Module:
    """Rebuild an empty model from ``model.config`` (as stored in a checkpoint)."""
    if kind == "relu_transformer":
        from unroll.experiments.relu import relu_transformer_from_config

        return relu_transformer_from_config(config)
    options = dict(config)
    frames, dim = options.pop("frames"), options.pop("dim")
    return build_model(kind, frames, dim, **options)
