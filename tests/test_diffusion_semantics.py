"""Semantic tests of ``unroll.data.diffusion`` written to kill the survivors of mutation testing (issue 15).

Oracles: the OU schedule's closed forms and its ODE (alpha' = -alpha/2, (sigma^2)' = alpha^2, by torch autograd),
plainly written Euler-Maruyama and Heun loops over a grid built here from its definition, the exact solution of
the probability-flow ODE for Gaussian data, and the distribution of log-uniform times.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from unroll.data import diffusion

#: float64 rounding: a handful of operations on O(1) numbers, so 1e-12 leaves a margin of ~4500 ulp
ROUNDING = 1e-12


def geometric_grid(t_start: float, t0: float, steps: int) -> list[float]:
    """``t_k = t_start (t0/t_start)^(k/steps)``: equal ratios ``t_{k+1}/t_k``, from ``t_start`` to ``t0``."""
    return [t_start * (t0 / t_start) ** (k / steps) for k in range(steps + 1)]


def uniform_grid(t_start: float, t0: float, steps: int) -> list[float]:
    return [t_start + (t0 - t_start) * k / steps for k in range(steps + 1)]


def linear_score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The exact score of data N(0, 4 I): ``-x / (4 alpha_t^2 + sigma_t^2)`` (per-sample ``t`` of shape (batch,))."""
    variance = 4.0 * torch.exp(-t) - torch.expm1(-t)
    return -x / variance[:, None, None]


# ------------------------------------------------------------------------------------------------ schedule
def test_schedule_tensor_branch_solves_the_ou_equations():
    """alpha_t = exp(-t/2) and sigma_t^2 = 1 - exp(-t) for tensors: alpha' = -alpha/2 and (sigma^2)' = alpha^2 by
    autograd, alpha^2 + sigma^2 = 1, sigma = sqrt(sigma^2), and the values at t = 0 (a tensor 0 is allowed)."""
    t = torch.tensor([0.0, 1e-9, 0.3, 2.0, 8.0], requires_grad=True)
    a, s2, s = diffusion.alpha(t), diffusion.sigma2(t), diffusion.sigma(t)
    assert isinstance(a, torch.Tensor) and isinstance(s2, torch.Tensor) and isinstance(s, torch.Tensor)
    (da,) = torch.autograd.grad(a.sum(), t)
    (ds2,) = torch.autograd.grad(s2.sum(), t)
    torch.testing.assert_close(da, -0.5 * a.detach(), rtol=ROUNDING, atol=0.0)
    torch.testing.assert_close(ds2, a.detach() ** 2, rtol=ROUNDING, atol=0.0)
    torch.testing.assert_close(a.detach() ** 2 + s2.detach(), torch.ones(5), rtol=ROUNDING, atol=0.0)
    torch.testing.assert_close(s.detach() ** 2, s2.detach(), rtol=ROUNDING, atol=0.0)
    a, s2, s = a.detach(), s2.detach(), s.detach()
    assert float(a[0]) == 1.0 and float(s2[0]) == 0.0 and float(s[0]) == 0.0
    assert float(s2[1]) == pytest.approx(1e-9, rel=1e-8, abs=0)  # -expm1 keeps the digits 1 - exp would lose
    for index, t_float in enumerate((0.0, 1e-9, 0.3, 2.0)):
        assert diffusion.alpha(t_float) == pytest.approx(float(a[index]), rel=1e-15, abs=0)
        assert diffusion.sigma(t_float) ** 2 == pytest.approx(diffusion.sigma2(t_float), rel=ROUNDING, abs=0)


