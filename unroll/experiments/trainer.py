"""Denoising score matching with seeds, a progress bar, atomic checkpoints, exact resume and early stopping.

``train(model, data, config)`` minimises ``unroll.data.diffusion.dsm_loss`` over a fixed training set
``data`` of shape ``(n, H, d)`` in float32. Each step draws a minibatch (indices), diffusion times
(log-uniform in ``[t_min, t_max]``) and the Gaussian noise from the trainer's own generators, so that
the run is a deterministic function of ``(model init, data, config)``.

**Infinite-data arm.** ``train(model, None, config, sampler=f)`` draws a fresh batch
``f(batch_size, generator) -> (batch_size, H, d)`` at every step from the trainer's host generator
(the one that draws the minibatch indices otherwise), so the run is reproducible and resumable too.

**Validation and early stopping.** With ``validation=x0_val`` ``(m, H, d)`` the held-out DSM loss

    V(theta) = 1/(r m) sum_{k<r, i<m} || sigma_{t_ki} model_theta(x_ki, t_ki) + z_ki ||^2 / (H d),
    x_ki = alpha_{t_ki} x0_val[i] + sigma_{t_ki} z_ki,

is evaluated at step 0, every ``eval_every`` steps and at the last step, with ``r = validation_repeats``
copies of the validation set whose times ``t_ki`` (log-uniform in ``[t_min, t_max]``) and noises
``z_ki`` are drawn ONCE from a generator seeded by ``validation_seed`` (see ``validation_draw``), so
``V`` is a deterministic function of the parameters. The parameters with the lowest ``V`` are kept; an
evaluation counts as an improvement when ``V < (1 - min_delta) * V_ref``, ``V_ref`` the loss at the last
improvement, and the run stops after ``patience`` evaluations in a row without one. At the end (stopped
or at the budget ``steps``) the best parameters are loaded into the model.

**Learning-rate schedules** (``schedule``): ``"cosine"`` (the default, as before: linear warm-up over
``warmup`` steps, cosine decay over ``steps`` to ``final_lr_fraction * lr``), ``"constant"`` (warm-up,
then constant) and ``"plateau"`` (warm-up, then constant times a scale that is multiplied by
``plateau_factor`` after every ``plateau_patience`` evaluations without improvement, down to
``final_lr_fraction``; needs validation). Cosine decay is tied to the budget ``steps``, not to when
early stopping ends the run, so the two other schedules are the ones meant for early stopping.

A checkpoint holds the model and optimizer states, both generator states, the step, the loss history
and the early-stopping state (best parameters, best loss and step, counters, learning-rate scale,
validation history); it is written atomically (temporary file in the same folder, then ``os.replace``)
with a SHA-256 integrity record (``unroll.experiments.checkpoint``: a damaged file is refused, never resumed
from) every ``checkpoint_every`` steps, at the end, and when the run is interrupted (``KeyboardInterrupt``).
Resuming from it continues to the same parameters, bit for bit, as an uninterrupted run with the same
seed (the validation draw is rebuilt from its seed and consumes none of the training generators).

**Interrupts.** A checkpoint always holds the state at the end of a *completed* step, so resuming after
Ctrl-C is as exact as after ``kill -9``. In the main thread, while the default SIGINT handler is in place,
a first Ctrl-C is deferred to the end of the step in progress (its evaluation and checkpoint included),
then that state is saved and ``KeyboardInterrupt`` raised; a second Ctrl-C interrupts at once. A
``KeyboardInterrupt`` raised inside a step (a second Ctrl-C, another SIGINT handler, a callback) saves the
state of the previous step when it comes before the parameter update (the generators are rewound to
where that step began) and saves nothing once the update has begun (the last checkpoint stands).
SIGTERM and ``kill -9`` end the process at once; the last checkpoint stands.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unroll._atomic import atomic_write, check_destination
from unroll._validate import check_bool, check_int, check_positive, check_real
from unroll.data.diffusion import alpha, dsm_loss, sample_diffusion_times, sigma
from unroll.experiments.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["TrainConfig", "TrainResult", "train", "train_score_model", "seeded_model", "load_checkpoint",
           "atomic_torch_save", "resolve_device", "ValidationDraw", "validation_draw", "validation_loss", "SCHEDULES",
           "CheckpointError"]

# Fields of TrainConfig that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"progress", "checkpoint_every", "device"}

#: learning-rate schedules of ``TrainConfig.schedule``
SCHEDULES = ("cosine", "constant", "plateau")

#: a sampler of the infinite-data arm: ``(n, generator) -> (n, H, d)`` clean samples
Sampler = Callable[[int, torch.Generator], torch.Tensor]


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all defaults small: CPU, minutes).

    ``eval_every``, ``patience``, ``min_delta``, ``validation_repeats``, ``validation_seed`` act only when
    ``train`` is given a validation set; ``schedule`` is one of ``SCHEDULES`` (module docstring).
    """

    steps: int = 1500
    batch_size: int = 128
    learning_rate: float = 2e-3
    warmup: int = 50
    final_lr_fraction: float = 0.05
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    t_min: float = 1e-2
    t_max: float = 8.0
    seed: int = 0
    checkpoint_every: int = 250
    device: str = "cpu"
    progress: bool = True
    schedule: str = "cosine"
    eval_every: int = 50
    patience: int = 10
    min_delta: float = 0.0
    validation_repeats: int = 1
    validation_seed: int = 0
    plateau_factor: float = 0.5
    plateau_patience: int = 3

    def validate(self) -> TrainConfig:
        """Check every field (``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range)."""
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        # AdamW moves each parameter by about learning_rate per step: above 1 that is larger than the weights
        check_positive("learning_rate", self.learning_rate, upper=1.0)
        check_int("warmup", self.warmup, minimum=0)
        check_positive("final_lr_fraction", self.final_lr_fraction, upper=1.0)
        decay = check_real("weight_decay", self.weight_decay)
        if not (math.isfinite(decay) and 0 <= decay and decay * self.learning_rate < 1):
            raise ValueError(f"weight_decay must satisfy 0 <= weight_decay < 1/learning_rate = "
                             f"{1 / self.learning_rate:g} (AdamW scales every parameter by 1 - lr * weight_decay "
                             f"per step), got {self.weight_decay!r}")
        check_positive("grad_clip", self.grad_clip)
        check_positive("t_min", self.t_min)
        t_max = check_real("t_max", self.t_max)
        if not (math.isfinite(t_max) and t_max > self.t_min):
            raise ValueError(f"t_max must satisfy t_min = {self.t_min} < t_max < inf, got {self.t_max!r}")
        check_int("seed", self.seed, minimum=0)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        resolve_device(self.device)
        check_bool("progress", self.progress)
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        check_int("eval_every", self.eval_every, minimum=1)
        check_int("patience", self.patience, minimum=1)
        min_delta = check_real("min_delta", self.min_delta)
        if not 0 <= min_delta < 1:
            raise ValueError(f"min_delta must satisfy 0 <= min_delta < 1 (a relative improvement), "
                             f"got {self.min_delta!r}")
        check_int("validation_repeats", self.validation_repeats, minimum=1)
        check_int("validation_seed", self.validation_seed, minimum=0)
        check_positive("plateau_factor", self.plateau_factor, upper=1.0, closed_upper=False)
        check_int("plateau_patience", self.plateau_patience, minimum=1)
        return self

    def learning_rate_at(self, step: int, scale: float = 1.0) -> float:
        """Learning rate at ``step``: linear warm-up over ``warmup`` steps, then by ``schedule``.

        ``"cosine"``: cosine decay over ``steps`` to ``final_lr_fraction * lr``; ``"constant"``: ``lr``;
        ``"plateau"``: ``scale * lr`` (``scale``, the plateau scale, is kept by ``train``).
        """
        if step < self.warmup:
            return self.learning_rate * (step + 1) / self.warmup
        if self.schedule == "constant":
            return self.learning_rate
        if self.schedule == "plateau":
            return self.learning_rate * scale
        progress = (step - self.warmup) / max(self.steps - self.warmup, 1)
        cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.learning_rate * (self.final_lr_fraction + (1 - self.final_lr_fraction) * cosine)


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model (float32, on the training device) and its history.

    ``steps``: optimisation steps run (fewer than ``config.steps`` when stopped early or interrupted).
    With validation: ``validation_steps[k]`` / ``validation_losses[k]`` the k-th evaluation, ``best_step``
    and ``best_validation_loss`` the best one (whose parameters the model holds unless interrupted),
    ``stopped_early`` whether patience ran out before the budget, ``lr_reduced_at`` the steps at which
    the plateau schedule lowered the learning rate.
    """

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    interrupted: bool = False
    best_step: int | None = None
    best_validation_loss: float | None = None
    validation_steps: list[int] = field(default_factory=list)
    validation_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False
    lr_reduced_at: list[int] = field(default_factory=list)


@dataclass
class ValidationDraw:
    """A fixed validation draw: noised inputs ``x_t (r m, H, d)``, their times ``(r m,)``, ``sigma_t`` and
    noises ``z (r m, H, d)``, all float32 on the training device."""

    noised: torch.Tensor
    times: torch.Tensor
    sigmas: torch.Tensor
    noise: torch.Tensor


def validation_draw(clean: torch.Tensor, config: TrainConfig, device: torch.device | str = "cpu"
                    ) -> ValidationDraw:
    """The fixed draw behind ``validation_loss``, from ``torch.Generator().manual_seed(validation_seed)``.

    In this order: ``t = sample_diffusion_times(r m, t_min, t_max)`` (float64), then
    ``z = randn(r m, H, d)`` (float64); ``x0`` is ``clean`` repeated ``r = validation_repeats`` times
    (``clean.repeat(r, 1, 1)``) and ``x_t = alpha_t x0 + sigma_t z``, formed in float64, stored in float32.
    """
    if not isinstance(clean, torch.Tensor) or clean.ndim != 3 or clean.shape[0] < 1:
        shape = tuple(clean.shape) if isinstance(clean, torch.Tensor) else type(clean).__name__
        raise ValueError(f"validation must be a tensor of shape (m, H, d) with m >= 1, got {shape}")
    if not bool(torch.isfinite(clean).all()):
        raise ValueError("validation contains NaN or infinite values; all entries must be finite")
    generator = torch.Generator().manual_seed(config.validation_seed)
    x0 = clean.detach().to(device="cpu", dtype=torch.float64).repeat(config.validation_repeats, 1, 1)
    times = sample_diffusion_times(x0.shape[0], t_min=config.t_min, t_max=config.t_max, generator=generator)
    z = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    a, s = alpha(times)[:, None, None], sigma(times)[:, None, None]
    as32: dict[str, Any] = dict(device=device, dtype=torch.float32)
    return ValidationDraw(noised=(a * x0 + s * z).to(**as32), times=times.to(**as32),
                          sigmas=sigma(times).to(**as32), noise=z.to(**as32))


@torch.no_grad()
def validation_loss(model: nn.Module, draw: ValidationDraw, chunk: int = 1024) -> float:
    """``V = mean_i || sigma_i model(x_i, t_i) + z_i ||^2 / (H d)`` over the fixed draw (float64 sum).

    The model runs in eval mode (restored afterwards) on chunks of ``chunk`` samples, so ``V`` is a
    deterministic function of the parameters.
    """
    was_training = model.training
    model.eval()
    total = 0.0
    count, frames, dim = draw.noised.shape
    try:
        for i in range(0, count, chunk):
            x, t = draw.noised[i: i + chunk], draw.times[i: i + chunk]
            residual = draw.sigmas[i: i + chunk, None, None] * model(x, t) + draw.noise[i: i + chunk]
            total += float(residual.to(torch.float64).pow(2).sum())
    finally:
        model.train(was_training)
    return total / (count * frames * dim)


def resolve_device(device: str) -> torch.device:
    """``"cpu"`` or ``"cuda"``/``"cuda:k"``; asking for CUDA without a GPU is a ValueError."""
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA device is available; use --device cpu")
    return torch.device(device)


_GLOBAL_RNG_LOCK = threading.Lock()


def seeded_model(build: Any, seed: int) -> nn.Module:
    """Call ``build()`` with torch's global RNG seeded by ``seed`` (restored afterwards).

    The global RNG is shared by threads: a lock keeps two builds in a thread pool from drawing from each
    other's seeded stream (which made thread-pool runs differ from sequential ones).
    """
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (``unroll._atomic``: temporary file, then ``os.replace``)."""
    atomic_write(path, lambda temporary: torch.save(obj, temporary))


