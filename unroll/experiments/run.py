"""One training run and every measurement the comparison makes of it, as an independent, picklable task.

``train_and_measure(**task)`` builds the GP from a plain dict (``gp_from_spec``), draws the training and
validation sets from the task's seed, trains one score model by denoising score matching with early stopping
on the validation set (``unroll.experiments.trainer``), and measures it on the *evaluation* GP:

- ``score_error``: held-out relative score error per diffusion time and its mean (``compare.score_error``);
- ``linear_response``: the Jacobian against ``-C_t^{-1}`` at ``response_time`` (``unroll.experiments.linear_response``):
  relative matrix error, lag-profile error, nonlinearity, and the scalar lag profiles;
- ``attention`` (models with attention maps): the lag profile of the sample-averaged map at ``map_time`` on
  held-out data, its scale-aware distance to ``|gamma|`` (``claims.normalised_profile_distance``: the RMS gap
  of the profiles normalised at lag 0; ``|gamma|`` because attention weights are non-negative, so the strength of
  the dependence is what a map can follow), and the input-dependence probe (``attention.input_dependence``);
- optional: ``probes`` (``probes.layer_probes``), ``lengths`` (score and linear-response error on the same
  kernel at other frame counts: length generalisation), ``samples`` (the lag profile of reverse-SDE samples
  against ``gamma``), ``tents`` (the tent fidelity of a ReLU transformer initialised at the construction).

The *arm* says what the model is trained on: ``"data"`` (the GP), ``"white"`` (the same ``Sigma`` with
``Gamma = I``: temporally uncorrelated data, the white-data control), or ``"fresh"`` (a new batch of the GP every
step: the infinite-data arm).  The no-position control is a model option (``DiT(position="none")``).  Controls
get exactly the task of the model they control but for the arm or that option: same budget, same early stopping,
same seeds.  Everything returned is JSON-ready.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import fields
from typing import Any

import numpy as np
import torch

__all__ = ["GP_DEFAULTS", "ARMS", "gp_from_spec", "train_and_measure", "task", "lag_values", "sample_lag_profile",
           "tent_fidelity"]

#: the comparison's GP unless a task says otherwise (``compare.make_gp`` settings, plus ``period`` and ``warp``)
GP_DEFAULTS: dict[str, Any] = dict(kernel="gamma-exponential", nu=1.0, ell=4.0, period=None, frames=16, dim=2,
                                   spatial_correlation=0.5, warp=None, spatial="correlated", spatial_seed=0,
                                   spatial_condition=4.0)
ARMS = ("data", "white", "fresh")
#: ``init`` of a relu_transformer: the construction's weights, or the construction's network with random weights
INITS = ("construction", "construction-shape")


def gp_from_spec(spec: dict[str, Any]) -> Any:
    """A ``GaussianProcess`` from a dict with the keys of ``GP_DEFAULTS`` (missing keys take the defaults).

    ``Sigma[a, b] = spatial_correlation^|a - b|``, or with ``spatial="random"`` the seeded random Sigma of
    ``unroll.data.gp_spec`` (``spatial_seed``, ``spatial_condition``); ``warp = p`` puts the kernel on the frame times
    ``unroll.data.gp.power_warp(H, p)`` (a non-stationary ``Gamma``); ``period`` only for the damped cosine.
    """
    from unroll.data.gp import GaussianProcess, power_warp
    from unroll.data.kernels import kernel_from_name

    unknown = set(spec) - set(GP_DEFAULTS)
    if unknown:
        raise ValueError(f"gp spec has unknown keys {sorted(unknown)}; allowed: {sorted(GP_DEFAULTS)}")
    s = {**GP_DEFAULTS, **spec}
    if s["kernel"] == "damped-cosine":
        kernel = kernel_from_name("damped-cosine", ell=s["ell"], period=s["period"])
    else:
        kernel = kernel_from_name(s["kernel"], nu=s["nu"], ell=s["ell"])
    from unroll.data.gp_spec import GPSpec

    spatial = GPSpec(dim=s["dim"], spatial=s["spatial"], spatial_seed=s["spatial_seed"],
                     spatial_condition=s["spatial_condition"],
                     spatial_correlation=s["spatial_correlation"]).spatial_covariance()
    times = None if s["warp"] is None else power_warp(s["frames"], float(s["warp"]))
    return GaussianProcess(kernel, s["frames"], spatial, times=times).validate()


def lag_values(gp: Any) -> np.ndarray:
    """``gamma(m)`` of a stationary GP (its Gamma's first row), else the mean of Gamma over each diagonal."""
    temporal = gp.temporal.numpy()
    frames = temporal.shape[0]
    return np.array([np.mean(np.diagonal(temporal, offset=m)) for m in range(frames)])


def sample_lag_profile(samples: torch.Tensor, spatial: torch.Tensor) -> np.ndarray:
    """Temporal correlation of samples ``(n, H, d)`` by lag: ``c(m) = mean_{|i-j|=m} tr(Sigma^-1 E[x_i x_j^T]) / d``,
    ``(H,)`` — ``gamma(m)`` for exact samples of ``N(0, Gamma ⊗ Sigma)``."""
    x = samples.to(torch.float64)
    whitened = x @ torch.linalg.inv(torch.linalg.cholesky(spatial.to(torch.float64))).T  # Cov(row) = I_d
    moments = torch.einsum("nia,nja->ij", whitened, whitened) / (x.shape[0] * x.shape[2])
    frames = x.shape[1]
    return np.array([float(torch.diagonal(moments, offset=m).mean()) for m in range(frames)])


def tent_fidelity(model: Any, construction: Any, x: torch.Tensor, diffusion_time: float) -> dict[str, Any]:
    """How tent-shaped the band heads of a ReLU transformer with the construction's head layout still are.

    For band ``m >= 1`` the construction's three heads ``(3m, 3m+1, 3m+2)`` combine with the value signs
    ``(1, -2, 1)`` into a tent that is non-zero only at lag ``m``.  Here the same combination of the model's
    (sample-averaged, block-averaged) maps gives a lag profile ``T_m(k)``; the fidelity of band ``m`` is
    ``|T_m(m)| / sum_k |T_m(k)|``: 1 for a perfect tent, about ``1/H`` for a flat one.
    """
    from unroll.experiments import attention

    maps = attention.attention_maps(model, x, diffusion_time)
    per_head = maps.per_head.mean(dim=0)  # (M, H, H)
    fidelities = []
    for band in range(1, construction.bands + 1):
        first = 3 * band
        combined = per_head[first] - 2 * per_head[first + 1] + per_head[first + 2]
        profile = np.abs(attention.lag_profile(combined))
        total = float(profile.sum())
        fidelities.append(float(profile[band] / total) if total > 0 else math.nan)
    finite = [f for f in fidelities if math.isfinite(f)]
    return {"per_band": fidelities, "mean": float(np.mean(finite)) if finite else math.nan}


def _train_config(train: dict[str, Any], seed: int) -> Any:
    from unroll.experiments.trainer import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    unknown = set(train) - names
    if unknown:
        raise ValueError(f"train settings have unknown fields {sorted(unknown)}")
    return TrainConfig(**{**train, "seed": seed, "progress": False})


def _build(kind: str, frames: int, dim: int, options: dict[str, Any], seed: int, init: str | None,
           gp: Any) -> tuple[torch.nn.Module, Any]:
    """The model to train and, for ``init="construction"``, the construction it starts from."""
    from unroll.experiments.models import build_model
    from unroll.experiments.trainer import seeded_model

    if init is None:
        if kind == "relu_transformer" and options.get("seed", seed) != seed:
            raise ValueError(f"a relu_transformer seeds its own initialisation: options seed {options['seed']} must "
                             f"be the task's seed {seed}")
        return seeded_model(lambda: build_model(kind, frames, dim, **options), seed), None
    if init not in INITS or kind != "relu_transformer":
        raise ValueError(f"init must be None or one of {INITS} (relu_transformer only), got {init!r} for {kind!r}")
    from unroll import construct_unrolled
    from unroll.model.transformer import Transformer

    construction = construct_unrolled(gp, blocks=options["blocks"], bands=options["bands"], taper="triangular")
    model = Transformer(**{**construction.config, "dtype": "float32", "seed": seed})
    constructed = {k: v.to(torch.float32) for k, v in construction.state_dict().items()}
    if init == "construction":
        model.load_state_dict(constructed)
    else:
        model.load_state_dict(_random_blocks(model.state_dict(), constructed))
    return model, construction.construction


def _random_blocks(random: dict[str, torch.Tensor], constructed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``"construction-shape"`` weights: the construction's embeddings, time map and readout, random blocks.

    The blocks' query, key, value and FFN input weights are the Transformer initialiser's (seeded) draw; the
    output projections of attention and FFN start at zero (the residual branches start closed, as in DiT's
    adaLN-Zero), so the network starts as the construction's embedding read out, i.e. block 0 of the unrolled
    solver. Without that, a random network of this class (no LayerNorm, unnormalised ReLU attention,
    ``qk_scale = 1``) overflows at its first forward: measured inf or NaN at t = 0.05, 0.5 and 2 for 3 seeds.
    """
    state = {}
    for name, value in constructed.items():
        if not name.startswith("blocks."):
            state[name] = value
        elif name.rsplit(".", 1)[-1] in ("output", "ffn_out", "ffn_out_bias"):
            state[name] = torch.zeros_like(random[name])
        else:
            state[name] = random[name]
    return state


def train_and_measure(*, gp: dict[str, Any], kind: str, options: dict[str, Any], train: dict[str, Any],
                      seed: int, arm: str = "data", train_size: int | None = 2048, validation_size: int = 512,
                      evaluate: dict[str, Any] | None = None, init: str | None = None,
                      data_seed: int | None = None) -> dict[str, Any]:
    """Train one model and measure it (module docstring); a top-level function, so any executor can run it.

    Args:
        gp: the evaluation GP as a dict (``gp_from_spec``).
        kind: the model family of ``unroll.experiments.models.build_model(kind, H, d, **options)``.
        options: the keyword arguments of ``build_model``; with ``init``
            (``relu_transformer`` only: ``"construction"``, its weights; ``"construction-shape"``, the same network
            with random blocks whose residual branches start at zero, ``_random_blocks``) ``options`` holds
            ``blocks`` and ``bands`` of the construction instead.
        train: ``TrainConfig`` fields (budget, learning rate, schedule, early stopping).
        seed: seeds the data draw (unless ``data_seed``), the initialisation and the training draws.
        arm: one of ``ARMS``; ``train_size`` (``None`` for ``"fresh"``) and ``validation_size`` samples.
        evaluate: measurement settings: ``times`` (held-out diffusion times), ``heldout``, ``response_time``,
            ``response_samples``, ``map_time``, and optional ``probe_time``, ``lengths``, ``generated``
            (number of reverse-SDE samples), ``sampler_steps``.
    Returns:
        a JSON-ready dict: ``train`` (steps, best step, early stop, seconds, parameters) and the measurements.
    """
    from unroll.experiments import attention
    from unroll.experiments.claims import normalised_profile_distance
    from unroll.experiments.heldout import float64_score, heldout_set, score_error, white_gp
    from unroll.experiments.linear_response import linear_response
    from unroll.experiments.models import parameter_count
    from unroll.experiments.trainer import train as train_model

    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    if arm != "fresh" and train_size is None:
        raise ValueError(f"train_size must be a number of samples >= 1 for arm={arm!r} (None only for 'fresh')")
    settings = {"times": (0.05, 0.1, 0.25, 0.5, 1.0, 2.0), "heldout": 256, "response_time": 0.5,
                "response_samples": 64, "map_time": 0.5, **(evaluate or {})}
    torch.set_num_threads(1)
    started = time.perf_counter()
    evaluation_gp = gp_from_spec(gp)
    source = white_gp(evaluation_gp) if arm == "white" else evaluation_gp
    frames, dim = evaluation_gp.frames, evaluation_gp.dim
    draw_seed = seed if data_seed is None else data_seed
    generator = torch.Generator().manual_seed(10_000 + draw_seed)
    data = None if arm == "fresh" or train_size is None else source.sample(int(train_size), generator=generator)
    validation = source.sample(int(validation_size), generator=torch.Generator().manual_seed(20_000 + draw_seed))
    model, construction = _build(kind, frames, dim, options, seed, init, evaluation_gp)
    map_x = evaluation_gp.noised(evaluation_gp.sample(128, generator=torch.Generator().manual_seed(4000)),
                                 settings["map_time"], generator=torch.Generator().manual_seed(4001))
    initial_tents = (tent_fidelity(copy.deepcopy(model).double(), construction, map_x, settings["map_time"])
                     if construction is not None else None)
    sampler = (lambda n, g: source.sample(n, generator=g).to(torch.float32)) if arm == "fresh" else None
    result = train_model(model, data, _train_config(train, seed), validation=validation, sampler=sampler,
                         model_kind=kind)
    trained = result.model
    out: dict[str, Any] = {"train": {
        "steps": result.steps, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "best_validation_loss": result.best_validation_loss, "seconds": result.seconds,
        "parameters": parameter_count(trained)}}

    score = float64_score(trained)
    held = heldout_set(evaluation_gp, settings["heldout"], tuple(settings["times"]), seed=1000)
    out["score_error"] = score_error(score, held)
    response = linear_response(score.model, evaluation_gp, settings["response_time"],
                               samples=settings["response_samples"], generator=torch.Generator().manual_seed(3000))
    out["linear_response"] = {k: response.to_dict()[k] for k in (
        "error", "lag_profile_error", "nonlinearity", "lag_profile_scalar", "exact_lag_profile_scalar")}
    gamma = lag_values(evaluation_gp)
    if hasattr(score.model, "attention_weights"):
        maps = attention.attention_maps(score.model, map_x, settings["map_time"])
        profile = attention.lag_profile(maps.total)
        window = getattr(getattr(score.model, "net", score.model), "config", {}).get("window")
        last = frames - 1 if not window or window >= frames - 1 else int(window)
        out["attention"] = {
            "lag_profile": profile.tolist(), "max_lag": last,
            "distance_to_gamma": normalised_profile_distance(profile, np.abs(gamma), max_lag=last),
            "input_dependence": attention.input_dependence(score.model, map_x, settings["map_time"],
                                                           generator=torch.Generator().manual_seed(4002))}
        if construction is not None:
            out["tents"] = {"initial": initial_tents,
                            "trained": tent_fidelity(score.model, construction, map_x, settings["map_time"])}
    if settings.get("probe_time") is not None and kind != "unet":
        from unroll.experiments.probes import layer_probes

        probes = layer_probes(score.model, evaluation_gp, settings["probe_time"], probe=512, heldout=256,
                              iterates=settings.get("probe_iterates", 24))
        out["probes"] = probes.to_dict()
    if settings.get("lengths"):
        out["lengths"] = {}
        for length in settings["lengths"]:
            longer = gp_from_spec({**gp, "frames": int(length)})
            held_long = heldout_set(longer, settings["heldout"], tuple(settings["times"]), seed=1000)
            response_long = linear_response(score.model, longer, settings["response_time"],
                                            samples=min(32, settings["response_samples"]),
                                            generator=torch.Generator().manual_seed(3000))
            out["lengths"][str(length)] = {"score_error": score_error(score, held_long)["score_error"],
                                           "linear_response_error": response_long.error,
                                           "lag_profile_error": response_long.lag_profile_error}
    if settings.get("generated"):
        from unroll.experiments.distribution import sample_with_score

        samples = sample_with_score(score, int(settings["generated"]), frames, dim,
                                    t_start=float(settings.get("t_start", 8.0)), t0=float(settings.get("t0", 1e-2)),
                                    steps=int(settings.get("sampler_steps", 60)),
                                    generator=torch.Generator().manual_seed(5000))
        profile = sample_lag_profile(samples, evaluation_gp.spatial)
        out["samples"] = {"lag_profile": profile.tolist(),
                          "distance_to_gamma": float(np.sqrt(np.mean((profile[1:] - gamma[1:]) ** 2)))}
    out["seconds"] = time.perf_counter() - started
    return out


def task(gp: dict[str, Any], kind: str, options: dict[str, Any], train: dict[str, Any], seed: int,
         **rest: Any) -> dict[str, Any]:
    """The keyword arguments of one ``train_and_measure`` call (deep copies: tasks never share settings)."""
    return copy.deepcopy(dict(gp=gp, kind=kind, options=options, train=train, seed=seed, **rest))
