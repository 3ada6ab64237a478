"""``unroll compare --quick`` and ``unroll train`` end to end (small)."""

from __future__ import annotations

import json

import pytest

from unroll.cli import main

MODELS = ("constructed", "constructed_chebyshev", "relu_transformer", "dit", "unet")


@pytest.mark.slow
def test_compare_quick_writes_results_with_required_keys(tmp_path):
    assert main(["compare", "--quick", "--out", str(tmp_path), "--no-progress", "--no-figures"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    for name in MODELS:
        assert 0 <= results[name]["score_error"] < 10
        assert results["models"][name]["score_error"] == results[name]["score_error"]
    assert {"slope", "slope_ci95"} <= set(results["n_sweep"])
    assert "kl_to_data" in results["distribution"]["constructed"]
    assert "control_white_data" in results["attention"]["dit"]


def test_compare_tiny_run_writes_results_with_required_keys(tmp_path):
    """A much smaller run than --quick through the same code path (fast enough for the default suite)."""
    from unroll.training.compare import CompareConfig, run_comparison

    config = CompareConfig.quick(frames=6, train_size=64, heldout=16, steps=8, control_steps=8,
                                 construct_blocks=4, relu_blocks=1, relu_bands=2, dit_blocks=1, dit_width=16,
                                 unet_channels=8, unet_levels=1, sweep_sizes=(16, 32, 64), sweep_steps=5,
                                 sampler_steps=5, sampler_samples=40, relu_width=12, figures=True, progress=False)
    results = run_comparison(config, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    for name in MODELS:
        assert name in on_disk and isinstance(on_disk[name]["score_error"], float)
    assert on_disk["n_sweep"]["points"] == 3
    assert results["distribution"]["constructed"]["kl_to_data"] > 0
    for name in ("exact_score", "constructed", "constructed_chebyshev"):
        assert on_disk["distribution"][name]["kl_to_data"] > 0
    assert not list(tmp_path.glob("*.tmp"))
    pytest.importorskip("matplotlib")
    assert (tmp_path / "attention_maps.png").stat().st_size > 0
    assert (tmp_path / "n_sweep.png").stat().st_size > 0


def test_extra_sweeps_run_and_draw_their_figure(tmp_path):
    """The H / size / decay sweeps end to end at toy size: every point trained and scored, one figure."""
    from unroll.training.compare import CompareConfig
    from unroll.training.sweeps import run_extra_sweeps

    config = CompareConfig.quick(frames=6, train_size=32, heldout=8, construct_blocks=4, dit_width=16,
                                 sweep_steps=2, sweep_model="dit", progress=False)
    sweeps = run_extra_sweeps(config, ["H", "size", "decay"])
    decay_points = 4 + sum(nu != config.nu for nu in (0.5, 1.5, 2.0))  # 4 ell values, then the other nu values
    assert [len(sweeps[name]["results"]) for name in ("H", "size", "decay")] == [3, 4, decay_points]
    for name in ("H", "size", "decay"):
        for row in sweeps[name]["results"]:
            assert 0 < row["score_error"] < 10 and 0 < row["constructed_score_error"] < 10
    pytest.importorskip("matplotlib")
    from unroll.training.figures import _sweeps_figure, require_matplotlib

    path = _sweeps_figure(require_matplotlib(), sweeps, tmp_path / "sweeps.png")
    assert (tmp_path / "sweeps.png").stat().st_size > 0 and path.endswith("sweeps.png")


def test_train_cli_writes_checkpoint_and_resumes(tmp_path, capsys):
    args = ["train", "--model", "dit", "--out", str(tmp_path), "--frames", "6", "--train-size", "32",
            "--steps", "6", "--batch-size", "8", "--no-progress"]
    assert main(args) == 0
    first = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "checkpoint.pt").exists() and first["steps"] == 6 and "score_error" in first
    assert main(args) == 0  # nothing left to do: resumes at step 6
    second = json.loads((tmp_path / "results.json").read_text())
    assert second["resumed_from"] == 6 and second["score_error"] == first["score_error"]


def test_compare_rejects_bad_arguments(tmp_path, capsys):
    assert main(["compare", "--quick", "--out", str(tmp_path), "--sweeps", "n,bogus"]) == 2
    assert "sweeps" in capsys.readouterr().err
