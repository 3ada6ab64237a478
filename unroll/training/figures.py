"""Figures of the comparison (matplotlib is optional: imported inside the functions).

Each figure is written atomically: saved to a temporary file in the output folder, then renamed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from unroll._atomic import atomic_write

__all__ = ["require_matplotlib", "save_atomic", "comparison_figures"]


def require_matplotlib() -> Any:
    """Import ``matplotlib.pyplot`` with the non-interactive Agg backend, or raise a clear ImportError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("figures need matplotlib: pip install 'unroll-gp[plot]' (or matplotlib); "
                          "results.json is written without them") from error
    return plt


def save_atomic(figure: Any, path: str | os.PathLike) -> str:
    """``figure.savefig`` to a temp file in ``path``'s folder, then ``os.replace``; returns the path."""
    path = Path(path)
    image_format = path.suffix.lstrip(".") or "png"
    atomic_write(path, lambda temporary: figure.savefig(temporary, format=image_format, dpi=110,
                                                        bbox_inches="tight"))
    return str(path)


def _panel(ax: Any, matrix: Any, title: str) -> None:
    image = ax.imshow(np.asarray(matrix, dtype=np.float64), cmap="viridis")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def _mean_profile(records: list[dict], key: str, field: str) -> np.ndarray | None:
    profiles = [np.asarray(r[key][field], dtype=np.float64) for r in records if r.get(key)]
    return np.mean(profiles, axis=0) if profiles else None