# ------------------------------------------------------------------------------------------------ noising
def test_noise_per_sample_times_and_unbatched_input():
    """x_t = alpha_t x0 + sigma_t z with each sample's own time (shape (batch,)), and for a single (H, d) sample;
    z is the generator's first standard normal draw of x0's shape."""
    x0 = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0))
    times = torch.tensor([0.1, 1.0, 5.0])
    x_t, z = diffusion.noise(x0, times, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z, torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1)), rtol=0, atol=0)
    for b, t in enumerate(times.tolist()):
        expected = math.exp(-t / 2) * x0[b] + math.sqrt(-math.expm1(-t)) * z[b]
        torch.testing.assert_close(x_t[b], expected, rtol=ROUNDING, atol=ROUNDING)
    single, z1 = diffusion.noise(x0[0], 0.5, generator=torch.Generator().manual_seed(2))
    assert single.shape == (4, 2)
    torch.testing.assert_close(single, math.exp(-0.25) * x0[0] + math.sqrt(-math.expm1(-0.5)) * z1,
                               rtol=ROUNDING, atol=ROUNDING)


# ------------------------------------------------------------------------------------------------ times
def test_sample_diffusion_times_log_uniform_and_uniform_laws():
    """Log-uniform: log t uniform on [log t_min, log t_max], so mean(log t) = (log t_min + log t_max)/2 and
    var = (log(t_max/t_min))^2/12; uniform: mean (t_min+t_max)/2, var (t_max-t_min)^2/12.  With n = 40000 draws the
    standard error of the mean is sd/200 and each check is at 6 standard errors; a change of either end or of the
    law moves the mean by many more (e.g. t_max 10 -> 11: the log mean moves by 0.048 = 17 standard errors)."""
    n = 40_000
    times = diffusion.sample_diffusion_times(n, t_min=1e-3, t_max=10.0, generator=torch.Generator().manual_seed(5))
    assert times.dtype == torch.float64 and times.shape == (n,)
    assert float(times.min()) >= 1e-3 and float(times.max()) <= 10.0
    logs = torch.log(times)
    width = math.log(10.0) - math.log(1e-3)
    assert abs(float(logs.mean()) - 0.5 * (math.log(1e-3) + math.log(10.0))) < 6 * width / math.sqrt(12 * n)
    assert abs(float(logs.var()) - width**2 / 12) < 0.02 * width**2 / 12
    flat = diffusion.sample_diffusion_times(n, t_min=2.0, t_max=6.0, log_uniform=False,
                                            generator=torch.Generator().manual_seed(6))
    assert float(flat.min()) >= 2.0 and float(flat.max()) <= 6.0
    assert abs(float(flat.mean()) - 4.0) < 6 * 4.0 / math.sqrt(12 * n)
    assert abs(float(flat.var()) - 16 / 12) < 0.02 * 16 / 12
    defaults = diffusion.sample_diffusion_times(n, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(defaults, times, rtol=0, atol=0)  # documented defaults t_min = 1e-3, t_max = 10


def test_sample_diffusion_times_edges_of_the_range():
    """t_min = t_max is a point mass; the extreme representable t_min = finfo.tiny is allowed, and the dtype is
    honoured."""
    same = diffusion.sample_diffusion_times(5, t_min=0.3, t_max=0.3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, torch.full((5,), 0.3), rtol=ROUNDING, atol=0.0)
    same_flat = diffusion.sample_diffusion_times(5, t_min=0.3, t_max=0.3, log_uniform=False)
    torch.testing.assert_close(same_flat, torch.full((5,), 0.3), rtol=ROUNDING, atol=0.0)
    tiny = torch.finfo(torch.float32).tiny
    small = diffusion.sample_diffusion_times(5, t_min=tiny, t_max=1.0, dtype=torch.float32,
                                             generator=torch.Generator().manual_seed(0))
    assert small.dtype == torch.float32 and bool((small > 0).all())
    big = diffusion.sample_diffusion_times(3, t_min=1.0, t_max=torch.finfo(torch.float32).max, dtype=torch.float32,
                                           log_uniform=False)
    assert bool(torch.isfinite(big).all())


# ------------------------------------------------------------------------------------------------ the loss
def test_dsm_loss_by_hand_for_scalar_vector_and_default_times():
    """L = mean_b ||sigma_t model(x_t, t) + z||^2 / (H d) computed here from the same draws: the forward noise is
    the generator's normal draw after the times (default t_min = 1e-3, t_max = 10, log-uniform).  A scalar time is
    the same as that time for every sample; the model sees the per-sample times (shape (batch,))."""
    x0 = torch.randn(5, 3, 2, generator=torch.Generator().manual_seed(0))
    seen: list[torch.Tensor] = []

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t.clone())
        return -0.7 * x + 0.1

    def by_hand(times: torch.Tensor, generator: torch.Generator) -> float:
        z = torch.randn(x0.shape, generator=generator)
        total = 0.0
        for b in range(5):
            a, s = math.exp(-float(times[b]) / 2), math.sqrt(-math.expm1(-float(times[b])))
            x_t = a * x0[b] + s * z[b]
            total += float(((s * (-0.7 * x_t + 0.1) + z[b]) ** 2).sum()) / (3 * 2)
        return total / 5

    loss = diffusion.dsm_loss(model, x0, generator=torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    times = diffusion.sample_diffusion_times(5, t_min=1e-3, t_max=10.0, generator=generator)
    torch.testing.assert_close(seen[-1], times, rtol=0, atol=0)
    assert float(loss) == pytest.approx(by_hand(times, generator), rel=ROUNDING, abs=0)

    scalar = diffusion.dsm_loss(model, x0, diffusion_time=torch.tensor(0.4), generator=torch.Generator().manual_seed(4))
    assert seen[-1].shape == (5,) and bool((seen[-1] == 0.4).all())
    vector = diffusion.dsm_loss(model, x0, diffusion_time=torch.full((5,), 0.4),
                                generator=torch.Generator().manual_seed(4))
    assert float(scalar) == float(vector)
    assert float(scalar) == pytest.approx(by_hand(torch.full((5,), 0.4), torch.Generator().manual_seed(4)),
                                          rel=ROUNDING)
    ranged = diffusion.dsm_loss(model, x0, t_min=0.5, t_max=0.6, generator=torch.Generator().manual_seed(7))
    assert bool(((seen[-1] >= 0.5) & (seen[-1] <= 0.6)).all())
    assert float(ranged) == pytest.approx(by_hand(seen[-1], _after_times(5, 0.5, 0.6, 7)), rel=ROUNDING)


def _after_times(count: int, t_min: float, t_max: float, seed: int) -> torch.Generator:
    """A generator in the state dsm_loss leaves it in after drawing its times."""
    generator = torch.Generator().manual_seed(seed)
    diffusion.sample_diffusion_times(count, t_min=t_min, t_max=t_max, generator=generator)
    return generator


def test_dsm_loss_is_differentiable_in_the_model_parameters():
    """d L / d c for model = c * x equals the closed-form derivative 2 mean_b sum(sigma x_t (sigma c x_t + z))/(Hd)."""
    x0 = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(1))
    c = torch.tensor(-0.5, requires_grad=True)
    times = torch.tensor([0.1, 0.5, 1.0, 3.0])
    loss = diffusion.dsm_loss(lambda x, t: c * x, x0, diffusion_time=times, generator=torch.Generator().manual_seed(2))
    (grad,) = torch.autograd.grad(loss, c)
    x_t, z = diffusion.noise(x0, times, generator=torch.Generator().manual_seed(2))
    s = torch.sqrt(-torch.expm1(-times))[:, None, None]
    expected = float((2 * s * x_t * (s * -0.5 * x_t + z)).sum(dim=(-2, -1)).mean()) / 6
    assert float(grad) == pytest.approx(expected, rel=ROUNDING, abs=0)


