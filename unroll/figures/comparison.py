"""Figures of the comparison, drawn from the ``results.json`` of ``unroll compare`` and its task records.

Every ``*_figure`` function returns a ``matplotlib.figure.Figure`` and leaves pyplot and the backend alone, so
a notebook shows the returned figure inline and a script saves it (:func:`save_atomic`).  A figure of one panel
accepts ``ax=`` (an ``Axes`` to draw into; the function returns ``ax.figure``); a figure of one panel per kernel
accepts ``fig=`` (an empty ``Figure`` or ``SubFigure`` to lay its panels out in; the function returns it).
Without either, each makes a new figure with constrained layout.  matplotlib is optional: it is imported inside
the functions (:func:`require_matplotlib` says how to install it).  :func:`comparison_figures` writes them all,
each file atomically (a temporary file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from unroll._atomic import atomic_write

__all__ = ["require_matplotlib", "new_figure", "axes_or_new", "save_atomic", "comparison_attention_figure",
           "comparison_linear_response_figure", "comparison_sample_complexity_figure", "comparison_probes_figure",
           "sweeps_figure", "comparison_figures"]


def require_matplotlib() -> Any:
    """The class ``matplotlib.figure.Figure``, or an ImportError that says how to install matplotlib.

    Only ``matplotlib.figure`` is imported: no pyplot, no backend chosen, so the caller's (a notebook's inline
    backend, a script's Agg) stays in force.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'unroll-gp[plot]' (or matplotlib); "
                          "results.json is written without them") from error
    return Figure


def new_figure(figsize: tuple[float, float], fig: Any = None) -> Any:
    """``fig`` if given (a ``Figure`` or ``SubFigure`` to draw into), else a new ``Figure`` of ``figsize`` inches
    with constrained layout (titles, labels and colour bars placed so that they do not overlap)."""
    if fig is not None:
        return fig
    return require_matplotlib()(figsize=figsize, layout="constrained")


