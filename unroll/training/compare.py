"""Held-out score errors of the constructed and trained networks, side by side.

``heldout_set(gp, n, times, seed)`` draws clean held-out samples once and noises them at each diffusion
time with a fixed generator, so every model is scored on the same ``(x_t, s(x_t, t))`` pairs.
``score_error(score, heldout)`` is the relative Frobenius error over the whole batch at each time,

    e(t) = |s_model(x_t, t) - s(x_t, t)|_F / |s(x_t, t)|_F,

evaluated in float64 (trained float32 models are copied to float64 first), and its mean over the
times, which is the ``score_error`` reported per model. ``run_comparison`` is what ``unroll compare`` runs.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

# the strict-JSON writer lives in unroll._atomic (shared with unroll.executor); re-exported here
from unroll._atomic import strict_json as _finite  # noqa: F401  (kept importable)
from unroll._atomic import write_json_atomic
from unroll._validate import check_int, check_positive
from unroll.gp import GaussianProcess
from unroll.kernels import kernel_from_name
from unroll.training.trainer import TrainConfig, seeded_model, train

__all__ = ["CompareConfig", "HeldOut", "make_gp", "heldout_set", "score_error", "float64_score",
           "white_gp", "train_score_model", "run_comparison", "write_json_atomic", "model_options"]


@dataclass
class CompareConfig:
    """Settings of one comparison (defaults: the default ``unroll compare`` run, minutes on 2 cores)."""

    kernel: str = "gamma-exponential"
    nu: float = 1.0
    ell: float = 4.0
    frames: int = 16
    dim: int = 2
    spatial_correlation: float = 0.5  # Sigma[a, b] = rho^|a-b|
    train_size: int = 2048
    heldout: int = 256
    eval_times: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    map_time: float = 0.5
    steps: int = 1200
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0
    device: str = "cpu"
    construct_blocks: int = 40
    bands: int | None = None  # None: all lags H-1
    relu_blocks: int = 4
    relu_bands: int = 4  # the trained ReLU net has the size of construct_unrolled(blocks=4, bands=4, taper)
    relu_width: int = 32
    dit_width: int = 48
    dit_blocks: int = 3
    dit_heads: int = 4
    unet_channels: int = 16
    unet_levels: int = 2
    control_steps: int | None = 600  # None: same as steps
    sweep_model: str = "dit"
    sweep_sizes: tuple[int, ...] = (32, 128, 512, 2048)
    sweep_steps: int = 600
    sweeps: tuple[str, ...] = ("n",)
    sampler_steps: int = 60
    sampler_samples: int = 1000
    t_start: float = 8.0
    t0: float = 1e-2
    video: bool = True
    video_size: int = 5
    video_steps: int = 600
    figures: bool = True
    progress: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> CompareConfig:
        """A reduced comparison that runs in well under two minutes."""
        settings = dict(train_size=512, heldout=128, steps=150, construct_blocks=20, relu_blocks=2,
                        dit_blocks=2, eval_times=(0.1, 0.5, 2.0), sweep_sizes=(64, 256, 1024), sweep_steps=100,
                        sampler_steps=40, sampler_samples=500, video=False, control_steps=150)
        settings.update(overrides)
        return cls(**settings)

    def validate(self) -> CompareConfig:
        check_int("frames", self.frames, minimum=2, maximum=256)
        check_int("dim", self.dim, minimum=1, maximum=256)
        check_positive("nu", self.nu)
        check_positive("ell", self.ell)
        if not -1 < self.spatial_correlation < 1:
            raise ValueError(f"spatial_correlation must satisfy -1 < rho < 1, got {self.spatial_correlation}")
        check_int("train_size", self.train_size, minimum=1)
        check_int("heldout", self.heldout, minimum=2)
        for t in self.eval_times:
            check_positive("eval_times", t)
        check_positive("map_time", self.map_time)
        check_int("steps", self.steps, minimum=1)
        check_int("construct_blocks", self.construct_blocks, minimum=1)
        if self.bands is not None:
            check_int("bands", self.bands, minimum=0, maximum=self.frames - 1)
        if self.sweep_model not in ("relu_transformer", "dit", "unet"):
            raise ValueError(f"sweep_model must be relu_transformer, dit or unet, got {self.sweep_model!r}")
        unknown = set(self.sweeps) - {"n", "H", "size", "decay"}
        if unknown:
            raise ValueError(f"sweeps must be a subset of n, H, size, decay; got unknown {sorted(unknown)}")
        if len(self.sweep_sizes) < 3 and "n" in self.sweeps:
            raise ValueError(f"sweep_sizes needs >= 3 sizes for a slope with an interval, got {self.sweep_sizes}")
        check_int("sampler_steps", self.sampler_steps, minimum=1)
        check_int("sampler_samples", self.sampler_samples, minimum=2)
        if not 0 < self.t0 < self.t_start:
            raise ValueError(f"t0 must satisfy 0 < t0 < t_start = {self.t_start}, got {self.t0}")
        return self

    def train_config(self, steps: int | None = None, seed_offset: int = 0) -> TrainConfig:
        return TrainConfig(steps=steps or self.steps, batch_size=self.batch_size,
                           learning_rate=self.learning_rate, warmup=min(50, max((steps or self.steps) // 10, 1)),
                           t_min=self.t0, t_max=self.t_start, seed=self.seed + seed_offset, device=self.device,
                           progress=self.progress)


@dataclass
class HeldOut:
    """Held-out noised samples: per diffusion time ``x_t (n, H, d)`` and the exact score there (float64)."""

    times: tuple[float, ...]
    noised: list[torch.Tensor] = field(default_factory=list)
    scores: list[torch.Tensor] = field(default_factory=list)


def make_gp(kernel: str, nu: float, ell: float, frames: int, dim: int, spatial_correlation: float = 0.5
            ) -> GaussianProcess:
    """GP with ``Gamma`` from the named kernel and ``Sigma[a, b] = rho^|a-b|``."""
    index = torch.arange(dim, dtype=torch.float64)
    spatial = spatial_correlation ** (index[:, None] - index[None, :]).abs()
    return GaussianProcess(kernel_from_name(kernel, nu=nu, ell=ell), frames, spatial).validate()


def white_gp(gp: GaussianProcess) -> GaussianProcess:
    """Same frames and ``Sigma`` with ``Gamma = I``: temporally uncorrelated data (the control)."""
    from unroll.kernels import LagFunction

    kernel = LagFunction(lambda lags: (np.asarray(lags) == 0).astype(np.float64), name="white")
    return GaussianProcess(kernel, gp.frames, gp.spatial).validate()


def heldout_set(gp: GaussianProcess, n: int, times: tuple[float, ...], seed: int) -> HeldOut:
    """Draw ``n`` clean samples and noise them at each time (generator seeded by ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    x0 = gp.sample(n, generator=generator)
    held = HeldOut(times=tuple(float(t) for t in times))
    for t in held.times:
        x_t = gp.noised(x0, t, generator=generator)
        held.noised.append(x_t)
        held.scores.append(gp.score(x_t, t))
    return held


def float64_score(model: torch.nn.Module) -> Any:
    """A float64, CPU, eval-mode copy of ``model`` as a ``score(x, t)`` callable without autograd."""
    copy64 = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()

    def score(x: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        with torch.no_grad():
            return copy64(x.to(torch.float64), diffusion_time)

    score.model = copy64  # type: ignore[attr-defined]
    return score


@torch.no_grad()
def score_error(score: Any, held: HeldOut, chunk: int = 512) -> dict:
    """``{"per_time": {t: e(t)}, "score_error": mean_t e(t)}`` (relative Frobenius error per time)."""
    per_time = {}
    for t, x_t, exact in zip(held.times, held.noised, held.scores, strict=True):
        estimate = torch.cat([score(x_t[i: i + chunk], t) for i in range(0, x_t.shape[0], chunk)])
        if not bool(torch.isfinite(estimate).all()):
            per_time[t] = float("inf")
            continue
        per_time[t] = float((estimate.to(torch.float64) - exact).norm() / exact.norm())
    mean = float(np.mean(list(per_time.values())))
    return {"per_time": {str(t): v for t, v in per_time.items()}, "score_error": mean}


def model_options(kind: str, config: CompareConfig, gp: GaussianProcess) -> dict:
    """Constructor options of each trained model in the comparison."""
    if kind == "dit":
        return dict(width=config.dit_width, blocks=config.dit_blocks, heads=config.dit_heads)
    if kind == "unet":
        return dict(channels=config.unet_channels, levels=config.unet_levels)
    if kind == "relu_transformer":
        from unroll.training.relu import relu_config_from_construction

        reference = _relu_reference(gp, config)
        return relu_config_from_construction(reference, frames=gp.frames, width=max(config.relu_width,
                                             reference.config["width"]), ffn_width=32, seed=config.seed)
    raise ValueError(f"kind must be relu_transformer, dit or unet, got {kind!r}")


def _relu_reference(gp: GaussianProcess, config: CompareConfig) -> Any:
    """The construction whose size (D, L, M) the trained ReLU Transformer matches (triangular taper, so that
    Gamma_J is positive definite for any ``relu_bands``)."""
    from unroll import construct_unrolled

    return construct_unrolled(gp, blocks=config.relu_blocks, bands=min(config.relu_bands, gp.frames - 1),
                              taper="triangular")


def _bands(config: CompareConfig) -> int:
    return config.frames - 1 if config.bands is None else config.bands


def train_score_model(kind: str, data: torch.Tensor | None, options: dict, train_config: TrainConfig,
                      checkpoint: str | os.PathLike | None = None, *, validation: torch.Tensor | None = None,
                      sampler: Any = None) -> tuple[torch.nn.Module, dict]:
    """Build (seeded by ``train_config.seed``) and train one model; returns ``(model, info)``.

    ``data`` ``(n, H, d)`` or ``None`` with ``sampler`` (the infinite-data arm); ``validation`` enables
    early stopping (``unroll.training.trainer.train``). ``info`` has the parameter count, seconds, steps
    run, first and final (mean of the last 50) training losses, and with validation ``best_step``,
    ``best_validation_loss``, ``stopped_early`` and the validation curve.
    """
    from unroll.training.models import build_model, parameter_count

    reference = data if data is not None else (validation if validation is not None
                                               else sampler(1, torch.Generator().manual_seed(0)))
    frames, dim = reference.shape[1], reference.shape[2]
    model = seeded_model(lambda: build_model(kind, frames, dim, **options), train_config.seed)
    result = train(model, data, train_config, checkpoint=checkpoint, model_kind=kind, validation=validation,
                   sampler=sampler)
    tail = result.losses[-min(50, len(result.losses)):]
    info = {"parameters": parameter_count(model), "train_seconds": result.seconds, "steps": result.steps,
            "final_loss": float(np.mean(tail)), "first_loss": float(result.losses[0]) if result.losses else None}
    if validation is not None:
        info.update(best_step=result.best_step, best_validation_loss=result.best_validation_loss,
                    stopped_early=result.stopped_early, validation_steps=result.validation_steps,
                    validation_losses=result.validation_losses, lr_reduced_at=result.lr_reduced_at)
    return result.model, info


def _log(message: str, enabled: bool) -> None:
    if enabled:
        print(message, flush=True)


def run_comparison(config: CompareConfig, out: str | os.PathLike) -> dict:
    """Train the three models, build the construction, compare; write ``out/results.json`` and figures."""
    from unroll import construct_unrolled
    from unroll.training import attention as att
    from unroll.training import distribution as dist
    from unroll.training.sweeps import n_sweep, run_extra_sweeps

    config.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    timings: dict[str, float] = {}
    verbose = config.progress
    gp = make_gp(config.kernel, config.nu, config.ell, config.frames, config.dim, config.spatial_correlation)
    frames, dim = gp.frames, gp.dim
    data = gp.sample(config.train_size, generator=torch.Generator().manual_seed(config.seed))
    held = heldout_set(gp, config.heldout, config.eval_times, seed=config.seed + 1000)
    gamma_values = gp.kernel(np.arange(frames))
    results: dict[str, Any] = {"config": asdict(config), "gp": {"kernel": config.kernel, "nu": config.nu,
                               "ell": config.ell, "frames": frames, "dim": dim,
                               "lambda_min_gamma": gp.lambda_min, "gamma": gamma_values.tolist()},
                               "models": {}}

    # --- the construction with both step schedules (and one of the trained ReLU net's size)
    tic = time.perf_counter()
    constructed = construct_unrolled(gp, blocks=config.construct_blocks, bands=_bands(config))
    constructed_chebyshev = construct_unrolled(gp, blocks=config.construct_blocks, bands=_bands(config),
                                               steps="chebyshev")
    constructed_small = _relu_reference(gp, config)
    entries: dict[str, Any] = {}
    for name, model in (("constructed", constructed), ("constructed_chebyshev", constructed_chebyshev),
                        ("constructed_same_size_as_relu", constructed_small)):
        errors = score_error(float64_score(model), held)
        entries[name] = {**errors, "size": model.size()}
    baseline = score_error(lambda x, t: -x, held)
    results["baseline_minus_x"] = baseline
    timings["construction"] = time.perf_counter() - tic
    _log(f"constructed (L={config.construct_blocks}) score error {entries['constructed']['score_error']:.4g}",
         verbose)

    # --- the trained models
    trained: dict[str, torch.nn.Module] = {}
    for offset, kind in enumerate(("relu_transformer", "dit", "unet")):
        tic = time.perf_counter()
        options = model_options(kind, config, gp)
        model, info = train_score_model(kind, data, options, config.train_config(seed_offset=offset),
                                        checkpoint=out / "checkpoints" / f"{kind}.pt")
        trained[kind] = model
        entries[kind] = {**score_error(float64_score(model), held), **info, "options": options}
        timings[f"train_{kind}"] = time.perf_counter() - tic
        _log(f"{kind}: score error {entries[kind]['score_error']:.4g} ({info['train_seconds']:.1f} s)", verbose)

    # --- attention maps and alignment, with positional-only controls
    tic = time.perf_counter()
    map_index = int(np.argmin([abs(t - config.map_time) for t in held.times]))
    map_time, map_x = held.times[map_index], held.noised[map_index]
    white = white_gp(gp)
    white_data = white.sample(config.train_size, generator=torch.Generator().manual_seed(config.seed + 7))
    controls: dict[str, Any] = {}
    maps: dict[str, Any] = {}
    for offset, kind in enumerate(("relu_transformer", "dit")):
        options = model_options(kind, config, gp)
        learned = att.attention_maps(float64_score(trained[kind]).model, map_x, map_time)
        from unroll.training.models import build_model

        init_model = seeded_model(lambda k=kind, o=options: build_model(k, frames, dim, **o), config.seed + offset)
        at_init = att.attention_maps(init_model.to(torch.float64), map_x, map_time)
        control_model, control_info = train_score_model(
            kind, white_data, options, config.train_config(config.control_steps, seed_offset=offset),
            checkpoint=out / "checkpoints" / f"{kind}_control_white.pt")
        control = att.attention_maps(float64_score(control_model).model, map_x, map_time)
        maps[kind] = {"learned": learned, "init": at_init, "white": control}
        # a windowed net (the ReLU Transformer keeps its construction's window) is compared on lags it sees
        window = options.get("window") if kind == "relu_transformer" else None
        max_lag = None if window is None or window >= frames - 1 else max(int(window), 2)
        controls[kind] = {
            "max_lag": max_lag,
            "learned": att.alignment_summary(learned, gamma_values, max_lag=max_lag),
            "control_white_data": att.alignment_summary(control, gamma_values, max_lag=max_lag),
            "control_at_init": att.alignment_summary(at_init, gamma_values, max_lag=max_lag),
            "control_train_seconds": control_info["train_seconds"],
        }
        entries[kind]["alignment"] = {
            "lag_corr_offdiag": controls[kind]["learned"]["total"]["lag_corr_offdiag"],
            "control_white_lag_corr_offdiag": controls[kind]["control_white_data"]["total"]["lag_corr_offdiag"],
            "control_init_lag_corr_offdiag": controls[kind]["control_at_init"]["total"]["lag_corr_offdiag"],
        }
    constructed_maps = att.attention_maps(constructed, map_x, map_time)
    results["attention"] = {"map_time": map_time, **controls}
    timings["attention"] = time.perf_counter() - tic
    _log("attention alignment (learned vs white-data control): " + ", ".join(
        f"{k} {v['learned']['total']['lag_corr_offdiag']:.3f} vs "
        f"{v['control_white_data']['total']['lag_corr_offdiag']:.3f}" for k, v in controls.items()), verbose)

    # --- distribution estimation
    tic = time.perf_counter()
    target = gp.covariance()
    early = gp.noised_covariance(config.t0)
    sampler = dict(t_start=config.t_start, t0=config.t0, steps=config.sampler_steps)
    floor = dist.covariance_noise_floor(target, config.sampler_samples)
    distribution: dict[str, Any] = {"sampler": sampler, "samples": config.sampler_samples,
                                    "covariance_noise_floor": floor}
    linear_scores = {name: dist.LinearScore(float64_score(model), frames, dim) for name, model in
                     (("constructed", constructed), ("constructed_chebyshev", constructed_chebyshev))}
    for name, score in (("exact_score", gp.score), *linear_scores.items(),
                        *((k, float64_score(m)) for k, m in trained.items())):
        samples = dist.sample_with_score(score, config.sampler_samples, frames, dim,
                                         generator=torch.Generator().manual_seed(config.seed + 77), **sampler)
        record: dict[str, Any] = {"covariance_error": dist.covariance_error(samples, target),
                                  "covariance_error_vs_t0_law": dist.covariance_error(samples, early)}
        if name == "exact_score" or name in linear_scores:
            law = dist.sampler_gaussian_law(score, frames, dim, **sampler)
            mc, mc_se = dist.monte_carlo_kl(samples, law, target)
            record.update(exact_covariance_error=dist.covariance_error(law, target),
                          kl_to_data=dist.gaussian_kl(law, target), kl_to_t0_law=dist.gaussian_kl(law, early),
                          kl_to_data_monte_carlo=mc, kl_to_data_monte_carlo_se=mc_se)
        distribution[name] = record
        if name in entries:
            entries[name]["covariance_error"] = record["covariance_error"]
            if "kl_to_data" in record:
                entries[name]["kl_to_data"] = record["kl_to_data"]
    results["distribution"] = distribution
    timings["distribution"] = time.perf_counter() - tic
    _log("covariance errors: " + ", ".join(f"{k} {v['covariance_error']:.3f}" for k, v in distribution.items()
                                            if isinstance(v, dict) and "covariance_error" in v)
         + f" (noise floor {floor:.3f}); exact KL to the data law: exact score "
         f"{distribution['exact_score']['kl_to_data']:.4g}, constructed (gd) "
         f"{distribution['constructed']['kl_to_data']:.4g}, constructed (chebyshev) "
         f"{distribution['constructed_chebyshev']['kl_to_data']:.4g}", verbose)

    # --- sweeps
    tic = time.perf_counter()
    if "n" in config.sweeps:
        results["n_sweep"] = n_sweep(config, gp, held)
        _log(f"n-sweep slope {results['n_sweep']['slope']:.3f} CI95 {results['n_sweep']['slope_ci95']}", verbose)
    extra = [s for s in config.sweeps if s != "n"]
    if extra:
        results["sweeps"] = run_extra_sweeps(config, extra)
    timings["sweeps"] = time.perf_counter() - tic

    # --- video
    if config.video:
        tic = time.perf_counter()
        from unroll.training.sweeps import video_attention

        results["video"], maps["video"] = video_attention(config)
        timings["video"] = time.perf_counter() - tic

    results["models"] = entries
    results.update(entries)  # also top-level: results[name]["score_error"]
    results["timings_seconds"] = {**timings, "total": time.perf_counter() - started}
    if config.figures:
        from unroll.training import figures

        try:
            results["figures"] = figures.comparison_figures(out, gp, constructed_maps, maps, results)
        except ImportError as error:
            results["figures"] = {"skipped": str(error)}
    results["timings_seconds"]["total"] = time.perf_counter() - started
    write_json_atomic(results, out / "results.json")
    return results