# ------------------------------------------------------------------------------------------------ grids
@pytest.mark.parametrize(("t_start", "t0", "steps"), [(10.0, 1e-3, 7), (2.0, 0.5, 1), (8.0, 1e-2, 50)])
def test_time_grid_geometric_and_uniform_against_their_definitions(t_start, t0, steps):
    """Geometric: t_k = t_start (t0/t_start)^(k/steps) (default); uniform: equal differences; both float64,
    steps + 1 points from t_start to t0."""
    geometric = diffusion.time_grid(t_start, t0, steps)
    assert geometric.dtype == torch.float64 and geometric.shape == (steps + 1,)
    np.testing.assert_allclose(geometric.numpy(), geometric_grid(t_start, t0, steps), rtol=ROUNDING)
    uniform = diffusion.time_grid(t_start, t0, steps, spacing="uniform")
    assert uniform.dtype == torch.float64
    np.testing.assert_allclose(uniform.numpy(), uniform_grid(t_start, t0, steps), rtol=ROUNDING)
    with pytest.raises(ValueError, match="t0"):
        diffusion.time_grid(t_start, t_start, steps)
    with pytest.raises(ValueError, match="spacing"):
        diffusion.time_grid(t_start, t0, steps, spacing="cosine")


# ------------------------------------------------------------------------------------------------ samplers
def plain_euler_maruyama(score, x: torch.Tensor, grid: list[float], generator: torch.Generator) -> torch.Tensor:
    """x <- x + h (x/2 + s(x, t_k)) + sqrt(h) xi, xi ~ N(0, I) from ``generator``, along ``grid``."""
    for k in range(len(grid) - 1):
        h = grid[k] - grid[k + 1]
        drift = 0.5 * x + score(x, torch.full((x.shape[0],), grid[k]))
        x = x + h * drift + math.sqrt(h) * torch.randn(x.shape, generator=generator)
    return x


