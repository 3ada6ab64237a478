"""The figures of the docs (``unroll figures --out docs/figures``), each computed by the toolkit when drawn.

=====================  ========================================================================  =========
name                   what it shows                                                             cost
=====================  ========================================================================  =========
``tents``              the three ReLU heads of each band and their tent over ``s = e_i·e_j``,   < 1 s
                       read off a constructed network's query/key weights
``gamma_truncation``   ``Gamma`` beside the plain-cut and triangular-taper ``Gamma_J``           < 1 s
``error_vs_blocks``    ``unroll.verify`` parts vs blocks L: ``gd`` and ``total`` with bounds      seconds
``schedules``          gd part vs blocks L at t = 0.01, gradient descent vs Chebyshev steps,     seconds
                       measured and bound
``error_vs_bands``     ``trunc`` part vs bands J for the four kernel families, with bounds      seconds
``attention_maps``     constructed band heads vs maps learned by a trained ReLU transformer     ~1 min
                       and DiT, each beside its positional-only control (trained on white data)
``comparison_*``       drawn from a finished ``unroll compare`` run (``unroll figures --results``):     seconds
                       attention and linear-response lag profiles of learned models and
                       controls, the sample-complexity fit, the layer probes
=====================  ========================================================================  =========

Every ``*_figure`` function computes its data and returns a ``matplotlib.figure.Figure``; none touches pyplot or
the backend, so a notebook shows the returned figure inline and a script saves it
(``unroll.figures.comparison.save_atomic``, or ``Figure.savefig``).  A one-panel figure (``error_vs_blocks``,
``schedules``, ``error_vs_bands``) accepts ``ax=``, an ``Axes`` to draw into (it returns ``ax.figure``); a
multi-panel figure (``tents``, ``gamma_truncation``, ``attention_maps``) accepts ``fig=``, an empty ``Figure`` or
``SubFigure`` to lay its panels out in (it returns it).  Without either, each makes a new figure with constrained
layout.  :func:`generate_figures` writes them as ``<name>.png`` into a folder (each file atomically: a temporary
file in the same folder, then ``os.replace``), with a progress bar.

matplotlib is optional: it is imported inside the functions (``unroll.figures.comparison.require_matplotlib``
raises an ImportError that says how to install it).  The training figure reuses ``unroll.experiments``
(``compare``, ``attention``, ``claims``) at reduced settings (``FigureSettings``); they are illustrations of the
method, not the measurements of record (``unroll compare`` is).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["FIGURES", "FigureSettings", "generate_figures", "tents_figure", "gamma_truncation_figure",
           "error_vs_blocks_figure", "schedules", "schedules_figure", "error_vs_bands_figure",
           "attention_maps_figure", "comparison_figures_from"]

#: colours of the four error parts / families (matplotlib's default cycle, fixed so figures agree)
_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]


@dataclass
class FigureSettings:
    """Sizes of the figures' computations (defaults: seconds to a minute or two on 2 CPU cores)."""

    diffusion_time: float = 0.5
    train_steps: int = 200  # attention maps: optimisation steps per trained model (and per control)
    train_size: int = 1024
    seed: int = 0
    progress: bool = False


def _new_figure(figsize: tuple[float, float], fig: Any = None) -> Any:
    from unroll.figures.comparison import new_figure

    return new_figure(figsize, fig)


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    from unroll.figures.comparison import axes_or_new

    return axes_or_new(ax, figsize)


def _spatial() -> torch.Tensor:
    return torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64)


