"""Measured vs bound over many configurations: a grid sweep (table + figure) and a hypothesis-driven run.

* :func:`grid_sweep` — every combination of (family, nu, ell, H, J, L, t) in a grid: construct, verify,
  one row per configuration with each part's measured value, bound and slack (``bound/measured``);
  :func:`write_table` writes it as TSV and :func:`write_figure` (when matplotlib is installed) draws
  measured against bound per part — both atomically (temporary file in the same directory, then
  ``os.replace``).
* :func:`property_run` — the same rows for ``max_examples`` hypothesis-drawn configurations
  (``unroll.testing.configurations``), with wall time; :func:`slack_summary` gives min/median/max of the
  slack per part.

Command line: ``python -m theory.sweep --examples 200 --out runs/bounds`` (property run + grid).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from theory.check import check
from unroll._atomic import atomic_write

__all__ = ["grid_sweep", "property_run", "slack_summary", "write_table", "write_figure", "row_from_report"]

PARTS = ("gd", "trunc", "net", "total")


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
               taper: str | None = "triangular", mode: str = "exact", dim: int = 2, seed: int = 0,
               batch: int = 2) -> list[dict[str, Any]]:
    """Construct and verify every grid point; configurations the constructor refuses get a row with
    ``error`` set (and no measurements)."""
    from unroll.constructor import construct_unrolled
    from unroll.gp import GaussianProcess
    from unroll.kernels import kernel_from_name
    from unroll.verification import verify

    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    sigma = (q * torch.linspace(1.0, 3.0, dim, dtype=torch.float64)) @ q.T
    rows = []
    for family, nu, ell, h, j, steps, t in itertools.product(families, nus, ells, frames, bands, blocks, times):
        nu_value = min(nu, 2.0) if family == "gamma-exponential" else nu
        fields = dict(family=family, nu=nu_value, ell=ell, H=h, J=min(j, h - 1), L=steps, t=t, taper=taper,
                      mode=mode, error="")
        gp = GaussianProcess(kernel_from_name(family, nu=nu_value, ell=ell), h, sigma)
        try:
            model = construct_unrolled(gp, blocks=steps, bands=min(j, h - 1), mode=mode, taper=taper)
            report = verify(gp, model, t, generator=torch.Generator().manual_seed(seed), batch=batch)
        except ValueError as error:
            rows.append({**fields, "error": str(error).split(";")[0]})
            continue
        rows.append(row_from_report(report, **fields))
    return rows


def property_run(max_examples: int = 200, seed: int = 0, **strategy_kwargs: Any) -> tuple[list[dict[str, Any]], float]:
    """Verify ``max_examples`` hypothesis-drawn configurations satisfying the assumptions.

    Returns ``(rows, seconds)``.  ``strategy_kwargs`` go to ``unroll.testing.configurations``.
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
        report = drawn.verify()
        kernel = drawn.gp.kernel
        rows.append(row_from_report(report, family=kernel.name, nu=kernel.nu, ell=kernel.ell, H=drawn.gp.frames,
                                    d=drawn.gp.dim, J=drawn.bands, L=drawn.blocks, t=drawn.diffusion_time,
                                    taper=drawn.taper, mode=drawn.mode, error=""))

    start = time.perf_counter()
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


def write_table(rows: Sequence[dict[str, Any]], path: str) -> None:
    """Write the rows as a tab-separated table (atomically)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]

    def write(temporary: str) -> None:
        with open(temporary, "w") as stream:
            stream.write("\t".join(columns) + "\n")
            for row in rows:
                stream.write("\t".join(_fmt(row.get(c, "")) for c in columns) + "\n")

    atomic_write(path, write)


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def write_figure(rows: Sequence[dict[str, Any]], path: str) -> bool:
    """Measured vs bound per part (log-log, the diagonal = bound attained); ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, len(PARTS), figsize=(4 * len(PARTS), 4))
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
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="exact", help="comma-separated: exact,paper")
    parser.add_argument("--out", default="runs/bounds")
    parser.add_argument("--grid", action="store_true", help="also run the grid sweep")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # many tiny matmuls: threads only contend on a shared machine
    modes = tuple(args.modes.split(","))
    rows, seconds = property_run(args.examples, args.seed, modes=modes)
    print(f"property run: {len(rows)} examples in {seconds:.1f} s (modes {modes})")
    for name, stats in slack_summary(rows).items():
        print(f"  {name:<6} slack min {stats['min']:.3g}  median {stats['median']:.3g}  max {stats['max']:.3g}  "
              f"(finite {stats['finite']}/{stats['count']}, violations {stats['violations']})")
    write_table(rows, os.path.join(args.out, "property_run.tsv"))
    if args.grid:
        grid = grid_sweep()
        write_table(grid, os.path.join(args.out, "grid.tsv"))
        drew = write_figure(grid, os.path.join(args.out, "grid.png"))
        print(f"grid: {len(grid)} rows -> {args.out}/grid.tsv{' and grid.png' if drew else ''}")
        for name, stats in slack_summary([r for r in grid if not r["error"]]).items():
            print(f"  grid {name:<6} slack min {stats['min']:.3g}  median {stats['median']:.3g}  "
                  f"max {stats['max']:.3g}  violations {stats['violations']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
