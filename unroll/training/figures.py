"""Figures of the comparison (matplotlib is optional: imported inside the functions).

Each figure is written atomically: saved to a temporary file in the output folder, then renamed.
"""

from __future__ import annotations

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
        raise ImportError("figures need matplotlib: pip install 'unroll[plot]' (or matplotlib); "
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


def comparison_figures(out: str | os.PathLike, gp: Any, constructed_maps: Any, maps: dict, results: dict) -> dict:
    """Write the comparison figures into ``out``; returns ``{name: path}``."""
    plt = require_matplotlib()
    from unroll.training.attention import lag_profile

    out = Path(out)
    written = {}

    # 1. attention: ground truth, constructed heads, learned maps, controls
    band_heads = [(0, 0), (0, 3), (0, 6)]  # block 0: band-0 head, first heads of bands 1 and 2
    rows = [("ground truth", [(gp.temporal.numpy(), "Gamma = gamma(|i-j|)")] + [
        (constructed_maps.per_head[b, h].numpy(), f"constructed block {b} head {h}")
        for b, h in band_heads if h < constructed_maps.heads])]
    for kind in ("relu_transformer", "dit", "video"):
        if kind not in maps:
            continue
        entry = maps[kind]
        row = [(entry["correlation"].numpy(), "empirical temporal corr.")] if kind == "video" else []
        row += [(entry["learned"].total.numpy(), f"{kind}: learned (mean over blocks)"),
                (entry["white"].total.numpy(), f"{kind}: control, uncorrelated data"),
                (entry["init"].total.numpy(), f"{kind}: control, at init")]
        rows.append((kind, row))
    columns = max(len(r) for _, r in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(3.2 * columns, 3.0 * len(rows)), squeeze=False)
    for r, (_, row) in enumerate(rows):
        for c in range(columns):
            if c < len(row):
                _panel(axes[r, c], row[c][0], row[c][1])
            else:
                axes[r, c].axis("off")
    figure.suptitle(f"attention maps at t = {results['attention']['map_time']:g}")
    written["attention_maps"] = save_atomic(figure, out / "attention_maps.png")
    plt.close(figure)

    # 2. lag profiles (normalised to 1 at lag 0) against gamma
    figure, ax = plt.subplots(figsize=(5, 3.5))
    lags = np.arange(gp.frames)
    ax.plot(lags, gp.kernel(lags), "k-", lw=2, label="gamma(m)")
    for kind in ("relu_transformer", "dit"):
        if kind in maps:
            for key, style in (("learned", "-"), ("white", "--"), ("init", ":")):
                profile = lag_profile(maps[kind][key].total)
                ax.plot(lags, profile / profile[0], style, label=f"{kind} {key}")
    ax.set_xlabel("lag m = |i - j|")
    ax.set_ylabel("map lag profile / value at m = 0")
    ax.legend(fontsize=7)
    written["lag_profiles"] = save_atomic(figure, out / "lag_profiles.png")
    plt.close(figure)

    # 3. score error vs diffusion time per model
    figure, ax = plt.subplots(figsize=(5, 3.5))
    for name, entry in results["models"].items():
        times = [float(t) for t in entry["per_time"]]
        ax.loglog(times, list(entry["per_time"].values()), "o-", label=name)
    ax.set_xlabel("diffusion time t")
    ax.set_ylabel("relative score error")
    ax.legend(fontsize=7)
    written["score_errors"] = save_atomic(figure, out / "score_errors.png")
    plt.close(figure)

    # 4. n-sweep with the fitted line
    sweep = results.get("n_sweep")
    if sweep:
        figure, ax = plt.subplots(figsize=(5, 3.5))
        sizes = np.asarray(sweep["sizes"], dtype=np.float64)
        ax.loglog(sizes, sweep["score_error"], "o", label=f"{sweep['model']} (held-out)")
        fit = np.exp(sweep["intercept"]) * sizes ** sweep["slope"]
        low, high = sweep["slope_ci95"]
        ax.loglog(sizes, fit, "-", label=f"fit slope {sweep['slope']:.2f} [{low:.2f}, {high:.2f}]")
        ax.loglog(sizes, fit[0] * (sizes / sizes[0]) ** -0.5, "k:", label="slope -1/2")
        ax.set_xlabel("training-set size n")
        ax.set_ylabel("relative score error")
        ax.legend(fontsize=7)
        written["n_sweep"] = save_atomic(figure, out / "n_sweep.png")
        plt.close(figure)

    # 5. the H / model-size / decay sweeps: trained model beside the construction
    if results.get("sweeps"):
        written["sweeps"] = _sweeps_figure(plt, results["sweeps"], out / "sweeps.png")
    return written


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
