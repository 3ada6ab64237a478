"""Bad input on the command line: every sub-command's options with bad values, called in-process through
``unroll.cli.main``.

Each case must end with a non-zero exit code from the documented table (``unroll.cli.failures.EXIT_CODES``) and
the expected one for its class, exactly one line on stderr that starts ``unroll <command>: error:`` and names the
option, and no exception escaping ``main``.  The work itself (building a GP, training, comparing, drawing) is
replaced by a tripwire, so a bad value that slipped through validation fails the test instead of starting a run;
the memory limit is checked against a fixed 8 GiB so that the cases do not depend on the machine.  A few tiny
valid runs at the end show that good input still works.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unroll.cli import main
from unroll.cli.failures import EXIT_CODES
from unroll.cli.options import COUNT_MAX
from unroll.cli.resources import core_count

DOCUMENTED = {code for code, _ in EXIT_CODES} - {0, 1}
GIB = 2**30
PROC = Path("/proc")


REQUIRE_MATPLOTLIB = importlib.import_module("unroll.cli.figures")._require_matplotlib


class ReachedWork(BaseException):
    """Raised by the tripwire: a bad value reached the work (not an ``Exception``, so ``main`` does not catch it)."""


def _tripwire(*args, **kwargs):
    raise ReachedWork("a bad value passed validation and reached the work")


@pytest.fixture
def no_work(monkeypatch):
    """Replace every command's work by the tripwire, and fix the memory available at 8 GiB."""
    import theory.sweep
    import unroll.cli.bounds
    import unroll.cli.demo
    import unroll.cli.figures
    import unroll.cli.resources
    import unroll.cli.train
    import unroll.cli.verify
    import unroll.experiments.compare
    import unroll.experiments.video
    import unroll.figures.gallery

    for module in (unroll.cli.demo, unroll.cli.verify, unroll.cli.bounds, unroll.cli.train):
        monkeypatch.setattr(module, "gp_from_arguments", _tripwire)
    for name in ("make_gp", "run_comparison"):
        monkeypatch.setattr(unroll.experiments.compare, name, _tripwire)
    monkeypatch.setattr(unroll.experiments.video, "moving_ball_video", _tripwire)
    for name in ("property_run", "grid_sweep"):
        monkeypatch.setattr(theory.sweep, name, _tripwire)
    for name in ("generate_figures", "comparison_figures_from"):
        monkeypatch.setattr(unroll.figures.gallery, name, _tripwire)
    monkeypatch.setattr(unroll.cli.figures, "_require_matplotlib", lambda: None)  # the cases hold without it
    monkeypatch.setattr(unroll.cli.resources, "available_memory", lambda: (8 * GIB, "test"))


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``main(argv)`` -> ``(exit code, stdout, stderr)``; any exception escaping ``main`` fails the test."""
    capsys.readouterr()
    try:
        code = main(argv)
    except ReachedWork:
        raise
    except BaseException as error:  # noqa: BLE001 - the property under test: nothing escapes main
        pytest.fail(f"main({argv}) raised {type(error).__name__}: {error}")
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_failure(argv: list[str], capsys, expected: int, names: str) -> str:
    """Run ``argv``; check the exit code, the single stderr line and that it names ``names``; return the line."""
    code, _, err = run_cli(argv, capsys)
    lines = err.splitlines()
    assert len(lines) == 1, f"{argv}: stderr must be one line, got {err!r}"
    line = lines[0]
    assert line.startswith(f"unroll {argv[0]}: error: "), line
    assert "Traceback" not in err
    assert code in DOCUMENTED, f"{argv}: exit code {code} is not in the documented table"
    assert code == expected, f"{argv}: expected exit code {expected}, got {code}: {line}"
    assert names in line, f"{argv}: the message does not name {names!r}: {line}"
    return line


# --------------------------------------------------------------------------- the grid
#: minimal valid arguments of each command (the option under test is appended; later options override)
BASE = {
    "demo": ["demo"],
    "verify": ["verify"],
    "bounds": ["bounds"],
    "train": ["train", "--model", "dit", "--out", "{tmp}/train"],
    "compare": ["compare", "--quick", "--out", "{tmp}/compare"],
    "figures": ["figures", "--out", "{tmp}/figures"],
    "sweep": ["sweep", "--out", "{tmp}/sweep"],
}

INTEGER_OPTIONS = {  # option -> (commands, the smallest allowed value)
    "--frames": (("demo", "verify", "bounds"), 1),
    "--dim": (("demo", "verify", "bounds", "train", "compare", "sweep"), 1),
    "--batch": (("demo", "verify"), 1),
    "--seed": (("demo", "verify", "bounds", "train", "compare", "figures", "sweep"), 0),
    "--spatial-seed": (("demo", "verify", "bounds", "train", "compare", "sweep"), 0),
    "--examples": (("sweep",), 1),
    "--bands": (("verify", "bounds"), 0),
    "--blocks": (("verify", "bounds"), 1),
    "--knots": (("verify",), 3),
    "--threads": (("verify", "train", "sweep"), 1),
    "--image-size": (("train",), 2),
    "--train-size": (("train", "compare"), 1),
    "--steps": (("train", "compare"), 1),
    "--batch-size": (("train",), 1),
    "--workers": (("compare",), 0),
    "--train-steps": (("figures",), 1),
}
#: options with an upper limit of their own: a value just above it (``None``: the machine's cores)
INTEGER_MAXIMA = {"--seed": 2**32, "--spatial-seed": 2**32, "--threads": COUNT_MAX + 1,
                  "--workers": COUNT_MAX + 1, "--image-size": 65}
TRAIN_FRAMES = (("train", "compare"), 2)  # --frames of train/compare: 2 <= H <= 256

REAL_OPTIONS = {  # option -> (commands, value just above the maximum or None, zero allowed?)
    "--nu": (("demo", "verify", "bounds", "train", "compare"), None, False),
    "--ell": (("demo", "verify", "bounds", "train", "compare"), None, False),
    "--period": (("demo", "verify", "bounds", "compare"), None, False),
    "--spatial-condition": (("demo", "verify", "bounds", "train", "compare", "sweep"), "1e11", False),
    "--time": (("verify", "bounds", "figures"), "37", False),
    "--range": (("verify",), "1e300", False),
    "--t0": (("bounds",), "100", False),
    "--epsilon": (("bounds",), None, False),
    "--lr": (("train",), "1e300", False),
}

BAD_INTEGER_TEXT = ["abc", "", "1.5", "1e3", "nan", "0x10", "--", "9" * 5000]
BAD_REAL_TEXT = ["abc", "", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1,5", "0x1p3"]


def _argv(command: str, tmp_path: Path, *extra: str) -> list[str]:
    return [part.replace("{tmp}", str(tmp_path)) for part in BASE[command]] + list(extra)


def _integer_cases() -> list[tuple[str, str, str]]:
    cases = []
    for option, (commands, minimum) in [*INTEGER_OPTIONS.items(), ("--frames", TRAIN_FRAMES)]:
        for command in commands:
            values = [str(minimum - 1), str(minimum - 10**6), *BAD_INTEGER_TEXT]
            if option in INTEGER_MAXIMA:
                maximum = INTEGER_MAXIMA[option]
                values.append(str(maximum))
                values.append(str(10**30))
            if option in ("--frames", "--dim") and command in ("train", "compare"):
                values.append("257")
            cases += [(command, option, value) for value in values]
    return cases


def _real_cases() -> list[tuple[str, str, str]]:
    cases = []
    for option, (commands, above, _) in REAL_OPTIONS.items():
        for command in commands:
            values = ["0", "-1", "-1e-300", *BAD_REAL_TEXT] + ([above] if above else [])
            cases += [(command, option, value) for value in values]
    return cases


INTEGER_CASES = _integer_cases()
REAL_CASES = _real_cases()


@pytest.mark.parametrize(("command", "option", "value"), INTEGER_CASES)
def test_bad_integer_is_one_line_exit_2(command, option, value, tmp_path, capsys, no_work):
    line = assert_one_line_failure(_argv(command, tmp_path, f"{option}={value}"), capsys, 2, option)
    assert any(text in line for text in ("must be an integer", "must satisfy", "expected one"))


@pytest.mark.parametrize(("command", "option", "value"), REAL_CASES)
def test_bad_number_is_one_line_exit_2(command, option, value, tmp_path, capsys, no_work):
    line = assert_one_line_failure(_argv(command, tmp_path, f"{option}={value}"), capsys, 2, option)
    assert "finite number with" in line or "must be a number with" in line


@pytest.mark.parametrize("command", ["demo", "verify", "bounds", "train", "compare", "sweep"])
@pytest.mark.parametrize("value", ["1", "-1", "1.5", "-2", *BAD_REAL_TEXT])
def test_spatial_correlation_outside_minus_one_one(command, value, tmp_path, capsys, no_work):
    """The correlated Sigma ``rho^|a-b|`` is positive definite only for ``-1 < rho < 1`` (both ends open)."""
    line = assert_one_line_failure(_argv(command, tmp_path, f"--spatial-correlation={value}"), capsys, 2,
                                   "--spatial-correlation")
    assert "-1 < value < 1" in line


@pytest.mark.parametrize(("command", "option"), [("verify", "--time"), ("train", "--lr"), ("demo", "--batch")])
def test_a_negative_value_as_a_separate_argument(command, option, tmp_path, capsys, no_work):
    """``--time -inf`` (argparse reads ``-inf`` as an option): still one line naming the option."""
    assert_one_line_failure(_argv(command, tmp_path, option, "-inf"), capsys, 2, option)


def test_usage_errors_are_one_line(tmp_path, capsys, no_work):
    for argv in (["verify", "--no-such-option"], ["verify", "--json"], ["verify", "--mode", "bogus"],
                 ["train", "--out", str(tmp_path)], ["compare"], ["figures", "--only", "bogus"]):
        code, _, err = run_cli(argv, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith(f"unroll {argv[0]}: error: "), err
    code, _, err = run_cli([], capsys)
    assert code == 2 and err.splitlines() == ["unroll: error: the following arguments are required: COMMAND "
                                              "(see unroll --help)"]


@pytest.mark.parametrize(("argv", "names"), [
    (["verify", "--frames", "8", "--bands", "8"], "bands"),
    (["verify", "--frames", "1"], "frames"),
    (["bounds", "--frames", "8", "--bands", "9"], "bands"),
    (["bounds", "--frames", "1", "--bands", "0"], "frames"),
    (["verify", "--bands", str(10**9)], "bands"),
])
def test_options_that_do_not_fit_together(argv, names, capsys, no_work):
    assert_one_line_failure(argv, capsys, 2, names)


# --------------------------------------------------------------------------- sizes beyond the memory
HUGE = [
    (["verify", "--blocks", str(10**7)], "--blocks"),
    (["verify", "--frames", str(10**6)], "--frames"),
    (["verify", "--dim", str(10**5)], "--dim"),
    (["verify", "--batch", str(10**9)], "--batch"),
    (["verify", "--mode", "paper", "--knots", str(10**9)], "--knots"),
    (["verify", "--steps", "chebyshev", "--blocks", str(10**5)], "--blocks"),
    (["verify", "--mode", "softmax", "--blocks", str(10**9)], "--blocks"),
    (["demo", "--frames", str(10**6)], "--frames"),
    (["demo", "--dim", str(10**5)], "--dim"),
    (["demo", "--batch", str(10**10)], "--batch"),
    (["bounds", "--blocks", str(10**7)], "--blocks"),
    (["bounds", "--frames", str(10**6)], "--frames"),
    (["bounds", "--dim", str(10**6)], "--dim"),
    (["train", "--model", "dit", "--train-size", str(10**12)], "--train-size"),
    (["train", "--model", "unet", "--batch-size", str(10**10)], "--batch-size"),
    (["train", "--model", "relu_transformer", "--steps", str(10**13)], "--steps"),
    (["train", "--model", "dit", "--data", "video", "--image-size", "64", "--train-size", str(10**9)],
     "--train-size"),
    (["compare", "--quick", "--train-size", str(10**12)], "--train-size"),
    (["compare", "--quick", "--steps", str(10**13)], "--steps"),
    (["figures", "--train-steps", str(10**13)], "--train-steps"),
]


@pytest.mark.parametrize(("argv", "option"), HUGE)
def test_sizes_beyond_the_memory_are_refused_up_front(argv, option, tmp_path, capsys, no_work):
    if argv[0] in ("train", "compare", "figures"):
        argv = [*argv, "--out", str(tmp_path / "out")]
    line = assert_one_line_failure(argv, capsys, 4, option)  # the no_work tripwire: refused before any work
    assert "needs at least" in line and "8 GiB available" in line


# --------------------------------------------------------------------------- output and input locations
def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: a read-only one (not for root), else ``/proc``."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return folder
    if not PROC.is_dir():
        pytest.skip("running as root without /proc: no folder is unwritable")
    return PROC


def _locations(tmp_path: Path) -> dict[str, Path]:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    return {"file": a_file, "fifo": fifo, "folder": tmp_path / "a-folder", "unwritable": _unwritable_folder(tmp_path)}


FOLDER_OPTIONS = [("train", ["train", "--model", "dit"]), ("compare", ["compare", "--quick"]),
                  ("figures", ["figures"])]


@pytest.mark.parametrize(("command", "prefix"), FOLDER_OPTIONS)
@pytest.mark.parametrize(("where", "expected"), [("empty", 2), ("file", 3), ("under-file", 3), ("fifo", 3),
                                                 ("unwritable", 3), ("under-unwritable", 3)])
def test_out_folder_is_checked_before_any_work(command, prefix, where, expected, tmp_path, capsys, no_work):
    places = _locations(tmp_path)
    target = {"empty": "", "file": str(places["file"]), "under-file": str(places["file"] / "sub"),
              "fifo": str(places["fifo"]), "unwritable": str(places["unwritable"] / "new-folder"),
              "under-unwritable": str(places["unwritable"] / "a" / "b")}[where]
    assert_one_line_failure([*prefix, "--out", target], capsys, expected, "--out")


@pytest.mark.parametrize(("command", "prefix", "inner"), [("train", ["train", "--model", "dit"], "checkpoint.pt"),
                                                          ("train", ["train", "--model", "dit"], "results.json"),
                                                          ("compare", ["compare", "--quick"], "verdicts.md")])
def test_a_folder_where_an_output_file_goes(command, prefix, inner, tmp_path, capsys, no_work):
    (tmp_path / "out" / inner).mkdir(parents=True)
    line = assert_one_line_failure([*prefix, "--out", str(tmp_path / "out")], capsys, 3, "--out")
    assert inner in line


def test_a_file_where_the_task_cache_goes(tmp_path, capsys, no_work):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "tasks").write_text("not a folder")
    line = assert_one_line_failure(["compare", "--quick", "--out", str(tmp_path / "out")], capsys, 3, "--out")
    assert "tasks" in line and "not a folder" in line


@pytest.mark.parametrize(("where", "expected"), [("empty", 2), ("folder", 3), ("trailing-slash", 3), ("fifo", 3),
                                                 ("under-file", 3), ("unwritable", 3), ("existing-folder", 3)])
def test_json_file_is_checked_before_any_work(where, expected, tmp_path, capsys, no_work):
    places = _locations(tmp_path)
    places["folder"].mkdir()
    target = {"empty": "", "folder": str(places["folder"]), "trailing-slash": str(tmp_path / "new") + "/",
              "fifo": str(places["fifo"]), "under-file": str(places["file"] / "report.json"),
              "unwritable": str(places["unwritable"] / "report.json"), "existing-folder": str(tmp_path)}[where]
    line = assert_one_line_failure(["verify", "--json", target], capsys, expected, "--json")
    if where == "fifo":
        assert "FIFO" in line
        assert stat.S_ISFIFO(places["fifo"].stat().st_mode)  # left as it was


@pytest.mark.parametrize(("where", "expected"), [("empty", 2), ("missing", 3), ("folder", 3), ("fifo", 3)])
def test_results_input_is_checked(where, expected, tmp_path, capsys, no_work):
    places = _locations(tmp_path)
    target = {"empty": "", "missing": str(tmp_path / "missing.json"), "folder": str(tmp_path),
              "fifo": str(places["fifo"])}[where]
    assert_one_line_failure(["figures", "--results", target, "--out", str(tmp_path / "f")], capsys, expected,
                            "--results")


def test_train_into_a_file_fails_before_training(tmp_path, capsys, monkeypatch):
    """Without the tripwire: a training that would run refuses its --out before drawing any data."""
    import unroll.experiments.trainer

    calls = []
    monkeypatch.setattr(unroll.experiments.trainer, "train", lambda *a, **k: calls.append(a))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert_one_line_failure(["train", "--model", "dit", "--out", str(a_file), "--steps", "2", "--train-size", "8"],
                            capsys, 3, "--out")
    assert calls == [] and a_file.read_text() == "x"


# --------------------------------------------------------------------------- property-based: any bad value
COMMAND_NUMBERS = {command: sorted({option for option, (commands, *_) in {**INTEGER_OPTIONS, **REAL_OPTIONS}.items()
                                    if command in commands}) for command in BASE}

bad_integers = st.one_of(st.integers(max_value=-1).map(str), st.text(min_size=0, max_size=6),
                         st.floats(allow_nan=True, allow_infinity=True).map(repr),
                         st.sampled_from(["nan", "inf", "-inf", "1e9999", "", " ", "--1", "1_0_0x"]))
bad_reals = st.one_of(st.floats(max_value=0.0, allow_nan=False).map(repr),
                      st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400", "", " ", "one", "1e-400"]),
                      st.text(alphabet="abcxyz!?", min_size=1, max_size=5))


@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_any_bad_value_of_any_option(data, tmp_path, capsys, no_work):
    """Any command, any of its numeric options, a value outside its type or range: one line, exit 2."""
    command = data.draw(st.sampled_from(sorted(COMMAND_NUMBERS)), label="command")
    option = data.draw(st.sampled_from(COMMAND_NUMBERS[command]), label="option")
    if option in INTEGER_OPTIONS:
        value = data.draw(bad_integers, label="value")
        minimum = INTEGER_OPTIONS[option][1]
        try:  # an integer at or above the minimum is a valid value, not a bad one
            if int(value) >= minimum:
                value = str(minimum - 1)
        except ValueError:
            pass
    else:
        value = data.draw(bad_reals, label="value")
    code, _, err = run_cli(_argv(command, tmp_path, f"{option}={value}"), capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"unroll {command}: error: "), (value, err)
    assert f"argument {option}:" in lines[0] and "Traceback" not in err


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["verify", "demo", "bounds"]),
       exponent=st.integers(min_value=7, max_value=40),
       option=st.sampled_from(["--frames", "--dim", "--batch", "--blocks"]))
def test_property_huge_sizes_never_start(command, exponent, option, tmp_path, capsys, no_work):
    """A size of 10**7 .. 10**40 is refused from its memory estimate (exit 4), or by a range check (exit 2)."""
    if option not in COMMAND_NUMBERS[command]:
        option = "--frames"
    code, _, err = run_cli([command, option, str(10**exponent)], capsys)
    lines = err.splitlines()
    assert code in (2, 4) and len(lines) == 1 and option.lstrip("-") in lines[0], err


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0/"),
                    min_size=1, max_size=20),
       kind=st.sampled_from(["fifo", "under-file"]))
def test_property_json_at_a_non_regular_place(name, kind, tmp_path_factory, capsys, no_work):
    """``--json`` at a FIFO, or below a file, of any name: refused in one line (exit 3), nothing replaced."""
    folder = tmp_path_factory.mktemp("json")
    if name in (".", ".."):
        name = "x" + name
    target = folder / name
    if kind == "fifo":
        os.mkfifo(target)
        argv = ["verify", "--json", str(target)]
    else:
        target.write_text("keep")
        argv = ["verify", "--json", str(target / "report.json")]
    code, _, err = run_cli(argv, capsys)
    assert code == 3 and len(err.splitlines()) == 1 and "--json" in err, err
    assert stat.S_ISFIFO(target.stat().st_mode) if kind == "fifo" else target.read_text() == "keep"


# --------------------------------------------------------------------------- the exit-code table
@pytest.mark.parametrize(("error", "code"), [
    (KeyboardInterrupt(), 130), (MemoryError(), 4), (OverflowError("(34, 'Numerical result out of range')"), 5),
    (FloatingPointError("DSM loss became nan at step 3"), 5), (PermissionError(13, "Permission denied", "x"), 3),
    (IsADirectoryError(21, "Is a directory", "a.tmp", None, "a"), 3), (ModuleNotFoundError("No module matplotlib"), 6),
    (ValueError("nu must satisfy 0 < nu <= 2"), 2),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"), 4),
    (RuntimeError("value cannot be converted to type float without overflow"), 5),
])
def test_expected_failures_inside_a_run(error, code, monkeypatch, capsys):
    """A failure raised by the work itself (not by validation) is one line with the exit code of its class."""
    import unroll.cli.demo

    def fail(args):
        raise error

    monkeypatch.setattr(unroll.cli.demo, "run", fail)
    got, _, err = run_cli(["demo"], capsys)
    assert got == code and len(err.splitlines()) == 1 and err.startswith("unroll demo: error: "), err


def test_figures_without_matplotlib_exit_6(monkeypatch, tmp_path, capsys, no_work):
    import importlib.util

    import unroll.cli.figures

    monkeypatch.setattr(unroll.cli.figures, "_require_matplotlib", REQUIRE_MATPLOTLIB)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else
                        find_spec(name, *a))
    assert_one_line_failure(["figures", "--out", str(tmp_path)], capsys, 6, "matplotlib")


def test_a_bug_keeps_its_traceback(monkeypatch):
    import unroll.cli.demo

    def bug(args):
        raise KeyError("a bug")

    monkeypatch.setattr(unroll.cli.demo, "run", bug)
    with pytest.raises(KeyError):
        main(["demo"])


def test_help_lists_the_exit_codes(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0
    for exit_code, meaning in EXIT_CODES:
        assert f"{exit_code:>3}  {meaning}" in out


def test_seed_is_the_same_option_everywhere():
    from unroll.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    helps = set()
    for command, sub in commands.items():
        seed = next(a for a in sub._actions if a.dest == "seed")
        assert seed.default == 0 and seed.type("0") == 0 and seed.type(str(2**32 - 1)) == 2**32 - 1, command
        helps.add(seed.help.split(", ")[-1])
    assert helps == {"0 <= seed <= 2**32 - 1 (default 0)"}


# --------------------------------------------------------------------------- valid runs still work
def test_tiny_valid_runs(tmp_path, capsys):
    code, out, err = run_cli(["demo", "--frames", "4", "--dim", "2", "--batch", "2"], capsys)
    assert code == 0 and "diffusion_time" in out and err == ""
    code, out, err = run_cli(["bounds", "--frames", "8", "--bands", "2", "--blocks", "3"], capsys)
    assert code == 0 and "formula:" in out
    code, out, err = run_cli(["verify", "--frames", "8", "--bands", "2", "--blocks", "3", "--batch", "2", "--seed",
                              str(2**32 - 1), "--json", "-"], capsys)
    assert code == 0 and json.loads(out)["blocks"] == 3 and "certificate" in err  # the table on stderr
    if Path("/dev/null").exists():
        # Through a link in tmp_path: even a wrong os.replace would replace the link, never /dev/null itself
        # (this suite may run as root).
        link = tmp_path / "null.json"
        os.symlink("/dev/null", link)
        code, out, _ = run_cli(["verify", "--frames", "8", "--bands", "2", "--blocks", "3", "--batch", "2",
                                "--json", str(link)], capsys)
        assert code == 0 and link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)
    out_folder = tmp_path / "new" / "train"
    code, out, _ = run_cli(["train", "--model", "unet", "--out", str(out_folder), "--steps", "2", "--train-size", "8",
                            "--batch-size", "4", "--no-progress"], capsys)
    assert code == 0 and (out_folder / "results.json").is_file() and (out_folder / "checkpoint.pt").is_file()


def test_ctrl_c_during_training_exits_130_in_one_line(tmp_path):
    """A real ``unroll train`` interrupted by SIGINT once its first checkpoint exists: exit 130, one line."""
    out = tmp_path / "run"
    command = [sys.executable, "-c", "import sys; from unroll.cli import main; sys.exit(main())", "train", "--model",
               "unet", "--out", str(out), "--steps", "1000000", "--train-size", "16", "--batch-size", "4",
               "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert err.splitlines() == [f"unroll train: error: interrupted; rerun the same command to resume (progress is "
                                f"kept in {out}/checkpoint.pt)"]


@pytest.mark.parametrize(("option", "command"), [("--threads", "verify"), ("--threads", "train"),
                                                 ("--workers", "compare")])
def test_counts_above_the_cores_are_capped_with_a_note(option, command, capsys):
    from unroll.cli import build_parser

    cores = core_count()
    arguments = {"verify": ["verify"], "train": ["train", "--model", "dit", "--out", "x"],
                 "compare": ["compare", "--out", "x"]}[command]
    parsed = build_parser().parse_args([*arguments, option, str(cores + 3)])
    assert getattr(parsed, option[2:]) == cores
    assert f"{option} {cores + 3} capped at the {cores} core(s)" in capsys.readouterr().err
    parsed = build_parser().parse_args([*arguments, option, str(cores)])
    assert getattr(parsed, option[2:]) == cores and capsys.readouterr().err == ""