def axes_or_new(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """``(ax.figure, ax)`` for a given ``Axes``, else a new one-panel figure of ``figsize`` and its axes."""
    if ax is not None:
        return ax.figure, ax
    figure = new_figure(figsize)
    return figure, figure.subplots()


def save_atomic(figure: Any, path: str | os.PathLike) -> str:
    """``figure.savefig`` to a temporary file in ``path``'s folder, then ``os.replace``; returns the path.

    The format is ``path``'s suffix (default png), at 110 dpi.  A PNG carries the provenance record
    (``unroll.provenance``) as JSON in its ``provenance`` text chunk.
    """
    import json

    from unroll.provenance import provenance

    path = Path(path)
    image_format = path.suffix.lstrip(".") or "png"
    metadata = {"provenance": json.dumps(provenance())} if image_format == "png" else None
    atomic_write(path, lambda temporary: figure.savefig(temporary, format=image_format, dpi=110,
                                                        bbox_inches="tight", metadata=metadata))
    return str(path)


def _mean_profile(records: list[dict], key: str, field: str) -> np.ndarray | None:
    profiles = [np.asarray(r[key][field], dtype=np.float64) for r in records if r.get(key)]
    return np.mean(profiles, axis=0) if profiles else None


def _arm_records(results: dict, tasks: dict, kernel: str, kind: str, arm: str) -> list[dict]:
    """The task records of one arm (``learned``, ``white``, ``no_position``) of one model on one kernel."""
    tag = {"gamma-exponential": "gexp", "damped-cosine": "dcos"}.get(kernel, kernel)
    rate = results["config"]["learning_rate"]
    prefix = {"learned": f"{tag}.{kind}.data.lr{rate:g}.s", "white": f"{tag}.{kind}.white.lr{rate:g}.s",
              "no_position": f"{tag}.{kind}-nopos.data.lr{rate:g}.s"}[arm]
    return [record for name, record in sorted(tasks.items()) if name.startswith(prefix)]


def _kernel_axes(results: dict, fig: Any, height: float) -> tuple[Any, list[str], Any]:
    kernels = list(results["kernels"])
    figure = new_figure((5 * len(kernels), height), fig)
    return figure, kernels, figure.subplots(1, len(kernels), squeeze=False)[0]


def comparison_attention_figure(results: dict, tasks: dict, *, fig: Any = None) -> Any:
    """Per kernel, the attention lag profiles (normalised at lag 0, mean over seeds) of the learned DiT and its
    controls (white data, no position) beside ``|gamma|``; one panel per kernel of ``results``.

    Args:
        results: the parsed ``results.json`` of ``unroll compare``.
        tasks: ``{task name: record}`` of its task cache (``tasks/``).
        fig: an empty ``Figure``/``SubFigure`` to draw into (default: a new one).
    Returns:
        the figure drawn into.
    """
    figure, kernels, axes = _kernel_axes(results, fig, 3.6)
    for ax, kernel in zip(axes, kernels, strict=True):
        gamma = np.abs(np.asarray(results["kernels"][kernel].get("gamma", []), dtype=np.float64))
        for arm, style in (("learned", "o-"), ("white", "s--"), ("no_position", "^:")):
            profile = _mean_profile(_arm_records(results, tasks, kernel, "dit", arm), "attention", "lag_profile")
            if profile is not None:
                ax.plot(np.arange(profile.size), profile / profile[0], style, ms=3, label=f"DiT {arm}")
        if gamma.size:
            ax.plot(np.arange(gamma.size), gamma, "k-", lw=2, label="|gamma(m)|")
        ax.set_title(kernel, fontsize=9)
        ax.set_xlabel("lag m = |i - j|")
        ax.set_ylabel("attention lag profile / value at m = 0")
        ax.legend(fontsize=7)
    return figure


def comparison_linear_response_figure(results: dict, tasks: dict, *, fig: Any = None) -> Any:
    """Per kernel, the scalar lag profiles (trace / d, mean over seeds) of the learned Jacobians (DiT and its
    controls, U-Net) beside the exact precision's ``-C_t^-1``; one panel per kernel.

    Args:
        results: the parsed ``results.json`` of ``unroll compare``.
        tasks: ``{task name: record}`` of its task cache.
        fig: an empty ``Figure``/``SubFigure`` to draw into (default: a new one).
    Returns:
        the figure drawn into.
    """
    figure, kernels, axes = _kernel_axes(results, fig, 3.6)
    for ax, kernel in zip(axes, kernels, strict=True):
        exact = None
        for kind, arm, style in (("dit", "learned", "o-"), ("dit", "white", "s--"), ("dit", "no_position", "^:"),
                                 ("unet", "learned", "d-")):
            records = _arm_records(results, tasks, kernel, kind, arm)
            profile = _mean_profile(records, "linear_response", "lag_profile_scalar")
            if profile is not None:
                ax.plot(np.arange(profile.size), profile, style, ms=3, label=f"{kind} {arm}")
                exact = _mean_profile(records, "linear_response", "exact_lag_profile_scalar")
        if exact is not None:
            ax.plot(np.arange(exact.size), exact, "k-", lw=2, label="exact -C_t^-1")
        ax.axhline(0, color="0.7", lw=0.5)
        ax.set_title(f"{kernel}, t = {results['config']['response_time']:g}", fontsize=9)
        ax.set_xlabel("lag m")
        ax.set_ylabel("Jacobian lag profile (trace / d)")
        ax.legend(fontsize=7)
    return figure


def comparison_sample_complexity_figure(results: dict, *, fig: Any = None) -> Any:
    """Per kernel, the held-out score error and its statistical part ``eps(n)`` against the training-set size
    (per seed), the pooled log-log fit with its 95% interval, the infinite-data floor and the plug-in reference;
    titled with the verdict.  One panel per kernel.

    Args:
        results: the parsed ``results.json`` of ``unroll compare``.
        fig: an empty ``Figure``/``SubFigure`` to draw into (default: a new one).
    Returns:
        the figure drawn into.
    """
    figure, kernels, axes = _kernel_axes(results, fig, 3.8)
    for ax, kernel in zip(axes, kernels, strict=True):
        sweep = results["kernels"][kernel]["sample_complexity"]
        sizes = np.asarray([row["n"] for row in sweep["sizes"]], dtype=np.float64)
        errors = np.asarray([row["score_error"] for row in sweep["sizes"]], dtype=np.float64)  # (sizes, seeds)
        for k in range(errors.shape[1]):
            ax.loglog(sizes, errors[:, k], "o", color="C0", ms=3, alpha=0.6,
                      label="held-out score error (per seed)" if k == 0 else None)
        ax.axhline(sweep["floor"]["score_error_mean"], color="C0", ls="--", lw=1, label="infinite-data floor")
        statistical = [list(row["statistical_error"]) for row in sweep["sizes"]]
        eps = np.asarray([[math.nan if v is None else v for v in row] for row in statistical])
        fitted = np.asarray([row["fitted"] for row in sweep["sizes"]])
        for k in range(eps.shape[1]):
            ax.loglog(sizes[fitted], eps[fitted, k], "s", color="C1", ms=3,
                      label="statistical part eps(n) (fitted sizes)" if k == 0 else None)
        fit = sweep["fit"]
        if fit.get("slope") is not None and fit.get("pooled"):
            pooled = fit["pooled"]
            line = np.exp(pooled["intercept"]) * sizes[fitted] ** pooled["slope"]
            interval = fit.get("slope_ci95") or [math.nan, math.nan]
            ax.loglog(sizes[fitted], line, "-", color="C1",
                      label=f"slope {fit['slope']:.2f} [{interval[0]:.2f}, {interval[1]:.2f}]")
        plugin = sweep.get("plugin")
        if plugin:
            rows = [(row["n"], np.mean([v for v in row["rms_error"] if v is not None]))
                    for row in plugin["sizes"] if any(v is not None for v in row["rms_error"])]
            if rows:
                ax.loglog(*zip(*rows, strict=True), "k^:", ms=3, label="plug-in (Kronecker MLE), rms over t")
        ax.set_xlabel("training-set size n")
        ax.set_ylabel("relative score error")
        ax.set_title(f"{kernel}: {sweep['verdict']['verdict']}", fontsize=9)
        ax.legend(fontsize=6)
    return figure


def comparison_probes_figure(results: dict, *, ax: Any = None) -> Any:
    """Layer probes on the first kernel: the best-matching GD iterate per residual stream, for the construction
    and each trained transformer, labelled with the median error at the best iterate.  One panel.

    Args:
        results: the parsed ``results.json`` of ``unroll compare``.
        ax: an ``Axes`` to draw into (default: a new figure's).
    Returns:
        the figure drawn into (``ax.figure``).
    """
    figure, ax = axes_or_new(ax, (5, 3.6))
    kernel = next(iter(results["kernels"]))
    primary = results["kernels"][kernel]
    constructed = primary["constructions"].get("constructed_gd", {}).get("probes")
    curves = [("constructed (GD)", constructed)] + list(primary["probes"].items())
    for name, probe in curves:
        if probe:
            best = probe["best_iterate"]["gd"]
            ax.plot(np.arange(len(best)), best, "o-", ms=3,
                    label=f"{name} (error at the best k: {np.median(probe['best_error']['gd'][1:]):.2g} median)")
    ax.set_xlabel("residual stream b (0: after the input map)")
    ax.set_ylabel("best-matching GD iterate k*(b)")
    ax.set_title(f"layer probes, {kernel}, t = {results['config']['probe_time']:g}", fontsize=9)
    ax.legend(fontsize=6)
    return figure


def sweeps_figure(sweeps: dict, *, fig: Any = None) -> Any:
    """One panel per sweep present (``"H"``, ``"size"``, ``"decay"`` of ``unroll.experiments.sweeps.run_extra_sweeps``):
    held-out relative score error of the trained model and of the construction (all bands, same blocks).

    Args:
        sweeps: ``results["sweeps"]`` of a comparison (or ``run_extra_sweeps``'s return value).
        fig: an empty ``Figure``/``SubFigure`` to draw into (default: a new one).
    Returns:
        the figure drawn into.
    """
    panels = []
    if "H" in sweeps:
        rows = sweeps["H"]["results"]
        panels.append(("sequence length H (fixed model size)", [str(h) for h in sweeps["H"]["frames"]], rows,
                       sweeps["H"]["model"]))
    if "size" in sweeps:
        rows = sweeps["size"]["results"]
        labels = [f"L={r['blocks']} M={r['heads']}\n{r['parameters']} par." for r in rows]
        panels.append(("model size", labels, rows, sweeps["size"]["model"]))
    if "decay" in sweeps:
        rows = [r for r in sweeps["decay"]["results"] if "score_error" in r]
        labels = [f"nu={r['nu']:g}\nell={r['ell']:g}" for r in rows]
        panels.append((f"kernel decay ({sweeps['decay']['kernel']})", labels, rows, sweeps["decay"]["model"]))
    if not panels:
        raise ValueError(f"sweeps must hold at least one of 'H', 'size', 'decay', got {sorted(sweeps)}")
    figure = new_figure((4.6 * len(panels), 3.6), fig)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, labels, rows, model) in zip(axes, panels, strict=True):
        positions = np.arange(len(rows))
        ax.semilogy(positions, [r["score_error"] for r in rows], "o-", label=f"{model} (trained)")
        ax.semilogy(positions, [r["constructed_score_error"] for r in rows], "s--", label="constructed")
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("held-out relative score error")
        ax.legend(fontsize=7)
    return figure