# ------------------------------------------------------------------------------------------ tents
@torch.no_grad()
def tent_curves(frames: int = 8, bands: int = 3, diffusion_time: float = 0.5, points: int = 2001
                ) -> dict[str, Any]:
    """Head scores ``ReLU(<Q_h z_i, K_h z_j>)`` of a constructed network (exact mode) as functions of
    ``s = e_i·e_j`` on ``[-1, 1]`` (a uniform grid plus the lag values ``c_m`` themselves).

    The query token is frame 0 of the input map; the key token is the same with its ``e`` slot replaced
    by ``(s, sqrt(1 - s^2))``.  Returns ``s``, ``heads (M, len(s))`` (all heads of block 1), ``tents {m: ...}``
    (band m's three heads combined with their value signs ``(1, -2, 1)``; band 0: its first head), the lag
    values ``c_m``, the height ``eta_t alpha_t^2`` and the slope ``K``.
    """
    from unroll.construction.constructor import construct_unrolled
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import GammaExponential

    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), frames=frames, spatial=_spatial())
    model = construct_unrolled(gp, blocks=1, bands=bands)
    layout = model.construction.layout
    lag_values = model.construction.lag_values
    s = torch.unique(torch.cat([torch.linspace(-1.0, 1.0, points, dtype=torch.float64), lag_values]))
    x = torch.zeros(1, frames, gp.dim, dtype=torch.float64)
    query_token = model.tokens(x, diffusion_time)[0][0, 0]  # (D,)
    keys = query_token.repeat(s.shape[0], 1)
    keys[:, layout["e"]] = torch.stack([s, (1.0 - s**2).clamp(min=0.0).sqrt()], dim=-1)
    block = model.blocks[0]
    q = torch.einsum("mkD,D->mk", block.query, query_token)  # (M, k)
    k = torch.einsum("mkD,pD->mpk", block.key, keys)  # (M, points, k)
    heads = torch.relu(torch.einsum("mk,mpk->mp", q, k))
    signs = torch.tensor([1.0, -2.0, 1.0], dtype=torch.float64)
    tents = {0: heads[0]}
    for m in range(1, bands + 1):
        tents[m] = signs @ heads[3 * m: 3 * m + 3]
    height = float(model.time_features(torch.tensor([diffusion_time], dtype=torch.float64))[0, 0])
    return {"s": s.numpy(), "heads": heads.numpy(), "tents": {m: v.numpy() for m, v in tents.items()},
            "lag_values": lag_values.numpy(), "height": height, "slope": model.construction.tent_slope,
            "frames": frames, "bands": bands}


@torch.no_grad()
def tents_figure(frames: int = 8, bands: int = 3, diffusion_time: float = 0.5, *, fig: Any = None) -> Any:
    """Left: band 1's three ReLU heads (scaled by their value signs) and their sum, the tent.  Right: every
    band's tent over ``s = e_i·e_j``, nonzero only at its own lag value ``c_m`` (:func:`tent_curves`).

    Args:
        frames: H of the constructed network.
        bands: J of the constructed network.
        diffusion_time: the ``t > 0`` that sets the tents' height ``eta_t alpha_t^2``.
        fig: an empty ``Figure``/``SubFigure`` for the two panels (default: a new one).
    Returns:
        the figure drawn into.
    """
    from unroll.construction.constructor import frequency_period

    curves = tent_curves(frames, bands, diffusion_time)
    s, heads, c, height = curves["s"], curves["heads"], curves["lag_values"], curves["height"]
    figure = _new_figure((9.5, 3.7), fig)
    left, right = figure.subplots(1, 2)
    for h, (sign, style) in enumerate(zip((1.0, -2.0, 1.0), ("-", "--", ":"), strict=True)):
        left.plot(s, sign * heads[3 + h], style, color=_COLOURS[h + 2], lw=1.2,
                  label=f"{sign:+g} x ReLU head {3 + h}")
    left.plot(s, curves["tents"][1], color=_COLOURS[1], lw=2.5, label="sum: tent T_1(s)")
    left.set_xlim(c[2] - 0.03, 1.0)
    left.set_ylim(-2.5 * height, 2.0 * height)
    left.set_title("band 1: three ReLU heads and their sum", fontsize=9)
    left.legend(fontsize=7, loc="lower left")
    for m, tent in curves["tents"].items():
        right.plot(s, tent, color=_COLOURS[m % len(_COLOURS)], lw=2,
                   label=f"band {m}" + (" (one-sided head)" if m == 0 else ": tent"))
    right.set_xlim(-1.02, 1.02)
    right.set_title(f"every band: height eta_t alpha_t^2 = {height:.3f} at its c_m, 0 at other lags", fontsize=9)
    right.legend(fontsize=7, loc="upper left")
    for ax in (left, right):
        for value in c[: bands + 2]:  # the lags the windowed heads see
            ax.axvline(value, color="0.8", lw=0.6, zorder=0)
        ax.set_xlabel(f"s = e_i · e_j   (grey: c_m = cos(pi m / {frequency_period(frames, bands)}), m = 0..J+1)",
                      fontsize=8)
    left.set_ylabel("head score (value sign applied)")
    figure.suptitle(f"constructed heads, H = {frames}, J = {bands}, slope K = {curves['slope']:.1f}, "
                    f"t = {diffusion_time:g} (exact mode)", fontsize=10)
    return figure