def plain_heun(score, x: torch.Tensor, grid: list[float]) -> torch.Tensor:
    """Heun on dx/d(-t) = x/2 + s(x, t)/2 along ``grid``."""
    def velocity(state: torch.Tensor, t: float) -> torch.Tensor:
        return 0.5 * state + 0.5 * score(state, torch.full((state.shape[0],), t))

    for k in range(len(grid) - 1):
        h = grid[k] - grid[k + 1]
        slope = velocity(x, grid[k])
        guess = x + h * slope
        x = x + 0.5 * h * (slope + velocity(guess, grid[k + 1]))
    return x


@pytest.mark.parametrize("spacing", ["geometric", "uniform"])
def test_reverse_sde_is_the_plain_euler_maruyama_loop(spacing):
    """sample_reverse_sde equals a plainly written EM loop with the same generator draws, from x_start and from its
    own N(0, I) start (the generator's first draw), with default t_start = 10, t0 = 1e-3, steps = 500."""
    shape = (3, 4, 2)
    grid_of = geometric_grid if spacing == "geometric" else uniform_grid
    x_start = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    got = diffusion.sample_reverse_sde(linear_score, shape, t_start=5.0, t0=0.01, steps=20, x_start=x_start,
                                       spacing=spacing, generator=torch.Generator().manual_seed(1))
    expected = plain_euler_maruyama(linear_score, x_start, grid_of(5.0, 0.01, 20), torch.Generator().manual_seed(1))
    torch.testing.assert_close(got, expected, rtol=ROUNDING, atol=ROUNDING)
    assert torch.equal(x_start, torch.randn(shape, generator=torch.Generator().manual_seed(0)))  # not modified

    generator = torch.Generator().manual_seed(2)
    start = torch.randn(shape, generator=generator)
    expected = plain_euler_maruyama(linear_score, start, grid_of(10.0, 1e-3, 500), generator)
    got = diffusion.sample_reverse_sde(linear_score, shape, spacing=spacing,
                                       generator=torch.Generator().manual_seed(2))
    assert got.dtype == torch.float64 and got.shape == shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)  # 500 steps of rounding-level grid gaps


