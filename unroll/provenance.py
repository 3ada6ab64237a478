"""Where a results file came from, and the run it describes rebuilt from it.

Every file the toolkit writes carries two records:

- ``provenance`` (:func:`provenance`): the package version; the torch, numpy, scipy and Python versions; the git
  commit and whether the checkout had uncommitted changes (``None`` when the package does not run from a git
  checkout); the command line; the UTC time (ISO 8601); torch's thread count; the host name.
- ``configuration``: the run's settings as fields, ``{"command": ..., "gp": GPSpec.to_dict(), ...}`` (family,
  ``nu``, ``ell``, ``H``, ``d``, Sigma's kind with its seed and condition or its correlation, and per command
  ``J``, ``L``, ``t``, mode, dtype and every seed).

:func:`rebuild` turns a results file (or its parsed dict) back into the GP and, where the command builds one, the
model.  Two runs of the same command with the same seeds write files that differ only in :data:`VOLATILE_FIELDS`.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["VOLATILE_FIELDS", "GIT_TIMEOUT_SECONDS", "provenance", "git_state", "Rebuilt", "rebuild",
           "rebuild_row", "load_results", "strip_volatile", "TABLE_COMMENT"]

#: the fields that differ between two runs of the same command with the same seeds: the time of the run (a dotted
#: path from the top) and, at any depth, the wall-clock timings: every key ``seconds`` or ending in ``_seconds``
#: (``seconds`` of ``unroll train`` and of each training of ``unroll compare``, ``timings_seconds`` of
#: ``unroll compare``, ``runtime_seconds`` of ``unroll verify``, ``seconds`` of ``unroll sweep``)
VOLATILE_FIELDS = ("provenance.timestamp_utc", "seconds", "*_seconds")
#: git is asked at most this long (a hung filesystem must not hang a run)
GIT_TIMEOUT_SECONDS = 5.0
#: the prefix of the header lines of a tab-separated table that hold its provenance and configuration
TABLE_COMMENT = "# "


def _git(arguments: Sequence[str], folder: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *arguments], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_state(package_folder: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the checkout the package runs from, or ``None`` (no git, not a
    checkout, or a git repository that does not hold this package, e.g. a virtual environment inside one).

    ``dirty``: tracked files differ from the commit (``git status --porcelain --untracked-files=no``).
    """
    folder = Path(__file__).resolve().parent if package_folder is None else package_folder
    top = _git(["rev-parse", "--show-toplevel"], folder)
    if top is None or _git(["ls-files", "--error-unmatch", str(folder / "__init__.py")], folder) is None:
        return None
    commit = _git(["rev-parse", "HEAD"], folder)
    status = _git(["status", "--porcelain", "--untracked-files=no"], Path(top))
    if commit is None:
        return None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance(command_line: Sequence[str] | None = None) -> dict[str, Any]:
    """The provenance record of a file written now (module docstring).

    Args:
        command_line: the command that ran (default ``sys.argv``); ``unroll.cli.main`` passes
            ``["unroll", *argv]``.
    """
    import numpy
    import scipy
    import torch

    from unroll import __version__

    return {"package": "unroll", "version": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "git": git_state(), "command": list(sys.argv if command_line is None else command_line),
            "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "threads": torch.get_num_threads(), "hostname": socket.gethostname()}


def _is_timing(key: Any) -> bool:
    return isinstance(key, str) and any(fnmatch.fnmatchcase(key, pattern) for pattern in VOLATILE_FIELDS
                                        if "." not in pattern)


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_timings(item) for key, item in value.items() if not _is_timing(key)}
    if isinstance(value, list):
        return [_without_timings(item) for item in value]
    return value


def strip_volatile(record: Any) -> Any:
    """A copy of a results dict without :data:`VOLATILE_FIELDS`: the dotted paths from the top level, and the
    timing keys at any depth."""
    out = _without_timings(record)
    for path in (pattern for pattern in VOLATILE_FIELDS if "." in pattern):
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    return out


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """A results file as a dict: JSON as it is; a tab-separated table of ``unroll sweep`` as
    ``{"provenance", "configuration", "rows"}`` (its ``# key: json`` header lines, then its rows as strings)."""
    text = Path(path).read_text(encoding="utf-8")
    if not str(path).endswith(".tsv"):
        return json.loads(text)
    out: dict[str, Any] = {}
    lines = text.splitlines()
    while lines and lines[0].startswith(TABLE_COMMENT):
        key, _, value = lines.pop(0)[len(TABLE_COMMENT):].partition(": ")
        out[key] = json.loads(value)
    columns = lines[0].split("\t") if lines else []
    out["rows"] = [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[1:]]
    return out


