"""Denoising score matching with seeds, a progress bar, atomic checkpoints and exact resume.

``train(model, data, config)`` minimises ``unroll.diffusion.dsm_loss`` over a fixed training set
``data`` of shape ``(n, H, d)`` in float32. Each step draws a minibatch (indices), diffusion times
(log-uniform in ``[t_min, t_max]``) and the Gaussian noise from the trainer's own generators, so that
the run is a deterministic function of ``(model init, data, config)``.

A checkpoint holds the model and optimizer states, both generator states, the step and the loss
history; it is written atomically (temporary file in the same folder, then ``os.replace``) every
``checkpoint_every`` steps, at the end, and when the run is interrupted (``KeyboardInterrupt``).
Resuming from it continues to the same parameters, bit for bit, as an uninterrupted run with the same
seed (the learning-rate schedule is a function of the step, so it needs no state).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unroll._atomic import atomic_write
from unroll._validate import check_int, check_positive
from unroll.diffusion import dsm_loss, sample_diffusion_times

__all__ = ["TrainConfig", "TrainResult", "train", "seeded_model", "load_checkpoint", "atomic_torch_save",
           "resolve_device"]

# Fields of TrainConfig that may change between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"progress", "checkpoint_every", "device"}


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all defaults small: CPU, minutes)."""

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

    def validate(self) -> TrainConfig:
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("learning_rate", self.learning_rate)
        check_int("warmup", self.warmup, minimum=0)
        check_positive("final_lr_fraction", self.final_lr_fraction, upper=1.0)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must satisfy weight_decay >= 0, got {self.weight_decay}")
        check_positive("grad_clip", self.grad_clip)
        check_positive("t_min", self.t_min)
        if not self.t_max > self.t_min:
            raise ValueError(f"t_max must satisfy t_max > t_min = {self.t_min}, got {self.t_max}")
        check_int("seed", self.seed, minimum=0)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        resolve_device(self.device)
        return self

    def learning_rate_at(self, step: int) -> float:
        """Linear warm-up over ``warmup`` steps, then cosine decay to ``final_lr_fraction * lr``."""
        if step < self.warmup:
            return self.learning_rate * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(self.steps - self.warmup, 1)
        cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return self.learning_rate * (self.final_lr_fraction + (1 - self.final_lr_fraction) * cosine)


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model (float32, on the training device) and its history."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    interrupted: bool = False


def resolve_device(device: str) -> torch.device:
    """``"cpu"`` or ``"cuda"``/``"cuda:k"``; asking for CUDA without a GPU is a ValueError."""
    if not isinstance(device, str) or not (device == "cpu" or device.startswith("cuda")):
        raise ValueError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but no CUDA device is available; use --device cpu")
    return torch.device(device)


def seeded_model(build: Any, seed: int) -> nn.Module:
    """Call ``build()`` with torch's global RNG seeded by ``seed`` (restored afterwards)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically (``unroll._atomic``: temporary file, then ``os.replace``)."""
    atomic_write(path, lambda temporary: torch.save(obj, temporary))


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by ``train`` (on the CPU)."""
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def _fingerprint(data: torch.Tensor) -> list[float]:
    flat = data.detach().to(torch.float64).reshape(-1)
    weights = torch.cos(torch.arange(flat.numel(), dtype=torch.float64))
    return [float(flat.sum()), float((flat * weights).sum()), *map(float, data.shape)]


def _model_config(model: nn.Module) -> dict | None:
    config = getattr(model, "config", None)
    return copy.deepcopy(dict(config)) if config is not None else None


def train(
    model: nn.Module,
    data: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    model_kind: str | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` (a score model ``model(x, t)``) on ``data`` ``(n, H, d)`` by DSM; returns a TrainResult.

    ``checkpoint``: file to write (and, with ``resume``, to continue from when it exists).
    ``stop_after``: stop once this many steps are done, as an interruption would (for tests).
    The model is trained in float32 on ``config.device`` and modified in place.
    """
    config = (config or TrainConfig()).validate()
    if data.ndim != 3 or data.shape[0] < 1:
        raise ValueError(f"data must have shape (n, H, d) with n >= 1, got {tuple(data.shape)}")
    if not bool(torch.isfinite(data).all()):
        raise ValueError("data contains NaN or infinite values; all entries must be finite")
    device = resolve_device(config.device)
    model.to(device=device, dtype=torch.float32)
    model.train()
    train_data = data.to(device=device, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    host_generator = torch.Generator().manual_seed(config.seed)
    noise_generator = (host_generator if device.type == "cpu"
                       else torch.Generator(device=device).manual_seed(config.seed + 1))
    losses: list[float] = []
    step = 0
    resumed_from = None
    fingerprint = _fingerprint(data)
    settings = {k: v for k, v in asdict(config).items() if k not in _RESUMABLE_CHANGES}

    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint)
        if state["settings"] != settings:
            raise ValueError(f"checkpoint {checkpoint} was written with training settings {state['settings']}, "
                             f"not {settings}; use another --out or delete it to start afresh")
        if state["data_fingerprint"] != fingerprint:
            raise ValueError(f"checkpoint {checkpoint} was trained on different data; refusing to resume")
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

    def save() -> None:
        if checkpoint is None:
            return
        atomic_torch_save({
            "step": step, "model_kind": model_kind, "model_config": _model_config(model),
            "model_state": model.state_dict(), "optimizer_state": optimizer.state_dict(),
            "host_rng": host_generator.get_state(),
            "noise_rng": None if noise_generator is host_generator else noise_generator.get_state(),
            "losses": losses, "settings": settings, "data_fingerprint": fingerprint,
            "train_config": asdict(config),
        }, checkpoint)

    last = config.steps if stop_after is None else min(config.steps, int(stop_after))
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.steps, initial=step, desc=f"train {model_kind or type(model).__name__}",
                   leave=False)
    started = time.perf_counter()
    interrupted = False
    try:
        while step < last:
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate_at(step)
            index = torch.randint(train_data.shape[0], (config.batch_size,), generator=host_generator)
            times = sample_diffusion_times(config.batch_size, t_min=config.t_min, t_max=config.t_max,
                                           generator=host_generator, dtype=torch.float32, device=device)
            loss = dsm_loss(model, train_data[index.to(device)], diffusion_time=times, generator=noise_generator)
            if not bool(torch.isfinite(loss)):
                raise FloatingPointError(f"DSM loss became {float(loss)} at step {step}; lower the learning "
                                         "rate or check the model's initial scale")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            step += 1
            if bar is not None:
                bar.update(1)
                if step % 25 == 0:
                    bar.set_postfix(loss=f"{sum(losses[-25:]) / 25:.4f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                save()
    except KeyboardInterrupt:
        interrupted = True
        save()
        raise
    finally:
        if bar is not None:
            bar.close()
    if stop_after is not None and step < config.steps:
        interrupted = True
        save()
    model.eval()
    return TrainResult(model=model, losses=losses, steps=step, seconds=time.perf_counter() - started,
                       resumed_from=resumed_from, interrupted=interrupted)
