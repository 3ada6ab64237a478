"""``unroll compare --quick`` and ``unroll train`` end to end (small)."""

from __future__ import annotations

import json

import pytest

from unroll.cli import main

MODELS = ("constructed_gd", "constructed_chebyshev", "relu_transformer", "dit", "unet")


def tiny_config(**overrides):
    """The comparison's whole design at toy size (fast enough for the default suite)."""
    from unroll.experiments.compare import CompareConfig

    settings = dict(frames=6, train_size=64, validation_size=32, heldout=16, steps=12, eval_every=4, patience=2,
                    construct_blocks=4, relu_blocks=1, relu_bands=2, dit_blocks=1, dit_width=16, unet_channels=8,
                    unet_levels=1, relu_width=12, sweep_sizes=(8, 16, 32), generated_samples=16, sampler_steps=5,
                    lengths=(8,), warp=1.5, init_seeds=1, eval_times=(0.1, 1.0), workers=0, progress=False)
    settings.update(overrides)
    return CompareConfig.quick(**settings)


@pytest.mark.slow
def test_compare_quick_writes_results_with_required_keys(tmp_path):
    assert main(["compare", "--quick", "--out", str(tmp_path), "--no-progress", "--no-figures"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    for name in MODELS:
        assert 0 <= results[name]["score_error"] < 10
        assert {"linear_response_error", "lag_profile_error"} <= set(results["models"][name])
    assert {"slope", "interval", "verdict"} <= set(results["n_sweep"])
    assert (tmp_path / "verdicts.md").read_text().startswith("| claim |")


def test_compare_tiny_run_writes_results_with_required_keys(tmp_path):
    """The whole design at toy size through the same code path: every key, every claim, resumable."""
    from unroll.experiments.compare import comparison_tasks, run_comparison, verdict_table

    config = tiny_config(control_kernel="damped-cosine")
    results = run_comparison(config, tmp_path)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    for name in MODELS:
        assert isinstance(on_disk[name]["score_error"], float)
        assert on_disk["models"][name]["linear_response_error"] >= 0
        assert on_disk["models"][name]["lag_profile_error"] >= 0
    assert {"slope", "interval", "verdict", "all_sizes"} <= set(on_disk["n_sweep"])
    assert set(on_disk["kernels"]) == {"gamma-exponential", "damped-cosine"}
    for entry in on_disk["kernels"].values():
        claims = {(row["claim"], row["model"], row["against"], row["statistic"]) for row in entry["claims"]}
        assert ("(a) attention follows the kernel", "dit", "no_position", "attention_distance") in claims
        assert ("(a) linear response follows the kernel", "dit", "white", "lag_profile_error") in claims
        assert any(c[0].startswith("(c)") for c in claims) and any(c[0].startswith("(d)") for c in claims)
        for row in entry["claims"]:
            assert row["verdict"] in ("supported", "not supported", "undecided")
        assert entry["architectures"]["parameters"]["dit"] > 0
        assert entry["constructions"]["exact_score"]["kl_to_data"] > 0
        assert entry["init_at_construction"]["tent_fidelity_initial"][0] == pytest.approx(1.0, abs=1e-9)
        same_network = entry["init_at_construction"]["random_init_same_network"]
        assert len(same_network["score_error"]) == 1 and same_network["tent_fidelity_trained"][0] < 1
    assert on_disk["nonstationary"]["stationary"] is False
    assert set(on_disk["kernels"]["gamma-exponential"]["probes"]) == {"dit", "relu_transformer"}
    # every task ran once and was cached; a rerun reads them all back (nothing recomputed: same numbers)
    assert len(list((tmp_path / "tasks").glob("*.json"))) == len(comparison_tasks(config))
    again = run_comparison(config, tmp_path)
    assert again["models"]["dit"] == results["models"]["dit"]
    assert verdict_table(on_disk).count("\n") == 2 + len(on_disk["verdicts"])
    assert not list(tmp_path.glob("*.tmp"))
    pytest.importorskip("matplotlib")
    for name in ("comparison_attention", "comparison_linear_response", "comparison_sample_complexity",
                 "comparison_probes"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    # each comparison figure is a Figure; the one-panel one draws into a given ax, the others into a given fig
    from matplotlib.figure import Figure

    from unroll.figures import comparison

    tasks = comparison._read_tasks(tmp_path / "tasks")
    for draw in (lambda fig: comparison.comparison_attention_figure(on_disk, tasks, fig=fig),
                 lambda fig: comparison.comparison_linear_response_figure(on_disk, tasks, fig=fig),
                 lambda fig: comparison.comparison_sample_complexity_figure(on_disk, fig=fig)):
        host = Figure()
        assert draw(None).get_axes() and draw(host) is host and len(host.get_axes()) == len(on_disk["kernels"])
    host = Figure()
    ax = host.subplots()
    assert comparison.comparison_probes_figure(on_disk, ax=ax) is host and ax.lines
    # unroll figures --results draws the same figures from the files alone
    assert main(["figures", "--results", str(tmp_path / "results.json"), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "comparison_probes.png").stat().st_size > 0


def test_every_seed_of_an_arm_starts_from_its_own_initialisation():
    """The ReLU transformer seeds itself from its config: each task's options must carry the task's seed."""
    from unroll.experiments.compare import comparison_tasks
    from unroll.experiments.run import train_and_measure

    tasks = comparison_tasks(tiny_config())
    relu = [kwargs for name, kwargs in tasks.items() if ".relu_transformer." in name]
    assert relu and all(kwargs["options"]["seed"] == kwargs["seed"] for kwargs in relu)
    wrong = {k: v for k, v in relu[0].items() if k != "job"}
    wrong["options"] = {**wrong["options"], "seed": wrong["seed"] + 1}
    with pytest.raises(ValueError, match="seed"):
        train_and_measure(**wrong)
    without_data = {k: v for k, v in relu[0].items() if k != "job"} | {"arm": "data", "train_size": None}
    with pytest.raises(ValueError, match="train_size"):  # it reached int(None)
        train_and_measure(**without_data)


def test_dit_and_unet_of_the_comparison_are_matched_within_ten_percent():
    from unroll.experiments.compare import CompareConfig, parameter_match

    match = parameter_match(CompareConfig())
    assert match["within_10_percent"], match
    assert not parameter_match(CompareConfig(dit_width=64))["within_10_percent"]



def test_the_relu_transformer_options_follow_the_construction_and_need_the_gp():
    """``sweep_model="relu_transformer"`` used to reach ``gp.frames`` with ``gp=None`` (an AttributeError)."""
    from unroll import construct_unrolled
    from unroll.experiments.compare import CompareConfig, sample_complexity_config
    from unroll.experiments.run import gp_from_spec

    config = CompareConfig.quick(frames=6, sweep_model="relu_transformer", relu_bands=9)
    with pytest.raises(ValueError, match="gp is required"):
        config.model_options("relu_transformer")
    gp = gp_from_spec(config.gp_spec())
    size = construct_unrolled(gp, blocks=config.relu_blocks, bands=5, taper="triangular").config  # bands <= H-1
    options = sample_complexity_config(config, config.kernel).model_options
    assert options["blocks"] == size["blocks"] and options["heads"] == size["heads"]
    assert options["width"] == max(config.relu_width, size["width"])
    assert options["qk_scale"] == pytest.approx(1 / 6)


def test_extra_sweeps_run_and_draw_their_figure(tmp_path):
    """The H / size / decay sweeps end to end at toy size: every point trained and scored, one figure."""
    from unroll.experiments.compare import CompareConfig
    from unroll.experiments.sweeps import run_extra_sweeps

    config = CompareConfig.quick(frames=6, train_size=32, heldout=8, construct_blocks=4, dit_width=16,
                                 sweep_steps=2, progress=False)
    sweeps = run_extra_sweeps(config, ["H", "size", "decay"])
    decay_points = 4 + sum(nu != config.nu for nu in (0.5, 1.5, 2.0))  # 4 ell values, then the other nu values
    assert [len(sweeps[name]["results"]) for name in ("H", "size", "decay")] == [3, 4, decay_points]
    for name in ("H", "size", "decay"):
        for row in sweeps[name]["results"]:
            assert 0 < row["score_error"] < 10 and 0 < row["constructed_score_error"] < 10
    pytest.importorskip("matplotlib")
    from unroll.figures.comparison import save_atomic, sweeps_figure

    figure = sweeps_figure(sweeps)
    assert len(figure.get_axes()) == 3  # one panel per sweep
    path = save_atomic(figure, tmp_path / "sweeps.png")
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
    assert main(["compare", "--quick", "--out", str(tmp_path), "--sweeps", "H,bogus"]) == 2
    assert "sweeps" in capsys.readouterr().err
    assert main(["compare", "--quick", "--out", str(tmp_path), "--control-kernel", "gauss"]) == 2
    assert "kernel" in capsys.readouterr().err
    assert main(["compare", "--quick", "--out", str(tmp_path), "--workers", "-1"]) == 2
    assert "workers" in capsys.readouterr().err