def comparison_figures(out: str | os.PathLike, results: dict, tasks: dict | None = None) -> dict:
    """The comparison's figures from a ``results.json`` (and its task records, ``out/tasks``) into ``out``.

    ``comparison_attention.png``: per kernel, the attention lag profiles (normalised at lag 0) of the learned DiT
    and its controls beside ``|gamma|``; ``comparison_linear_response.png``: the scalar lag profiles of the learned
    Jacobians beside the exact precision's; ``comparison_sample_complexity.png``: the statistical error ``eps(n)``
    per seed with the fit, the floor and the plug-in; ``comparison_probes.png``: the best-matching GD iterate per
    block (layer probes).  Returns ``{name: path}``.
    """
    plt = require_matplotlib()
    out = Path(out)
    if tasks is None:
        tasks = _read_tasks(out / "tasks")
    kernels = list(results["kernels"])
    written = {}

    def arm_records(kernel: str, kind: str, arm: str) -> list[dict]:
        tag = {"gamma-exponential": "gexp", "damped-cosine": "dcos"}.get(kernel, kernel)
        rate = results["config"]["learning_rate"]
        prefix = {"learned": f"{tag}.{kind}.data.lr{rate:g}.s", "white": f"{tag}.{kind}.white.lr{rate:g}.s",
                  "no_position": f"{tag}.{kind}-nopos.data.lr{rate:g}.s"}[arm]
        return [record for name, record in sorted(tasks.items()) if name.startswith(prefix)]

    # 1. attention lag profiles
    figure, axes = plt.subplots(1, len(kernels), figsize=(5 * len(kernels), 3.6), squeeze=False)
    for ax, kernel in zip(axes[0], kernels, strict=True):
        gamma = np.abs(np.asarray(results["kernels"][kernel].get("gamma", []), dtype=np.float64))
        for arm, style in (("learned", "o-"), ("white", "s--"), ("no_position", "^:")):
            profile = _mean_profile(arm_records(kernel, "dit", arm), "attention", "lag_profile")
            if profile is not None:
                ax.plot(np.arange(profile.size), profile / profile[0], style, ms=3, label=f"DiT {arm}")
        if gamma.size:
            ax.plot(np.arange(gamma.size), gamma, "k-", lw=2, label="|gamma(m)|")
        ax.set_title(kernel, fontsize=9)
        ax.set_xlabel("lag m = |i - j|")
        ax.set_ylabel("attention lag profile / value at m = 0")
        ax.legend(fontsize=7)
    figure.tight_layout()
    written["comparison_attention"] = save_atomic(figure, out / "comparison_attention.png")
    plt.close(figure)

    # 2. linear-response lag profiles
    figure, axes = plt.subplots(1, len(kernels), figsize=(5 * len(kernels), 3.6), squeeze=False)
    for ax, kernel in zip(axes[0], kernels, strict=True):
        exact = None
        for kind, arm, style in (("dit", "learned", "o-"), ("dit", "white", "s--"), ("dit", "no_position", "^:"),
                                 ("unet", "learned", "d-")):
            records = arm_records(kernel, kind, arm)
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
    figure.tight_layout()
    written["comparison_linear_response"] = save_atomic(figure, out / "comparison_linear_response.png")
    plt.close(figure)

    # 3. sample complexity
    figure, axes = plt.subplots(1, len(kernels), figsize=(5 * len(kernels), 3.8), squeeze=False)
    for ax, kernel in zip(axes[0], kernels, strict=True):
        sweep = results["kernels"][kernel]["sample_complexity"]
        sizes = np.asarray([row["n"] for row in sweep["sizes"]], dtype=np.float64)
        errors = np.asarray([row["score_error"] for row in sweep["sizes"]], dtype=np.float64)  # (sizes, seeds)
        for k in range(errors.shape[1]):
            ax.loglog(sizes, errors[:, k], "o", color="C0", ms=3, alpha=0.6,
                      label="held-out score error (per seed)" if k == 0 else None)
        ax.axhline(sweep["floor"]["score_error_mean"], color="C0", ls="--", lw=1, label="infinite-data floor")
        statistical = [[v for v in row["statistical_error"]] for row in sweep["sizes"]]
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
    figure.tight_layout()
    written["comparison_sample_complexity"] = save_atomic(figure, out / "comparison_sample_complexity.png")
    plt.close(figure)

    # 4. layer probes: best-matching GD iterate per block
    primary = results["kernels"][kernels[0]]
    figure, ax = plt.subplots(figsize=(5, 3.6))
    constructed = primary["constructions"].get("constructed_gd", {}).get("probes")
    curves = [("constructed (GD)", constructed)] + [(kind, probe) for kind, probe in primary["probes"].items()]
    for name, probe in curves:
        if probe:
            best = probe["best_iterate"]["gd"]
            ax.plot(np.arange(len(best)), best, "o-", ms=3,
                    label=f"{name} (error at the best k: {np.median(probe['best_error']['gd'][1:]):.2g} median)")
    ax.set_xlabel("residual stream b (0: after the input map)")
    ax.set_ylabel("best-matching GD iterate k*(b)")
    ax.set_title(f"layer probes, {kernels[0]}, t = {results['config']['probe_time']:g}", fontsize=9)
    ax.legend(fontsize=6)
    written["comparison_probes"] = save_atomic(figure, out / "comparison_probes.png")
    plt.close(figure)

    if results.get("sweeps"):
        written["sweeps"] = _sweeps_figure(plt, results["sweeps"], out / "sweeps.png")
    return written


def _read_tasks(folder: Path) -> dict:
    """``{name: result}`` of the cached task records of ``unroll.executor.run_tasks`` in ``folder``."""
    import json

    records = {}
    for path in sorted(Path(folder).glob("*.json")):
        records[path.stem] = json.loads(path.read_text(encoding="utf-8"))["result"]
    return records


def _sweeps_figure(plt: Any, sweeps: dict, path: Path) -> str:
    """One panel per sweep present (``"H"``, ``"size"``, ``"decay"`` of ``run_extra_sweeps``): held-out
    relative score error of the trained model and of the construction (all bands, same blocks)."""
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
    figure, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, labels, rows, model) in zip(axes[0], panels, strict=True):
        positions = np.arange(len(rows))
        ax.semilogy(positions, [r["score_error"] for r in rows], "o-", label=f"{model} (trained)")
        ax.semilogy(positions, [r["constructed_score_error"] for r in rows], "s--", label="constructed")
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("held-out relative score error")
        ax.legend(fontsize=7)
    figure.tight_layout()
    written = save_atomic(figure, path)
    plt.close(figure)
    return written