def _fingerprint(data: torch.Tensor) -> list[float]:
    flat = data.detach().to(torch.float64).reshape(-1)
    weights = torch.cos(torch.arange(flat.numel(), dtype=torch.float64))
    return [float(flat.sum()), float((flat * weights).sum()), *map(float, data.shape)]


def _model_config(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    return copy.deepcopy(dict(config)) if config is not None else None


def _sampled(sampler: Sampler, count: int, generator: torch.Generator, shape: tuple[int, int] | None
             ) -> torch.Tensor:
    """``sampler(count, generator)``, checked: shape ``(count, H, d)`` (``(H, d)`` = ``shape`` if given), finite."""
    batch = sampler(count, generator)
    if not isinstance(batch, torch.Tensor) or batch.ndim != 3 or batch.shape[0] != count or (
            shape is not None and tuple(batch.shape[1:]) != shape):
        got = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        want = f"({count}, H, d)" if shape is None else f"({count}, {shape[0]}, {shape[1]})"
        raise ValueError(f"sampler(n, generator) must return a tensor of shape {want}, got {got}")
    if not bool(torch.isfinite(batch).all()):
        raise ValueError("sampler returned NaN or infinite values; all entries must be finite")
    return batch


def _clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _record_evaluation(early: dict[str, Any], value: float, step: int, model: nn.Module,
                       config: TrainConfig) -> None:
    """Record the validation loss ``value`` at ``step`` in ``early``: best parameters, improvement counters,
    plateau scale (``config.schedule == "plateau"``) and the stop flag (``config.patience``)."""
    early["validation_steps"].append(step)
    early["validation_losses"].append(value)
    if early["best_loss"] is None or value < early["best_loss"]:
        early.update(best_loss=value, best_step=step, best_state=_clone_state(model))
    reference = early["reference_loss"]
    if reference is None or value < (1 - config.min_delta) * reference:
        early.update(reference_loss=value, bad_evaluations=0, plateau_bad=0)
        return
    early["bad_evaluations"] += 1
    early["plateau_bad"] += 1
    if config.schedule == "plateau" and early["plateau_bad"] >= config.plateau_patience:
        scale = max(early["lr_scale"] * config.plateau_factor, config.final_lr_fraction)
        if scale < early["lr_scale"]:
            early["lr_reduced_at"].append(step)
        early.update(lr_scale=scale, plateau_bad=0)
    if early["bad_evaluations"] >= config.patience:
        early["stopped_early"] = True


def _generator_states(host: torch.Generator, noise: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(host state, noise state or None when the noise generator is the host one)``."""
    return host.get_state(), None if noise is host else noise.get_state()


def _set_generator_states(host: torch.Generator, noise: torch.Generator,
                          states: tuple[torch.Tensor, torch.Tensor | None]) -> None:
    host.set_state(states[0])
    if states[1] is not None:
        noise.set_state(states[1])


class _DeferredSigint:
    """While active, a first SIGINT only sets ``requested`` (the loop stops at the end of the step); a second
    raises ``KeyboardInterrupt`` at once. Installed only in the main thread over Python's default handler
    (``signal.default_int_handler``), so another program's handler (a notebook kernel) is left alone."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> _DeferredSigint:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(
    model: nn.Module,
    data: torch.Tensor | None,
    config: TrainConfig | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    model_kind: str | None = None,
    stop_after: int | None = None,
    validation: torch.Tensor | None = None,
    sampler: Sampler | None = None,
) -> TrainResult:
    """Train ``model`` (a score model ``model(x, t)``) by DSM; returns a TrainResult.

    ``data``: the training set ``(n, H, d)``, or ``None`` with ``sampler``.
    ``sampler``: the infinite-data arm, ``sampler(batch_size, generator) -> (batch_size, H, d)`` called
    once per step with the trainer's host generator (e.g. ``lambda n, g: gp.sample(n, generator=g)``).
    ``validation``: clean held-out samples ``(m, H, d)``: enables evaluation every ``config.eval_every``
    steps, early stopping and restoring the best parameters (module docstring).
    ``checkpoint``: file to write (and, with ``resume``, to continue from when it exists).
    ``stop_after``: stop once this many steps are done, as an interruption would (for tests); an
    interrupted run returns the current parameters, not the best ones.
    The model is trained in float32 on ``config.device`` and modified in place.
    """
    config = (config or TrainConfig()).validate()
    if (data is None) == (sampler is None):
        raise ValueError("give exactly one of data (a training set (n, H, d)) and sampler (the infinite-data "
                         f"arm); got data={'None' if data is None else 'a tensor'}, "
                         f"sampler={'None' if sampler is None else 'a callable'}")
    if sampler is not None and not callable(sampler):
        raise ValueError(f"sampler must be a callable (n, generator) -> (n, H, d), got {type(sampler).__name__}")
    if data is not None:
        if not isinstance(data, torch.Tensor) or data.ndim != 3 or data.shape[0] < 1:
            shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
            raise ValueError(f"data must have shape (n, H, d) with n >= 1, got {shape}")
        if not bool(torch.isfinite(data).all()):
            raise ValueError("data contains NaN or infinite values; all entries must be finite")
    if config.schedule == "plateau" and validation is None:
        raise ValueError("schedule='plateau' needs a validation set to detect plateaus; pass validation=...")
    device = resolve_device(config.device)
    model.to(device=device, dtype=torch.float32)
    model.train()
    fingerprint: list[float | str]
    if data is not None:
        train_data = data.to(device=device, dtype=torch.float32)
        sample_shape = (int(data.shape[1]), int(data.shape[2]))
        fingerprint = list(_fingerprint(data))
    else:
        assert sampler is not None  # exactly one of data and sampler, checked above
        # A probe draw from its own generator identifies the sampler for resumption without using the host stream.
        probe = _sampled(sampler, 4, torch.Generator().manual_seed(2**31 - 1), None)
        sample_shape = (int(probe.shape[1]), int(probe.shape[2]))
        fingerprint = ["sampler", *_fingerprint(probe)]
    draw = None
    validation_fingerprint = None
    if validation is not None:
        draw = validation_draw(validation, config, device)
        if tuple(validation.shape[1:]) != sample_shape:
            raise ValueError(f"validation must have samples of shape (H, d) = {sample_shape} like the training "
                             f"data, got {tuple(validation.shape[1:])}")
        validation_fingerprint = _fingerprint(validation)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    host_generator = torch.Generator().manual_seed(config.seed)
    noise_generator = (host_generator if device.type == "cpu"
                       else torch.Generator(device=device).manual_seed(config.seed + 1))
    losses: list[float] = []
    step = 0
    resumed_from = None
    settings = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES}
    early: dict[str, Any] = {"best_state": None, "best_loss": None, "best_step": None, "reference_loss": None,
                             "bad_evaluations": 0, "plateau_bad": 0, "lr_scale": 1.0, "validation_steps": [],
                             "validation_losses": [], "stopped_early": False, "lr_reduced_at": []}

    if checkpoint is not None:
        check_destination(checkpoint)  # before any work: a folder, FIFO or a path below a file is refused
    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        # A checkpoint from before a setting existed was written with that setting's default behaviour.
        defaults = {k: v for k, v in asdict(TrainConfig()).items() if k not in _RESUMABLE_CHANGES}
        if {**defaults, **state["settings"]} != settings:
            raise ValueError(f"checkpoint {checkpoint} was written with training settings {state['settings']}, "
                             f"not {settings}; use another --out or delete it to start afresh")
        if state["data_fingerprint"] != fingerprint:
            raise ValueError(f"checkpoint {checkpoint} was trained on different data; refusing to resume")
        if state.get("validation_fingerprint") != validation_fingerprint:
            raise ValueError(f"checkpoint {checkpoint} was validated on a different validation set (or with/"
                             "without one); refusing to resume")
        if state["model_config"] != _model_config(model):
            raise ValueError(f"checkpoint {checkpoint} holds a model with config {state['model_config']}, "
                             f"not {_model_config(model)}")
        model.load_state_dict(state["model_state"])
        optimizer.load_state_dict(state["optimizer_state"])
        host_generator.set_state(state["host_rng"])
        if noise_generator is not host_generator and state.get("noise_rng") is not None:
            noise_generator.set_state(state["noise_rng"])
        losses = list(state["losses"])
        step = resumed_from = int(state["step"])
        if state.get("early_stopping") is not None:
            early = copy.deepcopy(state["early_stopping"])

    saved_step: int | None = None

    def save() -> None:
        nonlocal saved_step
        if checkpoint is None:
            return
        save_checkpoint({
            "step": step, "model_kind": model_kind, "model_config": _model_config(model),
            "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
            "host_rng": host_generator.get_state(),
            "noise_rng": None if noise_generator is host_generator else noise_generator.get_state(),
            "losses": losses, "settings": settings, "data_fingerprint": fingerprint,
            "validation_fingerprint": validation_fingerprint,
            "early_stopping": early if draw is not None else None,
            "train_config": asdict(config),
        }, checkpoint)
        saved_step = step

    # Where an interruption leaves the state (module docstring, Interrupts): ``rewind`` holds the generator
    # states at the start of the step in progress until it has drawn all it needs, ``updating`` is True from
    # the parameter update (or an evaluation's bookkeeping) until the state is consistent again.
    rewind: tuple[torch.Tensor, torch.Tensor | None] | None = None
    updating = False

    def evaluate() -> None:
        """Validation loss at ``step``; update best parameters, counters, plateau scale, stop flag."""
        nonlocal updating
        assert draw is not None  # evaluate() runs only with a validation set
        value = validation_loss(model, draw)
        updating = True
        _record_evaluation(early, value, step, model, config)
        updating = False

    last = config.steps if stop_after is None else min(config.steps, int(stop_after))
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train {model_kind or type(model).__name__}",
                   leave=False)
    started = time.perf_counter()
    interrupted = False
    # Step 0, or an evaluation an interruption cut short (the step was taken, its evaluation not recorded).
    due = step == 0 or step % config.eval_every == 0 or step == config.steps
    if draw is not None and due and (not early["validation_steps"] or early["validation_steps"][-1] != step):
        evaluate()
        if early["stopped_early"]:
            save()
    try:
        with _DeferredSigint() as sigint:
            while step < last and not early["stopped_early"]:
                if sigint.requested:
                    raise KeyboardInterrupt
                rewind = _generator_states(host_generator, noise_generator)
                for group in optimizer.param_groups:
                    group["lr"] = config.learning_rate_at(step, early["lr_scale"])
                if sampler is None:
                    index = torch.randint(train_data.shape[0], (config.batch_size,), generator=host_generator)
                    batch = train_data[index.to(device)]
                else:
                    batch = _sampled(sampler, config.batch_size, host_generator, sample_shape).to(
                        device=device, dtype=torch.float32)
                times = sample_diffusion_times(config.batch_size, t_min=config.t_min, t_max=config.t_max,
                                               generator=host_generator, dtype=torch.float32, device=device)
                loss = dsm_loss(model, batch, diffusion_time=times, generator=noise_generator)
                if not bool(torch.isfinite(loss)):
                    raise FloatingPointError(f"DSM loss became {float(loss)} at step {step}; lower the learning "
                                             "rate or check the model's initial scale")
                loss_value = loss.item()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                updating = True
                optimizer.step()
                losses.append(loss_value)
                step += 1
                rewind = None
                updating = False
                if draw is not None and (step % config.eval_every == 0 or step == config.steps):
                    evaluate()
                if bar is not None:
                    bar.update(1)
                    if step % 25 == 0:
                        bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.4f}")
                if step % config.checkpoint_every == 0 or step == config.steps or early["stopped_early"]:
                    save()
            if sigint.requested:  # a Ctrl-C during the last step: its state is saved, then the run stops
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
        if not updating:  # else: the update was cut short, the last checkpoint stands
            if rewind is not None:
                _set_generator_states(host_generator, noise_generator, rewind)
            if saved_step != step:
                save()
        raise
    finally:
        if bar is not None:
            bar.close()
    if stop_after is not None and step < config.steps and not early["stopped_early"]:
        interrupted = True
        save()
    if draw is not None and not interrupted:
        model.load_state_dict(early["best_state"])
    model.eval()
    return TrainResult(model=model, losses=losses, steps=step, seconds=time.perf_counter() - started,
                       resumed_from=resumed_from, interrupted=interrupted, best_step=early["best_step"],
                       best_validation_loss=early["best_loss"], validation_steps=list(early["validation_steps"]),
                       validation_losses=list(early["validation_losses"]), stopped_early=early["stopped_early"],
                       lr_reduced_at=list(early["lr_reduced_at"]))