@dataclass
class Rebuilt:
    """What :func:`rebuild` returns: the GP of the run (``None`` for video data, whose frames are not a GP), the
    model the run built (``None`` where it builds none; for ``train`` the untrained network with the recorded
    architecture and seed, for ``compare`` the construction with plain GD steps) and the configuration record."""

    gp: Any
    model: Any
    configuration: dict[str, Any]


def _construction(gp: Any, construction: dict[str, Any]) -> Any:
    import torch

    from unroll.construction.constructor import construct_unrolled

    dtype = getattr(torch, construction["dtype"])
    if construction["mode"] == "softmax":
        from unroll.construction.softmax import construct_softmax

        return construct_softmax(gp, blocks=construction["blocks"], paper_knots=construction["knots"],
                                 paper_range=construction["range"], dtype=dtype)
    return construct_unrolled(gp, blocks=construction["blocks"], bands=construction["bands"],
                              mode=construction["mode"], taper=construction["taper"],
                              steps=construction["steps"], looped=construction["looped"],
                              paper_knots=construction["knots"], paper_range=construction["range"],
                              frame_frequency=construction["frame_frequency"], dtype=dtype)


def _value(text: Any, kind: type) -> Any:
    """A table cell (a string once read back) as ``kind``; ``"None"`` is ``None``."""
    if not isinstance(text, str):
        return text
    return None if text == "None" else kind(text)


def rebuild_row(row: dict[str, Any]) -> tuple[Any, Any]:
    """``(gp, model)`` of one row of an ``unroll sweep`` table: the GP of its family, ``nu``, ``ell``, ``period``,
    ``H`` and Sigma, and the construction of its ``J``, ``L``, taper, mode, steps and knots."""
    import torch

    from unroll.construction.constructor import construct_unrolled
    from unroll.data.gp import GaussianProcess
    from unroll.data.kernels import kernel_from_name

    kernel = kernel_from_name(row["family"], nu=_value(row.get("nu"), float), ell=_value(row["ell"], float),
                              period=_value(row.get("period"), float))
    sigma = torch.tensor(json.loads(row["Sigma"]), dtype=torch.float64)
    gp = GaussianProcess(kernel, _value(row["H"], int), sigma).validate()
    model = construct_unrolled(gp, blocks=_value(row["L"], int), bands=_value(row["J"], int), mode=row["mode"],
                               taper=_value(row["taper"], str), steps=row.get("steps", "gd"),
                               paper_knots=_value(row.get("knots", 257), int))
    return gp, model


def rebuild(results: dict[str, Any] | str | os.PathLike, row: int = 0) -> Rebuilt:
    """The GP and the model of the run that wrote ``results`` (a results file's path or its parsed dict).

    ``verify``: the GP and the constructed transformer; ``bounds``: the GP (no model); ``train``: the GP (``None``
    for video) and the untrained network of the recorded architecture seeded as the run seeded it; ``compare``:
    the primary kernel's GP and its construction (``construct_blocks`` blocks, plain GD); ``sweep`` (a table):
    the GP and the construction of row ``row`` (:func:`rebuild_row`).  Raises ``ValueError`` for a file without a
    ``configuration`` record.
    """
    record = results if isinstance(results, dict) else load_results(results)
    configuration = record.get("configuration")
    if not isinstance(configuration, dict) or "command" not in configuration:
        raise ValueError("results has no configuration record (written by an older unroll, or not by unroll)")
    from unroll.data.gp_spec import GPSpec

    command = configuration["command"]
    if command == "sweep":
        rows = record.get("rows", [])
        if not 0 <= row < len(rows):
            raise ValueError(f"row must satisfy 0 <= row < {len(rows)} (the table's rows), got {row}")
        gp, model = rebuild_row(rows[row])
        return Rebuilt(gp=gp, model=model, configuration=configuration)
    gp = None if configuration.get("gp") is None else GPSpec.from_dict(configuration["gp"]).build()
    model = None
    if command == "verify":
        model = _construction(gp, configuration["construction"])
    elif command == "train":
        from unroll.experiments.models import build_model
        from unroll.experiments.trainer import seeded_model

        options, shape = configuration["model_options"], configuration["data_shape"]
        model = seeded_model(lambda: build_model(configuration["model"], shape[0], shape[1], **options),
                             configuration["seed"])
    elif command == "compare":
        from unroll.construction.constructor import construct_unrolled

        model = construct_unrolled(gp, blocks=configuration["construct_blocks"], bands=configuration["bands"],
                                   steps="gd")
    elif command not in ("bounds", "demo"):
        raise ValueError(f"configuration.command must be verify, bounds, demo, train, compare or sweep, got "
                         f"{command!r}")
    return Rebuilt(gp=gp, model=model, configuration=configuration)
