"""The comparison of record: trained score networks against the construction, with the statistics that decide the
paper's claims (``unroll compare``).

Every training is an independent task (``unroll.experiments.run.train_and_measure`` or
``unroll.experiments.sample_complexity.train_task``) run through one ``concurrent.futures.Executor``
(``unroll.experiments.executor``: local processes by default, a Dask cluster when given a scheduler) and cached in
``OUT/tasks/<name>.json`` as soon as it finishes, so an interrupted run resumes where it stopped.  Every arm trains
with the same procedure: early stopping on a validation set (plateau learning-rate schedule, the best parameters
restored), the same budget of ``steps``, the same seeds.

For each kernel in ``kernels`` (by default the gamma-exponential and the damped cosine, whose correlation is not
monotone in the lag, so that a positional decay predicts the wrong shape):

- **(a) attention follows the kernel.**  ``alignment_seeds`` seeds of each model in ``alignment_models`` trained on
  the GP (*learned*), on white data with the same ``Sigma`` (*white* control) and, for the DiT, without frame
  embeddings (*no-position* control).  Statistics: the scale-aware distance between the attention lag profile and
  ``|gamma|`` (``claims.normalised_profile_distance``), and the linear-response lag-profile error against the exact
  precision (``unroll.experiments.linear_response``); reported as control minus learned with a 95% interval over the
  paired seeds and a verdict.  The input-dependence probe says whether the learned pattern is computed from the input.
- **(c) error falls like n^(-1/2).**  ``unroll.experiments.sample_complexity``: ``sweep_sizes`` x ``sweep_seeds`` with
  early stopping, the infinite-data floor, the fit of the statistical part where statistically limited, the slope
  with its interval over seeds, the Kronecker plug-in estimator through the same metric.
- **(d) DiT vs U-Net.**  Parameter counts matched (``parameter_match`` checks 10%), a learning-rate grid per
  architecture (the rate of lowest mean validation loss is kept), ``architecture_seeds`` seeds: U-Net minus DiT of
  the lag-profile error (primary), the linear-response error, the score error and the distance of the generated
  samples' lag profile to ``gamma``.

Beside them: the construction with both step schedules (score error, linear response, layer probes, the sampler's
exact KL), layer probes of the trained transformers, length generalisation (``lengths``), a non-stationary GP
(``warp``: the kernel on warped frame times), and a ReLU transformer initialised at the construction and trained
(tent fidelity before and after).  ``results.json`` holds every number; ``verdicts.md`` the verdict table.

Every model is scored on one fixed held-out set (``unroll.experiments.heldout``: ``heldout_set``, ``score_error``,
``make_gp``, ``white_gp``, ``float64_score``, re-exported here); ``train_score_model`` is
``unroll.experiments.trainer``'s.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

# the strict-JSON writer lives in unroll._atomic (shared with unroll.experiments.executor); re-exported here, like the
# held-out helpers of unroll.experiments.heldout and train_score_model of unroll.experiments.trainer
from unroll._atomic import strict_json as _finite  # noqa: F401  (kept importable)
from unroll._atomic import write_json_atomic, write_text_atomic
from unroll._validate import InputTypeError, check_bool, check_int, check_positive, check_real
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments.heldout import HeldOut, float64_score, heldout_set, make_gp, score_error, white_gp
from unroll.experiments.trainer import TrainConfig, train_score_model

__all__ = ["CompareConfig", "HeldOut", "configuration_record", "make_gp", "heldout_set", "score_error", "float64_score",
           "white_gp", "train_score_model", "run_comparison", "write_json_atomic", "model_options", "run_task",
           "comparison_tasks", "verdict_table", "parameter_match"]

logger = logging.getLogger(__name__)

DEFAULT_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
#: the generated-samples sampler's interval when a task does not say (``experiments.train_and_measure``)
SAMPLER_START, SAMPLER_END = 8.0, 1e-2


@dataclass
class CompareConfig:
    """Settings of the comparison (defaults: the comparison of record, ~1 h on 2 cores; ``quick()``: minutes)."""

    kernel: str = "gamma-exponential"  # the primary kernel
    control_kernel: str | None = "damped-cosine"  # the non-monotone one (None: primary kernel only)
    nu: float = 1.0
    ell: float = 4.0
    period: float = 6.0  # damped cosine
    frames: int = 16
    dim: int = 2
    spatial_correlation: float = 0.5  # Sigma[a, b] = rho^|a-b|
    # Sigma: "correlated" (rho^|a-b|, the record's) or "random" (unroll.data.gp_spec: drawn from spatial_seed, None:
    # seed)
    spatial: str = "correlated"
    spatial_seed: int | None = None
    spatial_condition: float = 4.0
    train_size: int = 2048
    validation_size: int = 512
    heldout: int = 256
    eval_times: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    response_time: float = 0.5
    map_time: float = 0.5
    probe_time: float = 0.5
    # training, the same for every arm: early stopping on the validation set
    steps: int = 6000  # budget
    batch_size: int = 64
    learning_rate: float = 2e-3
    schedule: str = "plateau"
    warmup: int = 50
    eval_every: int = 100
    patience: int = 8
    plateau_patience: int = 3
    seed: int = 0
    device: str = "cpu"
    # models (DiT and U-Net parameter counts within 10%)
    dit_width: int = 40
    dit_blocks: int = 3
    dit_heads: int = 4
    unet_channels: int = 16
    unet_levels: int = 2
    relu_blocks: int = 4
    relu_bands: int = 4  # the trained ReLU net has the size of construct_unrolled(blocks=4, bands=4, taper)
    relu_width: int = 32
    # claim (a)
    alignment_seeds: int = 5
    alignment_models: tuple[str, ...] = ("dit", "relu_transformer")
    # claim (c)
    sweep_model: str = "dit"
    sweep_sizes: tuple[int, ...] = DEFAULT_SIZES
    sweep_seeds: int = 3
    floor_seeds: int = 3
    # claim (d)
    learning_rates: tuple[float, ...] = (1e-3, 2e-3, 4e-3)
    # 11: the number a 3-seed run of this design estimated would decide the primary statistic (design §8)
    architecture_seeds: int = 11
    generated_samples: int = 1000
    # beyond
    lengths: tuple[int, ...] = (24, 32)
    warp: float | None = 1.5
    init_seeds: int = 3
    construct_blocks: int = 40
    bands: int | None = None  # of the construction; None: all lags H-1
    sampler_steps: int = 60
    t_start: float = 8.0
    t0: float = 1e-2
    # extra (not part of the verdicts): the older sweeps and the video experiment
    sweeps: tuple[str, ...] = ()
    sweep_steps: int = 600
    video: bool = False
    video_size: int = 5
    video_steps: int = 600
    # execution
    workers: int = 1
    scheduler: str | None = None
    figures: bool = True
    progress: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> CompareConfig:
        """The same design at a size that runs in a few minutes on 2 cores (primary kernel only, 2 seeds, short
        budgets): every key of the record run's ``results.json``, none of its power to decide."""
        settings: dict[str, Any]
        settings = dict(control_kernel=None, train_size=512, validation_size=256, heldout=128, steps=400,
                        eval_every=50, patience=4, plateau_patience=2, alignment_seeds=2, sweep_sizes=(16, 32, 64, 128),
                        sweep_seeds=2, floor_seeds=2, learning_rates=(2e-3,), architecture_seeds=2,
                        generated_samples=200, lengths=(24,), warp=None, init_seeds=1, construct_blocks=20,
                        sampler_steps=40, eval_times=(0.1, 0.5, 2.0))
        settings.update(overrides)
        return cls(**settings)

    @property
    def kernels(self) -> tuple[str, ...]:
        return (self.kernel,) if self.control_kernel is None else (self.kernel, self.control_kernel)

    def gp_spec(self, kernel: str | None = None, **changes: Any) -> dict[str, Any]:
        """The GP of ``kernel`` (default the primary) as a spec for ``experiments.gp_from_spec``."""
        kernel = kernel or self.kernel
        damped = kernel == "damped-cosine"
        spec = dict(kernel=kernel, nu=None if damped else self.nu, ell=self.ell, period=self.period if damped else None,
                    frames=self.frames, dim=self.dim, spatial_correlation=self.spatial_correlation, warp=None)
        spec.update(self.random_spatial())
        spec.update(changes)
        return spec

    def random_spatial(self) -> dict[str, Any]:
        """The Sigma fields of a random Sigma (``{}`` for the correlated one, so that the task records, and the
        caches of earlier runs, stay as they were)."""
        if self.spatial != "random":
            return {}
        seed = self.seed if self.spatial_seed is None else self.spatial_seed
        return dict(spatial="random", spatial_seed=seed, spatial_condition=self.spatial_condition)

    def task_settings(self) -> dict[str, Any]:
        """``asdict(self)`` without the random-Sigma fields of a correlated Sigma (``random_spatial``)."""
        settings = asdict(self)
        if self.spatial != "random":
            for name in ("spatial", "spatial_seed", "spatial_condition"):
                settings.pop(name)
        return settings

    def validate(self) -> CompareConfig:
        """Check every field (``TypeError`` for a value of the wrong type, ``ValueError`` for one out of range);
        ``tests/test_bad_input_api.py`` holds one bad value per field against it."""
        self._validate_gp()
        self._validate_data()
        self._validate_models()
        self._validate_claims()
        self._validate_beyond()
        self._validate_execution()
        TrainConfig(**self.train_settings(), seed=self.seed).validate()
        for rate in self.learning_rates:
            TrainConfig(**self.train_settings(rate), seed=self.seed).validate()
        return self

    def _validate_gp(self) -> None:
        from unroll.data.kernels import NAMED_KERNELS

        for field_name in ("kernel", "control_kernel"):
            name = getattr(self, field_name)
            if name is None and field_name == "control_kernel":
                continue
            if not isinstance(name, str) or name not in NAMED_KERNELS:
                raise ValueError(f"{field_name} must be one of {sorted(NAMED_KERNELS)}, got {name!r}")
        if self.control_kernel == self.kernel:
            raise ValueError(f"control_kernel must differ from kernel = {self.kernel!r} (or be None)")
        check_positive("nu", self.nu)
        check_positive("ell", self.ell)
        check_positive("period", self.period)
        for name in self.kernels:  # the family's own range of nu (gamma-exponential: nu <= 2, matern: nu <= 100)
            spec = self.gp_spec(name)
            kernel_from_name(name, nu=spec["nu"], ell=spec["ell"], period=spec["period"])
        check_int("frames", self.frames, minimum=2, maximum=256)
        check_int("dim", self.dim, minimum=1, maximum=256)
        rho = check_real("spatial_correlation", self.spatial_correlation)
        if not -1 < rho < 1:
            raise ValueError(f"spatial_correlation must satisfy -1 < rho < 1, got {self.spatial_correlation}")
        from unroll.data.gp_spec import SPATIAL_KINDS

        if self.spatial not in SPATIAL_KINDS:
            raise ValueError(f"spatial must be one of {', '.join(SPATIAL_KINDS)}, got {self.spatial!r}")
        if self.spatial_seed is not None:
            check_int("spatial_seed", self.spatial_seed, minimum=0)
        if not check_real("spatial_condition", self.spatial_condition) >= 1:
            raise ValueError(f"spatial_condition must satisfy spatial_condition >= 1, got {self.spatial_condition}")

    def _validate_data(self) -> None:
        check_int("train_size", self.train_size, minimum=1)
        check_int("validation_size", self.validation_size, minimum=1)
        check_int("heldout", self.heldout, minimum=2)
        for t in _sequence("eval_times", self.eval_times, minimum_length=1):
            check_positive("eval_times", t)
        for name in ("response_time", "map_time", "probe_time"):
            check_positive(name, getattr(self, name))
        check_int("steps", self.steps, minimum=1)
        check_int("seed", self.seed, minimum=0)

    def _validate_models(self) -> None:
        for name in ("dit_width", "dit_blocks", "dit_heads", "unet_channels", "relu_blocks", "relu_width"):
            check_int(name, getattr(self, name), minimum=1)
        if self.dit_width < 2 or self.dit_width % self.dit_heads:
            raise ValueError(f"dit_width must be >= 2 and a multiple of dit_heads = {self.dit_heads}, "
                             f"got {self.dit_width}")
        check_int("unet_levels", self.unet_levels, minimum=0, maximum=6)
        check_int("relu_bands", self.relu_bands, minimum=0)

    def _validate_claims(self) -> None:
        check_int("alignment_seeds", self.alignment_seeds, minimum=2)
        models = _sequence("alignment_models", self.alignment_models, minimum_length=1)
        unknown = set(models) - {"dit", "relu_transformer"}
        if unknown:
            raise ValueError(f"alignment_models must be among dit, relu_transformer; got {sorted(map(str, unknown))}")
        if self.sweep_model not in ("relu_transformer", "dit", "unet"):
            raise ValueError(f"sweep_model must be relu_transformer, dit or unet, got {self.sweep_model!r}")
        for size in _sequence("sweep_sizes", self.sweep_sizes, minimum_length=3):
            check_int("sweep_sizes", size, minimum=1)
        if len(set(self.sweep_sizes)) < 3:
            raise ValueError(f"sweep_sizes needs >= 3 distinct sizes for a slope with an interval, "
                             f"got {self.sweep_sizes}")
        check_int("sweep_seeds", self.sweep_seeds, minimum=2)
        check_int("floor_seeds", self.floor_seeds, minimum=2)
        for rate in _sequence("learning_rates", self.learning_rates, minimum_length=1):
            check_positive("learning_rates", rate, upper=1.0)
        check_int("architecture_seeds", self.architecture_seeds, minimum=2)
        check_int("generated_samples", self.generated_samples, minimum=0)

    def _validate_beyond(self) -> None:
        for length in _sequence("lengths", self.lengths, minimum_length=0):
            check_int("lengths", length, minimum=2, maximum=256)
        if self.warp is not None:
            check_positive("warp", self.warp)
        check_int("init_seeds", self.init_seeds, minimum=0)
        check_int("construct_blocks", self.construct_blocks, minimum=1)
        if self.bands is not None:
            check_int("bands", self.bands, minimum=0, maximum=self.frames - 1)
        check_int("sampler_steps", self.sampler_steps, minimum=1)
        check_positive("t_start", self.t_start)
        t0 = check_real("t0", self.t0)
        if not 0 < t0 < self.t_start:
            raise ValueError(f"t0 must satisfy 0 < t0 < t_start = {self.t_start}, got {self.t0}")
        unknown = set(_sequence("sweeps", self.sweeps, minimum_length=0)) - {"H", "size", "decay"}
        if unknown:
            raise ValueError(f"sweeps must be a subset of H, size, decay; got unknown {sorted(map(str, unknown))}")
        check_int("sweep_steps", self.sweep_steps, minimum=1)
        check_bool("video", self.video)
        check_int("video_size", self.video_size, minimum=2, maximum=64)
        check_int("video_steps", self.video_steps, minimum=1)

    def _validate_execution(self) -> None:
        check_int("workers", self.workers, minimum=0)
        if self.scheduler is not None and (not isinstance(self.scheduler, str) or not self.scheduler):
            raise ValueError(f"scheduler must be None or a scheduler address (a non-empty string), "
                             f"got {self.scheduler!r}")
        check_bool("figures", self.figures)
        check_bool("progress", self.progress)

    def train_settings(self, learning_rate: float | None = None) -> dict[str, Any]:
        """The ``TrainConfig`` fields every arm trains with (early stopping on the validation set)."""
        return dict(steps=self.steps, batch_size=self.batch_size,
                    learning_rate=self.learning_rate if learning_rate is None else learning_rate,
                    warmup=self.warmup, schedule=self.schedule, eval_every=self.eval_every, patience=self.patience,
                    plateau_patience=self.plateau_patience, t_min=self.t0, t_max=self.t_start, device=self.device,
                    checkpoint_every=10**9)

    def train_config(self, steps: int | None = None, seed_offset: int = 0) -> TrainConfig:
        """A fixed-budget ``TrainConfig`` (cosine schedule, no early stopping) for the extra sweeps and figures."""
        budget = steps or self.steps
        return TrainConfig(steps=budget, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           warmup=min(50, max(budget // 10, 1)), t_min=self.t0, t_max=self.t_start,
                           seed=self.seed + seed_offset, device=self.device, progress=self.progress)

    def model_options(self, kind: str, gp: GaussianProcess | None = None) -> dict[str, Any]:
        """Constructor options of the trained model ``kind`` (``dit``, ``unet``, ``relu_transformer``).

        The ReLU Transformer has the size (D, L, M) of ``construct_unrolled(gp, blocks=relu_blocks,
        bands=min(relu_bands, H-1), taper="triangular")`` (the triangular taper keeps Gamma_J positive definite
        for any ``relu_bands``), so it needs ``gp``; the DiT and the U-Net do not.
        """
        if kind == "dit":
            return dict(width=self.dit_width, blocks=self.dit_blocks, heads=self.dit_heads)
        if kind == "unet":
            return dict(channels=self.unet_channels, levels=self.unet_levels)
        if kind == "relu_transformer":
            if gp is None:
                raise ValueError("gp is required for kind='relu_transformer' (its size follows the construction "
                                 "for gp), got gp=None")
            from unroll import construct_unrolled
            from unroll.experiments.relu import relu_config_from_construction

            reference = construct_unrolled(gp, blocks=self.relu_blocks, bands=min(self.relu_bands, gp.frames - 1),
                                           taper="triangular")
            return relu_config_from_construction(reference, frames=gp.frames,
                                                 width=max(self.relu_width, reference.config["width"]),
                                                 ffn_width=32, seed=self.seed)
        raise ValueError(f"kind must be relu_transformer, dit or unet, got {kind!r}")


def _sequence(name: str, value: Any, *, minimum_length: int) -> tuple[Any, ...]:
    """``value`` as a tuple if it is a tuple or list of at least ``minimum_length`` items (a string is not)."""
    if not isinstance(value, (tuple, list)):
        raise InputTypeError(f"{name} must be a tuple, got {value!r} ({type(value).__name__})")
    if len(value) < minimum_length:
        raise ValueError(f"{name} must hold at least {minimum_length} value(s), got {value!r}")
    return tuple(value)


def model_options(kind: str, config: CompareConfig, gp: GaussianProcess | None = None) -> dict[str, Any]:
    """Constructor options of each trained model in the comparison: ``config.model_options(kind, gp)``."""
    return config.model_options(kind, gp)


def _bands(config: CompareConfig) -> int:
    return config.frames - 1 if config.bands is None else config.bands


def parameter_match(config: CompareConfig) -> dict[str, Any]:
    """Parameter counts of the DiT and the U-Net of claim (d) and whether they are within 10% of each other."""
    from unroll.experiments.models import build_model, parameter_count

    dit = parameter_count(build_model("dit", config.frames, config.dim, **config.model_options("dit")))
    unet = parameter_count(build_model("unet", config.frames, config.dim, **config.model_options("unet")))
    ratio = unet / dit
    return {"dit": dit, "unet": unet, "ratio_unet_to_dit": ratio, "within_10_percent": bool(abs(ratio - 1) <= 0.1)}


# ------------------------------------------------------------------------------------------------ tasks
def run_task(job: str, **kwargs: Any) -> Any:
    """The executor's one task function: ``job`` names what to run (a top-level function, so any executor can
    import it): ``"train"`` (``experiments.train_and_measure``), ``"sample_complexity"``
    (``sample_complexity.train_task``), ``"plugin"`` (``sample_complexity.kronecker_plugin_error``),
    ``"constructions"`` (the construction with both schedules, measured like the trained models)."""
    if job == "train":
        from unroll.experiments.run import train_and_measure

        return train_and_measure(**kwargs)
    if job == "sample_complexity":
        from unroll.experiments.sample_complexity import train_task

        return train_task(**kwargs)
    if job == "plugin":
        from unroll.experiments.sample_complexity import kronecker_plugin_error

        return kronecker_plugin_error(**kwargs)
    if job == "constructions":
        torch.set_num_threads(1)
        return _constructions(CompareConfig(**kwargs["settings"]), kwargs["kernel"], progress=False)
    raise ValueError(f"job must be train, sample_complexity, plugin or constructions, got {job!r}")


def _tag(kernel: str) -> str:
    return {"gamma-exponential": "gexp", "damped-cosine": "dcos"}.get(kernel, kernel)


def sample_complexity_config(config: CompareConfig, kernel: str) -> Any:
    """The ``SampleComplexityConfig`` of claim (c) for ``kernel`` (the comparison's model, data and training)."""
    from unroll.experiments.sample_complexity import SampleComplexityConfig

    spec = config.gp_spec(kernel)
    return SampleComplexityConfig(
        kernel=kernel, nu=config.nu, ell=config.ell, period=spec["period"], frames=config.frames, dim=config.dim,
        spatial_correlation=config.spatial_correlation, **config.random_spatial(), model=config.sweep_model,
        model_options=config.model_options(config.sweep_model, _gp(config, kernel)),
        sizes=tuple(config.sweep_sizes),
        seeds=tuple(range(config.seed, config.seed + config.sweep_seeds)),
        floor_seeds=tuple(range(config.seed, config.seed + config.floor_seeds)), heldout=config.heldout,
        eval_times=tuple(config.eval_times), validation_size=config.validation_size, steps=config.steps,
        batch_size=config.batch_size, learning_rate=config.learning_rate, warmup=config.warmup,
        schedule=config.schedule, eval_every=config.eval_every, patience=config.patience,
        plateau_patience=config.plateau_patience, t_min=config.t0, t_max=config.t_start).validate()


def comparison_tasks(config: CompareConfig) -> dict[str, dict[str, Any]]:
    """Every task of the comparison, ``{name: kwargs of run_task}``, the longest first (the sample-complexity floor
    and largest sizes); tasks that two sections share (the DiT at the default learning rate is both the learned arm
    of claim (a) and a point of claim (d)'s grid) appear once."""
    from unroll.experiments.run import task

    tasks: dict[str, dict[str, Any]] = {}
    seeds = range(config.seed, config.seed + max(config.alignment_seeds, config.architecture_seeds))
    first = config.seed
    base_eval = dict(times=tuple(config.eval_times), heldout=config.heldout, response_time=config.response_time,
                     map_time=config.map_time)

    def evaluate(kind: str, seed: int, arm: str = "data", variant: str = "") -> dict[str, Any]:
        settings = dict(base_eval)
        if arm == "data" and not variant and seed == first:
            settings.update(probe_time=config.probe_time, lengths=tuple(config.lengths))
        if arm == "data" and not variant and kind in ("dit", "unet") and config.generated_samples:
            settings.update(generated=config.generated_samples, sampler_steps=config.sampler_steps)
            if (config.t_start, config.t0) != (SAMPLER_START, SAMPLER_END):  # the task's defaults otherwise
                settings.update(t_start=config.t_start, t0=config.t0)
        return settings

    for kernel in config.kernels:  # the constructions first: each is one long serial job
        tasks[f"{_tag(kernel)}.constructions"] = dict(job="constructions", settings=config.task_settings(),
                                                      kernel=kernel)
    for kernel in config.kernels:
        gp = config.gp_spec(kernel)
        tag = _tag(kernel)
        sc = sample_complexity_config(config, kernel)
        settings = sc.task_settings()
        for seed in sc.floor_seeds:
            tasks[f"{tag}.sc.floor.s{seed}"] = dict(job="sample_complexity", settings=settings, n=None, seed=seed)
        for n in sorted(sc.sizes, reverse=True):
            for seed in sc.seeds:
                tasks[f"{tag}.sc.n{n}.s{seed}"] = dict(job="sample_complexity", settings=settings, n=n, seed=seed)

        def add(kind: str, seed: int, arm: str = "data", variant: str = "", learning_rate: float | None = None,
                kernel: str = kernel, gp: dict[str, Any] = gp, tag: str = tag) -> None:
            options = config.model_options(kind, None if kind != "relu_transformer" else _gp(config, kernel))
            if kind == "relu_transformer":  # unroll.Transformer seeds its own initialisation from its config
                options = {**options, "seed": seed}
            if variant == "nopos":
                options = {**options, "position": "none"}
            rate = config.learning_rate if learning_rate is None else learning_rate
            name = f"{tag}.{kind}{'-' + variant if variant else ''}.{arm}.lr{rate:g}.s{seed}"
            tasks[name] = dict(job="train", **task(gp, kind, options, config.train_settings(rate), seed, arm=arm,
                                                    train_size=config.train_size,
                                                    validation_size=config.validation_size,
                                                    evaluate=evaluate(kind, seed, arm, variant)))

        for seed in seeds:
            if seed < first + config.alignment_seeds:
                for kind in config.alignment_models:
                    add(kind, seed)
                    add(kind, seed, arm="white")
                    if kind == "dit":
                        add(kind, seed, variant="nopos")
            if seed < first + config.architecture_seeds:
                for kind in ("dit", "unet"):
                    for rate in config.learning_rates:
                        add(kind, seed, learning_rate=rate)
        for seed in range(first, first + config.init_seeds):
            options = dict(blocks=config.relu_blocks, bands=min(config.relu_bands, config.frames - 1))
            for variant, init in (("init", "construction"), ("shape", "construction-shape")):
                name = f"{tag}.relu_transformer-{variant}.data.lr{config.learning_rate:g}.s{seed}"
                tasks[name] = dict(job="train", **task(gp, "relu_transformer", options, config.train_settings(),
                                                        seed, arm="data", train_size=config.train_size,
                                                        validation_size=config.validation_size,
                                                        evaluate=dict(base_eval), init=init))
        for seed in range(first, first + config.sweep_seeds):
            for n in sc.sizes:
                tasks[f"{tag}.sc.plugin.n{n}.s{seed}"] = dict(job="plugin", settings=settings, n=n, seed=seed)
        if kernel == config.kernel:
            if config.warp is not None:
                warped = config.gp_spec(kernel, warp=config.warp)
                for seed in range(first, first + config.architecture_seeds):
                    name = f"{tag}-warp{config.warp:g}.dit.data.lr{config.learning_rate:g}.s{seed}"
                    tasks[name] = dict(job="train", **task(warped, "dit", config.model_options("dit"),
                                                            config.train_settings(), seed, arm="data",
                                                            train_size=config.train_size,
                                                            validation_size=config.validation_size,
                                                            evaluate=dict(base_eval)))
    return tasks


def _gp(config: CompareConfig, kernel: str) -> GaussianProcess:
    from unroll.experiments.run import gp_from_spec

    return gp_from_spec(config.gp_spec(kernel))


# ------------------------------------------------------------------------------------------------ analysis
def _runs(results: dict[str, Any], kernel: str, kind: str, arm: str = "data", variant: str = "",
          learning_rate: float | None = None, *, config: CompareConfig) -> list[dict[str, Any]]:
    """The task records of one arm (``learning_rate`` default: the config's), in seed order."""
    rate = config.learning_rate if learning_rate is None else learning_rate
    prefix = f"{_tag(kernel)}.{kind}{'-' + variant if variant else ''}.{arm}.lr{rate:g}.s"
    found = sorted(((int(name[len(prefix):]), record) for name, record in results.items()
                    if name.startswith(prefix) and name[len(prefix):].isdigit()), key=lambda item: item[0])
    return [record for _, record in found]


def _statistics(record: dict[str, Any]) -> dict[str, float | None]:
    """The per-run numbers the claims compare."""
    attention = record.get("attention") or {}
    samples = record.get("samples") or {}
    return {"score_error": record["score_error"]["score_error"],
            "linear_response_error": record["linear_response"]["error"],
            "lag_profile_error": record["linear_response"]["lag_profile_error"],
            "nonlinearity": record["linear_response"]["nonlinearity"],
            "attention_distance": attention.get("distance_to_gamma"),
            "input_dependence_zero": (attention.get("input_dependence") or {}).get("zero"),
            "input_dependence_white": (attention.get("input_dependence") or {}).get("white"),
            "samples_distance": samples.get("distance_to_gamma"),
            "best_validation_loss": record["train"]["best_validation_loss"],
            "steps": record["train"]["steps"]}


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% interval over seeds of every statistic (``None`` where a statistic is missing)."""
    from unroll.experiments.claims import mean_interval

    out: dict[str, Any] = {"seeds": len(records)}
    if not records:
        return out
    rows = [_statistics(r) for r in records]
    for key in rows[0]:
        values = [row[key] for row in rows]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        if len(finite) < len(values):
            out[key] = None
            continue
        out[key] = mean_interval(finite).to_dict()
    out["parameters"] = records[0]["train"]["parameters"]
    return out


def _compare(control: list[dict[str, Any]], learned: list[dict[str, Any]], statistic: str, *, claim: str,
             kernel: str, against: str, predicted_sign: int = 1) -> dict[str, Any]:
    """Control minus learned of one statistic, paired by seed, with its verdict."""
    from unroll.experiments.claims import paired_difference, verdict_for_difference

    if len(control) != len(learned):
        raise ValueError(f"{claim} on {kernel}: {len(control)} control runs do not pair with {len(learned)} "
                         "learned runs")
    everything = [(_statistics(c)[statistic], _statistics(lrn)[statistic]) for c, lrn in zip(control, learned,
                                                                                            strict=True)]
    pairs = [(c, lrn) for c, lrn in everything if c is not None and lrn is not None]
    row: dict[str, Any] = {"claim": claim, "kernel": kernel, "statistic": statistic, "against": against,
                           "control": [c for c, _ in pairs], "learned": [lrn for _, lrn in pairs],
                           "seeds_without_a_value": len(everything) - len(pairs)}
    if len(pairs) < 2:
        row.update(verdict="undecided", decide=f"needs >= 2 paired seeds, got {len(pairs)}")
        return row
    interval = paired_difference([c for c, _ in pairs], [lrn for _, lrn in pairs])
    row.update(verdict_for_difference(interval, predicted_sign))
    return row


def _select_rate(results: dict[str, Any], config: CompareConfig, kernel: str, kind: str) -> dict[str, Any]:
    """The learning rate of lowest mean best validation loss over seeds (claim (d)'s grid), and the grid."""
    grid: dict[str, dict[str, Any]] = {}
    for rate in config.learning_rates:
        runs = _runs(results, kernel, kind, learning_rate=rate, config=config)[: config.architecture_seeds]
        losses = [r["train"]["best_validation_loss"] for r in runs]
        grid[f"{rate:g}"] = {"mean_validation_loss": float(np.mean(losses)) if losses else math.inf,
                             "score_error": float(np.mean([r["score_error"]["score_error"] for r in runs]))
                             if runs else None}
    best = min(config.learning_rates, key=lambda rate: grid[f"{rate:g}"]["mean_validation_loss"])
    return {"grid": grid, "selected": best}


def _analyse_kernel(results: dict[str, Any], config: CompareConfig, kernel: str) -> dict[str, Any]:
    from unroll.experiments.run import lag_values
    from unroll.experiments.sample_complexity import analyse, heldout

    out: dict[str, Any] = {"kernel": kernel, "gp": config.gp_spec(kernel),
                           "gamma": lag_values(_gp(config, kernel)).tolist()}
    tag = _tag(kernel)
    learned = {kind: _runs(results, kernel, kind, config=config)[: config.alignment_seeds]
               for kind in config.alignment_models}
    arms: dict[str, Any] = {}
    for kind in config.alignment_models:
        arms[kind] = {"learned": _summary(learned[kind]),
                      "white": _summary(_runs(results, kernel, kind, arm="white", config=config))}
        if kind == "dit":
            arms[kind]["no_position"] = _summary(_runs(results, kernel, kind, variant="nopos", config=config))
    out["arms"] = arms
    rows = []
    for kind in config.alignment_models:
        controls = [("white", _runs(results, kernel, kind, arm="white", config=config))]
        if kind == "dit":
            controls.append(("no_position", _runs(results, kernel, kind, variant="nopos", config=config)))
        for against, control in controls:
            for statistic, claim in (("attention_distance", "(a) attention follows the kernel"),
                                     ("lag_profile_error", "(a) linear response follows the kernel")):
                rows.append({"model": kind, **_compare(control, learned[kind], statistic, claim=claim, kernel=kernel,
                                                        against=against)})
    # (c)
    sc = sample_complexity_config(config, kernel)
    runs = [results[f"{tag}.sc.n{n}.s{s}"] for n in sc.sizes for s in sc.seeds]
    floor = [results[f"{tag}.sc.floor.s{s}"] for s in sc.floor_seeds]
    plugin = {(n, s): results.get(f"{tag}.sc.plugin.n{n}.s{s}") for n in sc.sizes for s in sc.seeds}
    sweep = analyse(sc, runs, floor, score_error(lambda x, t: -x, heldout(sc)), plugin)
    out["sample_complexity"] = sweep
    fit = sweep["fit"]
    rows.append({"claim": "(c) error falls like n^(-1/2)", "kernel": kernel, "model": config.sweep_model,
                 "statistic": "slope of the statistical error eps(n)", "against": "-1/2 and 0",
                 "interval": {"mean": fit.get("slope"), "low": (fit.get("slope_ci95") or [None, None])[0],
                              "high": (fit.get("slope_ci95") or [None, None])[1], "n": fit.get("seeds")},
                 "verdict": sweep["verdict"]["verdict"], "decide": sweep["verdict"]["reason"]})
    # (d)
    selection = {kind: _select_rate(results, config, kernel, kind) for kind in ("dit", "unet")}
    chosen = {kind: _runs(results, kernel, kind, learning_rate=selection[kind]["selected"],
                          config=config)[: config.architecture_seeds] for kind in ("dit", "unet")}
    out["architectures"] = {"selection": selection, "parameters": parameter_match(config),
                            **{kind: _summary(chosen[kind]) for kind in ("dit", "unet")}}
    for statistic in ("lag_profile_error", "linear_response_error", "score_error", "samples_distance"):
        rows.append({"model": "dit vs unet", **_compare(chosen["unet"], chosen["dit"], statistic,
                                                         claim="(d) DiT beats U-Net", kernel=kernel,
                                                         against="unet")})
    out["claims"] = rows
    # beyond the verdicts
    first: dict[str, dict[str, Any] | None] = {}
    for kind in ("dit", "unet", "relu_transformer"):
        runs = _runs(results, kernel, kind, config=config)
        first[kind] = runs[0] if runs else None
    out["probes"] = {kind: record["probes"] for kind, record in first.items() if record and "probes" in record}
    out["lengths"] = {kind: {"trained_at": config.frames, **record["lengths"]} for kind, record in first.items()
                      if record and "lengths" in record}
    init = _runs(results, kernel, "relu_transformer", variant="init", config=config)
    if init:
        shape = _runs(results, kernel, "relu_transformer", variant="shape", config=config)
        out["init_at_construction"] = {
            "tent_fidelity_initial": [r["tents"]["initial"]["mean"] for r in init],
            "tent_fidelity_trained": [r["tents"]["trained"]["mean"] for r in init],
            "score_error": [r["score_error"]["score_error"] for r in init],
            "lag_profile_error": [r["linear_response"]["lag_profile_error"] for r in init],
            "steps": [r["train"]["steps"] for r in init],
            "random_init_same_network": {
                "score_error": [r["score_error"]["score_error"] for r in shape],
                "lag_profile_error": [r["linear_response"]["lag_profile_error"] for r in shape],
                "tent_fidelity_trained": [r["tents"]["trained"]["mean"] for r in shape],
                "steps": [r["train"]["steps"] for r in shape]},
            "parameters": init[0]["train"]["parameters"]}
    return out


def _constructions(config: CompareConfig, kernel: str, progress: bool) -> dict[str, Any]:
    """The construction with both schedules: score error, linear response, layer probes, the sampler's exact KL."""
    from unroll import construct_unrolled
    from unroll.experiments import distribution as dist
    from unroll.experiments.linear_response import linear_response
    from unroll.experiments.probes import layer_probes

    gp = _gp(config, kernel)
    bands = config.frames - 1 if config.bands is None else config.bands
    held = heldout_set(gp, config.heldout, config.eval_times, seed=1000)
    target = gp.covariance()
    sampler: dict[str, Any] = dict(t_start=config.t_start, t0=config.t0, steps=config.sampler_steps)
    law = dist.sampler_gaussian_law(gp.score, gp.frames, gp.dim, **sampler)
    out: dict[str, Any] = {"exact_score": {"kl_to_data": dist.gaussian_kl(law, target),
                                           "covariance_error": dist.covariance_error(law, target)},
                           "baseline_minus_x": score_error(lambda x, t: -x, held), "sampler": sampler}
    for steps in ("gd", "chebyshev"):
        try:
            model = construct_unrolled(gp, blocks=config.construct_blocks, bands=bands, steps=steps)
        except ValueError as error:  # e.g. an indefinite Gamma_J
            out[f"constructed_{steps}"] = {"error": str(error)}
            continue
        score = float64_score(model)
        response = linear_response(model, gp, config.response_time, samples=8,
                                   generator=torch.Generator().manual_seed(3000))
        law = dist.sampler_gaussian_law(score, gp.frames, gp.dim, **sampler)
        entry = {**score_error(score, held), "linear_response_error": response.error,
                 "lag_profile_error": response.lag_profile_error, "kl_to_data": dist.gaussian_kl(law, target),
                 "covariance_error": dist.covariance_error(law, target), "size": model.size()}
        if steps == "gd":
            entry["probes"] = layer_probes(model, gp, config.probe_time, probe=512, heldout=256,
                                           iterates=min(24, max(config.construct_blocks, 2))).to_dict()
            entry["lengths"] = {}
            for length in config.lengths:  # the same weights on longer sequences
                longer = _gp(replace(config, frames=int(length)), kernel)
                long_held = heldout_set(longer, config.heldout, config.eval_times, seed=1000)
                entry["lengths"][str(length)] = {"score_error": score_error(score, long_held)["score_error"]}
        out[f"constructed_{steps}"] = entry
        logger.info(f"{kernel}: constructed ({steps}, L={config.construct_blocks}) score error "
                    f"{entry['score_error']:.4g}, KL {entry['kl_to_data']:.4g} (exact score "
                    f"{out['exact_score']['kl_to_data']:.4g})")
    return out


def _nonstationary(results: dict[str, Any], config: CompareConfig) -> dict[str, Any] | None:
    """The DiT on a non-stationary GP (the kernel on warped frame times) beside the Kronecker plug-in."""
    if config.warp is None:
        return None
    from unroll.experiments.linear_response import linear_response
    from unroll.experiments.plugin import plugin_score
    from unroll.experiments.run import gp_from_spec

    spec = config.gp_spec(config.kernel, warp=config.warp)
    prefix = f"{_tag(config.kernel)}-warp{config.warp:g}.dit.data.lr{config.learning_rate:g}.s"
    runs = [record for name, record in sorted(results.items()) if name.startswith(prefix)]
    gp = gp_from_spec(spec)
    held = heldout_set(gp, config.heldout, config.eval_times, seed=1000)
    plugin = []
    for seed in range(config.seed, config.seed + len(runs)):
        data = gp.sample(config.train_size, generator=torch.Generator().manual_seed(10_000 + seed))
        estimate = plugin_score(data)
        response = linear_response(estimate, gp, config.response_time, samples=8,
                                   generator=torch.Generator().manual_seed(3000))
        plugin.append({"score_error": score_error(estimate, held)["score_error"],
                       "linear_response_error": response.error})
    return {"gp": spec, "stationary": gp.stationary, "dit": _summary(runs), "plugin_kronecker": plugin}


def _all_sizes_fit(sweep: dict[str, Any]) -> dict[str, Any]:
    """A descriptive fit, not a test: per seed, OLS of log(held-out score error) on log n over every size; the mean
    slope with its interval over seeds (it mixes the statistical part with the floor, so it flattens at large n)."""
    from unroll.experiments.claims import fit_loglog, mean_interval

    sizes = [row["n"] for row in sweep["sizes"]]
    seeds = len(sweep["sizes"][0]["score_error"])
    slopes = [fit_loglog(sizes, [row["score_error"][k] for row in sweep["sizes"]])["slope"] for k in range(seeds)]
    interval = mean_interval(slopes)
    return {"quantity": "slope of log(mean_t e_t) on log n over all sizes, per seed", "slope": interval.mean,
            "interval": [interval.low, interval.high], "seeds": seeds}


def verdict_table(results: dict[str, Any]) -> str:
    """The verdict table (markdown) of a ``results.json``: one row per claim, kernel and comparison."""
    lines = ["| claim | kernel | model | statistic | vs | estimate [95% interval] | seeds | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for kernel, entry in results["kernels"].items():
        for row in entry["claims"]:
            interval = row.get("interval") or {}
            mean, low, high = interval.get("mean"), interval.get("low"), interval.get("high")
            estimate = "-" if mean is None else (f"{mean:+.3g}" if low is None or high is None
                                                 else f"{mean:+.3g} [{low:+.3g}, {high:+.3g}]")
            verdict = row["verdict"] + (f" ({row['decide']})" if row.get("decide") and row["verdict"] == "undecided"
                                        else "")
            lines.append(f"| {row['claim']} | {kernel} | {row['model']} | {row['statistic']} | {row['against']} | "
                         f"{estimate} | {interval.get('n', '-')} | {verdict} |")
    return "\n".join(lines) + "\n"


def configuration_record(config: CompareConfig) -> dict[str, Any]:
    """The run's configuration as fields (``unroll.provenance``): each kernel's GP as ``GPSpec.to_dict()``, the
    construction's ``L`` and ``J``, the first seed; every setting is in ``results["config"]`` beside it."""
    from unroll.data.gp_spec import GPSpec

    def gp_record(kernel: str) -> dict[str, Any]:
        spec = {key: value for key, value in config.gp_spec(kernel).items() if key != "warp"}
        return GPSpec(**spec).to_dict()

    return {"command": "compare", "gp": gp_record(config.kernel),
            "control_gp": None if config.control_kernel is None else gp_record(config.control_kernel),
            "construct_blocks": config.construct_blocks, "bands": _bands(config), "seed": config.seed,
            "dtype": "float32 training, float64 evaluation"}


def run_comparison(config: CompareConfig, out: str | os.PathLike, executor: Any = None, *,
                   command_line: list[str] | None = None) -> dict:
    """Run every task (module docstring) and the constructions; write ``out/results.json``, ``out/verdicts.md`` and
    the figures.  ``executor``: any ``concurrent.futures.Executor`` (default ``make_executor(config.workers,
    config.scheduler)``); the task records are cached in ``out/tasks`` (a rerun resumes).  ``results.json``
    carries ``configuration`` (:func:`configuration_record`) and ``provenance`` (``unroll.provenance``, with
    ``command_line``, default ``sys.argv``)."""
    from unroll.experiments.executor import make_executor, run_tasks
    from unroll.provenance import provenance

    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks = comparison_tasks(config)
    where = "the given executor" if executor is not None else (config.scheduler or f"{config.workers} worker(s)")
    logger.info(f"unroll compare: {len(tasks)} tasks on {where}")
    own = executor is None
    executor = executor if executor is not None else make_executor(
        None if config.scheduler else config.workers, config.scheduler)
    try:
        records = run_tasks(run_task, tasks, executor, cache_dir=out / "tasks", progress=config.progress,
                            description="trainings")
    finally:
        if own:
            executor.shutdown()
    task_seconds = time.perf_counter() - started
    results: dict[str, Any] = {"configuration": configuration_record(config),
                               "provenance": provenance(command_line), "config": asdict(config), "kernels": {},
                               "timings_seconds": {"tasks": task_seconds}}
    for kernel in config.kernels:
        tic = time.perf_counter()
        entry = _analyse_kernel(records, config, kernel)
        entry["constructions"] = records[f"{_tag(kernel)}.constructions"]
        results["kernels"][kernel] = entry
        results["timings_seconds"][f"analysis_{_tag(kernel)}"] = time.perf_counter() - tic
    results["nonstationary"] = _nonstationary(records, config)
    primary = results["kernels"][config.kernel]
    models: dict[str, Any] = {}
    for name in ("constructed_gd", "constructed_chebyshev"):
        entry = primary["constructions"].get(name, {})
        if "score_error" in entry:
            models[name] = {key: entry[key] for key in ("score_error", "per_time", "linear_response_error",
                                                        "lag_profile_error", "kl_to_data", "covariance_error")}
    for kind in ("relu_transformer", "dit", "unet"):
        runs = (_runs(records, config.kernel, kind, config=config)
                [: config.alignment_seeds if kind != "unet" else config.architecture_seeds])
        if not runs:
            continue
        summary = _summary(runs)
        models[kind] = {"score_error": summary["score_error"]["mean"],
                        "linear_response_error": summary["linear_response_error"]["mean"],
                        "lag_profile_error": summary["lag_profile_error"]["mean"],
                        "seeds": summary["seeds"], "parameters": summary["parameters"], "intervals": summary}
    results["models"] = models
    results.update({name: entry for name, entry in models.items()})  # also top-level: results[name]["score_error"]
    sweep = primary["sample_complexity"]
    results["n_sweep"] = {"model": config.sweep_model, "sizes": list(config.sweep_sizes),
                          "fitted_sizes": sweep["fitted_sizes"], "slope": sweep["fit"].get("slope"),
                          "interval": sweep["fit"].get("slope_ci95"), "floor": sweep["floor"]["score_error_mean"],
                          "verdict": sweep["verdict"]["verdict"], "reason": sweep["verdict"]["reason"],
                          "quantity": sweep["quantity"], "all_sizes": _all_sizes_fit(sweep)}
    if config.sweeps:
        from unroll.experiments.sweeps import run_extra_sweeps

        results["sweeps"] = run_extra_sweeps(config, list(config.sweeps))
    if config.video:
        from unroll.experiments.sweeps import video_attention

        results["video"], _ = video_attention(config)
    results["verdicts"] = [row for entry in results["kernels"].values() for row in entry["claims"]]
    table = verdict_table(results)
    write_text_atomic(out / "verdicts.md", table)
    results["timings_seconds"]["total"] = time.perf_counter() - started
    if config.figures:
        from unroll.figures import comparison as figures

        try:
            results["figures"] = figures.comparison_figures(out, results)
        except ImportError as error:
            results["figures"] = {"skipped": str(error)}
    results["timings_seconds"]["total"] = time.perf_counter() - started
    write_json_atomic(results, out / "results.json")
    return results
