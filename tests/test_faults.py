"""Faults (issue 13): Ctrl-C, SIGTERM and kill -9 at several points of a training run, each in its own process,
then a resumed run that must reach bit for bit the parameters of an uninterrupted one; damaged checkpoints
and a FIFO as an output refused by the command line in one line.

The faults are placed exactly by ``tests/fault_run.py`` (the n-th call of a function in the step sends the
signal), so nothing here depends on timing. All the faulty processes run at once (``_faulty_runs``).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import fault_run
import pytest
import torch

from unroll.cli import main
from unroll.experiments.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).with_name("fault_run.py")
EVERY = fault_run.CONFIG.checkpoint_every

# (signal, point, call, step of the checkpoint the fault leaves, or None for none)
SCENARIOS = [
    # One Ctrl-C is deferred to the end of the step in progress, whose state is then saved.
    ("SIGINT", "draw", 3, 3),
    ("SIGINT", "forward", 6, 6),
    ("SIGINT", "update", 9, 9),
    ("SIGINT", "save", 2, 2 * EVERY),
    # A second Ctrl-C interrupts at once: before the update the previous step is saved (generators
    # rewound), after it nothing is saved and the last checkpoint stands.
    ("SIGINT2", "forward", 7, 6),
    ("SIGINT2", "update", 7, EVERY),
    # SIGTERM and kill -9 end the process at once: the last checkpoint stands.
    ("SIGTERM", "draw", 6, EVERY),
    ("SIGTERM", "update", 9, 2 * EVERY),
    ("SIGTERM", "save", 2, EVERY),
    ("SIGKILL", "forward", 10, 2 * EVERY),
    ("SIGKILL", "update", 5, EVERY),
    ("SIGKILL", "save", 1, None),
    ("SIGKILL", "save", 3, 2 * EVERY),
]
RETURN_CODES = {"SIGINT": 130, "SIGINT2": 130, "SIGTERM": -signal.SIGTERM, "SIGKILL": -signal.SIGKILL}


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(SCRIPT.parent)]), "OMP_NUM_THREADS": "1"}


def _start(arguments: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), *arguments], env=_environment(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def straight() -> fault_run.TrainResult:
    result = fault_run.run(None)
    assert result.steps == fault_run.CONFIG.steps
    return result


@pytest.fixture(scope="module")
def faulty_runs(tmp_path_factory) -> dict[tuple, tuple[Path, int]]:
    """Every scenario run in its own process (forked by one ``fault_run.py``); ``{scenario: (folder, exit code)}``."""
    folders = {scenario: tmp_path_factory.mktemp("_".join(map(str, scenario[:3]))) for scenario in SCENARIOS}
    specs = {scenario: ":".join([*map(str, scenario[:3]), str(folder / "checkpoint.pt")])
             for scenario, folder in folders.items()}
    process = _start(list(specs.values()))
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    codes = json.loads(stdout.strip().splitlines()[-1])
    return {scenario: (folders[scenario], codes[spec]) for scenario, spec in specs.items()}


def _assert_equal_states(resumed: dict[str, torch.Tensor], straight: dict[str, torch.Tensor]) -> None:
    assert list(resumed) == list(straight)
    different = [name for name in straight if not torch.equal(resumed[name], straight[name])]
    assert not different, f"parameters differ from the uninterrupted run: {different}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: f"{s[0]}-{s[1]}-{s[2]}")
def test_a_fault_then_a_rerun_reaches_the_uninterrupted_parameters(scenario, faulty_runs, straight):
    name, point, call, saved_step = scenario
    folder, code = faulty_runs[scenario]
    assert code == RETURN_CODES[name]
    path = folder / "checkpoint.pt"
    if saved_step is None:
        assert not path.exists()
    else:
        assert load_checkpoint(path)["step"] == saved_step
    killed_mid_write = name in ("SIGTERM", "SIGKILL") and point == "save"
    leftovers = [p.name for p in folder.iterdir() if p.name != "checkpoint.pt"]
    assert len(leftovers) == (1 if killed_mid_write else 0), leftovers
    resumed = fault_run.run(path)
    assert resumed.resumed_from == saved_step and resumed.steps == fault_run.CONFIG.steps
    _assert_equal_states(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.losses == straight.losses  # the loss history too, every step once
    assert os.listdir(folder) == ["checkpoint.pt"]  # the stale temporary file is gone with the rerun's first write
    assert load_checkpoint(path)["step"] == fault_run.CONFIG.steps


# ---- the command line -----------------------------------------------------------------------------------

TRAIN = ["train", "--model", "dit", "--frames", "6", "--train-size", "32", "--steps", "6", "--batch-size", "8",
         "--no-progress"]


def _train_arguments(folder: Path) -> list[str]:
    return [*TRAIN, "--out", str(folder)]


@pytest.fixture(scope="module")
def cli_straight(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli_straight")
    assert main(_train_arguments(folder)) == 0
    return folder


def test_ctrl_c_during_unroll_train_then_the_same_command_reaches_the_same_result(tmp_path, cli_straight, capsys):
    process = _start(["cli", "SIGINT", "forward", "4", "--", *_train_arguments(tmp_path)])
    process.communicate(timeout=300)
    assert process.returncode != 0 and not (tmp_path / "results.json").exists()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 4  # the state after the step Ctrl-C came in
    assert main(_train_arguments(tmp_path)) == 0
    resumed = json.loads((tmp_path / "results.json").read_text())
    straight = json.loads((cli_straight / "results.json").read_text())
    assert resumed["resumed_from"] == 4 and resumed["score_error"] == straight["score_error"]
    _assert_equal_states(load_checkpoint(tmp_path / "checkpoint.pt")["model_state"],
                         load_checkpoint(cli_straight / "checkpoint.pt")["model_state"])


def _flip_a_byte(raw: bytes) -> bytes:
    damaged = bytearray(raw)
    damaged[len(raw) // 2] ^= 0x01
    return bytes(damaged)


DAMAGES = {
    "flipped byte": (_flip_a_byte, "SHA-256"),
    "truncated": (lambda raw: raw[: len(raw) * 2 // 3], "cut short"),
    "empty": (lambda raw: b"", "empty"),
    "garbage": (lambda raw: os.urandom(4096), "not an unroll checkpoint"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_unroll_train_refuses_a_damaged_checkpoint_in_one_line(damage, tmp_path, cli_straight, capsys):
    change, reason = DAMAGES[damage]
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(change((cli_straight / "checkpoint.pt").read_bytes()))
    capsys.readouterr()
    assert main(_train_arguments(tmp_path)) == 3  # a file that cannot be used (unroll --help)
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("unroll train: error: checkpoint ")
    assert str(path) in error and "--no-resume" in error and reason in error
    assert not (tmp_path / "results.json").exists()
    assert main([*_train_arguments(tmp_path), "--no-resume"]) == 0  # starts afresh over the damaged file
    assert load_checkpoint(path)["step"] == 6


def test_a_damaged_checkpoint_gives_no_traceback_in_a_real_process(tmp_path, cli_straight):
    (tmp_path / "checkpoint.pt").write_bytes(_flip_a_byte((cli_straight / "checkpoint.pt").read_bytes()))
    command = [sys.executable, "-c", "import sys; from unroll.cli import main; sys.exit(main())",
               *_train_arguments(tmp_path)]
    done = subprocess.run(command, env=_environment(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "--no-resume" in done.stderr


def test_verify_json_at_a_fifo_is_refused_and_the_fifo_kept(tmp_path, capsys):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that a wrong write could not block the test
    try:
        code = main(["verify", "--frames", "12", "--dim", "2", "--bands", "4", "--blocks", "6", "--batch", "2",
                     "--json", str(fifo)])
        error = capsys.readouterr().err
        assert code != 0 and "FIFO" in error and str(fifo) in error and error.count("\n") == 1
        assert os.read(reader, 1024) == b""  # nothing was written into it
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["report.json"]


def test_the_sigint_handler_is_restored_and_threads_train_without_one():
    from concurrent.futures import ThreadPoolExecutor

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    in_main = fault_run.run(None)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with ThreadPoolExecutor(1) as pool:  # signal.signal is main-thread only: a thread trains without deferral
        in_thread = pool.submit(fault_run.run, None).result()
    _assert_equal_states(in_thread.model.state_dict(), in_main.model.state_dict())
