"""Mutation testing of the core modules with mutmut (``make mutate``), and a per-module summary of its results.

    python tools/mutate.py run [FILE ...] [--jobs N]   # mutmut over FILE's mutants (default: every core module)
    python tools/mutate.py summary [FILE ...]          # killed / survived / timeout per module, survivors listed

``run`` calls ``mutmut run --max-children N "<module>.*"`` once per file, so a changed file alone is
``python tools/mutate.py run unroll/construction/gd.py``.  mutmut copies the tree to ``mutants/`` (git-ignored), records
in one run of the default suite which tests call which function (``[tool.mutmut]`` in pyproject.toml lists the files and
the test selection), then runs for each mutant only the tests that called the mutated function, stopping at the first
failure.  Results accumulate in ``mutants/**/*.meta``: a second ``run`` only tests what changed. ``summary`` reads those
files; it needs no mutmut import.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: mutmut brings the toml package
    import toml as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
#: mutmut's exit-code meanings (mutmut/stats.py): 1 and 3 are test failures, i.e. a killed mutant
STATUS_BY_EXIT_CODE = {None: "not checked", 0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests",
                       34: "skipped", 36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
                       37: "caught by type check", -11: "segfault", -9: "segfault"}
COLUMNS = ("killed", "survived", "timeout", "no tests", "not checked", "other")


def core_files() -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` of pyproject.toml names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def module_name(path: str) -> str:
    """``unroll/construction/gd.py`` -> ``unroll.construction.gd`` (the prefix of its mutants' names)."""
    relative = Path(path)
    if relative.suffix != ".py" or relative.is_absolute():
        raise SystemExit("mutate: expected a relative path to a .py file such as unroll/construction/gd.py, "
                         f"got {path!r}")
    return ".".join(relative.with_suffix("").parts)


def _status(code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(code, "other")


def results(files: list[str]) -> dict[str, dict[str, int | None]]:
    """``{file: {mutant name: exit code}}`` from ``mutants/<file>.meta`` (files never run are left out)."""
    out = {}
    for path in files:
        meta = ROOT / "mutants" / f"{path}.meta"
        if meta.exists():
            out[path] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def summary(files: list[str]) -> str:
    """A table of verdicts per module, the mutation score ``killed / (killed + survived)`` (timeouts count as
    killed), and the names of the survivors (``mutmut show NAME`` prints one's diff)."""
    found = results(files)
    header = f"{'module':<24}" + "".join(f"{column:>13}" for column in COLUMNS) + f"{'score':>9}"
    lines, survivors, total = [header], [], Counter()
    for path, codes in found.items():
        counts = Counter(_status(code) for code in codes.values())
        counts["other"] = sum(v for k, v in counts.items() if k not in COLUMNS)
        total.update({column: counts[column] for column in COLUMNS})
        lines.append(_row(path, counts))
        survivors += sorted(name for name, code in codes.items() if _status(code) == "survived")
    if len(found) > 1:
        lines.append(_row("all", total))
    missing = [path for path in files if path not in found]
    if missing:
        lines.append(f"not run yet: {', '.join(missing)}")
    lines.append(f"survivors ({len(survivors)}):")
    lines += [f"  {name}" for name in survivors]
    return "\n".join(lines)


def _row(name: str, counts: Counter) -> str:
    decided = counts["killed"] + counts["timeout"] + counts["survived"]
    score = f"{100.0 * (counts['killed'] + counts['timeout']) / decided:.1f}%" if decided else "-"
    return f"{name:<24}" + "".join(f"{counts[column]:>13}" for column in COLUMNS) + f"{score:>9}"


def run(files: list[str], jobs: int) -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit("mutate: mutmut is not installed in this environment; pip install -e '.[mutate]'")
    known = set(core_files())
    for path in files:
        if path not in known:
            raise SystemExit(f"mutate: {path} is not in [tool.mutmut] only_mutate of pyproject.toml: {sorted(known)}")
        print(f"== mutmut over {path}", flush=True)
        code = subprocess.call([str(mutmut), "run", "--max-children", str(jobs), f"{module_name(path)}.*"], cwd=ROOT)
        if code != 0:
            print(f"mutate: mutmut exited with {code} on {path}", file=sys.stderr)
            return code
    print(summary(files))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "summary"))
    parser.add_argument("files", nargs="*", help="core files such as unroll/construction/gd.py "
                        "(default: all of only_mutate)")
    parser.add_argument("--jobs", type=int, default=1, help="mutmut worker processes (default 1)")
    args = parser.parse_intermixed_args(argv)  # `run --jobs 1 a.py b.py`: files after an option
    files = args.files or core_files()
    for path in files:
        module_name(path)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.command == "summary":
        print(summary(files))
        return 0
    return run(files, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