@pytest.mark.parametrize("spacing", ["geometric", "uniform"])
def test_probability_flow_is_the_plain_heun_loop(spacing):
    """sample_probability_flow equals a plainly written Heun loop (defaults t_start = 10, t0 = 1e-3, steps = 200),
    and draws its start from the generator when x_start is not given."""
    shape = (2, 3, 2)
    grid_of = geometric_grid if spacing == "geometric" else uniform_grid
    x_start = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    got = diffusion.sample_probability_flow(linear_score, shape, t_start=5.0, t0=0.01, steps=15, x_start=x_start,
                                            spacing=spacing)
    torch.testing.assert_close(got, plain_heun(linear_score, x_start, grid_of(5.0, 0.01, 15)),
                               rtol=ROUNDING, atol=ROUNDING)
    start = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    got = diffusion.sample_probability_flow(linear_score, shape, spacing=spacing,
                                            generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, plain_heun(linear_score, start, grid_of(10.0, 1e-3, 200)),
                               rtol=1e-10, atol=1e-10)


def test_probability_flow_solves_the_gaussian_ode_exactly():
    """For data N(0, c I) the probability-flow ODE has the solution x_t0 = sqrt(v_t0 / v_T) x_T, v_t = c alpha_t^2 +
    sigma_t^2 (d log x / dt = (1 - v_t)/(2 v_t) = v_t'/(2 v_t)).  Heun is second order: with 400 geometric steps from
    T = 10 to t0 = 1e-3 the measured relative error is below 1e-5; a wrong factor 1/2 in the drift or a first-order
    (Euler) update misses by more than 1e-3."""
    c = 4.0
    x_start = torch.tensor([[[1.0], [-2.0]]])
    got = diffusion.sample_probability_flow(linear_score, (1, 2, 1), x_start=x_start, steps=400)

    def v(t: float) -> float:
        return c * math.exp(-t) - math.expm1(-t)

    expected = math.sqrt(v(1e-3) / v(10.0)) * x_start
    torch.testing.assert_close(got, expected, rtol=2e-4, atol=0.0)


