"""Forward Ornstein–Uhlenbeck diffusion, denoising score matching and reverse-time samplers (docs/design.md §3).

Forward process: ``x_t = alpha_t x_0 + sigma_t z`` with ``alpha_t = exp(-t/2)``,
``sigma_t^2 = 1 - exp(-t)``, ``z ~ N(0, I)``; it solves ``dx = -x/2 dt + dW`` and its stationary law is
``N(0, I)``.  The reverse-time SDE is ``dx = [-x/2 - s(x, t)] dt + dW_bar`` (run from ``t = T`` down to
``t0``), and the probability-flow ODE is ``dx/dt = -x/2 - s(x, t)/2``.

Score functions everywhere are callables ``score(x, diffusion_time)`` with ``x`` of shape
``(batch, H, d)`` and ``diffusion_time`` a tensor of shape ``(batch,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from unroll._validate import (
    InputTypeError,
    check_bool,
    check_diffusion_time,
    check_finite,
    check_finite_result,
    check_generator,
    check_int,
    check_memory,
    check_positive,
    check_real,
    check_real_tensor,
)

ScoreFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "alpha",
    "sigma",
    "sigma2",
    "noise",
    "sample_diffusion_times",
    "dsm_loss",
    "time_grid",
    "sample_reverse_sde",
    "sample_probability_flow",
]


def _schedule_time(diffusion_time: Any) -> Any:
    """``diffusion_time`` (a real number or a real tensor) if ``0 <= t < inf`` everywhere, else raise.

    ``t = 0`` is allowed here (``alpha_0 = 1``, ``sigma_0 = 0``: the clean data); the score itself needs ``t > 0``.
    """
    if isinstance(diffusion_time, torch.Tensor):
        tensor = check_real_tensor("diffusion_time", diffusion_time)
        bad = ~torch.isfinite(tensor) | (tensor < 0)
        if bool(bad.any()):
            raise ValueError(f"diffusion_time must satisfy 0 <= diffusion_time < inf, got "
                             f"{float(tensor.detach()[bad].reshape(-1)[0])!r}")
        return tensor
    number = check_real("diffusion_time", diffusion_time)
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"diffusion_time must satisfy 0 <= diffusion_time < inf, got {diffusion_time!r}")
    return number


def alpha(diffusion_time: Any) -> Any:
    """``alpha_t = exp(-t/2)`` for ``0 <= t < inf`` (float in, float out; tensor in, tensor out)."""
    t = _schedule_time(diffusion_time)
    if isinstance(t, torch.Tensor):
        return torch.exp(-0.5 * t)
    return math.exp(-0.5 * t)


def sigma2(diffusion_time: Any) -> Any:
    """``sigma_t^2 = 1 - exp(-t)`` for ``0 <= t < inf``, computed as ``-expm1(-t)`` so small ``t`` keeps its
    digits."""
    t = _schedule_time(diffusion_time)
    if isinstance(t, torch.Tensor):
        return -torch.expm1(-t)
    return -math.expm1(-t)


def sigma(diffusion_time: Any) -> Any:
    """``sigma_t = sqrt(1 - exp(-t))`` for ``0 <= t < inf``."""
    variance = sigma2(diffusion_time)
    if isinstance(variance, torch.Tensor):
        return torch.sqrt(variance)
    return math.sqrt(variance)


def _per_sample(diffusion_time: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a 0-d or ``(batch,)`` time to broadcast against ``x`` of shape ``(batch, H, d)``."""
    t = diffusion_time.to(x.dtype)
    return t.reshape(t.shape + (1,) * (x.ndim - t.ndim)) if t.ndim else t


