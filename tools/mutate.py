"""Mutation testing of the core modules with mutmut (``make mutate``), and a per-module summary of its results.

    python tools/mutate.py run [FILE ...] [--jobs N]   # mutmut over FILE's mutants (default: every core module)
    python tools/mutate.py run --sample 60 [FILE ...]  # a seeded random sample of 60 mutants per file
    python tools/mutate.py summary [FILE ...]          # killed / survived / timeout per module, survivors listed

``run`` calls ``mutmut run --max-children N <mutant> ...`` once, with the unchecked mutants of all files, so a changed
file alone is ``python tools/mutate.py run unroll/construction/gd.py``. mutmut copies the tree to ``mutants/``
(git-ignored), records in one run of the default suite which tests call which function (``[tool.mutmut]`` in
pyproject.toml lists the files and the test selection), then runs for each mutant only the tests that called the
mutated function, fastest first (by the duration recorded in that run; :func:`mutmut_fastest_tests_first`), stopping at
the first failure. Results accumulate in ``mutants/**/*.meta``: a second ``run`` tests only the mutants not yet checked
(a changed function's are reset when mutmut regenerates them). ``summary`` reads those files; it needs no mutmut
import.

``run --sample N [--seed S]`` tests only a random sample of ``N`` of each file's not yet checked mutants
(``random.Random(S)``), for a quick estimate where the whole file would take hours; the draw is recorded in
``mutants/mutate-samples.json``. ``summary`` then estimates each partly checked file's score from the mutants checked
before the draw (a census) and the sample (the rest), with a 95% Wilson interval (:func:`stratified_estimate`); a file
checked only in mutmut's order, cheapest first, gets no estimate: those mutants are not a random sample.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from statistics import NormalDist
from typing import Any

try:
    import tomllib
except ImportError:  # Python 3.10: mutmut brings the toml package
    import toml as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
#: width of the module column: the longest core file name (unroll/construction/constructor.py)
NAME_WIDTH = 36
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
            out[path] = _read_meta(meta)["exit_code_by_key"]
    return out


def _read_meta(meta: Path, attempts: int = 20, wait: float = 0.1) -> dict:
    """One ``.meta`` file.  A running mutmut rewrites it in place after every mutant, so a read can catch it half
    written: read again (``attempts`` times, ``wait`` seconds apart) before calling it broken."""
    for _ in range(attempts - 1):
        try:
            return json.loads(meta.read_text())
        except json.JSONDecodeError:
            time.sleep(wait)
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError as error:
        raise SystemExit(f"mutate: {meta} is not valid JSON ({error}); if no mutmut is running, remove it and "
                         "run again") from None


def summary(files: list[str]) -> str:
    """A table of verdicts per module, the mutation score ``killed / (killed + survived)`` (timeouts count as
    killed), and the names of the survivors (``mutmut show NAME`` prints one's diff)."""
    found = results(files)
    draws = recorded_samples()
    header = (f"{'module':<{NAME_WIDTH}}" + "".join(f"{column:>13}" for column in COLUMNS) + f"{'score':>9}"
              + "  [whole-file estimate, 95% interval, where mutants are unchecked]")
    lines, survivors, total = [header], [], Counter()
    unsampled = False
    for path, codes in found.items():
        counts = Counter(_status(code) for code in codes.values())
        counts["other"] = sum(v for k, v in counts.items() if k not in COLUMNS)
        total.update({column: counts[column] for column in COLUMNS})
        estimate = stratified_estimate(codes, draws.get(path)) if counts["not checked"] else None
        unsampled |= bool(counts["not checked"]) and estimate is None
        lines.append(_row(path, counts, estimate))
        survivors += sorted(name for name, code in codes.items() if _status(code) == "survived")
    if len(found) > 1:
        lines.append(_row("all", total))
    if unsampled:
        lines.append("no estimate: mutants checked in mutmut's order (cheapest first) are not a random sample; "
                     "`run --sample N` draws one")
    missing = [path for path in files if path not in found]
    if missing:
        lines.append(f"not run yet: {', '.join(missing)}")
    lines.append(f"survivors ({len(survivors)}):")
    lines += [f"  {name}" for name in survivors]
    return "\n".join(lines)


def _row(name: str, counts: Counter, estimate: tuple[float, float, float] | None = None) -> str:
    """One table row: the score of the mutants checked, and the whole-file ``estimate`` where one is given."""
    killed = counts["killed"] + counts["timeout"]
    decided = killed + counts["survived"]
    score = f"{100.0 * killed / decided:.1f}%" if decided else "-"
    interval = ""
    if estimate is not None:
        value, low, high = estimate
        interval = f"  {100 * value:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
    return f"{name:<{NAME_WIDTH}}" + "".join(f"{counts[column]:>13}" for column in COLUMNS) + f"{score:>9}" + interval


def _kills(codes: dict[str, int | None], names: Any) -> tuple[int, int]:
    """``(killed, decided)`` over ``names`` (timeouts count as killed; no-tests and other verdicts are left out)."""
    statuses = [_status(codes.get(name)) for name in names]
    killed = sum(status in ("killed", "timeout") for status in statuses)
    return killed, killed + statuses.count("survived")


def stratified_estimate(codes: dict[str, int | None], draw: dict | None) -> tuple[float, float, float] | None:
    """The whole file's score from a census and a random sample: ``(estimate, low, high)``, or ``None``.

    ``draw`` (from ``run --sample``) holds the ``stratum``, the mutants unchecked when the sample was drawn, and the
    ``sample`` drawn from it.  The mutants checked outside the stratum are a census ``C``, known exactly; the
    stratum's kill rate is estimated by the sample's alone (mutants of the stratum checked later, in mutmut's order,
    are not random), with a 95% Wilson interval:
    ``(k_C + n_R p) / (n_C + n_R)`` for ``p`` the sample's rate and each end of its interval.  ``None`` without a
    draw, or when the record is stale (the mutants were regenerated: an unchecked mutant outside the stratum).
    """
    if draw is None:
        return None
    stratum = set(draw["stratum"])
    if any(code is None and name not in stratum for name, code in codes.items()) or not stratum <= set(codes):
        return None
    census_killed, census_decided = _kills(codes, (name for name in codes if name not in stratum))
    sample_killed, sample_decided = _kills(codes, draw["sample"])
    if sample_decided == 0:
        return None
    size = sum(_status(codes[name]) in ("killed", "timeout", "survived", "not checked") for name in stratum)
    total = census_decided + size
    rate = sample_killed / sample_decided
    low, high = wilson_interval(sample_killed, sample_decided)
    return tuple((census_killed + size * share) / total for share in (rate, low, high))  # type: ignore[return-value]


SAMPLES_FILE = "mutate-samples.json"


def recorded_samples() -> dict[str, dict]:
    """``{file: {"seed", "stratum", "sample"}}``: the latest draw of ``run --sample`` per file (``mutants/``)."""
    path = ROOT / "mutants" / SAMPLES_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def record_samples(draws: dict[str, dict]) -> None:
    """Add ``draws`` to the record (a file's new draw replaces its old one), written atomically."""
    # imported here, not at the top: the ``_mutmut`` process must not import ``unroll`` from the source tree before
    # mutmut puts its mutated copy first on the path
    from unroll._atomic import write_json_atomic

    path = ROOT / "mutants" / SAMPLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic({**recorded_samples(), **draws}, path)


def wilson_interval(killed: int, decided: int, z: float = NormalDist().inv_cdf(0.975)) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``killed / decided`` (``(0, 1)`` when nothing is decided)."""
    if decided == 0:
        return 0.0, 1.0
    share = killed / decided
    centre = (share + z * z / (2 * decided)) / (1 + z * z / decided)
    half = z * math.sqrt(share * (1 - share) / decided + z * z / (4 * decided * decided)) / (1 + z * z / decided)
    return max(0.0, centre - half), min(1.0, centre + half)


def sample_names(codes: dict[str, int | None], size: int, seed: int) -> list[str]:
    """``size`` names drawn without replacement from the not yet checked mutants of ``codes``, seeded."""
    unchecked = sorted(name for name, code in codes.items() if code is None)
    return sorted(random.Random(seed).sample(unchecked, min(size, len(unchecked))))


def _mutmut_path() -> str:
    mutmut = Path(sys.executable).with_name("mutmut")
    if not mutmut.exists():
        raise SystemExit("mutate: mutmut is not installed in this environment; pip install -e '.[mutate]'")
    return str(mutmut)


def _mutmut(args: list[str], jobs: int) -> int:
    """``mutmut run --max-children jobs args`` through :func:`mutmut_fastest_tests_first`, in a fresh process."""
    _mutmut_path()
    return subprocess.call([sys.executable, str(Path(__file__).resolve()), "_mutmut", "run", "--max-children",
                            str(jobs), *args], cwd=ROOT)


def fastest_first(tests: list[str], duration_by_test: dict[str, float]) -> list[str]:
    """``tests`` ordered by the duration mutmut recorded for each (fastest first; unknown ones last, by name)."""
    return sorted(tests, key=lambda test: (duration_by_test.get(test, math.inf), test))


def mutmut_fastest_tests_first(argv: list[str]) -> None:
    """Run mutmut's command line ``argv`` with each mutant's tests handed to pytest fastest first.

    mutmut 3.8 passes a mutant's tests to ``pytest -x`` in set order, so a mutant that one 0.1 s test kills can
    spend minutes in slow tests first; ordered by recorded duration it stops at the first cheap failure.  Only the
    order changes: the same tests run, and a survivor still runs all of them.  (This wraps mutmut's runner factory,
    ``mutmut.workers.isolation.get_mutant_runner``, as imported by ``mutmut.__main__``.)
    """
    import mutmut.__main__ as mutmut_main

    make_runner = mutmut_main.get_mutant_runner

    def runner_with_fastest_tests_first(max_workers: int = 1):  # type: ignore[no-untyped-def]
        runner = make_runner(max_workers)
        submit = runner.submit

        def submit_fastest_first(mutant_name: str, tests: list[str], cpu_time_limit: int,
                                 estimated_time: float) -> None:
            ordered = fastest_first(list(tests), mutmut_main.state().duration_by_test)
            submit(mutant_name, ordered, cpu_time_limit, estimated_time)

        runner.submit = submit_fastest_first
        return runner

    mutmut_main.get_mutant_runner = runner_with_fastest_tests_first
    mutmut_main.cli.main(args=argv, prog_name="mutmut")


def _generate(files: list[str], jobs: int) -> None:
    """Bring ``mutants/`` up to date with the source: mutmut generates every mutant (resetting the verdicts of the
    functions that changed, and recording which tests call what where needed) before it filters by name; a name
    that matches nothing stops it right after.  Its progress shows; its stderr (the AssertionError of the empty
    filter) only if a file got no mutants."""
    print("== generating mutants", flush=True)
    generation = subprocess.run([_mutmut_path(), "run", "--max-children", str(jobs),
                                 "generate-only.__no_such_mutant__"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    missing = [path for path in files if path not in results([path])]
    if missing:
        raise SystemExit(f"mutate: mutmut generated no mutants for {missing}:\n{generation.stderr}")


def run(files: list[str], jobs: int, sample: int | None = None, seed: int = 0) -> int:
    """mutmut over the not yet checked mutants of ``files`` (all of them, or a seeded ``sample`` per file).

    The names go to mutmut one by one: given patterns (``"<module>.*"``), mutmut 3.8 re-runs every mutant they
    match, checked or not, so a second run would start again from the beginning."""
    known = set(core_files())
    for path in files:
        if path not in known:
            raise SystemExit(f"mutate: {path} is not in [tool.mutmut] only_mutate of pyproject.toml: {sorted(known)}")
    _generate(files, jobs)
    found = results(files)
    if sample is not None:
        draws = {path: {"seed": seed, "stratum": sorted(name for name, code in codes.items() if code is None),
                        "sample": sample_names(codes, sample, seed)} for path, codes in found.items()}
        record_samples(draws)
        names = [name for draw in draws.values() for name in draw["sample"]]
        print(f"== mutmut over a sample of {len(names)} mutants ({sample} per file, seed {seed})", flush=True)
    else:
        # one mutmut run over all files: one clean-test run, and the cheapest mutants of every file first
        names = sorted(name for codes in found.values() for name, code in codes.items() if code is None)
        print(f"== mutmut over the {len(names)} unchecked mutants of {', '.join(files)}", flush=True)
    code = _mutmut(names, jobs) if names else 0
    if code != 0:
        print(f"mutate: mutmut exited with {code}", file=sys.stderr)
        return code
    print(summary(files))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("run", "summary"))
    parser.add_argument("files", nargs="*", help="core files such as unroll/construction/gd.py "
                        "(default: all of only_mutate)")
    parser.add_argument("--jobs", type=int, default=1, help="mutmut worker processes (default 1)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="run only a seeded random sample of N not yet checked mutants per file")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    args = parser.parse_intermixed_args(argv)  # `run --jobs 1 a.py b.py`: files after an option
    files = args.files or core_files()
    for path in files:
        module_name(path)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.sample is not None and args.sample < 1:
        parser.error(f"--sample must be >= 1, got {args.sample}")
    if args.command == "summary":
        print(summary(files))
        return 0
    return run(files, args.jobs, args.sample, args.seed)


if __name__ == "__main__":
    if sys.argv[1:2] == ["_mutmut"]:  # internal: mutmut itself, with the test order of mutmut_fastest_tests_first
        mutmut_fastest_tests_first(sys.argv[2:])
    sys.exit(main())