def test_samplers_pass_each_step_time_to_the_score():
    """The score is called with the grid time for every sample (shape (batch,)): EM once per step at t_k, Heun at
    t_k and t_{k+1}."""
    calls: list[torch.Tensor] = []

    def recording(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(t.clone())
        return -x

    grid = geometric_grid(4.0, 0.1, 3)
    diffusion.sample_reverse_sde(recording, (2, 1, 1), t_start=4.0, t0=0.1, steps=3,
                                 generator=torch.Generator().manual_seed(0))
    assert [c.shape for c in calls] == [(2,)] * 3
    np.testing.assert_allclose([float(c[1]) for c in calls], grid[:3], rtol=ROUNDING)
    calls.clear()
    diffusion.sample_probability_flow(recording, (2, 1, 1), t_start=4.0, t0=0.1, steps=3,
                                      generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose([float(c[0]) for c in calls], [grid[0], grid[1], grid[1], grid[2], grid[2], grid[3]],
                               rtol=ROUNDING)


def test_samplers_honour_dtype_and_x_start_dtype():
    """dtype float32: the state, the draws and the result are float32; an x_start of another dtype is cast."""
    x_start = torch.zeros(2, 3, 1, dtype=torch.float64)
    out = diffusion.sample_reverse_sde(lambda x, t: -x, (2, 3, 1), steps=3, dtype=torch.float32, x_start=x_start,
                                       generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    flow = diffusion.sample_probability_flow(lambda x, t: -x, (2, 3, 1), steps=3, dtype=torch.float32,
                                             generator=torch.Generator().manual_seed(0))
    assert flow.dtype == torch.float32


def test_schedule_type_errors_name_the_argument():
    """A non-real time is refused with a message that starts with the argument's name (scalar and tensor paths)."""
    for helper in (diffusion.alpha, diffusion.sigma2, diffusion.sigma):
        with pytest.raises(TypeError, match=r"^diffusion_time must be a real number"):
            helper("1")
        with pytest.raises(TypeError, match=r"^diffusion_time must be real"):
            helper(torch.tensor([1j]))


def test_noise_and_loss_keep_float32_and_name_their_bad_arguments():
    """float32 data stays float32 through the forward process and the loss (times and noise are cast to the data's
    dtype, not promoted to float64); bad arguments are refused by name, and a time of shape (batch, 1) is not
    broadcast."""
    x0 = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(0)).to(torch.float32)
    x_t, z = diffusion.noise(x0, torch.tensor([0.2, 0.9], dtype=torch.float64), generator=torch.Generator())
    assert x_t.dtype == torch.float32 and z.dtype == torch.float32
    loss = diffusion.dsm_loss(lambda x, t: -x, x0, generator=torch.Generator().manual_seed(1))
    assert loss.dtype == torch.float32
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator"):
        diffusion.noise(x0, 0.5, generator=5)
    with pytest.raises(TypeError, match=r"^generator must be a torch\.Generator"):
        diffusion.dsm_loss(lambda x, t: -x, x0, generator=5)
    with pytest.raises(ValueError, match=r"^x0 must have shape \(\.\.\., H, d\)"):
        diffusion.noise(torch.zeros(3), 0.5)
    with pytest.raises(TypeError, match=r"^x0 must be a floating tensor"):
        diffusion.noise(torch.zeros(2, 3, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match=r"^x0 must have shape \(\.\.\., H, d\)"):
        diffusion.dsm_loss(lambda x, t: -x, torch.zeros(3))
    for bad_time in (torch.tensor([[0.1], [0.2]]), torch.tensor([0.1, 0.2, 0.3])):
        with pytest.raises(ValueError, match=r"does not match the batch shape \(2,\)"):
            diffusion.noise(x0, bad_time)
        with pytest.raises(ValueError, match=r"does not match the batch shape \(2,\)"):
            diffusion.dsm_loss(lambda x, t: -x, x0, diffusion_time=bad_time)
    with pytest.raises(TypeError, match=r"^model must be callable"):
        diffusion.dsm_loss(3, x0)


def _identity_score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return x


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: diffusion.sample_diffusion_times(0), ValueError, r"^count must satisfy 1 <= count"),
    (lambda: diffusion.sample_diffusion_times(2, t_min=-1.0), ValueError, r"^t_min must satisfy 0 < t_min"),
    (lambda: diffusion.sample_diffusion_times(2, t_max=-1.0), ValueError, r"^t_max must satisfy 0 < t_max"),
    (lambda: diffusion.sample_diffusion_times(2, t_min=2.0, t_max=1.0), ValueError, r"^t_max must satisfy t_max >="),
    (lambda: diffusion.sample_diffusion_times(2, generator=1), TypeError, r"^generator must be a torch\.Generator"),
    (lambda: diffusion.sample_diffusion_times(2, log_uniform=1), TypeError, r"^log_uniform must be True or False"),
    (lambda: diffusion.time_grid(-1.0, 0.1, 3), ValueError, r"^t_start must satisfy 0 < t_start"),
    (lambda: diffusion.time_grid(1.0, -0.1, 3), ValueError, r"^t0 must satisfy 0 < t0"),
    (lambda: diffusion.time_grid(1.0, 0.1, 0), ValueError, r"^steps must satisfy 1 <= steps"),
    (lambda: diffusion.time_grid(1.0, 0.1, 2.0), TypeError, r"^steps must be an integer"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 3)), TypeError, r"^shape must be a tuple"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 0, 1)), ValueError, r"^shape\[1\] must satisfy"),
    (lambda: diffusion.sample_probability_flow(_identity_score, (0, 2, 1)), ValueError, r"^shape\[0\] must satisfy"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 3, 1), dtype=torch.int32), TypeError,
     r"^dtype must be a floating torch dtype"),
    (lambda: diffusion.sample_probability_flow(_identity_score, (2, 3, 1), dtype="float64"), TypeError,
     r"^dtype must be a floating torch dtype"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 3, 1), generator=3), TypeError,
     r"^generator must be a torch\.Generator"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 3, 1), x_start=torch.zeros(2, 3)), ValueError,
     r"^x_start must have shape \(2, 3, 1\), got \(2, 3\)"),
    (lambda: diffusion.sample_probability_flow(_identity_score, (2, 3, 1), x_start=torch.full((2, 3, 1), math.nan)),
     ValueError, r"^x_start contains 6 NaN"),
    (lambda: diffusion.sample_reverse_sde(_identity_score, (2, 3, 1), x_start=torch.zeros(2, 3, 1,
                                                                                      dtype=torch.complex64)),
     TypeError, r"^x_start must be real"),
    (lambda: diffusion.sample_probability_flow(lambda x, t: 3, (2, 3, 1), steps=2), ValueError,
     r"^score must return a tensor of the shape of x, \(2, 3, 1\); got int"),
    (lambda: diffusion.sample_reverse_sde(lambda x, t: x * math.inf, (2, 3, 1), steps=2), ValueError,
     r"^sample_reverse_sde produced 6 NaN"),
    (lambda: diffusion.dsm_loss(lambda x, t: -x, torch.zeros(3, 4, 2), diffusion_time="1"), TypeError,
     r"^diffusion_time must be a positive real number"),
    (lambda: diffusion.dsm_loss(lambda x, t: 3, torch.zeros(3, 4, 2)), ValueError,
     r"^model output has shape int, expected \(3, 4, 2\)"),
    (lambda: diffusion.dsm_loss(lambda x, t: x[..., :1], torch.zeros(3, 4, 2)), ValueError,
     r"^model output has shape \(3, 4, 1\), expected \(3, 4, 2\)"),
    (lambda: diffusion.sample_reverse_sde(lambda x, t: x[..., :1], (2, 3, 2), steps=2), ValueError,
     r"^score must return a tensor of the shape of x, \(2, 3, 2\); got \(2, 3, 1\)$"),
])
def test_bad_arguments_are_refused_by_name(call, error, message):
    """Each refusal names the argument at the start of its message (the sizes' lower bounds included: 1, not 2)."""
    with pytest.raises(error, match=message):
        call()


