"""One command line: every option has help text, the shared options have the same names, types and defaults on
every sub-command (``unroll compare``'s record defaults aside, said in its help), status lines are logging
(``-v``/``-q``) and progress bars are separate from them (``--no-progress``)."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from unroll.cli import COMMAND_MODULES, build_parser, logging_to_stderr, main
from unroll.cli.options import GP_DEFAULTS

GP_OPTIONS = ("--kernel", "--nu", "--ell", "--period", "--frames", "--dim", "--spatial", "--spatial-seed",
              "--spatial-condition", "--spatial-correlation", "--seed")
GP_COMMANDS = ("demo", "verify", "bounds", "train", "compare")
TABLE_COMMANDS = ("demo", "verify", "bounds", "compare", "sweep")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {string: action for action in parser._actions for string in action.option_strings}


def test_every_option_of_every_command_has_help_text():
    parser = build_parser()
    missing = [f"unroll {string}" for action in parser._actions if not isinstance(action, argparse._SubParsersAction)
               for string in action.option_strings[:1] if not (action.help or "").strip()]
    for name, command in _subparsers(parser).items():
        missing += [f"unroll {name} {action.option_strings[0] if action.option_strings else action.dest}"
                    for action in command._actions if not (action.help or "").strip()]
    assert not missing, f"options without help text: {missing}"


def test_the_help_walk_catches_a_missing_help():
    """The walk above can fail: an option without help is found."""
    parser = build_parser()
    command = _subparsers(parser)["verify"]
    command.add_argument("--undocumented")
    assert any(not action.help for action in command._actions if "--undocumented" in action.option_strings)


def test_unroll_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    names = [module.rsplit(".", 1)[1] for module in COMMAND_MODULES]
    assert "sweep" in names
    for name in names:
        assert f"    {name} " in out, name


def test_the_gaussian_process_options_are_the_same_on_every_command():
    commands = _subparsers(build_parser())
    from unroll.cli.compare import RECORD_GP

    for name in GP_COMMANDS:
        options = _options(commands[name])
        for option in GP_OPTIONS:
            assert option in options, (name, option)
        reference = _options(commands["verify"])
        for option in GP_OPTIONS:
            action, shared = options[option], reference[option]
            assert action.choices == shared.choices, (name, option)
            assert getattr(action.type, "__name__", None) == getattr(shared.type, "__name__", None), (name, option)
        defaults = vars(commands[name].parse_args(["--out", "x", "--model", "dit"] if name == "train" else
                                                  ["--out", "x"] if name == "compare" else []))
        expected = {**GP_DEFAULTS, **(RECORD_GP if name == "compare" else {})}
        for field, value in expected.items():
            assert defaults[field] == value, (name, field, defaults[field], value)
    # compare says where it differs, and why
    help_text = {action.dest: action.help for action in commands["compare"]._actions}
    for field in RECORD_GP:
        assert "comparison of record" in help_text[field] and "other commands' default" in help_text[field]


def test_verify_and_train_describe_the_same_gaussian_process():
    """The same GP options give the same GP in verify and in train (the defaults included)."""
    import torch

    from unroll.cli.options import gp_from_arguments

    commands = _subparsers(build_parser())
    for extra in ([], ["--spatial", "correlated", "--spatial-correlation", "0.2"], ["--spatial-seed", "5"]):
        verify = gp_from_arguments(commands["verify"].parse_args(extra))
        train = gp_from_arguments(commands["train"].parse_args(["--out", "x", "--model", "dit", *extra]))
        assert torch.equal(verify.spatial, train.spatial) and torch.equal(verify.temporal, train.temporal)


@pytest.mark.parametrize("command", TABLE_COMMANDS)
def test_every_command_that_prints_a_table_takes_json(command):
    options = _options(_subparsers(build_parser())[command])
    assert "--json" in options and "standard output" in options["--json"].help


def test_lists_are_space_separated_everywhere():
    commands = _subparsers(build_parser())
    for name, option in (("figures", "--only"), ("compare", "--sweeps"), ("sweep", "--modes")):
        assert _options(commands[name])[option].nargs == "+", (name, option)
    assert commands["compare"].parse_args(["--out", "x", "--sweeps", "H", "size"]).sweeps == ["H", "size"]


def test_python_dash_m_theory_sweep_is_unroll_sweep(tmp_path, capsys):
    from theory.sweep import main as sweep_main

    assert sweep_main(["--examples", "2", "--no-progress", "--out", str(tmp_path), "--json", "-"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["configuration"]["command"] == "sweep" and record["property_run"]["examples"] == 2
    assert "property run: 2 examples" in err  # the summary went to stderr: stdout is the JSON


# --------------------------------------------------------------------------- logging and progress
def test_status_lines_are_logging_on_stderr_at_the_chosen_level(capsys):
    logger = logging.getLogger("unroll.experiments.compare")
    with logging_to_stderr(logging.INFO):
        logger.info("status line")
        logger.debug("debug line")
    err = capsys.readouterr().err
    assert "status line" in err and "debug line" not in err
    with logging_to_stderr(logging.WARNING):
        logger.info("hidden")
    assert "hidden" not in capsys.readouterr().err
    logger.info("after")  # the handler is gone after the run
    assert "after" not in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "shown"), [([], {"info"}), (["-q"], set()), (["-v"], {"info", "debug"})])
def test_verbose_and_quiet_set_the_level(flags, shown, monkeypatch, capsys):
    import unroll.cli.demo

    def run(args):
        logging.getLogger("unroll.data.gp").info("info")
        logging.getLogger("theory.bounds").debug("debug")
        return 0

    monkeypatch.setattr(unroll.cli.demo, "run", run)
    assert main([*flags, "demo"]) == 0
    lines = set(capsys.readouterr().err.split())
    assert lines & {"info", "debug"} == shown


def test_no_progress_silences_the_bars_not_the_status_lines(tmp_path, capsys):
    from test_cli_compare import tiny_config

    from unroll.experiments.compare import run_comparison

    with logging_to_stderr(logging.INFO):
        run_comparison(tiny_config(figures=False, progress=False), tmp_path)
    err = capsys.readouterr().err
    assert "unroll compare: " in err and "tasks on" in err  # the status line
    assert "trainings:" not in err and "it/s" not in err and "task/s" not in err  # no bar


def test_library_code_does_not_print():
    """Outside the command-line layer the library logs; ``print`` is for ``unroll/cli`` only."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("unroll", "theory"):
        for path in (root / folder).rglob("*.py"):
            if "cli" in path.relative_to(root).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders
