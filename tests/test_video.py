"""Moving-ball video: shape, determinism, and temporal correlation that decays with the lag."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unroll.experiments.video import lag_profile_of_matrix, moving_ball_video, temporal_correlation


def test_video_shape_seed_and_standardisation():
    a = moving_ball_video(64, frames=10, size=6, generator=torch.Generator().manual_seed(3))
    b = moving_ball_video(64, frames=10, size=6, generator=torch.Generator().manual_seed(3))
    assert a.shape == (64, 10, 36) and a.dtype == torch.float64
    assert torch.equal(a, b)
    assert abs(float(a.mean())) < 1e-10
    raw = moving_ball_video(4, frames=5, size=6, standardise=False, generator=torch.Generator().manual_seed(0))
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1


def test_temporal_correlation_matches_plain_loop_and_decays():
    video = moving_ball_video(200, frames=12, size=6, generator=torch.Generator().manual_seed(1))
    corr = temporal_correlation(video)
    centred = (video - video.mean(dim=0, keepdim=True)).numpy()
    i, j = 2, 7
    num = sum(float(np.dot(centred[n, i], centred[n, j])) for n in range(200))
    den = np.sqrt(sum(float(np.dot(centred[n, i], centred[n, i])) for n in range(200))
                  * sum(float(np.dot(centred[n, j], centred[n, j])) for n in range(200)))
    assert corr[i, j] == pytest.approx(num / den, rel=1e-10, abs=0)
    assert torch.allclose(torch.diagonal(corr), torch.ones(12, dtype=torch.float64))
    profile = lag_profile_of_matrix(corr)
    assert profile[1] > profile[4] > profile[10]  # smooth trajectories: correlation falls with the lag


def test_lag_profile_of_toeplitz_matrix_returns_its_values():
    values = np.array([1.0, 0.5, 0.2, -0.1])
    toeplitz = values[np.abs(np.subtract.outer(np.arange(4), np.arange(4)))]
    assert np.allclose(lag_profile_of_matrix(toeplitz), values)


def test_video_rejects_bad_sizes():
    with pytest.raises(ValueError, match="size"):
        moving_ball_video(2, size=1)
    with pytest.raises(ValueError, match="radius"):
        moving_ball_video(2, radius=0)