# ------------------------------------------------------------------------------------------ Gamma vs Gamma_J
def gamma_truncation_figure(frames: int = 16, bands: int = 3, *, fig: Any = None) -> Any:
    """``Gamma`` (Gaussian kernel, ``ell = 3``) beside its plain-cut and tapered ``Gamma_J`` with their
    smallest eigenvalues.

    Args:
        frames: H, the matrices are ``(H, H)``.
        bands: J of the truncations.
        fig: an empty ``Figure``/``SubFigure`` for the three panels (default: a new one).
    Returns:
        the figure drawn into.
    """
    from unroll.construction import gd
    from unroll.data.kernels import GammaExponential

    kernel = GammaExponential(nu=2.0, ell=3.0)
    gamma = torch.from_numpy(kernel(np.arange(frames)))
    panels = [("Gamma", gamma), (f"Gamma_J, plain cut J = {bands}", gd.truncate(gamma, bands)),
              (f"Gamma_J, triangular taper J = {bands}", gd.truncate(gamma, bands, "triangular"))]
    figure = _new_figure((10, 3.6), fig)
    axes = figure.subplots(1, 3)
    for ax, (title, values) in zip(axes, panels, strict=True):
        matrix = gd.Factors(values, torch.eye(1, dtype=torch.float64)).toeplitz().numpy()
        lam_min = float(np.linalg.eigvalsh(matrix)[0])
        image = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{title}\nlambda_min = {lam_min:+.3g}", fontsize=9)
        ax.set_xlabel("frame j")
    axes[0].set_ylabel("frame i")
    figure.colorbar(image, ax=axes, fraction=0.02, pad=0.02, label="entry")
    figure.suptitle(f"{kernel!r}, H = {frames}: the plain cut is indefinite, the taper is not", fontsize=10)
    return figure


# ------------------------------------------------------------------------------------------ error vs L, J
def _verify_parts(gp: Any, blocks: int, bands: int, diffusion_time: float, x: torch.Tensor,
                  taper: str | None = None) -> dict[str, tuple[float, float | None]]:
    from unroll.construction.constructor import construct_unrolled
    from unroll.verification import verify

    report = verify(gp, construct_unrolled(gp, blocks=blocks, bands=bands, taper=taper), diffusion_time, x=x)
    return {name: (part.measured, part.bound) for name, part in report.parts.items()}


def error_vs_blocks(blocks: Sequence[int] = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64), frames: int = 16,
                    bands: int = 6, diffusion_time: float = 0.5) -> dict[str, Any]:
    """``unroll.verify`` parts measured and bound for each number of blocks L (GammaExponential(1, 2))."""
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import GammaExponential

    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), frames=frames, spatial=_spatial())
    generator = torch.Generator().manual_seed(0)
    x = gp.noised(gp.sample(8, generator=generator), diffusion_time, generator=generator)
    rows = [_verify_parts(gp, int(b), bands, diffusion_time, x) for b in blocks]
    return {"blocks": list(blocks), "rows": rows, "gp": gp, "bands": bands, "diffusion_time": diffusion_time}


