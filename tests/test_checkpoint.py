"""unroll.experiments.checkpoint: the integrity record, and every kind of damaged file refused in one line."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unroll.experiments.checkpoint import REQUIRED_KEYS, CheckpointError, load_checkpoint, save_checkpoint


def _state() -> dict:
    """A small dict with every required key, like one ``train`` writes."""
    generator = torch.Generator().manual_seed(3)
    return {"step": 5, "model_config": {"width": 4}, "model_state": {"w": torch.randn(4, 4, generator=generator)},
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0]}]},
            "host_rng": generator.get_state(), "losses": [1.0, 0.5], "settings": {"steps": 10},
            "data_fingerprint": [1.0, 2.0, 3.0]}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(_state(), path)
    return path.read_bytes()


def _assert_refused(path, content: bytes, reason: str) -> None:
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert str(path) in message and "--no-resume" in message


def test_round_trip_keeps_every_entry(tmp_path):
    save_checkpoint(_state(), tmp_path / "c.pt")
    loaded, expected = load_checkpoint(tmp_path / "c.pt"), _state()
    assert sorted(loaded) == sorted(expected)
    assert torch.equal(loaded["model_state"]["w"], expected["model_state"]["w"])
    assert torch.equal(loaded["host_rng"], expected["host_rng"]) and loaded["losses"] == [1.0, 0.5]
    assert os.listdir(tmp_path) == ["c.pt"]


def test_the_header_records_the_sha256_and_length_of_the_rest(written):
    # Oracle: hashlib over the bytes after the first newline, and torch.load of those bytes.
    header, payload = written.split(b"\n", 1)
    words = header.decode("ascii").split(" ")
    assert words[:2] == ["unroll-checkpoint", "1"]
    assert words[2] == "sha256:" + hashlib.sha256(payload).hexdigest() and words[3] == f"bytes:{len(payload)}"
    assert torch.load(io.BytesIO(payload), weights_only=True)["step"] == 5


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_is_refused(tmp_path_factory, written, data):
    position = data.draw(st.one_of(st.integers(0, 120), st.integers(0, len(written) - 1)), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    damaged = bytearray(written)
    damaged[position] ^= 1 << bit
    path = tmp_path_factory.mktemp("flip") / "checkpoint.pt"
    _assert_refused(path, bytes(damaged), "damaged|format version|not an unroll checkpoint")


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_truncation_or_extension_is_refused(tmp_path_factory, written, data):
    length = data.draw(st.integers(1, len(written) - 1), label="kept bytes")
    path = tmp_path_factory.mktemp("cut") / "checkpoint.pt"
    _assert_refused(path, written[:length], "damaged")
    _assert_refused(path, written + data.draw(st.binary(min_size=1, max_size=16)), "damaged")


@settings(max_examples=40, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=4096))
def test_garbage_is_refused(tmp_path_factory, garbage):
    path = tmp_path_factory.mktemp("garbage") / "checkpoint.pt"
    _assert_refused(path, garbage, "not an unroll checkpoint|damaged")
    _assert_refused(path, b"PK\x03\x04" + garbage, "damaged")  # looks like a zip archive, is not one


def test_empty_file_folder_and_foreign_payloads_are_refused(tmp_path):
    _assert_refused(tmp_path / "empty.pt", b"", "empty")
    (tmp_path / "folder.pt").mkdir()
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path / "folder.pt")
    save_checkpoint([1, 2, 3], tmp_path / "list.pt")  # a valid record around something that is no checkpoint
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")
    partial = {key: value for key, value in _state().items() if key != "host_rng"}
    save_checkpoint(partial, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="host_rng"):
        load_checkpoint(tmp_path / "partial.pt")
    assert set(REQUIRED_KEYS) <= set(_state())


def test_a_bare_torch_save_archive_is_accepted_after_its_crcs_are_checked(tmp_path):
    legacy = tmp_path / "legacy.pt"
    state = _state()
    state["model_state"]["marker"] = torch.full((64,), 1.2345, dtype=torch.float64)
    torch.save(state, legacy)
    assert torch.equal(load_checkpoint(legacy)["model_state"]["marker"], state["model_state"]["marker"])
    raw = bytearray(legacy.read_bytes())
    at = raw.find(torch.tensor(1.2345, dtype=torch.float64).numpy().tobytes())
    assert at > 0
    raw[at + 3] ^= 0x10  # inside the stored tensor: its CRC-32 no longer matches
    _assert_refused(legacy, bytes(raw), "CRC-32")
