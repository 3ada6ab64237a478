"""unroll._atomic: the one place files are written (results, checkpoints, tables, figures)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from unroll._atomic import atomic_write, write_text_atomic
from unroll.training.trainer import atomic_torch_save


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

    from unroll._atomic import write_json_atomic
    from unroll.training import compare

    assert compare.write_json_atomic is write_json_atomic  # still importable where it was
    write_json_atomic({"nan": float("nan"), "inf": np.float32("inf"), 1: (np.int64(2), np.float64(0.5))},
                      tmp_path / "r.json")
    text = (tmp_path / "r.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"nan": None, "inf": None, "1": [2, 0.5]}