def error_vs_blocks_figure(*, ax: Any = None, **kwargs: Any) -> Any:
    """Error parts of ``unroll.verify`` (measured, solid; bound, dashed) vs blocks L.

    Args:
        ax: an ``Axes`` to draw into (default: a new figure's).
        **kwargs: the arguments of :func:`error_vs_blocks` (``blocks``, ``frames``, ``bands``, ``diffusion_time``).
    Returns:
        the figure drawn into (``ax.figure``).
    """
    data = error_vs_blocks(**kwargs)
    figure, ax = _axes(ax, (6, 4))
    for colour, name in zip(_COLOURS, ("gd", "trunc", "net", "total"), strict=False):
        measured = [row[name][0] for row in data["rows"]]
        bound = [row[name][1] for row in data["rows"]]
        ax.semilogy(data["blocks"], np.maximum(measured, 1e-17), "o-", color=colour, ms=3, label=f"{name} measured")
        if all(b is not None for b in bound):
            ax.semilogy(data["blocks"], bound, "--", color=colour, lw=1, label=f"{name} bound")
    ax.set_xlabel("blocks L (= GD steps)")
    ax.set_ylabel("relative error / |y*|")
    ax.set_title(f"{data['gp'].kernel!r}, H = {data['gp'].frames}, J = {data['bands']}, "
                 f"t = {data['diffusion_time']:g}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return figure


def error_vs_bands(frames: int = 32, blocks: int = 1, diffusion_time: float = 0.5) -> dict[str, Any]:
    """The ``trunc`` part (it does not depend on L) measured and bound for each J, four families.

    An indefinite ``C_{t,J}``/``Gamma_J`` (plain cut) has no entry: ``verify`` refuses it.
    """
    from unroll.construction.gd import IndefiniteTruncationError
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import GammaExponential, Logarithmic, Matern, Polynomial

    kernels = [GammaExponential(nu=1.0, ell=2.0), Matern(nu=1.5, ell=2.0), Polynomial(nu=2.0, ell=2.0),
               Logarithmic(nu=1.0, ell=2.0)]
    bands = list(range(0, frames - 1))  # J = H - 1 keeps every lag: no truncation
    result: dict[str, Any] = {"bands": bands, "frames": frames, "diffusion_time": diffusion_time, "families": {}}
    for kernel in kernels:
        gp = GaussianProcess(kernel, frames=frames, spatial=_spatial())
        generator = torch.Generator().manual_seed(0)
        x = gp.noised(gp.sample(8, generator=generator), diffusion_time, generator=generator)
        measured, bound = [], []
        for j in bands:
            try:
                part = _verify_parts(gp, blocks, j, diffusion_time, x)["trunc"]
            except IndefiniteTruncationError:
                part = (float("nan"), float("nan"))
            measured.append(part[0])
            bound.append(float("nan") if part[1] is None else part[1])
        result["families"][repr(kernel)] = {"measured": measured, "bound": bound}
    return result


def error_vs_bands_figure(*, ax: Any = None, **kwargs: Any) -> Any:
    """Truncation error (measured, solid; bound, dashed) vs bands J for four families.

    Args:
        ax: an ``Axes`` to draw into (default: a new figure's).
        **kwargs: the arguments of :func:`error_vs_bands` (``frames``, ``blocks``, ``diffusion_time``).
    Returns:
        the figure drawn into (``ax.figure``).
    """
    data = error_vs_bands(**kwargs)
    figure, ax = _axes(ax, (6.4, 4.2))
    bands = np.asarray(data["bands"])
    for colour, (name, entry) in zip(_COLOURS, data["families"].items(), strict=False):
        measured = np.asarray(entry["measured"], dtype=np.float64)
        keep = measured > 0
        ax.semilogy(bands[keep], measured[keep], "o-", color=colour, ms=3, label=f"{name} measured")
        bound = np.asarray(entry["bound"], dtype=np.float64)
        ax.semilogy(bands[keep], bound[keep], "--", color=colour, lw=1, label="bound")
        missing = bands[np.isnan(measured)]
        if missing.size:
            ax.plot(missing, np.full(missing.size, 2.0), "x", color=colour, ms=5)
    ax.set_xlabel("bands J (lags kept)")
    ax.set_ylabel("E_trunc = |y*_J - y*| / |y*|")
    ax.set_title(f"truncation error vs J, H = {data['frames']}, t = {data['diffusion_time']:g}, plain cut "
                 "(x at top: Gamma_J indefinite, refused)", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    return figure


# ------------------------------------------------------------------------------------------ training figures
def _compare_config(settings: FigureSettings) -> Any:
    from unroll.experiments.compare import CompareConfig

    return CompareConfig.quick(steps=settings.train_steps, train_size=settings.train_size, seed=settings.seed,
                               progress=settings.progress, figures=False)


def attention_maps_data(settings: FigureSettings | None = None) -> dict[str, Any]:
    """Constructed per-band maps and the learned/control maps of a trained ReLU transformer and DiT.

    Uses ``unroll.experiments.compare`` (``make_gp``, ``white_gp``, ``model_options``, ``train_score_model``) and
    ``unroll.experiments.attention`` (``attention_maps``, ``alignment_summary``); the control is the same model
    trained for the same steps on temporally uncorrelated data (``Gamma = I``), so structure it shares with
    the learned map comes from the frame embeddings, not from the data.
    """
    from unroll.construction.constructor import construct_unrolled
    from unroll.experiments import attention as att
    from unroll.experiments.claims import normalised_profile_distance
    from unroll.experiments.compare import (
        float64_score,
        heldout_set,
        make_gp,
        model_options,
        train_score_model,
        white_gp,
    )

    settings = settings or FigureSettings()
    config = _compare_config(settings)
    gp = make_gp(config.kernel, config.nu, config.ell, config.frames, config.dim, config.spatial_correlation)
    assert gp.kernel is not None  # make_gp builds Gamma from a named kernel
    gamma_values = gp.kernel(np.arange(gp.frames))
    held = heldout_set(gp, 64, (settings.diffusion_time,), seed=settings.seed + 1000)
    x = held.noised[0]
    constructed = construct_unrolled(gp, blocks=1, bands=gp.frames - 1)
    constructed_maps = att.attention_maps(constructed, x, settings.diffusion_time)
    data = gp.sample(config.train_size, generator=torch.Generator().manual_seed(settings.seed))
    white = white_gp(gp)
    white_data = white.sample(config.train_size, generator=torch.Generator().manual_seed(settings.seed + 7))
    learned: dict[str, Any] = {}
    for offset, kind in enumerate(("relu_transformer", "dit")):
        options = model_options(kind, config, gp)
        train_config = config.train_config(settings.train_steps, seed_offset=offset)
        model, _ = train_score_model(kind, data, options, train_config)
        control, _ = train_score_model(kind, white_data, options, train_config)
        maps = att.attention_maps(float64_score(model).model, x, settings.diffusion_time)
        control_maps = att.attention_maps(float64_score(control).model, x, settings.diffusion_time)
        window = options.get("window") if kind == "relu_transformer" else None
        last = gp.frames - 1 if window is None or window >= gp.frames - 1 else int(window)
        learned[kind] = {"learned": maps, "control": control_maps,
                         "alignment": normalised_profile_distance(att.lag_profile(maps.total), np.abs(gamma_values),
                                                                  max_lag=last),
                         "control_alignment": normalised_profile_distance(att.lag_profile(control_maps.total),
                                                                          np.abs(gamma_values), max_lag=last)}
    return {"gp": gp, "constructed": constructed_maps, "models": learned, "settings": settings}


def _map_axes(ax: Any, matrix: Any, title: str, vmin: float, vmax: float) -> Any:
    """One attention map on ``ax``: query frame i down, key frame j across, the first and last frame ticked."""
    frames = matrix.shape[0]
    image = ax.imshow(matrix, cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize=7.5)
    ax.set_xticks([0, frames - 1])
    ax.set_yticks([0, frames - 1])
    ax.tick_params(labelsize=7)
    ax.set_xlabel("key frame j", fontsize=7.5, labelpad=1)
    ax.set_ylabel("query frame i", fontsize=7.5, labelpad=1)
    return image


def _colour_bar(figure: Any, image: Any, axes: Any, label: str) -> None:
    bar = figure.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    bar.set_label(label, fontsize=7.5)
    bar.ax.tick_params(labelsize=7)


#: how the figure names the trained models
_MODEL_NAMES = {"relu_transformer": "ReLU transformer", "dit": "DiT"}


def attention_maps_figure(settings: FigureSettings | None = None, *, data: dict[str, Any] | None = None,
                          fig: Any = None) -> Any:
    """Constructed heads beside trained ones, each trained model beside its control.

    Top row: the ground-truth ``Gamma`` and the constructed band-0 head and band-1, band-2 tents (the three heads
    of a band combined with their value signs ``(1, -2, 1)``), on one colour scale.  Bottom row: per trained
    model (ReLU transformer, DiT) its learned map beside its control's (the same model trained on white data),
    the pair on one colour scale.  Their titles carry the comparison's statistic for the claim "attention
    follows the kernel", ``attention_distance`` (the scale-aware distance of the map's lag profile to
    ``|gamma|``, ``unroll.experiments.claims.normalised_profile_distance``; smaller is closer), for the learned map
    and its control, and their difference *control minus learned* as ``unroll compare`` reports it (positive:
    the learned map is the closer).  Maps are sample means, summed over heads, averaged over blocks.

    Args:
        settings: sizes of the trainings (default ``FigureSettings()``: about a minute on 2 cores).
        data: a precomputed :func:`attention_maps_data` (then ``settings`` is not used).
        fig: an empty ``Figure``/``SubFigure`` for the 2 x 4 panels (default: a new one).
    Returns:
        the figure drawn into.
    """
    data = attention_maps_data(settings) if data is None else data
    gp, constructed, s = data["gp"], data["constructed"], data["settings"]
    per_head = constructed.per_head[0].numpy()  # block 1: (M, H, H)
    signs = np.array([1.0, -2.0, 1.0])
    bands = [per_head[0]] + [np.einsum("h,hij->ij", signs, per_head[3 * m: 3 * m + 3]) for m in (1, 2)]
    figure = _new_figure((12.0, 6.6), fig)
    top, bottom = figure.subfigures(2, 1)  # two rows, each laid out on its own: colour bars do not push columns
    axes = top.subplots(1, 4)
    image = _map_axes(axes[0], gp.temporal.numpy(), "ground truth Gamma = gamma(|i - j|)", 0.0, 1.0)
    _colour_bar(top, image, axes[0], "gamma(|i - j|)")
    low, high = min(float(b.min()) for b in bands), max(float(b.max()) for b in bands)
    titles = ["constructed: band-0 head", "constructed: band-1 tent (3 heads)", "constructed: band-2 tent (3 heads)"]
    for ax, matrix, title in zip(axes[1:], bands, titles, strict=True):
        image = _map_axes(ax, matrix, title, low, high)
    _colour_bar(top, image, list(axes[1:]), "head weight (value sign applied)")
    axes = bottom.subplots(1, 4)
    for column, (kind, entry) in zip((0, 2), data["models"].items(), strict=True):
        name = _MODEL_NAMES.get(kind, kind)
        learned, control = entry["learned"].total.numpy(), entry["control"].total.numpy()
        low, high = min(float(learned.min()), float(control.min())), max(float(learned.max()), float(control.max()))
        gap = entry["control_alignment"] - entry["alignment"]
        _map_axes(axes[column], learned, f"{name}, learned\ndistance to |gamma| {entry['alignment']:.3f} "
                  f"vs control {entry['control_alignment']:.3f}\ncontrol - learned = {gap:+.3f}", low, high)
        image = _map_axes(axes[column + 1], control, f"{name}, control (white data)\n"
                          f"distance to |gamma| {entry['control_alignment']:.3f}", low, high)
        _colour_bar(bottom, image, list(axes[column: column + 2]), "attention weight")
    figure.suptitle(f"attention maps, {gp.kernel!r}, H = {gp.frames}, t = {s.diffusion_time:g}.  Top: the "
                    f"construction (block 1, exact mode).  Bottom: trained {s.train_steps} steps (seed {s.seed}) on "
                    "the GP data,\nbeside the same model trained on white data (Gamma = I), each pair on one colour "
                    "scale.  Distance: rms gap between a map's lag profile and |gamma|, each normalised at lag 0\n"
                    "(0: the same decay); control - learned > 0: the learned map is the closer", fontsize=9)
    return figure


def schedules(blocks: Sequence[int] = (1, 5, 10, 20, 30, 40, 50, 60, 80, 100, 120, 160, 200, 240),
              diffusion_time: float = 0.01) -> dict[str, Any]:
    """gd part measured (eigenbasis iterates, ``unroll.construction.gd.spectral_iterates``) and bound (``theory``) vs
    blocks L for gradient descent and Chebyshev steps: ``unroll verify``'s default GP (gamma-exponential nu=1 ell=2,
    H=32, d=4, Sigma seed 0), all bands, 8 seeded draws at ``diffusion_time``."""
    import theory
    from unroll.cli.options import random_spatial_covariance
    from unroll.construction import gd
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import GammaExponential

    gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), 32, random_spatial_covariance(4, 0))
    bands, t = gp.frames - 1, diffusion_time
    generator = torch.Generator().manual_seed(0)
    x = gp.noised(gp.sample(8, generator=generator), t, generator=generator)
    scale, fixed = float(gp.precision_apply(x, t).norm()), gd.fixed_point(gp, x, t, bands)
    rows: dict[str, dict[str, list[float]]] = {}
    for steps, bound_name in (("gd", "gd"), ("chebyshev", "gd_chebyshev")):
        measured, bound = [], []
        for count in blocks:
            last = gd.spectral_iterates(gp, x, t, int(count), bands, steps=steps)[-1]
            measured.append(float((last - fixed).norm()) / scale)
            config = theory.Configuration.from_gp(gp, bands=bands, blocks=int(count), diffusion_time=t, steps=steps)
            bound.append(theory.BOUNDS[bound_name].evaluate(config))
        rows[steps] = {"measured": measured, "bound": bound}
    return {"blocks": list(blocks), "rows": rows, "gp": gp, "diffusion_time": t,
            "kappa": float(gd.condition_number(gp, t, bands))}