def train_score_model(kind: str, data: torch.Tensor | None, options: dict[str, Any], train_config: TrainConfig,
                      checkpoint: str | os.PathLike | None = None, *, validation: torch.Tensor | None = None,
                      sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None
                      ) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``unroll.experiments.models.build_model(kind, H, d, **options)`` (seeded by ``train_config.seed``) and
    train it; returns ``(model, info)``.

    ``data`` ``(n, H, d)`` or ``None`` with ``sampler`` (the infinite-data arm); ``validation`` enables
    early stopping (``train``). ``info`` has the parameter count, seconds, steps run, first and final (mean of
    the last 50) training losses, and with validation ``best_step``, ``best_validation_loss``,
    ``stopped_early`` and the validation curve.
    """
    from unroll.experiments.models import build_model, parameter_count

    if data is not None:
        reference = data
    elif validation is not None:
        reference = validation
    elif sampler is not None:
        reference = sampler(1, torch.Generator().manual_seed(0))
    else:
        raise ValueError("train_score_model needs data, validation or a sampler to know the shape (H, d); "
                         "got data=None, validation=None, sampler=None")
    frames, dim = reference.shape[1], reference.shape[2]
    model = seeded_model(lambda: build_model(kind, frames, dim, **options), train_config.seed)
    result = train(model, data, train_config, checkpoint=checkpoint, model_kind=kind, validation=validation,
                   sampler=sampler)
    tail = result.losses[-min(50, len(result.losses)):]
    info: dict[str, Any] = {
        "parameters": parameter_count(model), "train_seconds": result.seconds, "steps": result.steps,
        "final_loss": float(np.mean(tail)), "first_loss": float(result.losses[0]) if result.losses else None}
    if validation is not None:
        info.update(best_step=result.best_step, best_validation_loss=result.best_validation_loss,
                    stopped_early=result.stopped_early, validation_steps=result.validation_steps,
                    validation_losses=result.validation_losses, lr_reduced_at=result.lr_reduced_at)
    return result.model, info