def test_smallest_sizes_are_accepted():
    """count = 1, steps = 1 and a (1, 1, 1) sample shape are valid."""
    assert diffusion.sample_diffusion_times(1).shape == (1,)
    assert diffusion.time_grid(2.0, 1.0, 1).shape == (2,)
    for sampler in (diffusion.sample_reverse_sde, diffusion.sample_probability_flow):
        out = sampler(lambda x, t: -x, (1, 1, 1), steps=1, generator=torch.Generator().manual_seed(0))
        assert out.shape == (1, 1, 1) and bool(torch.isfinite(out).all())


def test_times_do_not_depend_on_the_default_dtype():
    """The uniform draws behind the times are float64 whatever torch's default dtype: the same generator gives the
    same times under a float32 default (float32 draws would be another stream, rounded to 2^-24).  Time grids and
    the samplers' output (dtype=float64 by default) are float64 under that default too."""
    reference = diffusion.sample_diffusion_times(6, generator=torch.Generator().manual_seed(3))
    flat_reference = diffusion.sample_diffusion_times(6, log_uniform=False, generator=torch.Generator().manual_seed(3))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        times = diffusion.sample_diffusion_times(6, generator=torch.Generator().manual_seed(3))
        flat = diffusion.sample_diffusion_times(6, log_uniform=False, generator=torch.Generator().manual_seed(3))
        grids = [diffusion.time_grid(4.0, 0.1, 5, spacing=spacing) for spacing in ("geometric", "uniform")]
        sample = diffusion.sample_reverse_sde(lambda x, t: -x, (1, 2, 1), steps=2)
        flow = diffusion.sample_probability_flow(lambda x, t: -x, (1, 2, 1), steps=2)
    finally:
        torch.set_default_dtype(previous)
    assert times.dtype == torch.float64
    torch.testing.assert_close(times, reference, rtol=0, atol=0)
    torch.testing.assert_close(flat, flat_reference, rtol=0, atol=0)
    assert [grid.dtype for grid in grids] == [torch.float64, torch.float64]  # the grids are float64 always
    assert sample.dtype == torch.float64 and flow.dtype == torch.float64  # the samplers' default dtype