def comparison_figures(out: str | os.PathLike, results: dict, tasks: dict | None = None) -> dict:
    """Write the comparison's figures from a ``results.json`` (and its task records, default ``out/tasks``)
    into ``out``: ``comparison_attention.png``, ``comparison_linear_response.png``,
    ``comparison_sample_complexity.png``, ``comparison_probes.png`` and, when the run has sweeps, ``sweeps.png``.
    Returns ``{name: path}``."""
    require_matplotlib()
    out = Path(out)
    if tasks is None:
        tasks = _read_tasks(out / "tasks")
    figures = {"comparison_attention": lambda: comparison_attention_figure(results, tasks),
               "comparison_linear_response": lambda: comparison_linear_response_figure(results, tasks),
               "comparison_sample_complexity": lambda: comparison_sample_complexity_figure(results),
               "comparison_probes": lambda: comparison_probes_figure(results)}
    if results.get("sweeps"):
        figures["sweeps"] = lambda: sweeps_figure(results["sweeps"])
    return {name: save_atomic(draw(), out / f"{name}.png") for name, draw in figures.items()}


def _read_tasks(folder: Path) -> dict:
    """``{name: result}`` of the cached task records of ``unroll.experiments.executor.run_tasks`` in ``folder``."""
    import json

    records = {}
    for path in sorted(Path(folder).glob("*.json")):
        records[path.stem] = json.loads(path.read_text(encoding="utf-8"))["result"]
    return records
