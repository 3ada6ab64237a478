"""Measured vs bound over many configurations: a grid sweep (table + figure) and a hypothesis-driven run.

* :func:`grid_sweep` — every combination of (family, nu, ell, H, J, L, t) in a grid: construct, verify,
  one row per configuration with each part's measured value, bound and slack (``bound/measured``);
  :func:`write_table` writes it as TSV and :func:`write_figure` (when matplotlib is installed) draws
  measured against bound per part — both atomically (temporary file in the same directory, then
  ``os.replace``).
* :func:`property_run` — the same rows for ``max_examples`` hypothesis-drawn configurations
  (``unroll.testing.configurations``), with wall time; :func:`slack_summary` gives min/median/max of the
  slack per part.

Every row carries its whole configuration (family, ``nu``, ``ell``, ``H``, ``d``, ``J``, ``L``, ``t``, taper, mode,
steps, dtype, batch, the data's seed and Sigma itself as JSON), and a table's header lines (``# provenance: {...}``,
``# configuration: {...}``) the provenance of the run (``unroll.provenance``); ``unroll.provenance.rebuild(path,
row=k)`` rebuilds row ``k``'s GP and model.  Both loops show a progress bar (``progress=False`` silences it).

Command line: ``unroll sweep --examples 200 --out runs/bounds`` (property run; ``--grid`` adds the grid);
``python -m theory.sweep`` is the same command.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from theory.check import check
from unroll._atomic import atomic_write

__all__ = ["grid_sweep", "property_run", "slack_summary", "write_table", "write_figure", "row_from_report",
           "matrix_text"]

PARTS = ("gd", "trunc", "net", "total")


def matrix_text(matrix: torch.Tensor) -> str:
    """A matrix as JSON, every entry exact (``repr`` of the float64): Sigma in a table row."""
    return json.dumps([[float(value) for value in row] for row in matrix.tolist()])


def _bar(total: int, description: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="config", disable=not enabled, leave=False)


def row_from_report(report: Any, **fields: Any) -> dict[str, Any]:
    """One table row: the configuration ``fields`` plus ``<part>_measured``, ``_bound``, ``_slack``,
    ``_holds`` for every part."""
    row = dict(fields)
    for name in PARTS:
        part = report.parts[name]
        result = check(part.bound, part.measured)
        row[f"{name}_measured"] = part.measured
        row[f"{name}_bound"] = result.bound
        row[f"{name}_slack"] = result.slack
        row[f"{name}_holds"] = result.holds
    return row


def grid_sweep(families: Sequence[str] = ("gamma-exponential", "matern", "polynomial", "logarithmic"),
               nus: Iterable[float] = (0.5, 1.5), ells: Iterable[float] = (2.0,), frames: Iterable[int] = (8, 16),
               bands: Iterable[int] = (2, 6), blocks: Iterable[int] = (5, 20), times: Iterable[float] = (0.1, 1.0),
               taper: str | None = "triangular", mode: str = "exact", dim: int = 4, seed: int = 0,
               batch: int = 2, spatial: Any = None, progress: bool = True) -> list[dict[str, Any]]:
    """Construct and verify every grid point; configurations the constructor refuses get a row with
    ``error`` set (and no measurements).

    Sigma is ``spatial`` (an ``unroll.data.gp_spec.GPSpec`` whose Sigma fields are used; default the random Sigma of
    ``GPSpec(dim=dim, spatial_seed=seed)``, ``unroll verify``'s); ``dim`` is ignored when ``spatial`` is given.
    ``seed`` also seeds the data of every grid point.
    """
    from unroll.construction.constructor import construct_unrolled
    from unroll.data.gp import GaussianProcess
    from unroll.data.gp_spec import GPSpec
    from unroll.data.kernels import kernel_from_name
    from unroll.verification import verify

    spec = GPSpec(dim=dim, spatial_seed=seed) if spatial is None else spatial
    sigma = spec.spatial_covariance()
    sigma_fields = {key: value for key, value in spec.to_dict().items() if key.startswith("spatial")}
    grid = list(itertools.product(families, nus, ells, frames, bands, blocks, times))
    rows = []
    with _bar(len(grid), "grid", progress) as bar:
        for family, nu, ell, h, j, steps, t in grid:
            nu_value = min(nu, 2.0) if family == "gamma-exponential" else nu
            fields = dict(family=family, nu=nu_value, ell=ell, H=h, d=spec.dim, J=min(j, h - 1), L=steps, t=t,
                          taper=taper, mode=mode, steps="gd", dtype="float64", batch=batch, seed=seed,
                          **sigma_fields, Sigma=matrix_text(sigma), error="")
            gp = GaussianProcess(kernel_from_name(family, nu=nu_value, ell=ell), h, sigma)
            try:
                model = construct_unrolled(gp, blocks=steps, bands=min(j, h - 1), mode=mode, taper=taper)
                report = verify(gp, model, t, generator=torch.Generator().manual_seed(seed), batch=batch)
            except ValueError as error:
                rows.append({**fields, "error": str(error).split(";")[0]})
            else:
                rows.append(row_from_report(report, **fields))
            bar.update()
    return rows


def property_run(max_examples: int = 200, seed: int = 0, progress: bool = True,
                 **strategy_kwargs: Any) -> tuple[list[dict[str, Any]], float]:
    """Verify ``max_examples`` hypothesis-drawn configurations satisfying the assumptions.

    Returns ``(rows, seconds)``.  ``seed`` seeds hypothesis; ``strategy_kwargs`` go to
    ``unroll.testing.configurations``.  The data of every configuration are drawn with seed 0 (``data_seed``).
    """
    try:
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis import seed as hypothesis_seed
    except ImportError as error:
        raise ImportError("theory.sweep.property_run needs hypothesis: pip install 'unroll-gp[testing]' "
                          f"(hypothesis could not be imported: {error})") from error

    from unroll.testing import configurations

    rows: list[dict[str, Any]] = []

    @hypothesis_seed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate,))
    @given(configurations(**strategy_kwargs))
    def collect(drawn: Any) -> None:
        report = drawn.verify(seed=0)
        kernel = drawn.gp.kernel
        damped = kernel.name == "damped-cosine"
        rows.append(row_from_report(report, family=kernel.name, nu=None if damped else kernel.nu, ell=kernel.ell,
                                    period=kernel.period if damped else None, H=drawn.gp.frames, d=drawn.gp.dim,
                                    J=drawn.bands, L=drawn.blocks, t=drawn.diffusion_time, taper=drawn.taper,
                                    mode=drawn.mode, steps=drawn.steps, knots=drawn.paper_knots, dtype="float64",
                                    batch=drawn.batch, seed=0, Sigma=matrix_text(drawn.gp.spatial), error=""))
        bar.update()

    start = time.perf_counter()
    with _bar(max_examples, "property run", progress) as bar:
        collect()
    return rows, time.perf_counter() - start


def slack_summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per part: ``min``, ``median``, ``max`` of the slack (finite, measured > 0), count, violations."""
    summary = {}
    for name in PARTS:
        slacks = np.array([r[f"{name}_slack"] for r in rows if f"{name}_slack" in r], dtype=np.float64)
        finite = slacks[np.isfinite(slacks)]
        summary[name] = {
            "count": int(slacks.size),
            "finite": int(finite.size),
            "min": float(finite.min()) if finite.size else math.nan,
            "median": float(np.median(finite)) if finite.size else math.nan,
            "max": float(finite.max()) if finite.size else math.nan,
            "violations": int(sum(1 for r in rows if f"{name}_holds" in r and not r[f"{name}_holds"])),
        }
    return summary


def write_table(rows: Sequence[dict[str, Any]], path: str, configuration: dict[str, Any] | None = None,
                command_line: Sequence[str] | None = None) -> None:
    """Write the rows as a tab-separated table (atomically), after the header lines ``# provenance: {json}``
    (``unroll.provenance.provenance(command_line)``) and ``# configuration: {json}`` (``configuration``, default
    ``{"command": "sweep"}``); ``unroll.provenance.load_results`` reads it back."""
    from unroll.provenance import TABLE_COMMENT, provenance

    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    header = {"provenance": provenance(command_line), "configuration": configuration or {"command": "sweep"}}

    def write(temporary: str) -> None:
        with open(temporary, "w") as stream:
            for key, value in header.items():
                stream.write(f"{TABLE_COMMENT}{key}: {json.dumps(value, default=str)}\n")
            stream.write("\t".join(columns) + "\n")
            for row in rows:
                stream.write("\t".join(_fmt(row.get(c, "")) for c in columns) + "\n")

    atomic_write(path, write)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: every float exact, the row rebuildable


def write_figure(rows: Sequence[dict[str, Any]], path: str) -> bool:
    """Measured vs bound per part (log-log, the diagonal = bound attained); ``False`` without matplotlib."""
    try:
        from matplotlib.figure import Figure  # no pyplot, no backend switch: a caller's backend stays in force
    except ImportError:
        return False
    figure = Figure(figsize=(4 * len(PARTS), 4), layout="constrained")
    axes = figure.subplots(1, len(PARTS))
    for axis, name in zip(axes, PARTS, strict=True):
        pairs = [(r[f"{name}_measured"], r[f"{name}_bound"]) for r in rows
                 if f"{name}_measured" in r and r[f"{name}_measured"] > 0 and math.isfinite(r[f"{name}_bound"])]
        if pairs:
            measured, bound = np.array(pairs).T
            axis.loglog(measured, bound, ".", alpha=0.6)
            low, high = min(measured.min(), bound.min()), max(measured.max(), bound.max())
            axis.loglog([low, high], [low, high], "k--", lw=0.8, label="bound = measured")
        axis.set_title(f"E_{name}")
        axis.set_xlabel("measured")
        axis.set_ylabel("bound")
    axes[0].legend()
    from unroll.provenance import provenance

    metadata = {"provenance": json.dumps(provenance())}
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110, metadata=metadata))
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m theory.sweep ARGS``: the same as ``unroll sweep ARGS`` (``unroll.cli.sweep``)."""
    import sys

    from unroll.cli import main as unroll_main

    return unroll_main(["sweep", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