def test_the_model_sees_times_in_the_data_dtype():
    """dsm_loss calls the model with t of shape (batch,) in x0's dtype, also when the given times are float64."""
    x0 = torch.randn(3, 2, 2, generator=torch.Generator().manual_seed(0)).to(torch.float32)
    seen: list[torch.Tensor] = []

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return -x

    diffusion.dsm_loss(model, x0, diffusion_time=torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64))
    diffusion.dsm_loss(model, x0, diffusion_time=0.4)
    diffusion.dsm_loss(model, x0)
    assert [(t.dtype, tuple(t.shape)) for t in seen] == [(torch.float32, (3,))] * 3


def test_time_grid_memory_guard_counts_eight_bytes_per_point(monkeypatch):
    """The grid is steps + 1 float64 values: with 8 * 1001 bytes available a 1000-step grid fits and a 1001-step
    one is refused, naming the call."""
    import unroll._validate

    monkeypatch.setattr(unroll._validate, "available_memory", lambda: 8 * 1001)
    assert diffusion.time_grid(2.0, 1.0, 1000).shape == (1001,)
    message = r"^time_grid\(steps=1001\) needs about 8\.02e\+03 bytes of memory, more than the 8\.01e\+03"
    with pytest.raises(ValueError, match=message):
        diffusion.time_grid(2.0, 1.0, 1001)


def test_samples_must_be_real_and_finite_by_name():
    """noise refuses a complex or non-finite x0 with a message naming x0."""
    with pytest.raises(TypeError, match=r"^x0 must be real"):
        diffusion.noise(torch.zeros(2, 3, 1, dtype=torch.complex64), 0.5)
    bad = torch.zeros(2, 3, 1)
    bad[0, 1, 0] = math.nan
    with pytest.raises(ValueError, match=r"^x0 contains 1 NaN"):
        diffusion.noise(bad, 0.5)


@pytest.mark.parametrize(("sampler", "label"), [(diffusion.sample_reverse_sde, "reverse SDE"),
                                                (diffusion.sample_probability_flow, "probability flow")])
def test_progress_bar_only_when_asked_and_without_effect_on_the_samples(sampler, label, capsys):
    """progress=False writes nothing; progress=True shows a bar labelled with the sampler's name on stderr; the
    samples are the same either way (same generator)."""
    quiet = sampler(lambda x, t: -x, (2, 2, 1), steps=3, generator=torch.Generator().manual_seed(0))
    assert capsys.readouterr().err == ""
    shown = sampler(lambda x, t: -x, (2, 2, 1), steps=3, generator=torch.Generator().manual_seed(0), progress=True)
    assert label in capsys.readouterr().err
    assert torch.equal(quiet, shown)


@pytest.mark.parametrize("shape", [(1,), (2,), (3, 1)])
def test_dsm_loss_refuses_times_that_do_not_match_the_batch(shape):
    """One time per sample or one scalar: a ``(1,)`` time for a batch of 3 is refused, not broadcast."""
    x0 = torch.zeros(3, 4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"does not match the batch shape \(3,\)"):
        diffusion.dsm_loss(lambda x, t: torch.zeros_like(x), x0, diffusion_time=torch.full(shape, 0.4))


def test_dsm_loss_draws_its_times_in_the_dtype_of_the_data():
    """float32 data get float32 diffusion times: the loss with the times drawn equals, bit for bit, the loss given
    the same draws in float32 (``sample_diffusion_times(..., dtype=float32)``) and the generator past them."""
    x0 = torch.randn(5, 3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(torch.float32)

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -0.7 * x + 0.1

    drawn = diffusion.dsm_loss(model, x0, generator=torch.Generator().manual_seed(3))
    times = diffusion.sample_diffusion_times(5, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    given = diffusion.dsm_loss(model, x0, diffusion_time=times, generator=_after_times(5, 1e-3, 10.0, 3))
    assert drawn.dtype == torch.float32 and torch.equal(drawn, given)
