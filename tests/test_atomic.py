"""unroll._atomic: the one place files are written (results, checkpoints, tables, figures)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from unroll._atomic import DestinationError, atomic_write, check_destination, write_json_atomic, write_text_atomic
from unroll.experiments.trainer import atomic_torch_save


def test_write_creates_folder_and_content(tmp_path):
    target = tmp_path / "deep" / "er" / "result.json"
    write_text_atomic(target, '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    assert os.listdir(target.parent) == ["result.json"]


def test_permissions_follow_the_umask_not_mkstemp(tmp_path):
    previous = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "table.tsv", "x\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "table.tsv").st_mode) == 0o644


def test_interrupted_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    write_text_atomic(target, "old")

    def interrupted(temporary: str) -> None:
        with open(temporary, "w") as stream:
            stream.write("half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_torch_checkpoint_round_trip(tmp_path):
    state = {"weight": torch.arange(6, dtype=torch.float64).reshape(2, 3), "step": 7}
    atomic_torch_save(state, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert loaded["step"] == 7 and torch.equal(loaded["weight"], state["weight"])


def test_json_is_strict_and_numpy_free(tmp_path):
    import json

    import numpy as np

    from unroll.experiments import compare

    assert compare.write_json_atomic is write_json_atomic  # still importable where it was
    write_json_atomic({"nan": float("nan"), "inf": np.float32("inf"), 1: (np.int64(2), np.float64(0.5))},
                      tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "1": [2, 0.5]}


# ---- destinations that are not regular files (issue 13, item 5) ----------------------------------------------

def _never_called(temporary: str) -> None:
    raise AssertionError(f"the writer must not run for a refused destination (was given {temporary})")


def test_a_fifo_is_refused_and_left_a_fifo(tmp_path):
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    with pytest.raises(DestinationError, match=r"report\.json.*FIFO") as caught:
        atomic_write(fifo, _never_called)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)
    with pytest.raises(DestinationError):
        write_json_atomic({"a": 1}, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["report.json"]


def test_a_folder_a_socket_and_a_path_below_a_file_are_refused(tmp_path):
    import socket

    folder = tmp_path / "results"
    folder.mkdir()
    with pytest.raises(DestinationError, match="folder"):
        write_text_atomic(folder, "x")
    assert folder.is_dir() and os.listdir(folder) == []
    short = tempfile.mkdtemp(prefix="sock", dir="/tmp")  # AF_UNIX paths are limited to ~100 characters
    try:
        address = os.path.join(short, "s")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(address)
            with pytest.raises(DestinationError, match="socket"):
                write_text_atomic(address, "x")
            assert stat.S_ISSOCK(os.lstat(address).st_mode) and os.listdir(short) == ["s"]
    finally:
        shutil.rmtree(short)
    plain = tmp_path / "plain.txt"
    plain.write_text("keep")
    for below in (plain / "out.json", plain / "deeper" / "out.json"):
        with pytest.raises(DestinationError, match=r"plain\.txt is not a folder|a part of its folder is a file"):
            atomic_write(below, _never_called)
    assert plain.read_text() == "keep"
    with pytest.raises(DestinationError, match="empty"):
        check_destination("")


def test_a_character_device_is_written_through_and_never_replaced(tmp_path):
    # Through a link in tmp_path: even a wrong os.replace would replace the link, never /dev/null itself
    # (this suite may run as root).
    link = tmp_path / "null.json"
    os.symlink("/dev/null", link)
    write_json_atomic({"a": 1}, link)
    atomic_torch_save({"w": torch.ones(3)}, link)
    assert os.path.islink(link) and os.readlink(link) == "/dev/null"
    assert stat.S_ISCHR(os.stat(link).st_mode) and os.listdir(tmp_path) == ["null.json"]


def test_a_link_to_a_regular_file_and_a_missing_path_are_written(tmp_path):
    check_destination(tmp_path / "new" / "folders" / "file.txt")
    assert os.listdir(tmp_path) == []  # the check creates nothing
    target = tmp_path / "target.txt"
    target.write_text("old")
    os.symlink(target, tmp_path / "link.txt")
    write_text_atomic(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").read_text() == "new" and target.read_text() == "old"


# ---- stale temporary files of killed writers (issue 13, item 9) ----------------------------------------------

MKSTEMP_CHARACTERS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _is_own_temporary(name: str, destination: str) -> bool:
    """Independent statement of the pattern: ``<destination>.`` + 8 mkstemp characters + ``.tmp``."""
    prefix, suffix = destination + ".", ".tmp"
    if not (name.startswith(prefix) and name.endswith(suffix)) or len(name) != len(prefix) + 8 + len(suffix):
        return False
    return set(name[len(prefix):-len(suffix)]) <= MKSTEMP_CHARACTERS


def _age(path, seconds: float = 3600.0) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past), follow_symlinks=False)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.one_of(
    st.text(alphabet="ckpt.abxyz09_-T", min_size=1, max_size=24),
    st.builds(lambda middle, tail: f"ckpt.pt.{middle}{tail}", st.text(alphabet="az09_", min_size=8, max_size=8),
              st.sampled_from([".tmp", ".tmp", ".TMP", ".tmp.bak"])),
    st.builds(lambda middle, tail: f"{middle}{tail}", st.text(alphabet="ckpt.abz09_A-", min_size=6, max_size=18),
              st.sampled_from([".tmp", "tmp", ""]))),
    min_size=1, max_size=8, unique=True))
def test_a_write_removes_exactly_the_stale_temporaries_of_its_destination(names):
    with tempfile.TemporaryDirectory() as folder:
        names = [n for n in names if n not in ("ckpt.pt", ".", "..") and "/" not in n]
        for name in names:
            (Path(folder) / name).write_text("left by a killed writer")
            _age(Path(folder) / name)
        write_text_atomic(Path(folder) / "ckpt.pt", "new")
        expected = {n for n in names if not _is_own_temporary(n, "ckpt.pt")} | {"ckpt.pt"}
        event(f"{len(names) + 1 - len(expected)} stale temporaries")
        assert set(os.listdir(folder)) == expected


def test_the_stale_temporary_pattern_on_examples(tmp_path):
    own = ["ckpt.pt.abcd_123.tmp", "ckpt.pt.________.tmp"]
    other = ["ckpt.pt", "ckpt.pt.abcd123.tmp", "ckpt.pt.abcd12345.tmp", "ckpt.pt.ABCD1234.tmp",
             "ckpt.pt.abcd1234.tmp.x", "ckpt.pt.abcd-123.tmp", "xckpt.pt.abcd1234.tmp", "ckpt.p.abcd1234.tmp",
             "other.pt.abcd1234.tmp", "notes.tmp"]
    for name in own + other:
        (tmp_path / name).write_text("x")
        _age(tmp_path / name)
    write_text_atomic(tmp_path / "ckpt.pt", "new")
    assert sorted(os.listdir(tmp_path)) == sorted(other)


def test_recent_locked_and_non_regular_temporaries_are_kept(tmp_path):
    import fcntl

    stale, fresh, locked = (tmp_path / f"c.pt.{middle}.tmp" for middle in ("aaaaaaaa", "bbbbbbbb", "cccccccc"))
    folder, link = tmp_path / "c.pt.dddddddd.tmp", tmp_path / "c.pt.eeeeeeee.tmp"
    for path in (stale, fresh, locked):
        path.write_text("x")
    folder.mkdir()
    os.symlink(stale, link)
    for path in (stale, locked, folder, link):
        _age(path)
    os.utime(fresh, (time.time() + 60, time.time() + 60))  # written after this write began: a live writer
    with open(locked, "rb") as holder:  # a live writer holds the lock on its temporary file
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        write_text_atomic(tmp_path / "c.pt", "new")
    assert sorted(os.listdir(tmp_path)) == sorted(["c.pt", fresh.name, locked.name, folder.name, link.name])
    assert (tmp_path / "c.pt").read_text() == "new"


def test_a_writer_locks_its_temporary_file_while_it_writes(tmp_path):
    import fcntl

    seen = []

    def probe(temporary: str) -> None:
        with open(temporary, "rb") as other:
            try:
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("unlocked")
            except BlockingIOError:
                seen.append("locked")
        with open(temporary, "w") as stream:
            stream.write("content")

    atomic_write(tmp_path / "out.txt", probe)
    assert seen == ["locked"] and (tmp_path / "out.txt").read_text() == "content"
