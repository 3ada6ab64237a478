"""Property tests: over hypothesis-drawn configurations of every family, each measured error part of the
constructed network is below its bound; where assumptions fail, a verdict and no crash."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings

import theory
from theory.sweep import property_run, slack_summary
from unroll.construction.gd import IndefiniteTruncationError
from unroll.testing import FAMILIES, configurations


def _assert_parts_hold(report, drawn):
    for name, result in theory.check_report(report).items():
        assert result.holds, (name, str(result), repr(drawn))
        assert not math.isnan(result.bound)


@settings(max_examples=40, deadline=None)
@given(configurations(frames=(2, 10), blocks=(1, 12)))
def test_exact_mode_parts_below_bounds_all_families(drawn):
    _assert_parts_hold(drawn.verify(), drawn)


@pytest.mark.parametrize("family", FAMILIES)
def test_paper_mode_parts_below_bounds(family):
    @settings(max_examples=6, deadline=None)
    @given(configurations(families=[family], frames=(2, 8), blocks=(1, 8), modes=("paper",)))
    def run(drawn):
        _assert_parts_hold(drawn.verify(), drawn)

    run()


@settings(max_examples=10, deadline=None)
@given(configurations(frames=(2, 8), blocks=(1, 8)))
def test_float32_parts_below_bounds(drawn):
    _assert_parts_hold(drawn.verify(dtype=torch.float32), drawn)


@settings(max_examples=40, deadline=None)
@given(configurations(families=["polynomial", "logarithmic", "matern"], nu=(0.2, 1.0), ell=(1.0, 8.0),
                      frames=(4, 12), bands=(0, 2), tapers=(None,), satisfying_assumptions=False))
def test_failing_assumptions_give_a_verdict_not_a_crash(drawn):
    """Slowly decaying kernels, plain cut, small J: the constructor refuses exactly when Gamma_J is not
    (numerically) positive definite, and otherwise every part still holds its bound (inf if vacuous)."""
    outcome = drawn.run()
    table = drawn.assumptions
    if outcome.report is None:
        assert "positive definite" in outcome.error and not table["truncated_pd"].holds
        with pytest.raises(IndefiniteTruncationError):
            drawn.build()
        values = theory.evaluate_all(drawn.config)
        assert all(not math.isnan(v) for v in values.values())
    else:
        assert table["truncated_pd"].holds
        _assert_parts_hold(outcome.report, drawn)
    if not table["truncation_informative"].holds and table["gd_converges"].holds:
        assert theory.evaluate_all(drawn.config)["trunc"] >= 1.0


@pytest.mark.slow
def test_200_example_property_run_under_a_minute():
    """Timing run (slow): 200 drawn configurations, all bounds hold, wall time < 60 s on 2 cores."""
    rows, seconds = property_run(200, seed=0)
    summary = slack_summary(rows)
    assert all(stats["violations"] == 0 for stats in summary.values()), summary
    print(f"200 examples in {seconds:.1f} s; slack {summary}")
    assert seconds < 60.0
