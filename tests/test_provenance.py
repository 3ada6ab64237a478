"""Provenance and configuration records: every file a command writes names its run field by field, the run rebuilds
from the file alone, and two runs with the same seeds write the same file up to ``VOLATILE_FIELDS``."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from unroll.cli import main
from unroll.provenance import VOLATILE_FIELDS, git_state, load_results, provenance, rebuild, strip_volatile

VERIFY = ["verify", "--kernel", "matern", "--nu", "1.5", "--ell", "3", "--frames", "10", "--dim", "3", "--bands", "4",
          "--blocks", "6", "--time", "0.3", "--taper", "triangular", "--batch", "2", "--seed", "7",
          "--spatial-condition", "9"]


def _correlation_matrix(dim: int, rho: float) -> torch.Tensor:
    """``rho^|a-b|`` by a plain loop (the oracle of the correlated Sigma)."""
    out = torch.empty(dim, dim, dtype=torch.float64)
    for a in range(dim):
        for b in range(dim):
            out[a, b] = rho ** abs(a - b)
    return out


def _differences(first, second, path=""):
    """The dotted paths at which two JSON values differ."""
    if isinstance(first, dict) and isinstance(second, dict):
        return [p for key in sorted(set(first) | set(second))
                for p in _differences(first.get(key), second.get(key), f"{path}.{key}" if path else key)]
    return [] if first == second else [path]


# --------------------------------------------------------------------------- the provenance record
def test_provenance_names_versions_command_and_time():
    import datetime

    import numpy
    import scipy

    import unroll

    record = provenance(["unroll", "verify", "--seed", "3"])
    assert record["version"] == unroll.__version__ and record["torch"] == torch.__version__
    assert record["numpy"] == numpy.__version__ and record["scipy"] == scipy.__version__
    assert record["command"] == ["unroll", "verify", "--seed", "3"]
    stamp = datetime.datetime.fromisoformat(record["timestamp_utc"])
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 60
    assert record["threads"] == torch.get_num_threads()


def _git(folder, *arguments):
    subprocess.run(["git", "-C", str(folder), *arguments], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_state_reads_the_commit_and_the_dirty_flag(tmp_path):
    package = tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("x = 1\n")
    assert git_state(package) is None  # not a checkout
    _git(tmp_path / "repo", "init", "-q")
    assert git_state(package) is None  # a checkout that does not track the package
    _git(tmp_path / "repo", "add", "pkg/__init__.py")
    _git(tmp_path / "repo", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path / "repo"), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert git_state(package) == {"commit": head, "dirty": False}
    (package / "__init__.py").write_text("x = 2\n")
    assert git_state(package) == {"commit": head, "dirty": True}


def test_git_state_without_git_is_none(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on the path: never fails
    assert git_state() is None
    assert provenance()["git"] is None


# --------------------------------------------------------------------------- verify
def test_verify_json_rebuilds_the_gp_and_the_model(tmp_path, capsys):
    from unroll.data.gp_spec import random_spatial_covariance
    from unroll.verification import verify

    path = tmp_path / "v.json"
    assert main([*VERIFY, "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    gp_fields = record["configuration"]["gp"]
    assert gp_fields == {"kernel": "matern", "nu": 1.5, "ell": 3.0, "period": None, "frames": 10, "dim": 3,
                         "spatial": "random", "spatial_seed": 7, "spatial_condition": 9.0}
    assert record["configuration"]["seed"] == 7 and record["configuration"]["construction"]["bands"] == 4
    assert record["provenance"]["command"] == ["unroll", *VERIFY, "--json", str(path)]
    rebuilt = rebuild(path)
    assert torch.equal(rebuilt.gp.spatial, random_spatial_covariance(3, 7, 9.0))
    assert rebuilt.gp.kernel.nu == 1.5 and rebuilt.gp.kernel.ell == 3.0 and rebuilt.gp.frames == 10
    # the rebuilt run measures what the file holds, to the last bit
    report = verify(rebuilt.gp, rebuilt.model, record["configuration"]["time"],
                    generator=torch.Generator().manual_seed(record["configuration"]["seed"]),
                    batch=record["configuration"]["batch"])
    for name, part in record["parts"].items():
        assert report.parts[name].measured == part["measured"], name


def test_verify_correlated_sigma_and_json_to_stdout(capsys):
    assert main(["verify", "--frames", "8", "--dim", "3", "--bands", "2", "--blocks", "3", "--batch", "1",
                 "--spatial", "correlated", "--spatial-correlation", "-0.3", "--json", "-"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)  # stdout is the JSON alone; the table went to stderr
    assert "runtime" in err and "runtime " not in out
    assert record["configuration"]["gp"]["spatial_correlation"] == -0.3
    assert torch.allclose(rebuild(record).gp.spatial, _correlation_matrix(3, -0.3), rtol=0, atol=1e-15)


def test_two_verify_runs_with_the_same_seed_differ_only_in_volatile_fields(tmp_path, capsys):
    path = tmp_path / "v.json"
    assert main([*VERIFY, "--json", str(path)]) == 0
    first = json.loads(path.read_text())
    assert main([*VERIFY, "--json", str(path)]) == 0
    second = json.loads(path.read_text())
    assert set(_differences(first, second)) <= {"provenance.timestamp_utc", "runtime_seconds"}
    assert strip_volatile(first) == strip_volatile(second)
    assert main([*VERIFY[:-3], "8", "--spatial-condition", "9", "--json", str(path)]) == 0
    assert json.loads(path.read_text())["configuration"]["seed"] == 8
    assert strip_volatile(json.loads(path.read_text())) != strip_volatile(first)  # the check can fail


# --------------------------------------------------------------------------- bounds and demo
def test_bounds_json_rebuilds_the_gp_and_its_bounds(tmp_path, capsys):
    import theory

    path = tmp_path / "b.json"
    argv = ["bounds", "--kernel", "polynomial", "--nu", "2", "--ell", "2", "--frames", "16", "--dim", "2",
            "--bands", "5", "--blocks", "30", "--spatial", "correlated", "--json", str(path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    record = json.loads(path.read_text())
    assert f"trunc          = {record['bounds']['trunc']:.4g}" in out
    gp = rebuild(path).gp
    assert torch.allclose(gp.spatial, _correlation_matrix(2, 0.5), rtol=0, atol=1e-15)
    config = theory.Configuration.from_gp(gp, bands=5, blocks=30, diffusion_time=record["configuration"]["time"],
                                          taper=None, max_condition=3.0)  # (1 + 0.5)/(1 - 0.5) for d = 2
    assert theory.BOUNDS["trunc"].evaluate(config) == pytest.approx(record["bounds"]["trunc"], rel=1e-12, abs=0)
    assert {row["name"] for row in record["assumptions"]} >= {"gamma_pd", "truncated_pd"}


def test_demo_json_rebuilds_the_gp(tmp_path, capsys):
    path = tmp_path / "d.json"
    assert main(["demo", "--frames", "6", "--dim", "2", "--batch", "2", "--seed", "5", "--json", str(path)]) == 0
    record = json.loads(path.read_text())
    gp = rebuild(path).gp
    assert gp.lambda_min == record["lambda_min"] and len(record["rows"]) == 5


# --------------------------------------------------------------------------- train
TRAIN = ["train", "--model", "dit", "--frames", "6", "--dim", "2", "--train-size", "32", "--steps", "6",
         "--batch-size", "8", "--no-progress", "--no-resume", "--seed", "3"]


@pytest.mark.parametrize(("model", "kernel"), [("dit", "gamma-exponential"), ("relu_transformer", "damped-cosine")])
def test_train_results_rebuild_the_gp_and_the_network(model, kernel, tmp_path, capsys):
    from unroll.data.gp_spec import random_spatial_covariance

    argv = [*TRAIN, "--out", str(tmp_path), "--kernel", kernel]
    argv[argv.index("dit")] = model
    assert main(argv) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    configuration = record["configuration"]
    assert configuration["gp"]["kernel"] == kernel and configuration["gp"]["ell"] == 2.0
    assert configuration["model"] == model
    assert configuration["seed"] == 3 and configuration["training"]["seed"] == 3
    rebuilt = rebuild(tmp_path / "results.json")
    assert torch.equal(rebuilt.gp.spatial, random_spatial_covariance(2, 3))
    assert sum(p.numel() for p in rebuilt.model.parameters()) == record["parameters"]
    # the checkpoint's trained weights fit the rebuilt architecture exactly
    from unroll.experiments.checkpoint import load_checkpoint

    rebuilt.model.load_state_dict(load_checkpoint(tmp_path / "checkpoint.pt")["model_state"])


def test_two_train_runs_with_the_same_seed_differ_only_in_volatile_fields(tmp_path, capsys):
    argv = [*TRAIN, "--out", str(tmp_path)]
    assert main(argv) == 0
    first = json.loads((tmp_path / "results.json").read_text())
    assert main(argv) == 0
    second = json.loads((tmp_path / "results.json").read_text())
    assert set(_differences(first, second)) <= {"provenance.timestamp_utc", "seconds"}
    assert strip_volatile(first) == strip_volatile(second)


# --------------------------------------------------------------------------- compare
def _tiny_compare(**overrides):
    from test_cli_compare import tiny_config

    return tiny_config(figures=False, **overrides)


def test_compare_results_rebuild_the_gp_and_the_construction(tmp_path):
    from unroll.experiments.compare import float64_score, heldout_set, run_comparison, score_error

    config = _tiny_compare(spatial="random", spatial_seed=4, spatial_condition=6.0)
    results = run_comparison(config, tmp_path / "a", command_line=["unroll", "compare", "--tiny"])
    on_disk = load_results(tmp_path / "a" / "results.json")
    assert on_disk["configuration"]["gp"]["spatial_seed"] == 4 and on_disk["config"]["spatial_condition"] == 6.0
    assert on_disk["provenance"]["command"] == ["unroll", "compare", "--tiny"]
    rebuilt = rebuild(on_disk)
    from unroll.data.gp_spec import random_spatial_covariance

    assert torch.equal(rebuilt.gp.spatial, random_spatial_covariance(config.dim, 4, 6.0))
    held = heldout_set(rebuilt.gp, config.heldout, config.eval_times, seed=1000)
    assert score_error(float64_score(rebuilt.model), held)["score_error"] == \
        results["constructed_gd"]["score_error"]
    # a second run from scratch with the same seeds: the same file but for the time and the timings
    run_comparison(config, tmp_path / "b", command_line=["unroll", "compare", "--tiny"])
    again = load_results(tmp_path / "b" / "results.json")
    assert "provenance.timestamp_utc" in VOLATILE_FIELDS
    assert strip_volatile(on_disk) == strip_volatile(again)
    assert strip_volatile(on_disk) != strip_volatile({**again, "n_sweep": {}})  # the comparison can fail


def test_compare_default_gp_is_the_record_and_keeps_its_task_records():
    """Sigma stays the record's rho^|a-b| and the task records hold no random-Sigma fields (old caches stay
    valid)."""
    from unroll.cli.compare import RECORD_GP
    from unroll.experiments.compare import CompareConfig, comparison_tasks

    config = CompareConfig()
    assert {name: getattr(config, name) for name in RECORD_GP} == RECORD_GP
    for task in comparison_tasks(_tiny_compare()).values():
        text = json.dumps(task, default=str)
        assert "spatial_seed" not in text and "spatial_condition" not in text
    random = comparison_tasks(_tiny_compare(spatial="random"))
    assert all("spatial_seed" in json.dumps(task, default=str) for task in random.values())


# --------------------------------------------------------------------------- sweep
def test_sweep_table_rebuilds_each_row_and_repeats_itself(tmp_path, capsys):
    from unroll.verification import verify

    argv = ["sweep", "--examples", "3", "--seed", "2", "--no-progress", "--out", str(tmp_path)]
    assert main(argv) == 0
    first = (tmp_path / "property_run.tsv").read_text()
    table = load_results(tmp_path / "property_run.tsv")
    assert table["configuration"]["seed"] == 2 and table["provenance"]["command"] == ["unroll", *argv]
    assert len(table["rows"]) == 3
    for index, row in enumerate(table["rows"]):
        rebuilt = rebuild(tmp_path / "property_run.tsv", row=index)
        report = verify(rebuilt.gp, rebuilt.model, float(row["t"]), generator=torch.Generator().manual_seed(0),
                        batch=int(row["batch"]))
        assert repr(report.parts["total"].measured) == row["total_measured"]
    assert main(argv) == 0
    second = (tmp_path / "property_run.tsv").read_text()
    changed = [(a, b) for a, b in zip(first.splitlines(), second.splitlines(), strict=True) if a != b]
    assert len(changed) <= 1 and all(a.startswith("# provenance: ") for a, _ in changed)  # the header line only
    again = load_results(tmp_path / "property_run.tsv")
    assert strip_volatile(again) == strip_volatile(table)  # and in it the time alone


def test_rebuild_refuses_a_file_without_a_configuration():
    with pytest.raises(ValueError, match="configuration"):
        rebuild({"parts": {}})


def test_strip_volatile_drops_the_time_and_every_timing_only():
    record = {"provenance": {"timestamp_utc": "x", "version": "1"}, "seconds": 1.0, "kept": 2,
              "timings_seconds": {"total": 3.0}, "runs": [{"seconds": [1.0, 2.0], "score_error": 0.5}],
              "seconds_per_step": 4.0}
    assert strip_volatile(record) == {"provenance": {"version": "1"}, "kept": 2, "runs": [{"score_error": 0.5}],
                                      "seconds_per_step": 4.0}