def noise(
    x0: torch.Tensor, diffusion_time: Any, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward process to ``diffusion_time``.

    Args:
        x0: clean samples ``(..., H, d)``.
        diffusion_time: a positive scalar, or one per sample (shape ``x0.shape[:-2]``).
        generator: source of the Gaussian noise.
    Returns:
        ``(x_t, z)`` with ``x_t = alpha_t x0 + sigma_t z``, both of the shape of ``x0``.
    """
    _check_samples("x0", x0)
    check_generator("generator", generator)
    t = check_diffusion_time(diffusion_time, tuple(x0.shape[:-2])).to(x0.device)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    t = _per_sample(t, x0)
    return alpha(t) * x0 + sigma(t) * z, z


def sample_diffusion_times(
    count: int,
    *,
    t_min: float = 1e-3,
    t_max: float = 10.0,
    generator: torch.Generator | None = None,
    log_uniform: bool = True,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``count`` diffusion times in ``[t_min, t_max]``, log-uniform by default (shape ``(count,)``).

    ``dtype`` must be a floating dtype (an integer one would round every time to 0 or ``t_max``).
    """
    count = check_int("count", count, minimum=1)
    t_min = check_positive("t_min", t_min)
    t_max = check_positive("t_max", t_max)
    if t_max < t_min:
        raise ValueError(f"t_max must satisfy t_max >= t_min = {t_min}, got t_max={t_max}")
    check_generator("generator", generator)
    check_bool("log_uniform", log_uniform)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputTypeError(f"dtype must be a floating torch dtype (torch.float32, torch.float64, ...), got {dtype!r}")
    info = torch.finfo(dtype)
    if t_min < info.tiny or t_max > info.max:  # the times would round to 0 or inf in dtype
        raise ValueError(f"t_min and t_max must lie in [{info.tiny:g}, {info.max:g}] for dtype {dtype}, got "
                         f"t_min={t_min:g}, t_max={t_max:g}")
    u = torch.rand(count, generator=generator, dtype=torch.float64)
    if log_uniform:
        times = torch.exp(math.log(t_min) + u * (math.log(t_max) - math.log(t_min)))
    else:
        times = t_min + u * (t_max - t_min)
    return times.to(dtype=dtype, device=device)


def dsm_loss(
    model: ScoreFunction,
    x0: torch.Tensor,
    *,
    t_min: float = 1e-3,
    t_max: float = 10.0,
    diffusion_time: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Denoising score-matching loss with weight ``sigma_t^2``.

    ``L = mean_batch || sigma_t * model(x_t, t) + z ||^2 / (H d)``; its minimiser over all functions is
    the true score ``s(x, t) = -E[z | x_t] / sigma_t``.  Diffusion times are drawn log-uniformly in
    ``[t_min, t_max]`` unless given (shape ``(batch,)``).

    Args:
        model: score model, ``model(x (batch, H, d), t (batch,)) -> (batch, H, d)``.
        x0: clean training samples ``(batch, H, d)``.
    Returns:
        a scalar tensor (differentiable in the model's parameters).
    """
    if not callable(model):
        raise InputTypeError(f"model must be callable as model(x, t), got {type(model).__name__}")
    _check_samples("x0", x0)
    if x0.ndim != 3:
        raise ValueError(f"x0 must have shape (batch, H, d), got {tuple(x0.shape)}")
    if diffusion_time is None:
        diffusion_time = sample_diffusion_times(
            x0.shape[0], t_min=t_min, t_max=t_max, generator=generator, dtype=x0.dtype, device=x0.device
        )
    else:
        check_diffusion_time(diffusion_time.detach().cpu() if isinstance(diffusion_time, torch.Tensor)
                             else diffusion_time, (x0.shape[0],))
        diffusion_time = torch.as_tensor(diffusion_time, device=x0.device)
    x_t, z = noise(x0, diffusion_time, generator=generator)
    t = diffusion_time.to(x0.dtype)
    if t.ndim == 0:
        t = t.expand(x0.shape[0])
    predicted = model(x_t, t)
    if not isinstance(predicted, torch.Tensor) or predicted.shape != x0.shape:
        shape = tuple(predicted.shape) if isinstance(predicted, torch.Tensor) else type(predicted).__name__
        raise ValueError(f"model output has shape {shape}, expected {tuple(x0.shape)}")
    residual = _per_sample(sigma(t), x0) * predicted + z
    return residual.pow(2).sum(dim=(-2, -1)).mean() / (x0.shape[-2] * x0.shape[-1])


def _check_samples(name: str, x: Any) -> torch.Tensor:
    """``x`` must be a finite floating tensor ``(..., H, d)`` (the samplers and the loss keep its dtype)."""
    check_real_tensor(name, x)
    if not x.is_floating_point():
        raise InputTypeError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, d), got {tuple(x.shape)}")
    return check_finite(name, x)


def time_grid(t_start: float, t0: float, steps: int, *, spacing: str = "geometric") -> torch.Tensor:
    """Decreasing diffusion times from ``t_start`` to the early-stopping time ``t0`` (``steps + 1`` points).

    Geometric spacing keeps ``h_k / t_k`` constant, which the score's ``1/t`` stiffness near ``t -> 0``
    needs; ``"uniform"`` is offered for comparison.
    """
    t_start = check_positive("t_start", t_start)
    t0 = check_positive("t0", t0)
    steps = check_int("steps", steps, minimum=1)
    if t0 >= t_start:
        raise ValueError(f"t0 must satisfy 0 < t0 < t_start = {t_start}, got t0={t0}")
    check_memory(f"time_grid(steps={steps})", 8.0 * (steps + 1))
    if spacing == "geometric":
        return torch.logspace(math.log10(t_start), math.log10(t0), steps + 1, dtype=torch.float64)
    if spacing == "uniform":
        return torch.linspace(t_start, t0, steps + 1, dtype=torch.float64)
    raise ValueError(f"spacing must be 'geometric' or 'uniform', got {spacing!r}")


def _initial_state(
    shape: tuple[int, ...],
    x_start: torch.Tensor | None,
    generator: torch.Generator | None,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> torch.Tensor:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InputTypeError(f"dtype must be a floating torch dtype, got {dtype!r}")
    check_generator("generator", generator)
    if x_start is not None:
        check_real_tensor("x_start", x_start)
        if tuple(x_start.shape) != tuple(shape):
            raise ValueError(f"x_start must have shape {tuple(shape)}, got {tuple(x_start.shape)}")
        return check_finite("x_start", x_start).to(dtype=dtype, device=device).clone()
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def _call_score(score: ScoreFunction, x: torch.Tensor, diffusion_time: torch.Tensor) -> torch.Tensor:
    """``score(x, t)``, which must be a tensor of ``x``'s shape."""
    value = score(x, diffusion_time)
    if not isinstance(value, torch.Tensor) or value.shape != x.shape:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"score must return a tensor of the shape of x, {tuple(x.shape)}; got {shape}")
    return value


def _check_sampler(score: Any, shape: Any) -> tuple[int, ...]:
    """``score`` callable and ``shape = (batch, H, d)`` three positive integers (returned as a tuple)."""
    if not callable(score):
        raise InputTypeError(f"score must be callable as score(x, t), got {type(score).__name__}")
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 3:
        raise InputTypeError(f"shape must be a tuple (batch, H, d), got {shape!r}")
    return tuple(check_int(f"shape[{index}]", size, minimum=1) for index, size in enumerate(shape))


def _progress(iterable: Any, enabled: bool, description: str) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False)


@torch.no_grad()
def sample_reverse_sde(
    score: ScoreFunction,
    shape: tuple[int, ...],
    *,
    t_start: float = 10.0,
    t0: float = 1e-3,
    steps: int = 500,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    x_start: torch.Tensor | None = None,
    spacing: str = "geometric",
    progress: bool = False,
) -> torch.Tensor:
    """Euler–Maruyama on the reverse SDE from ``t_start`` down to the early-stopping time ``t0``.

    Step ``t_k -> t_{k+1} = t_k - h``: ``x <- x + h (x/2 + s(x, t_k)) + sqrt(h) xi``, ``xi ~ N(0, I)``.
    Starts from ``N(0, I)`` (the forward process's stationary law) unless ``x_start`` is given.

    Returns:
        samples of shape ``shape = (batch, H, d)``, approximately distributed as ``x_{t0}``.
    """
    shape = _check_sampler(score, shape)
    grid = time_grid(t_start, t0, steps, spacing=spacing)
    x = _initial_state(shape, x_start, generator, dtype, device)
    batch = torch.ones(shape[0], dtype=dtype, device=device)
    for k in _progress(range(steps), progress, "reverse SDE"):
        t_now, h = float(grid[k]), float(grid[k] - grid[k + 1])
        drift = 0.5 * x + _call_score(score, x, t_now * batch)
        xi = torch.randn(shape, generator=generator, dtype=dtype, device=device)
        x = x + h * drift + math.sqrt(h) * xi
    return check_finite_result("sample_reverse_sde", x, "the score returned NaN/inf or grew too large; check "
                               "the score function, or take more steps")


@torch.no_grad()
def sample_probability_flow(
    score: ScoreFunction,
    shape: tuple[int, ...],
    *,
    t_start: float = 10.0,
    t0: float = 1e-3,
    steps: int = 200,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    x_start: torch.Tensor | None = None,
    spacing: str = "geometric",
    progress: bool = False,
) -> torch.Tensor:
    """Heun's method on the probability-flow ODE ``dx/dt = -x/2 - s(x, t)/2`` from ``t_start`` to ``t0``.

    Deterministic given the starting point (drawn from ``N(0, I)`` with ``generator`` unless
    ``x_start`` is given). Returns samples of shape ``shape``.
    """
    shape = _check_sampler(score, shape)
    grid = time_grid(t_start, t0, steps, spacing=spacing)
    x = _initial_state(shape, x_start, generator, dtype, device)
    batch = torch.ones(shape[0], dtype=dtype, device=device)

    def backward_velocity(state: torch.Tensor, t: float) -> torch.Tensor:
        # d x / d(-t): the ODE run backwards in diffusion time.
        return 0.5 * state + 0.5 * _call_score(score, state, t * batch)

    for k in _progress(range(steps), progress, "probability flow"):
        t_now, t_next = float(grid[k]), float(grid[k + 1])
        h = t_now - t_next
        slope = backward_velocity(x, t_now)
        guess = x + h * slope
        x = x + 0.5 * h * (slope + backward_velocity(guess, t_next))
    return check_finite_result("sample_probability_flow", x, "the score returned NaN/inf or grew too large; "
                               "check the score function, or take more steps")
