"""The samplers of ``unroll.data.diffusion`` against the exact law of their own discretisation, with enough samples that
a wrong drift, step or noise scale fails for every seed.

For data ``N(0, v)`` in one dimension the exact score is linear, ``s(x, t) = -x / (a_t v + s_t)`` (``a_t = e^-t``,
``s_t = 1 - e^-t``), so one Euler–Maruyama step ``x <- x + h (x/2 + s(x, t_k)) + sqrt(h) xi`` maps mean and variance
exactly: ``m <- g_k m``, ``V <- g_k^2 V + h`` with ``g_k = 1 + h (1/2 - 1/(a v + s))``.  Starting from ``x = 1``
the sample mean and variance of ``N`` draws have standard deviations ``sqrt(V/N)`` and ``V sqrt(2/N)``
(Gaussian samples).  The tests allow 5 of those (a false alarm below 1e-6); the nearest wrong sampler listed in
``WRONG_SAMPLERS`` moves the variance or the mean by more than 30 of them, so it fails whatever the seed.
"""

from __future__ import annotations

import math

import pytest
import torch

from unroll.data import diffusion

VARIANCE, T_START, T0, STEPS, SAMPLES = 2.0, 3.0, 0.05, 20, 1_000_000


def score(x, t):
    a = torch.exp(-t)
    return -x / (a * VARIANCE + 1 - a)[:, None, None]


def euler_maruyama_law(drift_half=0.5, noise_power=0.5, time_index=0):
    """Exact mean and variance after the Euler–Maruyama steps from ``x = 1``; the defaults are the sampler's
    documented step, the arguments give the wrong samplers below."""
    grid = diffusion.time_grid(T_START, T0, STEPS).tolist()
    mean, variance = 1.0, 0.0
    for k in range(STEPS):
        h = grid[k] - grid[k + 1]
        a = math.exp(-grid[k + time_index])
        gain = 1 + h * (drift_half - 1 / (a * VARIANCE + 1 - a))
        mean, variance = gain * mean, gain**2 * variance + h ** (2 * noise_power)
    return mean, variance


WRONG_SAMPLERS = {"drift x instead of x/2": dict(drift_half=1.0),
                  "noise h xi instead of sqrt(h) xi": dict(noise_power=1.0),
                  "score at t_(k+1) instead of t_k": dict(time_index=1)}


def test_the_listed_wrong_samplers_are_far_outside_the_statistics():
    mean, variance = euler_maruyama_law()
    mean_sd, variance_sd = math.sqrt(variance / SAMPLES), variance * math.sqrt(2 / SAMPLES)
    for name, change in WRONG_SAMPLERS.items():
        wrong_mean, wrong_variance = euler_maruyama_law(**change)
        shift = max(abs(wrong_mean - mean) / mean_sd, abs(wrong_variance - variance) / variance_sd)
        assert shift > 30, (name, shift)


@pytest.mark.parametrize("seed", [0, 1])
def test_reverse_sde_mean_and_variance_match_the_exact_euler_maruyama_law(seed):
    mean, variance = euler_maruyama_law()
    x_start = torch.ones(SAMPLES, 1, 1, dtype=torch.float64)
    samples = diffusion.sample_reverse_sde(score, (SAMPLES, 1, 1), t_start=T_START, t0=T0, steps=STEPS,
                                           x_start=x_start, generator=torch.Generator().manual_seed(seed)).flatten()
    assert abs(float(samples.mean()) - mean) < 5 * math.sqrt(variance / SAMPLES)
    assert abs(float(samples.var()) - variance) < 5 * variance * math.sqrt(2 / SAMPLES)


def test_probability_flow_is_heun_on_the_exact_linear_ode():
    """Deterministic: for the linear score each Heun step multiplies x by a number computed here."""
    grid = diffusion.time_grid(T_START, T0, STEPS).tolist()
    factor = 1.0
    for k in range(STEPS):
        h = grid[k] - grid[k + 1]

        def velocity(t):
            a = math.exp(-t)
            return 0.5 - 0.5 / (a * VARIANCE + 1 - a)

        slope = velocity(grid[k])
        factor *= 1 + 0.5 * h * (slope + velocity(grid[k + 1]) * (1 + h * slope))
    x_start = torch.tensor([[[1.0]], [[-2.5]]], dtype=torch.float64)
    out = diffusion.sample_probability_flow(score, (2, 1, 1), t_start=T_START, t0=T0, steps=STEPS, x_start=x_start)
    assert torch.allclose(out, factor * x_start, rtol=1e-12, atol=0)
