"""``unroll.cli.resources``: the memory estimates against the arrays they count, the limit, the machine's memory;
``unroll.cli.paths``: output and input checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unroll.cli.failures import ResourceLimitError
from unroll.cli.paths import check_input_file, check_output_file, check_output_folder, write_output_text
from unroll.cli.resources import (
    USABLE_FRACTION,
    Estimate,
    Part,
    available_memory,
    check_memory,
    demo_estimate,
    format_bytes,
    verify_estimate,
)
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential

ROOT = Path(__file__).resolve().parents[1]


def _part(estimate: Estimate, starts: str) -> int:
    return next(part.bytes for part in estimate.parts if part.name.startswith(starts))


def _gp(frames: int, dim: int) -> GaussianProcess:
    return GaussianProcess(GammaExponential(nu=1.0, ell=2.0), frames, torch.eye(dim))


@pytest.mark.parametrize("options", [
    dict(frames=8, dim=2, bands=2, blocks=3, mode="exact"),
    dict(frames=10, dim=3, bands=4, blocks=5, mode="paper", knots=17),
    dict(frames=8, dim=2, bands=3, blocks=6, mode="exact", steps="chebyshev"),
    dict(frames=8, dim=2, bands=2, blocks=7, mode="exact", looped=True),
    dict(frames=12, dim=2, bands=11, blocks=4, mode="softmax", knots=9),
])
def test_weight_estimate_matches_the_built_model(options):
    """The weights part is the built model's block parameters (float64), up to the biases it leaves out."""
    from unroll.construction.constructor import construct_unrolled
    from unroll.construction.softmax import construct_softmax

    gp = _gp(options["frames"], options["dim"])
    knots = options.get("knots", 257)
    if options["mode"] == "softmax":
        model = construct_softmax(gp, blocks=options["blocks"], paper_knots=knots)
    else:
        model = construct_unrolled(gp, blocks=options["blocks"], bands=options["bands"], mode=options["mode"],
                                   steps=options.get("steps", "gd"), looped=options.get("looped", False),
                                   paper_knots=knots, taper="triangular")
    actual = 8 * sum(p.numel() for block in model.blocks for p in block.parameters())
    estimate = _part(verify_estimate(batch=1, **options), "the weights")
    assert estimate <= actual <= 1.05 * estimate


def test_attention_estimate_matches_the_kept_weights():
    from unroll.construction.constructor import construct_unrolled

    gp = _gp(9, 2)
    model = construct_unrolled(gp, blocks=4, bands=3)
    weights = model.attention_weights(torch.zeros(5, 9, 2), 0.5)
    actual = 8 * sum(w.numel() for w in weights)
    assert _part(verify_estimate(frames=9, dim=2, bands=3, blocks=4, batch=5), "the attention weights") == actual


def _peak_kib(argv: list[str]) -> int:
    """Peak resident memory (KiB) of ``unroll argv`` in a fresh process: ``VmHWM`` of ``/proc/self/status``, which
    starts afresh at ``exec`` (``ru_maxrss`` would carry the forking test process's size)."""
    script = ("import sys; from unroll.cli import main; code = main(sys.argv[1:]); "
              "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]); "
              "sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.parametrize(("small", "large", "estimate"), [
    (["demo", "--frames", "4", "--dim", "2", "--batch", "1"], ["demo", "--frames", "160", "--dim", "10", "--batch",
                                                               "1"],
     lambda: demo_estimate(frames=160, dim=10, batch=1).total - demo_estimate(frames=4, dim=2, batch=1).total),
    (["verify", "--frames", "32", "--bands", "8", "--blocks", "40", "--batch", "1"],
     ["verify", "--frames", "32", "--bands", "8", "--blocks", "40", "--batch", "24"],
     lambda: (verify_estimate(frames=32, dim=4, bands=8, blocks=40, batch=24).total
              - verify_estimate(frames=32, dim=4, bands=8, blocks=40, batch=1).total)),
])
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc/self/status")
def test_estimate_is_a_lower_bound_of_a_real_run(small, large, estimate):
    """What a larger run adds to the peak memory is at least what the estimate adds (so a refused run would not
    have fitted), and not wildly more (the estimate counts what dominates)."""
    added = (_peak_kib(large) - _peak_kib(small)) * 1024
    assert estimate() > 50 * 2**20  # the sizes are large enough to stand out of the interpreter's noise
    assert estimate() <= added <= 4 * estimate(), (added, estimate())


def test_check_memory_refuses_above_the_usable_fraction():
    estimate = Estimate((Part("small", 10, "--a"), Part("the big array", 790, "--big")))
    check_memory(estimate, available=(1000, "test"))  # 800 <= 80% of 1000
    with pytest.raises(ResourceLimitError, match=r"needs at least 800 bytes .*the big array: 790 bytes.*80% of the "
                                                 r"999 bytes available \(test\); lower --big"):
        check_memory(estimate, available=(999, "test"))
    assert USABLE_FRACTION == 0.8


def test_check_memory_is_skipped_when_the_memory_is_unknown(monkeypatch):
    import unroll.cli.resources as resources

    monkeypatch.setattr(resources, "available_memory", lambda: None)
    check_memory(Estimate((Part("huge", 10**30, "--x"),)))


def test_available_memory_reads_meminfo_and_falls_back(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684092 kB\nMemFree:  100 kB\nMemAvailable:   2000 kB\n")
    assert available_memory(meminfo) == (2000 * 1024, "MemAvailable in /proc/meminfo")
    for broken in (tmp_path / "missing", meminfo):
        meminfo.write_text("MemAvailable: lots\n")
        fallback = available_memory(broken)  # os.sysconf's free pages, where it has them
        assert fallback is None or (fallback[0] > 0 and fallback[1] == "free physical memory (os.sysconf)")


@pytest.mark.parametrize(("count", "text"), [(0, "0 bytes"), (1023, "1023 bytes"), (1024, "1 KiB"),
                                             (3 * 2**29, "1.5 GiB"), (17 * 2**50, "17 PiB"), (2**70, "1.18e+21 bytes")])
def test_format_bytes(count, text):
    assert format_bytes(count) == text


# ------------------------------------------------------------------------ paths
def test_output_checks_accept_good_places_and_leave_nothing(tmp_path):
    assert check_output_folder("--out", str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # checked, not created
    existing = tmp_path / "report.json"
    existing.write_text("old")
    assert check_output_file("--json", str(existing)) == str(existing)
    assert check_output_file("--json", "-") == "-"
    assert sorted(os.listdir(tmp_path)) == ["report.json"]  # the write probes are gone
    assert check_input_file("--results", str(existing)) == existing


def test_write_output_text_to_stdout_a_file_and_a_character_device(tmp_path, capsys):
    write_output_text("-", "{}\n")
    assert capsys.readouterr().out == "{}\n"
    write_output_text(str(tmp_path / "x.json"), "[1]\n")
    assert (tmp_path / "x.json").read_text() == "[1]\n"
    if Path("/dev/null").exists():
        write_output_text("/dev/null", "ignored\n")
        assert Path("/dev/null").is_char_device()


def test_empty_paths_are_bad_input():
    for check in (check_output_folder, check_output_file, check_input_file):
        with pytest.raises(ValueError, match="--x must name"):
            check("--x", "")
