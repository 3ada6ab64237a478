"""Sample complexity of a trained score model: held-out score error vs training-set size n, decided.

Design (one run of ``run_sample_complexity``):

* for each size ``n`` in ``sizes`` and seed ``s`` in ``seeds``: train on the first ``n`` samples of one
  draw ``D_s`` of ``max(sizes)`` samples (nested sets within a seed), with early stopping on a separate
  validation set (``validation_size`` samples) and the best checkpoint restored
  (``unroll.experiments.trainer``); the model init and the SGD draws are seeded by ``s`` too;
* the infinite-data arm: the same model and training procedure with a fresh batch every step
  (``sampler``), for each seed in ``floor_seeds``: the model's own floor;
* every model is scored on one held-out set (``heldout`` samples noised at ``eval_times``) by the
  relative error per time ``e_t = |s_model - s|_F / |s|_F`` (``unroll.experiments.compare.score_error``).

What is fitted. The theory bounds the squared score error by a statistical term ``~ 1/n`` plus the
approximation (here: the model's own floor), ``E^2(n) <= C/n + E^2_floor``. With the mean square over
the evaluation times ``E^2 = mean_t e_t^2``, the excess

    Delta(n, s) = E^2(n, s) - mean_{floor seeds} E^2_inf,     eps(n, s) = sqrt(Delta(n, s)),

is the statistical part; the claim "the excess error falls like n^(-1/2)" is ``eps ~ n^(-1/2)``
(``Delta ~ 1/n``). The plain difference ``mean_t e_t(n) - floor`` is reported too; it is not a power law
when the statistical part is small next to the floor (``e - e_floor ~ eps^2 / (2 e_floor)`` there).

Which sizes are statistically limited (fitted), decided on the seed means:

1. the model beats the trivial score ``-x`` (``E^2(n) < E^2`` of ``-x`` on the same held-out set):
   below that it has not learned the distribution at all;
2. the excess is resolved above the noise: ``mean_s Delta(n, s) > limited_z * SE``, ``SE^2 =
   var_s E^2(n, s) / S + var E^2_inf / S_floor`` (sample variances over the seeds);
3. the sizes form a run: the fit uses the sizes passing 1-2 from the smallest such size up to (not
   including) the first larger size failing 2 — beyond it the model sits at its floor.

Slope: OLS of ``log eps`` on ``log n`` over the fitted sizes for each seed (points with ``Delta <= 0``
dropped; a seed with fewer than 3 points left gives no slope), then the mean slope with the 95%
interval ``mean ± t_{0.975, S-1} sd / sqrt(S)`` over the seeds. Verdict on the claim: ``"supported"``
when the interval excludes 0 and contains -1/2, ``"not supported"`` when it excludes -1/2,
``"undecided"`` otherwise (the reason says what would decide it).

Plug-in reference: ``plugin_error(n, seed)`` (e.g. ``functools.partial(sample_covariance_plugin_error,
config)``, or an estimator from ``unroll.experiments.plugin``) returning a ``score_error`` dict for the closed-form
score with the covariance estimated from ``training_set(config, n, seed)``; it is submitted to the same
executor (it must be picklable for a process pool) and its errors and slope are reported beside.

Every training is an independent task ``train_task(config_dict, n, seed)`` submitted to a
``concurrent.futures.Executor`` (top-level function, picklable arguments).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from unroll._validate import check_int, check_positive

__all__ = ["SampleComplexityConfig", "run_sample_complexity", "train_task", "training_set", "validation_set",
           "heldout", "analyse", "sample_covariance_plugin_error", "kronecker_plugin_error", "CLAIM"]

CLAIM = "the excess score error over the infinite-data floor falls like n^(-1/2)"


@dataclass
class SampleComplexityConfig:
    """Settings of one sample-complexity run (defaults: the recommended design; 33 trainings, about 75k
    DSM steps of the width-48 DiT, measured ~800 s of one core, so ~7 min on 2 worker processes).

    GP: ``kernel, nu, ell, frames, dim, spatial_correlation`` (``compare.make_gp``). Model: ``model`` in
    ``MODEL_KINDS`` with constructor ``model_options``. Training: the ``TrainConfig`` fields below, with
    ``steps`` the budget per training. ``limited_z``: the resolution threshold of the fitted sizes.
    """

    kernel: str = "gamma-exponential"
    nu: float = 1.0
    ell: float = 4.0
    period: float | None = None  # damped cosine only
    frames: int = 16
    dim: int = 2
    spatial_correlation: float = 0.5
    spatial: str = "correlated"  # or "random" (unroll.data.gp_spec: seed spatial_seed, condition <= spatial_condition)
    spatial_seed: int = 0
    spatial_condition: float = 4.0
    model: str = "dit"
    model_options: dict = field(default_factory=lambda: dict(width=48, blocks=3, heads=4))
    sizes: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
    seeds: tuple[int, ...] = (0, 1, 2)
    floor_seeds: tuple[int, ...] = (0, 1, 2)
    heldout: int = 256
    heldout_seed: int = 1000
    eval_times: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    validation_size: int = 512
    validation_seed: int = 2000
    data_seed: int = 4242
    steps: int = 6000
    batch_size: int = 64
    learning_rate: float = 2e-3
    warmup: int = 50
    schedule: str = "plateau"
    eval_every: int = 100
    patience: int = 8
    min_delta: float = 0.0
    validation_repeats: int = 1
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    final_lr_fraction: float = 0.05
    t_min: float = 1e-2
    t_max: float = 8.0
    limited_z: float = 2.0
    threads: int = 1

    @classmethod
    def from_dict(cls, settings: dict) -> SampleComplexityConfig:
        """Rebuild from ``asdict(config)`` (lists back to tuples)."""
        names = {f.name for f in fields(cls)}
        unknown = set(settings) - names
        if unknown:
            raise ValueError(f"settings has unknown fields {sorted(unknown)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        return cls(**values)

    def validate(self) -> SampleComplexityConfig:
        from unroll.experiments.models import MODEL_KINDS

        if self.model not in MODEL_KINDS:
            raise ValueError(f"model must be one of {MODEL_KINDS}, got {self.model!r}")
        if len(self.sizes) < 3 or len(set(self.sizes)) != len(self.sizes):
            raise ValueError(f"sizes must hold >= 3 distinct training-set sizes, got {self.sizes}")
        for n in self.sizes:
            check_int("sizes", n, minimum=1)
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must hold >= 2 distinct seeds (an interval over seeds), got {self.seeds}")
        if len(self.floor_seeds) < 2 or len(set(self.floor_seeds)) != len(self.floor_seeds):
            raise ValueError(f"floor_seeds must hold >= 2 distinct seeds (the floor's spread), got {self.floor_seeds}")
        for seed in (*self.seeds, *self.floor_seeds):
            check_int("seeds", seed, minimum=0)
        check_int("heldout", self.heldout, minimum=2)
        check_int("validation_size", self.validation_size, minimum=1)
        if not self.eval_times:
            raise ValueError("eval_times must hold at least one diffusion time")
        for t in self.eval_times:
            check_positive("eval_times", t)
        check_positive("limited_z", self.limited_z)
        from unroll.data.gp_spec import SPATIAL_KINDS

        if self.spatial not in SPATIAL_KINDS:
            raise ValueError(f"spatial must be one of {', '.join(SPATIAL_KINDS)}, got {self.spatial!r}")
        check_int("spatial_seed", self.spatial_seed, minimum=0)
        if not check_positive("spatial_condition", self.spatial_condition) >= 1:
            raise ValueError(f"spatial_condition must satisfy spatial_condition >= 1, got {self.spatial_condition}")
        check_int("threads", self.threads, minimum=1)
        for name in ("heldout_seed", "validation_seed", "data_seed"):
            check_int(name, getattr(self, name), minimum=0)
        self.train_config(0).validate()
        return self

    def gp(self) -> Any:
        from unroll.experiments.run import gp_from_spec

        return gp_from_spec(self.gp_spec())

    def gp_spec(self) -> dict:
        """The GP as a spec for ``unroll.experiments.run.gp_from_spec``."""
        damped = self.kernel == "damped-cosine"
        spec = dict(kernel=self.kernel, nu=None if damped else self.nu, ell=self.ell,
                    period=self.period if damped else None, frames=self.frames, dim=self.dim,
                    spatial_correlation=self.spatial_correlation)
        if self.spatial == "random":
            spec.update(spatial="random", spatial_seed=self.spatial_seed, spatial_condition=self.spatial_condition)
        return spec

    def task_settings(self) -> dict:
        """``asdict(self)`` without the random-Sigma fields of a correlated Sigma (the task records of earlier runs,
        and so their caches, stay valid)."""
        settings = asdict(self)
        if self.spatial != "random":
            for name in ("spatial", "spatial_seed", "spatial_condition"):
                settings.pop(name)
        return settings

    def train_config(self, seed: int) -> Any:
        """The ``TrainConfig`` of a training with seed ``seed`` (SGD draws seeded by ``seed + 11``)."""
        from unroll.experiments.trainer import TrainConfig

        return TrainConfig(steps=self.steps, batch_size=self.batch_size, learning_rate=self.learning_rate,
                           warmup=self.warmup, final_lr_fraction=self.final_lr_fraction, t_min=self.t_min,
                           t_max=self.t_max, seed=seed + 11, progress=False, schedule=self.schedule,
                           eval_every=self.eval_every, patience=self.patience, min_delta=self.min_delta,
                           validation_repeats=self.validation_repeats,
                           plateau_factor=self.plateau_factor, plateau_patience=self.plateau_patience,
                           checkpoint_every=10**9)


def training_set(config: SampleComplexityConfig, n: int, seed: int) -> torch.Tensor:
    """The first ``n`` of the draw ``D_seed`` of ``max(sizes)`` samples (generator ``data_seed + seed``)."""
    n = check_int("n", n, minimum=1, maximum=max(config.sizes))
    pool = config.gp().sample(max(config.sizes), generator=torch.Generator().manual_seed(config.data_seed + seed))
    return pool[:n]


def validation_set(config: SampleComplexityConfig) -> torch.Tensor:
    """The clean validation samples ``(validation_size, H, d)`` shared by every training."""
    return config.gp().sample(config.validation_size, generator=torch.Generator().manual_seed(config.validation_seed))


def heldout(config: SampleComplexityConfig) -> Any:
    """The held-out test set (``compare.heldout_set``) every model is scored on."""
    from unroll.experiments.heldout import heldout_set

    return heldout_set(config.gp(), config.heldout, config.eval_times, seed=config.heldout_seed)


class _GPSampler:
    """Picklable ``(n, generator) -> gp.sample(n, generator)`` (the infinite-data arm)."""

    def __init__(self, gp: Any):
        self.gp = gp

    def __call__(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.gp.sample(n, generator=generator)


def train_task(settings: dict, n: int | None, seed: int) -> dict:
    """Train one model (``n = None``: the infinite-data arm) and score it; a JSON-ready record.

    ``settings`` is ``asdict(SampleComplexityConfig)``. Returns ``n, seed, per_time, score_error``
    (mean over times of ``e_t``), ``mean_square`` (mean of ``e_t^2``), ``steps`` run, ``best_step``,
    ``stopped_early``, ``best_validation_loss``, ``seconds``, ``parameters``.
    """
    from unroll.experiments.heldout import float64_score, score_error
    from unroll.experiments.trainer import train_score_model

    config = SampleComplexityConfig.from_dict(settings).validate()
    if torch.get_num_threads() != config.threads:
        torch.set_num_threads(config.threads)
    gp = config.gp()
    data = None if n is None else training_set(config, n, seed)
    model, info = train_score_model(config.model, data, dict(config.model_options), config.train_config(seed),
                                    validation=validation_set(config),
                                    sampler=_GPSampler(gp) if n is None else None)
    errors = score_error(float64_score(model), heldout(config))
    return {"n": n, "seed": seed, "per_time": errors["per_time"], "score_error": errors["score_error"],
            "mean_square": float(np.mean(np.square(list(errors["per_time"].values())))),
            "steps": info["steps"], "best_step": info["best_step"], "stopped_early": info["stopped_early"],
            "best_validation_loss": info["best_validation_loss"], "seconds": info["train_seconds"],
            "parameters": info["parameters"]}


def sample_covariance_plugin_error(config: SampleComplexityConfig, n: int, seed: int) -> dict | None:
    """Plug-in reference: the closed-form score with ``Gamma ⊗ Sigma`` replaced by the sample covariance
    ``S = X^T X / n`` of ``vec(x)`` (known zero mean), ``s(x, t) = -(e^-t S + (1 - e^-t) I)^{-1} vec(x)``,
    scored like the models. ``None`` when ``n < H d`` (``S`` singular and the small-t score unbounded)."""
    from unroll.experiments.heldout import score_error

    x = training_set(config, n, seed)
    dim = config.frames * config.dim
    if n < dim:
        return None
    v = x.reshape(n, dim)
    covariance = v.T @ v / n
    identity = torch.eye(dim, dtype=torch.float64)

    def score(x_t: torch.Tensor, diffusion_time: Any) -> torch.Tensor:
        t = float(diffusion_time)
        c_t = math.exp(-t) * covariance - math.expm1(-t) * identity
        return -torch.linalg.solve(c_t, x_t.reshape(x_t.shape[0], dim).T).T.reshape(x_t.shape)

    return score_error(score, heldout(config))


def kronecker_plugin_error(settings: dict, n: int, seed: int) -> dict | None:
    """Plug-in reference (``unroll.experiments.plugin``): the closed-form score with ``Gamma ⊗ Sigma`` replaced by its
    Kronecker maximum-likelihood estimate (flip-flop) from ``training_set(config, n, seed)``, scored like the models;
    ``None`` where the estimate does not exist (``n d < H``).  ``settings`` is ``asdict(SampleComplexityConfig)``."""
    from unroll.experiments.heldout import score_error
    from unroll.experiments.plugin import plugin_score

    config = SampleComplexityConfig.from_dict(settings)
    if n * config.dim < config.frames:
        return None
    try:
        score = plugin_score(training_set(config, n, seed))
    except ValueError:  # the MLE does not exist for this draw (near the n d >= H threshold)
        return None
    return score_error(score, heldout(config))


def _slope_over_seeds(slopes: list[float]) -> dict:
    from scipy import stats

    values = np.asarray(slopes, dtype=np.float64)
    if values.size < 2:
        return {"slope": float(values.mean()) if values.size else None, "slope_ci95": None, "seeds": int(values.size)}
    half = float(stats.t.ppf(0.975, values.size - 1)) * float(values.std(ddof=1)) / math.sqrt(values.size)
    mean = float(values.mean())
    return {"slope": mean, "slope_ci95": [mean - half, mean + half], "slope_sd": float(values.std(ddof=1)),
            "seeds": int(values.size)}


def _fit(sizes: list[int], per_seed: dict[int, list[float | None]], exponent: float) -> dict:
    """Per-seed OLS slopes of ``log(value^exponent)`` vs ``log n`` (positive values), their interval over seeds,
    and one pooled OLS fit over all points."""
    from unroll.experiments.claims import fit_loglog

    slopes, per_seed_fits, pooled_n, pooled_y = [], {}, [], []
    for seed, values in per_seed.items():
        points = [(n, v ** exponent) for n, v in zip(sizes, values, strict=True) if v is not None and v > 0]
        pooled_n += [n for n, _ in points]
        pooled_y += [y for _, y in points]
        if len(points) >= 3:
            fit = fit_loglog(*zip(*points, strict=True))
            per_seed_fits[str(seed)] = fit
            slopes.append(fit["slope"])
    out = {"per_seed": per_seed_fits, **_slope_over_seeds(slopes)}
    out["pooled"] = fit_loglog(pooled_n, pooled_y) if len(pooled_n) >= 3 else None
    return out


def _verdict(fit: dict, sizes: list[int], target: float = -0.5) -> dict:
    interval = fit.get("slope_ci95")
    decades = math.log10(max(sizes) / min(sizes)) if len(sizes) >= 2 else 0.0
    if len(sizes) < 3 or interval is None:
        return {"verdict": "undecided", "reason": (
            f"only {len(sizes)} statistically limited size(s) with a slope on >= 2 seeds; need >= 3 sizes whose "
            "excess over the floor is resolved: add smaller n, more seeds (to resolve the excess), or a lower floor "
            "(larger model or budget)")}
    lo, hi = interval
    half = (hi - lo) / 2
    where = f"slope {fit['slope']:.3f}, 95% interval [{lo:.3f}, {hi:.3f}] over {fit['seeds']} seeds, " \
            f"{len(sizes)} sizes over {decades:.2f} decades"
    if hi < target or lo > target:
        side = "faster" if hi < target else "slower"
        return {"verdict": "not supported", "reason": f"{where}: the interval excludes {target} (falls {side})"}
    if hi < 0:
        extra = "" if lo > 2 * target else f"; it also contains {2 * target:g}, so n^{target:g} is not told apart " \
                                           f"from n^{2 * target:g}"
        return {"verdict": "supported", "reason": f"{where}: excludes 0 and contains {target}{extra}"}
    needed = math.ceil(fit["seeds"] * (half / max(abs(fit["slope"]), 1e-12)) ** 2) if fit["slope"] < 0 else None
    more = (f"about {needed} seeds at this spread would exclude 0 if the mean slope held" if needed
            else "the mean slope is not negative")
    return {"verdict": "undecided", "reason": f"{where}: contains both 0 and {target}; {more}, or widen the "
                                              "statistically limited range"}


def analyse(config: SampleComplexityConfig, runs: list[dict], floor_runs: list[dict], baseline: dict,
            plugin: dict[tuple[int, int], dict | None] | None = None) -> dict:
    """The fits and verdict from the task records (``train_task``), the ``-x`` baseline's ``score_error``
    dict and optional plug-in errors ``{(n, seed): score_error dict}`` (module docstring: the rules)."""
    sizes = sorted(config.sizes)
    seeds = list(config.seeds)
    by_key = {(r["n"], r["seed"]): r for r in runs}
    floor_sq = np.array([r["mean_square"] for r in floor_runs])
    floor_e = np.array([r["score_error"] for r in floor_runs])
    floor_sq_mean, floor_var = float(floor_sq.mean()), float(floor_sq.var(ddof=1))
    baseline_sq = float(np.mean(np.square(list(baseline["per_time"].values()))))
    table, passing = [], []
    for n in sizes:
        sq = np.array([by_key[(n, s)]["mean_square"] for s in seeds])
        excess = sq - floor_sq_mean
        se = math.sqrt(float(sq.var(ddof=1)) / sq.size + floor_var / floor_sq.size)
        beats_baseline = bool(sq.mean() < baseline_sq)
        resolved = bool(excess.mean() > config.limited_z * se)
        table.append({"n": n, "seeds": seeds,
                      "score_error": [by_key[(n, s)]["score_error"] for s in seeds],
                      "mean_square": sq.tolist(), "excess_mean_square": excess.tolist(),
                      "statistical_error": [math.sqrt(v) if v > 0 else None for v in excess],
                      "excess_mean_square_mean": float(excess.mean()), "excess_se": se,
                      "steps": [by_key[(n, s)]["steps"] for s in seeds],
                      "best_step": [by_key[(n, s)]["best_step"] for s in seeds],
                      "stopped_early": [by_key[(n, s)]["stopped_early"] for s in seeds],
                      "seconds": [by_key[(n, s)]["seconds"] for s in seeds],
                      "beats_minus_x": beats_baseline, "resolved": resolved})
        passing.append(beats_baseline and resolved)
    fitted: list[int] = []
    for n, ok, row in zip(sizes, passing, table, strict=True):
        if ok:
            fitted.append(n)
        elif fitted and not row["resolved"]:
            break
    for row in table:
        row["fitted"] = row["n"] in fitted
    index = [sizes.index(n) for n in fitted]
    squared = {s: [table[i]["excess_mean_square"][k] for i in index] for k, s in enumerate(seeds)}
    plain = {s: [table[i]["score_error"][k] - float(floor_e.mean()) for i in index] for k, s in enumerate(seeds)}
    fit = _fit(fitted, squared, 0.5)
    out: dict[str, Any] = {
        "claim": CLAIM,
        "quantity": "eps(n) = sqrt(mean_t e_t^2(n) - mean_floor_seeds mean_t e_t^2(inf)), fitted log eps vs log n",
        "floor": {"seeds": [r["seed"] for r in floor_runs], "mean_square": floor_sq.tolist(),
                  "mean_square_mean": floor_sq_mean, "mean_square_sd": math.sqrt(floor_var),
                  "score_error": floor_e.tolist(), "score_error_mean": float(floor_e.mean()),
                  "score_error_sd": float(floor_e.std(ddof=1)), "steps": [r["steps"] for r in floor_runs],
                  "best_step": [r["best_step"] for r in floor_runs],
                  "stopped_early": [r["stopped_early"] for r in floor_runs],
                  "seconds": [r["seconds"] for r in floor_runs]},
        "baseline_minus_x": {"score_error": baseline["score_error"], "mean_square": baseline_sq},
        "sizes": table, "fitted_sizes": fitted,
        "fitted_decades": math.log10(max(fitted) / min(fitted)) if len(fitted) >= 2 else 0.0,
        "fit": fit, "fit_unsquared_excess": _fit(fitted, plain, 1.0),
        "verdict": _verdict(fit, fitted),
    }
    if plugin:
        rows: list[dict[str, Any]] = []
        for n in sizes:
            values = [plugin.get((n, s)) for s in seeds]
            rows.append({"n": n, "score_error": [None if v is None else v["score_error"] for v in values],
                         "rms_error": [None if v is None else
                                       math.sqrt(float(np.mean(np.square(list(v["per_time"].values())))))
                                       for v in values]})
        usable = [row for row in rows if all(v is not None for v in row["rms_error"])]
        plugin_fit = _fit([row["n"] for row in usable], {s: [row["rms_error"][k] for row in usable]
                                                         for k, s in enumerate(seeds)}, 1.0)
        out["plugin"] = {"sizes": rows, "fit_rms_error": plugin_fit}
    return out


def run_sample_complexity(config: SampleComplexityConfig, executor: Executor,
                          plugin_error: Callable[[int, int], dict | None] | None = None) -> dict:
    """Submit every training (and plug-in evaluation) to ``executor``; the JSON-ready result of ``analyse``.

    Tasks are submitted longest first (the infinite-data arm, then sizes from the largest), so a pool of
    workers finishes close together. The result adds ``config``, ``timings_seconds`` (wall time and the
    sum of the trainings' own times) and every record under ``runs``/``floor_runs``.
    """
    from unroll.experiments.heldout import score_error

    config.validate()
    settings = asdict(config)
    started = time.perf_counter()
    floor_futures = [executor.submit(train_task, settings, None, s) for s in config.floor_seeds]
    futures = [executor.submit(train_task, settings, n, s) for n in sorted(config.sizes, reverse=True)
               for s in config.seeds]
    plugin_futures = {}
    if plugin_error is not None:
        plugin_futures = {(n, s): executor.submit(plugin_error, n, s) for n in config.sizes for s in config.seeds}
    baseline = score_error(lambda x, t: -x, heldout(config))
    floor_runs = [f.result() for f in floor_futures]
    runs = [f.result() for f in futures]
    plugin = {key: f.result() for key, f in plugin_futures.items()} or None
    result = analyse(config, runs, floor_runs, baseline, plugin)
    training_seconds = sum(r["seconds"] for r in runs + floor_runs)
    return {"config": settings, **result, "runs": runs, "floor_runs": floor_runs,
            "timings_seconds": {"wall": time.perf_counter() - started, "training_sum": training_seconds}}
