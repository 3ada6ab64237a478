"""Training checkpoints that prove their integrity: a SHA-256 record in front of the ``torch.save`` payload.

A checkpoint file is one header line followed by the payload::

    unroll-checkpoint 1 sha256:<64 hex digits> bytes:<payload length>\\n<torch.save bytes>

``save_checkpoint`` writes it atomically (``unroll._atomic``); ``load_checkpoint`` recomputes the hash and
the length before it unpickles anything (``torch.load(weights_only=True)``: tensors and plain containers
only), so any changed byte, header included, a truncated, empty or garbage file is refused with a
``CheckpointError`` (a ``ValueError``) whose one-line message names the file, says what is wrong and how to
start afresh (``--no-resume`` on the command line, ``resume=False`` in ``train``). The hash is an integrity
check against damage (disk, copy, a killed writer of another program), not a signature: it does not
authenticate the file's author.

**Older checkpoints** (a bare ``torch.save`` zip archive, as written before the record existed) are
accepted after the archive's CRC-32s are verified (``zipfile.ZipFile.testzip``), which catches damage to
the stored tensors and pickles but not to unchecked zip metadata (padding, timestamps); the next save
rewrites them in the new format.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from unroll._atomic import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "checkpoint_bytes", "FORMAT_VERSION",
           "REQUIRED_KEYS"]

#: the version in the header line; ``load_checkpoint`` refuses any other
FORMAT_VERSION = 1

#: keys every checkpoint written by ``unroll.experiments.trainer.train`` holds
REQUIRED_KEYS = ("step", "model_config", "model_state", "optimizer_state", "host_rng", "losses", "settings",
                 "data_fingerprint")

_MAGIC = b"unroll-checkpoint "
_HEADER = re.compile(rb"unroll-checkpoint (\d+) sha256:([0-9a-f]{64}) bytes:(\d+)\n")
_LONGEST_HEADER = 160
_ZIP_MAGIC = b"PK\x03\x04"
_AFRESH = "delete it or pass --no-resume (resume=False in train) to start afresh"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: damaged, truncated, empty, not a checkpoint, or missing
    entries. The message is one line naming the file and how to start afresh."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"checkpoint {self.path} {problem}; {_AFRESH}")


def _header_and_payload(obj: Any) -> tuple[bytes, bytes]:
    """``(header line, torch.save bytes)`` of a checkpoint holding ``obj``."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    return b"%s%d sha256:%s bytes:%d\n" % (_MAGIC, FORMAT_VERSION, digest.encode(), len(payload)), payload


def checkpoint_bytes(obj: Any) -> bytes:
    """The bytes of a checkpoint file holding ``obj``: the header line (hash and length), then ``torch.save``."""
    header, payload = _header_and_payload(obj)
    return header + payload


def save_checkpoint(obj: Any, path: str | os.PathLike) -> Path:
    """Write ``obj`` (a dict of tensors and plain containers) to ``path`` atomically with its integrity record."""
    header, payload = _header_and_payload(obj)

    def write(temporary: str) -> None:
        with open(temporary, "wb") as stream:
            stream.write(header)
            stream.write(payload)

    return atomic_write(path, write)


def _verified_payload(path: Path, raw: bytes) -> bytes:
    """The payload of a file in the current format after checking its header, length and hash."""
    header = _HEADER.match(raw[:_LONGEST_HEADER])
    if header is None:
        raise CheckpointError(path, "is damaged: its header line is not 'unroll-checkpoint <version> "
                                    "sha256:<hash> bytes:<length>'")
    version, digest, length = int(header[1]), header[2].decode(), int(header[3])
    if version != FORMAT_VERSION:
        raise CheckpointError(path, f"has format version {version}, this unroll reads version {FORMAT_VERSION}")
    payload = raw[header.end():]
    if len(payload) != length:
        cut = "cut short" if len(payload) < length else "longer than written"
        raise CheckpointError(path, f"is damaged: {cut} ({len(payload)} bytes of payload, the header says "
                                    f"{length})")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(path, "is damaged: its SHA-256 does not match the one recorded when it was "
                                    "written (a changed byte)")
    return payload


def _verified_legacy(path: Path, raw: bytes) -> bytes:
    """A bare ``torch.save`` archive (before the integrity record), after checking the zip CRC-32s."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, KeyError) as error:
        raise CheckpointError(path, f"is damaged: not a readable zip archive ({error})") from None
    if bad_member is not None:
        raise CheckpointError(path, f"is damaged: the CRC-32 of its entry {bad_member!r} does not match")
    return raw


def _unpickled(path: Path, payload: bytes) -> dict:
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # any failure inside torch.load means an unusable file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(path, f"could not be loaded by torch.load ({type(error).__name__}: "
                                    f"{first_line[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(path, f"holds a {type(state).__name__}, not a training checkpoint (a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(path, f"is not a training checkpoint written by unroll: it lacks {missing}")
    return state


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by ``train`` (tensors on the CPU) after verifying its integrity record.

    Raises ``CheckpointError`` (one line: the file, what is wrong, ``--no-resume``) for a damaged, truncated,
    empty or foreign file or a folder; ``OSError`` (e.g. ``PermissionError``) if it cannot be read at all.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, "is a folder, not a checkpoint file")
    raw = path.read_bytes()
    if not raw:
        raise CheckpointError(path, "is empty (0 bytes)")
    if raw.startswith(_MAGIC):
        payload = _verified_payload(path, raw)
    elif _MAGIC.startswith(raw):
        raise CheckpointError(path, f"is damaged: cut short inside its header line ({len(raw)} bytes)")
    elif raw.startswith(_ZIP_MAGIC):
        payload = _verified_legacy(path, raw)
    else:
        raise CheckpointError(path, "is not an unroll checkpoint (neither its header line nor a torch.save "
                                    "archive)")
    return _unpickled(path, payload)
