"""unroll.experiments.linear_response: Jacobians of score functions against dense-inverse, autograd-Hessian and
by-hand oracles."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import unroll
from unroll.experiments.compare import make_gp
from unroll.experiments.distribution import linear_score_matrix
from unroll.experiments.linear_response import LinearResponse, lag_profile, lag_profile_error

FRAMES, DIM, TIME = 6, 2, 0.3
SIZE = FRAMES * DIM


@pytest.fixture(scope="module")
def gp():
    return make_gp("gamma-exponential", 1.0, 3.0, FRAMES, DIM)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _matrix_score(matrix: torch.Tensor):
    """``x -> matrix vec(x)`` written plainly."""
    def score(x, diffusion_time):
        return (x.reshape(x.shape[0], -1) @ matrix.T).reshape(x.shape)
    return score


def _block_toeplitz_projection(matrix: torch.Tensor, frames: int, dim: int) -> torch.Tensor:
    """Loop oracle: replace every d x d block (i, j) by the mean of the blocks with the same |i - j|."""
    blocks: dict[int, list[torch.Tensor]] = {}
    for i in range(frames):
        for j in range(frames):
            blocks.setdefault(abs(i - j), []).append(matrix[i * dim:(i + 1) * dim, j * dim:(j + 1) * dim])
    means = {lag: torch.stack(found).mean(dim=0) for lag, found in blocks.items()}
    out = torch.empty_like(matrix)
    for i in range(frames):
        for j in range(frames):
            out[i * dim:(i + 1) * dim, j * dim:(j + 1) * dim] = means[abs(i - j)]
    return out


# ----------------------------------------------------------------------------- exact and constructed scores
def test_exact_score_gives_the_dense_inverse_precision(gp):
    result = unroll.linear_response(gp.score, gp, TIME, samples=10, keep_jacobians=True)
    inverse = torch.linalg.inv(gp.noised_covariance(TIME))
    assert isinstance(result, LinearResponse)
    assert result.mean.shape == (SIZE, SIZE) and result.jacobians.shape == (10, SIZE, SIZE)
    assert _relative(result.mean, -inverse) <= 1e-10
    assert _relative(result.exact, -inverse) <= 1e-12
    assert result.error <= 1e-10
    assert result.nonlinearity <= 1e-12
    assert result.lag_profile_error <= 1e-10
    assert result.samples == 10 and result.diffusion_time == TIME and result.method == "autograd-loop"


def test_a_jacobian_equals_the_hessian_of_the_gaussian_log_density(gp):
    """Oracle independent of gp.score's algebra: the Hessian of log N(0, C_t), by torch autograd."""
    result = unroll.linear_response(gp.score, gp, TIME, samples=3, keep_jacobians=True)
    law = torch.distributions.MultivariateNormal(torch.zeros(SIZE, dtype=torch.float64), gp.noised_covariance(TIME))
    point = torch.randn(SIZE, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    hessian = torch.autograd.functional.hessian(law.log_prob, point)
    assert _relative(result.jacobians[1], hessian) <= 1e-10


def test_constructed_network_is_its_own_matrix(gp):
    net = unroll.construct_unrolled(gp, blocks=6, bands=FRAMES - 1)
    result = unroll.linear_response(net, gp, TIME, samples=4)
    matrix = linear_score_matrix(net, FRAMES, DIM, TIME)
    inverse = torch.linalg.inv(gp.noised_covariance(TIME))
    assert _relative(result.mean, matrix) <= 1e-10
    assert result.nonlinearity <= 1e-12
    assert math.isclose(result.error, _relative(matrix, -inverse), rel_tol=1e-8)
    assert result.error > 1e-3  # six GD steps are far from converged: the statistic is not trivially 0


def test_vectorized_backward_agrees_with_the_loop(gp):
    loop = unroll.linear_response(gp.score, gp, TIME, samples=5, keep_jacobians=True)
    vectorized = unroll.linear_response(gp.score, gp, TIME, samples=5, keep_jacobians=True, vectorize=True)
    assert vectorized.method == "autograd-vectorized"
    assert torch.allclose(vectorized.jacobians, loop.jacobians, rtol=0, atol=1e-13)


class _Unbatchable(torch.autograd.Function):
    """``-x`` whose backward has data-dependent control flow, which vmap (the vectorized backward) rejects."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        if bool(torch.isfinite(grad).all()):
            return -grad
        raise AssertionError("non-finite gradient")


def test_vectorized_backward_falls_back_to_the_loop(gp):
    result = unroll.linear_response(lambda x, t: _Unbatchable.apply(x), gp, TIME, samples=3, vectorize=True)
    assert result.method == "autograd-loop (the vectorized backward failed)"
    assert torch.equal(result.mean, -torch.eye(SIZE, dtype=torch.float64))


# ----------------------------------------------------------------------------- wrong and nonlinear scores
def test_wrong_linear_score_error_and_lag_profile_error_by_hand(gp):
    covariance = gp.noised_covariance(TIME)
    wrong = -torch.linalg.inv(covariance + 0.3 * torch.eye(SIZE, dtype=torch.float64))
    exact = -torch.linalg.inv(covariance)
    result = unroll.linear_response(_matrix_score(wrong), gp, TIME, samples=4)
    assert math.isclose(result.error, float((wrong - exact).norm() / exact.norm()), rel_tol=1e-10)
    projected, projected_exact = (_block_toeplitz_projection(m, FRAMES, DIM) for m in (wrong, exact))
    by_hand = float((projected - projected_exact).norm() / projected_exact.norm())
    assert math.isclose(result.lag_profile_error, by_hand, rel_tol=1e-10)
    assert result.lag_profile_error > 0.01
    assert result.nonlinearity <= 1e-14


@pytest.mark.parametrize("options", [dict(), dict(vectorize=True), dict(method="finite-difference")])
def test_non_symmetric_matrix_is_read_in_vec_order(gp, options):
    """J[k, l] = d vec(S)_k / d vec(x)_l: a non-symmetric matrix catches a transposed Jacobian."""
    matrix = torch.randn(SIZE, SIZE, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    result = unroll.linear_response(_matrix_score(matrix), gp, TIME, samples=3, **options)
    tolerance = 1e-8 if options.get("method") == "finite-difference" else 1e-14
    assert torch.allclose(result.mean, matrix, rtol=0, atol=tolerance)


def test_minus_identity_score(gp):
    result = unroll.linear_response(lambda x, t: -x, gp, TIME, samples=2)
    identity = torch.eye(SIZE, dtype=torch.float64)
    exact = -torch.linalg.inv(gp.noised_covariance(TIME))
    assert torch.equal(result.mean, -identity)
    assert math.isclose(result.error, float((-identity - exact).norm() / exact.norm()), rel_tol=1e-12)
    assert torch.equal(result.lag_profile_scalar, torch.tensor([-1.0] + [0.0] * (FRAMES - 1), dtype=torch.float64))


def _cubic(x, diffusion_time):
    return -x - 0.1 * x**3


def _cubic_jacobians(points: torch.Tensor) -> torch.Tensor:
    flat = points.reshape(points.shape[0], -1)
    return torch.stack([torch.diag(-1.0 - 0.3 * row**2) for row in flat])


def test_nonlinear_score_jacobians_and_spread(gp):
    points = gp.noised(gp.sample(10, generator=torch.Generator().manual_seed(2)), TIME,
                       generator=torch.Generator().manual_seed(3))
    result = unroll.linear_response(_cubic, gp, TIME, x=points, keep_jacobians=True, chunk=3)  # 4 chunks
    analytic = _cubic_jacobians(points)
    assert torch.allclose(result.jacobians, analytic, rtol=0, atol=1e-14)
    mean = analytic.mean(dim=0)
    spread = np.mean([float((jacobian - mean).norm()) ** 2 for jacobian in analytic])
    assert math.isclose(result.nonlinearity, math.sqrt(spread) / float(mean.norm()), rel_tol=1e-10)
    assert result.nonlinearity > 0.05


def test_finite_differences_for_a_score_autograd_cannot_see(gp):
    def no_grad_score(x, t):
        with torch.no_grad():
            return _cubic(x, t)

    with pytest.raises(ValueError, match="finite-difference"):
        unroll.linear_response(no_grad_score, gp, TIME, samples=2)
    points = gp.noised(gp.sample(3, generator=torch.Generator().manual_seed(4)), TIME,
                       generator=torch.Generator().manual_seed(5))
    result = unroll.linear_response(no_grad_score, gp, TIME, x=points, keep_jacobians=True,
                                    method="finite-difference")
    assert result.method == "finite-difference"
    # central differences: truncation h^2 |f'''| / 6 = 0.1 h^2 with h ~ 6e-6 x max|x|, plus rounding ~ eps |f| / h
    assert torch.allclose(result.jacobians, _cubic_jacobians(points), rtol=0, atol=1e-8)
    exact = unroll.linear_response(gp.score, gp, TIME, samples=3, method="finite-difference")
    assert exact.error <= 1e-8


def test_output_without_x_but_with_grad_fn_has_zero_jacobian(gp):
    weight = torch.ones((), dtype=torch.float64, requires_grad=True)
    result = unroll.linear_response(lambda x, t: weight * torch.zeros_like(x), gp, TIME, samples=2)
    assert torch.equal(result.mean, torch.zeros(SIZE, SIZE, dtype=torch.float64))
    assert result.error == 1.0 and result.nonlinearity == 0.0


def test_samples_that_interact_are_refused(gp):
    with pytest.raises(ValueError, match="mixes the samples"):
        unroll.linear_response(lambda x, t: -x + 0.1 * x.mean(dim=0, keepdim=True), gp, TIME, samples=4)


# ----------------------------------------------------------------------------- lag profiles
def test_lag_profile_of_a_block_toeplitz_matrix_returns_its_blocks():
    generator = torch.Generator().manual_seed(0)
    blocks = torch.randn(FRAMES, DIM, DIM, generator=generator, dtype=torch.float64)
    matrix = torch.empty(SIZE, SIZE, dtype=torch.float64)
    for i in range(FRAMES):
        for j in range(FRAMES):
            matrix[i * DIM:(i + 1) * DIM, j * DIM:(j + 1) * DIM] = blocks[abs(i - j)]
    assert torch.allclose(lag_profile(matrix, FRAMES, DIM), blocks, rtol=0, atol=1e-15)


def test_lag_profile_of_a_general_matrix_is_the_hand_average():
    matrix = torch.randn(SIZE, SIZE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    profile = lag_profile(matrix, FRAMES, DIM)
    for lag in range(FRAMES):
        found = [matrix[i * DIM:(i + 1) * DIM, j * DIM:(j + 1) * DIM]
                 for i in range(FRAMES) for j in range(FRAMES) if abs(i - j) == lag]
        assert len(found) == (FRAMES if lag == 0 else 2 * (FRAMES - lag))
        assert torch.allclose(profile[lag], sum(found) / len(found), rtol=0, atol=1e-14)


def test_lag_profile_error_is_the_distance_of_block_toeplitz_projections():
    generator = torch.Generator().manual_seed(2)
    a, b = (torch.randn(SIZE, SIZE, generator=generator, dtype=torch.float64) for _ in range(2))
    projected_a, projected_b = (_block_toeplitz_projection(m, FRAMES, DIM) for m in (a, b))
    expected = float((projected_a - projected_b).norm() / projected_b.norm())
    got = lag_profile_error(lag_profile(a, FRAMES, DIM), lag_profile(b, FRAMES, DIM))
    assert math.isclose(got, expected, rel_tol=1e-12)


def test_to_dict_is_json_ready_and_small(gp):
    result = unroll.linear_response(gp.score, gp, TIME, samples=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert "mean" not in data and "jacobians" not in data
    assert np.array(data["lag_profile"]).shape == (FRAMES, DIM, DIM)
    assert len(data["lag_profile_scalar"]) == FRAMES and data["samples"] == 2
    assert np.array(json.loads(json.dumps(result.to_dict(matrices=True)))["mean"]).shape == (SIZE, SIZE)


def test_top_level_name_is_the_function():
    import unroll.experiments.linear_response as module

    assert unroll.linear_response is module.linear_response and module.LinearResponse is LinearResponse
    assert "linear_response" in unroll.__all__


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("diffusion_time", [0.0, -1.0, float("nan"), float("inf"), [0.1, 0.2]])
def test_bad_diffusion_time(gp, diffusion_time):
    with pytest.raises(ValueError, match="diffusion_time"):
        unroll.linear_response(gp.score, gp, diffusion_time)


@pytest.mark.parametrize("kwargs, name", [
    (dict(samples=0), "samples"),
    (dict(x=torch.zeros(2, FRAMES + 1, DIM)), "x"),
    (dict(x=torch.zeros(FRAMES, DIM)), "x"),
    (dict(x=torch.zeros(0, FRAMES, DIM)), "x"),
    (dict(x=torch.full((2, FRAMES, DIM), float("nan"))), "x"),
    (dict(method="symbolic"), "method"),
    (dict(chunk=0), "chunk"),
])
def test_bad_arguments(gp, kwargs, name):
    with pytest.raises(ValueError, match=name):
        unroll.linear_response(gp.score, gp, TIME, **kwargs)


@pytest.mark.parametrize("score_fn, message", [
    (lambda x, t: x[:, :-1], "shape"),
    (lambda x, t: x * float("nan"), "NaN"),
    (lambda x, t: -x.float(), "float64"),
    (lambda x, t: torch.zeros_like(x), "grad_fn"),
    (lambda x, t: -x.numpy(), "torch.Tensor"),
])
def test_bad_score_functions(gp, score_fn, message):
    with pytest.raises(ValueError, match=message):
        unroll.linear_response(score_fn, gp, TIME, samples=2)


def test_bad_lag_profile_input():
    with pytest.raises(ValueError, match="matrix"):
        lag_profile(torch.zeros(SIZE, SIZE + 1), FRAMES, DIM)
    with pytest.raises(ValueError, match="frames"):
        lag_profile(torch.zeros(SIZE, SIZE), 0, DIM)