def schedules_figure(*, ax: Any = None, **kwargs: Any) -> Any:
    """The gd part vs blocks L, gradient descent vs Chebyshev steps (measured solid, bound dashed).

    Args:
        ax: an ``Axes`` to draw into (default: a new figure's).
        **kwargs: the arguments of :func:`schedules` (``blocks``, ``diffusion_time``).
    Returns:
        the figure drawn into (``ax.figure``).
    """
    data = schedules(**kwargs)
    figure, ax = _axes(ax, (6, 4))
    for colour, steps in zip(_COLOURS, ("gd", "chebyshev"), strict=False):
        row = data["rows"][steps]
        ax.semilogy(data["blocks"], np.maximum(row["measured"], 1e-17), "o-", color=colour, ms=3,
                    label=f"{steps} measured")
        ax.semilogy(data["blocks"], row["bound"], "--", color=colour, lw=1, label=f"{steps} bound")
    ax.axhline(1e-6, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("blocks L")
    ax.set_ylabel("gd part |y_L - y*_J| / |y*|")
    ax.set_title(f"{data['gp'].kernel!r}, H = {data['gp'].frames}, all bands, t = {data['diffusion_time']:g}, "
                 f"kappa = {data['kappa']:.3g}", fontsize=9)
    ax.legend(fontsize=7)
    return figure


# ------------------------------------------------------------------------------------------ all of them
#: figure name -> ``draw(settings) -> Figure``
FIGURES: dict[str, Callable[[FigureSettings], Any]] = {
    "tents": lambda settings: tents_figure(diffusion_time=settings.diffusion_time),
    "gamma_truncation": lambda settings: gamma_truncation_figure(),
    "error_vs_blocks": lambda settings: error_vs_blocks_figure(diffusion_time=settings.diffusion_time),
    "schedules": lambda settings: schedules_figure(),
    "error_vs_bands": lambda settings: error_vs_bands_figure(diffusion_time=settings.diffusion_time),
    "attention_maps": lambda settings: attention_maps_figure(settings),
}


def comparison_figures_from(results_path: str | os.PathLike, out: str | os.PathLike) -> dict[str, str]:
    """The comparison figures (``unroll.figures.comparison.comparison_figures``) of a finished ``unroll compare`` run,
    from its ``results.json`` and the task records beside it (``tasks/``), written into ``out``."""
    import json

    from unroll.figures.comparison import _read_tasks, comparison_figures

    results_path = Path(results_path)
    if not results_path.is_file():
        raise ValueError(f"results must be the results.json of an unroll compare run, got {str(results_path)!r}")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    Path(out).mkdir(parents=True, exist_ok=True)
    return comparison_figures(out, results, _read_tasks(results_path.parent / "tasks"))


def generate_figures(out: str | os.PathLike, names: Sequence[str] | None = None,
                     settings: FigureSettings | None = None, log: Callable[[str], None] | None = None,
                     progress: bool = False) -> dict[str, str]:
    """Write the named figures (default: all of ``FIGURES``) as ``out/<name>.png``; returns ``{name: path}``.

    Args:
        out: the folder (created if missing).
        names: keys of ``FIGURES``.
        settings: sizes of the figures' computations (default ``FigureSettings()``).
        log: called with one line per figure written (its path, size and time); beside a progress bar,
            ``tqdm.write`` keeps the bar intact.
        progress: a tqdm progress bar over the figures (on stderr).
    Raises:
        ValueError: for a name not in ``FIGURES``.
        ImportError: without matplotlib, before any computation.
    """
    from tqdm.auto import tqdm

    from unroll.figures.comparison import require_matplotlib, save_atomic

    names = list(FIGURES) if names is None else list(names)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"figure names must be among {list(FIGURES)}, got unknown {unknown}")
    require_matplotlib()  # fail early, before any computation, if matplotlib is missing
    settings = settings or FigureSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    bar = tqdm(names, desc="figures", unit="figure", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        start = time.perf_counter()
        written[name] = save_atomic(FIGURES[name](settings), out / f"{name}.png")
        if log is not None:
            size = os.path.getsize(written[name]) / 1024
            line = f"{written[name]}  ({size:.0f} KB, {time.perf_counter() - start:.1f} s)"
            log(line)
    return written
