"""The O(H log H) Toeplitz paths: FFT products, PCG, the Gohberg–Semencul inverse, the Toeplitz score path, circulant
sampling and the symbol's spectral bounds, each against an independent dense (numpy/scipy) oracle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from toeplitz_cases import dense, relative_error, spd_columns

from unroll import GaussianProcess
from unroll.construction import gd
from unroll.data.kernels import LagFunction, Logarithmic, Matern
from unroll.linalg.circulant import IndefiniteEmbeddingError, circulant_transform, embedding_eigenvalues
from unroll.linalg.symbol import symbol_extremes, toeplitz_extremes
from unroll.linalg.toeplitz import (
    PRECONDITIONERS,
    SolveInfo,
    ToeplitzInverse,
    ToeplitzSolveError,
    circulant_preconditioner,
    pcg,
    toeplitz_matmul,
)


def random_spd(dim: int, seed: int, low: float = 1e-2, high: float = 1e2) -> torch.Tensor:
    """A spatial covariance with log-uniform eigenvalues in [low, high] and a random rotation."""
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    eigenvalues = torch.exp(torch.empty(dim, dtype=torch.float64).uniform_(np.log(low), np.log(high),
                                                                           generator=generator))
    matrix = (rotation * eigenvalues) @ rotation.T
    return 0.5 * (matrix + matrix.T)


# ------------------------------------------------------------------------------------------------ products and solves
@pytest.mark.parametrize("frames", [1, 2, 3, 7, 64, 257])
def test_toeplitz_matmul_matches_the_dense_product(frames):
    columns = spd_columns(frames)
    y = torch.randn(5, 3, frames, generator=torch.Generator().manual_seed(frames), dtype=torch.float64)
    expected = torch.einsum("kij,bkj->bki", torch.stack([dense(column) for column in columns]), y)
    assert relative_error(toeplitz_matmul(columns, y), expected) <= 1e-14


@pytest.mark.parametrize("preconditioner", PRECONDITIONERS)
@pytest.mark.parametrize("frames", [1, 2, 5, 64, 300])
def test_pcg_solves_against_scipy_levinson(frames, preconditioner):
    columns = spd_columns(frames)
    rhs = torch.randn(4, 3, frames, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    solution, info = pcg(columns, rhs, rtol=1e-12, preconditioner=preconditioner)
    for k, column in enumerate(columns):
        expected = scipy.linalg.solve_toeplitz(column.numpy(), rhs[:, k].numpy().T).T
        assert relative_error(solution[:, k], torch.from_numpy(expected)) <= 1e-10
    assert info.residual <= 1e-12 and info.iterations <= 60


def test_chan_preconditioner_is_positive_where_strang_is_not():
    # a short, slowly decaying column: Strang's circulant wraps c_1 = 0.95 around and goes indefinite
    column = torch.tensor([1.0, 0.95, 0.9, 0.85], dtype=torch.float64)
    assert float(torch.linalg.eigvalsh(dense(column))[0]) > 0
    assert float(circulant_preconditioner(column, "strang").min()) <= 0
    assert float(circulant_preconditioner(column, "chan").min()) > 0
    solution, _ = pcg(column, torch.ones(4, dtype=torch.float64))  # falls back to Chan's
    assert relative_error(solution, torch.linalg.solve(dense(column), torch.ones(4, dtype=torch.float64))) <= 1e-12


@pytest.mark.parametrize("frames", [1, 2, 3, 8, 33, 200])
def test_gohberg_semencul_apply_is_the_dense_inverse(frames):
    columns = spd_columns(frames)
    inverse = ToeplitzInverse(columns)
    identity = torch.eye(frames, dtype=torch.float64)
    for k, column in enumerate(columns):
        applied = inverse.apply(identity.unsqueeze(1).expand(frames, 3, frames))[:, k]  # rows T^-1 e_i
        assert relative_error(applied, torch.linalg.inv(dense(column))) <= 1e-11


def test_solve_reaches_its_residual_target_and_reports_it():
    columns = spd_columns(500)
    rhs = torch.randn(6, 3, 500, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    solution, info = ToeplitzInverse(columns).solve(rhs, rtol=1e-12)
    residual = torch.einsum("kij,bkj->bki", torch.stack([dense(column) for column in columns]), solution) - rhs
    measured = float((residual.norm(dim=-1) / rhs.norm(dim=-1)).max())
    assert measured <= 1e-12 and info.residual <= 1e-12
    assert abs(measured - info.residual) <= 1e-13  # the reported residual is the true one


def test_an_unreachable_residual_target_raises_instead_of_returning_an_inaccurate_solution():
    columns = spd_columns(100)
    rhs = torch.ones(3, 100, dtype=torch.float64)
    with pytest.raises(ToeplitzSolveError, match="above the target rtol=1e-19"):
        ToeplitzInverse(columns).solve(rhs, rtol=1e-19)
    with pytest.raises(ToeplitzSolveError, match="above the target rtol=1e-19"):
        pcg(columns, rhs, rtol=1e-19)


def test_an_indefinite_toeplitz_matrix_is_solved_exactly_or_refused_never_answered_wrongly():
    # the Gohberg-Semencul formula holds for every non-singular T with (T^-1)_00 != 0, so an indefinite T may be
    # solved; what must never happen is an inaccurate answer
    column = torch.tensor([1.0, 0.9, 0.9, 0.9, 0.9, -0.9], dtype=torch.float64)
    assert float(torch.linalg.eigvalsh(dense(column))[0]) < 0
    rhs = torch.arange(1.0, 7.0, dtype=torch.float64)
    try:
        solution, info = ToeplitzInverse(column).solve(rhs, rtol=1e-12)
    except ToeplitzSolveError:
        return
    assert relative_error(solution, torch.linalg.solve(dense(column), rhs)) <= 1e-10 and info.residual <= 1e-12


def test_a_toeplitz_matrix_without_a_positive_circulant_is_refused():
    with pytest.raises(ToeplitzSolveError, match="not positive definite"):
        ToeplitzInverse(torch.tensor([0.0, 1.0], dtype=torch.float64))


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="column must be finite"):
        toeplitz_matmul(torch.tensor([1.0, float("nan")]), torch.ones(2))
    with pytest.raises(ValueError, match="rtol must be > 0"):
        pcg(torch.ones(3, dtype=torch.float64), torch.ones(3), rtol=0.0)
    with pytest.raises(ValueError, match="preconditioner must be one of"):
        circulant_preconditioner(torch.ones(3, dtype=torch.float64), "jacobi")
    with pytest.raises(ValueError, match="rhs must have H = 3"):
        ToeplitzInverse(torch.tensor([2.0, 0.5, 0.1], dtype=torch.float64)).solve(torch.ones(4))


# ------------------------------------------------------------------------------------------------ the score paths
SCORE_CASES = [
    (Matern(nu=1.0, ell=4.0), 1), (Matern(nu=1.0, ell=4.0), 2), (Matern(nu=0.5, ell=2.0), 31),
    (Matern(nu=2.5, ell=3.0), 64), (Logarithmic(nu=0.1, ell=0.3), 40), (Matern(nu=1.5, ell=6.0), 513),
]


@pytest.mark.parametrize("kernel, frames", SCORE_CASES)
def test_toeplitz_score_agrees_with_the_eigen_path(kernel, frames):
    dim = 4
    gp = GaussianProcess(kernel, frames, random_spd(dim, seed=frames))
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(5, frames, dim, generator=generator, dtype=torch.float64)
    times = torch.tensor([1e-3, 0.01, 0.01, 0.5, 4.0], dtype=torch.float64)
    for diffusion_time in (1e-3, 0.3, times):
        fast = gp.score(x, diffusion_time, method="toeplitz")
        assert gp.last_solve is not None and gp.last_solve.residual <= 1e-11
        assert relative_error(fast, gp.score(x, diffusion_time, method="eigen")) <= 1e-10


@pytest.mark.parametrize("frames", [3, 64, 512])
def test_toeplitz_score_agrees_with_a_dense_solve(frames):
    gp = GaussianProcess(Matern(nu=1.5, ell=3.0), frames, random_spd(2, seed=7, low=1e-3, high=10.0))
    x = torch.randn(2, frames, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert relative_error(gp.score(x, 0.02, method="toeplitz"), gp.score_dense(x, 0.02)) <= 1e-10


def test_the_toeplitz_score_is_the_gradient_of_the_log_density():
    # an oracle independent of every solver: autograd of the MultivariateNormal log-density of C_t
    frames, dim, diffusion_time = 12, 2, 0.2
    gp = GaussianProcess(Matern(nu=0.5, ell=2.0), frames, random_spd(dim, seed=5))
    x = torch.randn(frames, dim, generator=torch.Generator().manual_seed(6), dtype=torch.float64, requires_grad=True)
    normal = torch.distributions.MultivariateNormal(torch.zeros(frames * dim, dtype=torch.float64),
                                                    covariance_matrix=gp.noised_covariance(diffusion_time))
    (gradient,) = torch.autograd.grad(normal.log_prob(x.reshape(-1)), x)
    assert relative_error(gp.score(x.detach(), diffusion_time, method="toeplitz"), gradient) <= 1e-10


def test_auto_path_selection():
    from unroll.data import gp as gp_module
    small = GaussianProcess(Matern(nu=1.0, ell=2.0), gp_module.EIGEN_MAX_FRAMES, torch.eye(2))
    large = GaussianProcess(Matern(nu=1.0, ell=2.0), gp_module.EIGEN_MAX_FRAMES + 1, torch.eye(2))
    warped = GaussianProcess(Matern(nu=1.0, ell=2.0), 8, torch.eye(2), times=np.arange(8.0) ** 1.5)
    assert small.score_path() == "eigen" and large.score_path() == "toeplitz"
    assert warped.score_path() == "eigen" and warped.sample_path() == "eigen"
    assert small.sample_path() == "eigen" and large.sample_path() == "circulant"
    assert "temporal" not in large.__dict__  # nothing on the way built the (H, H) matrix
    with pytest.raises(ValueError, match="method='toeplitz' needs a stationary GP"):
        warped.score(torch.zeros(8, 2), 0.1, method="toeplitz")
    with pytest.raises(ValueError, match="method must be one of"):
        small.score(torch.zeros(small.frames, 2), 0.1, method="fft")


def test_a_long_gp_scores_without_building_gamma():
    frames = 20_000  # the eigen path would need 12.8 GB for Gamma and its factors
    gp = GaussianProcess(Matern(nu=1.0, ell=4.0), frames, torch.diag(torch.tensor([0.5, 2.0], dtype=torch.float64)))
    x = gp.noised(gp.sample(1, torch.Generator().manual_seed(0)), 0.05, torch.Generator().manual_seed(1))
    score = gp.score(x, 0.05)
    assert "temporal" not in gp.__dict__
    # the score solves C_t s = -x: check the residual with an independent product (banded sums of all lags would be
    # O(H^2); use the FFT product of unroll.linalg.toeplitz on each spatial eigen-feature, Sigma diagonal here)
    for feature, mu in enumerate((0.5, 2.0)):
        column = gd.schedule(0.05)[0] * mu * gp.autocovariance
        column[0] += gd.schedule(0.05)[1]
        residual = toeplitz_matmul(column, -score[0, :, feature]) - x[0, :, feature]
        assert float(residual.norm() / x[0, :, feature].norm()) <= 1e-11


# ------------------------------------------------------------------------------------------------ sampling
@pytest.mark.parametrize("kernel, frames", [(Matern(nu=1.5, ell=3.0), 40), (Matern(nu=0.5, ell=5.0), 17),
                                            (Logarithmic(nu=0.1, ell=0.3), 33), (Matern(nu=2.5, ell=2.0), 2)])
def test_circulant_sampler_has_exactly_the_covariance_gamma(kernel, frames):
    # push the complex basis vectors e_k and i e_k through the sampler's linear map: its covariance, sum of outer
    # products of the columns, must be Gamma up to rounding
    eigenvalues, size = embedding_eigenvalues(kernel, frames)
    basis = torch.eye(size, dtype=torch.complex128)
    columns = torch.cat([circulant_transform(basis, eigenvalues, size, frames)[:size],
                         circulant_transform(1j * basis, eigenvalues, size, frames)[:size]])  # Re parts, (2M, H)
    covariance = columns.T @ columns
    assert torch.allclose(covariance, torch.from_numpy(kernel.toeplitz(frames)), rtol=0, atol=1e-12)


def test_circulant_samples_match_gamma_within_the_sampling_tolerance():
    frames, count, dim = 48, 20_000, 2
    gp = GaussianProcess(Matern(nu=1.5, ell=4.0), frames, torch.diag(torch.tensor([1.0, 3.0], dtype=torch.float64)))
    x = gp.sample(count, torch.Generator().manual_seed(11), method="circulant")
    assert x.shape == (count, frames, dim)
    # standardise each feature (Sigma diagonal): N = count * dim draws of N(0, Gamma); the entry (i, j) of the
    # empirical covariance has standard deviation sqrt((Gamma_ii Gamma_jj + Gamma_ij^2) / N) <= sqrt(2 / N)
    z = (x / torch.tensor([1.0, 3.0], dtype=torch.float64).sqrt()).transpose(1, 2).reshape(-1, frames)
    empirical = z.T @ z / z.shape[0]
    tolerance = 6.0 * np.sqrt(2.0 / z.shape[0])  # 6 sigma per entry: the union over H^2 entries stays < 1e-5
    assert float((empirical - gp.temporal).abs().max()) <= tolerance
    # and it is not the identity: the lag-1 correlation of this kernel is 0.84
    assert float(torch.diagonal(empirical, 1).mean()) > 0.8


def test_seeded_circulant_samples_repeat():
    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 30, torch.eye(2))
    first = gp.sample(3, torch.Generator().manual_seed(5), method="circulant")
    again = gp.sample(3, torch.Generator().manual_seed(5), method="circulant")
    assert torch.equal(first, again)


def test_an_indefinite_embedding_grows_then_raises_or_falls_back():
    # a smooth, long correlation: the minimal embedding of a kernel that has not decayed by lag H-1 is indefinite
    smooth = LagFunction(lambda lag: np.exp(-0.5 * (np.asarray(lag, dtype=np.float64) / 6.0) ** 2), name="rbf6")
    frames = 16
    with pytest.raises(IndefiniteEmbeddingError, match="no circulant embedding of sizes 30..30"):
        embedding_eigenvalues(np.asarray(smooth(np.arange(frames))), frames)  # lag values only: no growth
    eigenvalues, size = embedding_eigenvalues(smooth, frames)  # the kernel itself: the embedding grows
    assert size > 2 * (frames - 1) and float(eigenvalues.min()) >= 0
    stationary = GaussianProcess.from_temporal(smooth.toeplitz(frames), torch.eye(1))
    with pytest.raises(IndefiniteEmbeddingError):
        stationary.sample(2, torch.Generator().manual_seed(0), method="circulant")


def test_auto_sampling_falls_back_to_the_eigen_sampler_with_a_warning(monkeypatch):
    from unroll.data import gp as gp_module
    monkeypatch.setattr(gp_module, "EIGEN_MAX_FRAMES", 4)
    smooth = LagFunction(lambda lag: np.exp(-0.5 * (np.asarray(lag, dtype=np.float64) / 6.0) ** 2), name="rbf6")
    gp = GaussianProcess.from_temporal(smooth.toeplitz(16), torch.eye(1))
    with pytest.warns(RuntimeWarning, match="falling back to the eigen sampler"):
        x = gp.sample(2, torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(x, gp.sample(2, torch.Generator().manual_seed(0), method="eigen"))


# ------------------------------------------------------------------------------------------------ spectral bounds
@pytest.mark.parametrize("bands", [4, 16, None])
@pytest.mark.parametrize("kernel", [Matern(nu=1.0, ell=4.0), Matern(nu=0.5, ell=2.0), Logarithmic(nu=0.1, ell=0.3)])
def test_the_symbol_range_contains_the_spectrum_and_is_close_to_it(kernel, bands):
    frames = 1500
    lags = torch.from_numpy(kernel(np.arange(frames)))
    lags = lags if bands is None else gd.truncate(lags, bands, "triangular")
    dense_min, dense_max = toeplitz_extremes(lags)  # dense at this H
    symbol_min, symbol_max = symbol_extremes(lags)
    assert symbol_min <= dense_min and dense_max <= symbol_max
    if bands is not None:
        # a banded symbol is smooth and the ends converge like 1/H^2: the sine-window test vector at the symbol's
        # extremum gives a Rayleigh quotient within max|f''| (pi/H)^2 / 2 of it, max|f''| <= 2 sum m^2 |g(m)|
        curvature = 2.0 * float((torch.arange(frames, dtype=torch.float64) ** 2 * lags.abs()).sum())
        gap = curvature * (np.pi / frames) ** 2
        assert dense_min - symbol_min <= gap and symbol_max - dense_max <= gap


def test_beyond_the_dense_limit_the_gd_spectrum_is_the_symbol_range(monkeypatch):
    from unroll.linalg import symbol
    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 200, random_spd(3, seed=2))
    exact = gd.product_extremes(gp, 8, "triangular")
    monkeypatch.setattr(symbol, "DENSE_MAX_FRAMES", 100)
    bounds = gd.product_extremes(gp, 8, "triangular")
    assert bounds[0] <= exact[0] and exact[1] <= bounds[1]
    assert bounds[0] >= exact[0] - 1e-3 * exact[1] and bounds[1] <= exact[1] * (1 + 1e-3)


def test_vectorised_unrolled_solution_is_the_loop_oracle():
    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 20, random_spd(3, seed=4, low=1e-3, high=1.0))
    x = torch.randn(2, 20, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    times = torch.tensor([0.01, 0.7], dtype=torch.float64)
    for steps in gd.STEP_RULES:
        loop = gd.unrolled_iterates(gp, x, times, 12, 5, "triangular", steps=steps)[-1]
        assert relative_error(gd.unrolled_solution(gp, x, times, 12, 5, "triangular", steps=steps), loop) <= 1e-13


def test_the_long_fixed_point_path_is_the_dense_one(monkeypatch):
    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 150, random_spd(3, seed=9))
    x = torch.randn(2, 150, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected = gd.fixed_point(gp, x, 0.05, 10, "triangular")
    monkeypatch.setattr(gd, "DENSE_MAX_FRAMES", 100)
    assert relative_error(gd.fixed_point(gp, x, 0.05, 10, "triangular"), expected) <= 1e-10


def test_banded_attention_without_weights_gives_the_same_output_and_no_weights():
    from unroll.model.banded import banded_attend

    generator = torch.Generator().manual_seed(12)
    query, key = (torch.randn(2, 5, 300, 3, generator=generator, dtype=torch.float64) for _ in range(2))
    value = torch.randn(2, 5, 300, 4, generator=generator, dtype=torch.float64)
    for kind in ("relu", "softmax"):
        with_weights, weights = banded_attend(query, key, value, kind, 7, 0.5, True)
        without, none = banded_attend(query, key, value, kind, 7, 0.5, False)
        assert none is None and weights is not None and weights.shape == (2, 5, 300, 15)
        assert torch.equal(with_weights, without)


def test_generators_are_cached_per_diffusion_time_and_evicted_oldest_first():
    from unroll.linalg.toeplitz import KroneckerToeplitzSolver

    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 40, random_spd(2, seed=3))
    solver = KroneckerToeplitzSolver(gp.autocovariance, gp.spatial_eigen, cache_size=2)
    first = solver.inverse(0.1)
    assert solver.inverse(0.1) is first  # the same generators, not a second PCG solve
    solver.inverse(0.2)
    assert solver.inverse(0.1) is first  # touched: now the most recent
    solver.inverse(0.3)  # evicts 0.2, the least recently used
    assert set(solver._inverses) == {0.1, 0.3}
    assert solver.inverse(0.1) is first


@pytest.mark.parametrize("frames", [6, 7, 40])
def test_circulant_preconditioners_are_their_definitions(frames):
    column = spd_columns(frames)[1]
    matrix = dense(column)
    index = torch.arange(frames)
    wrapped = (index[:, None] - index[None, :]) % frames
    # T. Chan's optimal circulant (min ||C - T||_F): each wrapped diagonal of C is the mean of T over it
    chan = torch.stack([matrix[wrapped == k].mean() for k in range(frames)])
    # Strang's: keep the central diagonals of T, c_k = t_k for k <= H/2 and t_{H-k} beyond
    strang = torch.stack([column[k] if k <= frames // 2 else column[frames - k] for k in range(frames)])
    assert torch.allclose(circulant_preconditioner(column, "chan"), torch.fft.rfft(chan).real, atol=1e-13)
    assert torch.allclose(circulant_preconditioner(column, "strang"), torch.fft.rfft(strang).real, atol=1e-13)


def test_every_right_hand_side_meets_its_own_relative_residual():
    # scales 1 and 1e-9 in one batch: a residual measured over the whole batch would let the small one be wrong
    columns = spd_columns(300)
    rhs = torch.randn(2, 3, 300, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    rhs[1] *= 1e-9
    matrices = torch.stack([dense(column) for column in columns])
    for solution, _ in (pcg(columns, rhs, rtol=1e-12), ToeplitzInverse(columns).solve(rhs, rtol=1e-12)):
        residual = torch.einsum("kij,bkj->bki", matrices, solution) - rhs
        assert float((residual.norm(dim=-1) / rhs.norm(dim=-1)).max()) <= 1e-12


def test_refinement_repairs_inaccurate_generators():
    # generators solved only roughly: one Gohberg-Semencul apply is then far off the target, and the refinement sweeps
    # (y <- y + T^-1 (b - T y)) must bring every residual below the target
    columns = spd_columns(200)
    inverse = ToeplitzInverse(columns, rtol=1e-2, preconditioner="chan")
    assert inverse.generator_info.residual > 1e-10
    rhs = torch.randn(4, 3, 200, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    solution, info = inverse.solve(rhs, rtol=1e-12, max_refinements=3)  # needs all three: 4 applies
    assert info.iterations > 1 and info.residual <= 1e-12
    expected = torch.linalg.solve(torch.stack([dense(column) for column in columns]), rhs.unsqueeze(-1)).squeeze(-1)
    assert relative_error(solution, expected) <= 1e-9


def test_one_frame_embeds_and_samples():
    eigenvalues, size = embedding_eigenvalues(Matern(nu=1.0, ell=2.0), 1)
    assert size == 1 and torch.allclose(eigenvalues, torch.ones(1, dtype=torch.float64))
    gp = GaussianProcess(Matern(nu=1.0, ell=2.0), 1, torch.eye(2) * 4.0)
    x = gp.sample(4000, torch.Generator().manual_seed(15), method="circulant")
    assert x.shape == (4000, 1, 2) and abs(float(x.var()) - 4.0) <= 6 * 4.0 * np.sqrt(2 / 8000)
    with pytest.raises(ValueError, match="frames must be >= 1"):
        embedding_eigenvalues(Matern(nu=1.0, ell=2.0), 0)


@pytest.mark.parametrize("column_shape, rhs_shape, out_shape", [((8,), (0, 8), (0, 8)), ((0, 8), (8,), (0, 8)),
                                                                ((2, 8), (0, 2, 8), (0, 2, 8))])
def test_pcg_of_an_empty_batch_is_empty(column_shape, rhs_shape, out_shape):
    """An empty batch (of systems or of right-hand sides) gives an empty solution of the broadcast shape and
    ``SolveInfo(0, 0.0)``: nothing was solved.  torch's FFT raises on an empty batch, so the solver must not reach
    it."""
    column = 0.5 ** torch.arange(8, dtype=torch.float64)
    solution, info = pcg(column.expand(column_shape), torch.ones(rhs_shape, dtype=torch.float64))
    assert solution.shape == out_shape and solution.dtype == torch.float64
    assert info == SolveInfo(iterations=0, residual=0.0)


def test_pcg_of_an_empty_batch_still_checks_positive_definiteness():
    """The check of ``T`` does not depend on the right-hand sides: an indefinite ``T`` is refused even with none."""
    with pytest.raises(ToeplitzSolveError, match="not positive definite"):
        pcg(torch.tensor([1.0, 2.0, 0.0, 0.0], dtype=torch.float64), torch.zeros(0, 4, dtype=torch.float64))


def test_gohberg_semencul_solve_of_no_right_hand_sides_is_empty():
    inverse = ToeplitzInverse(0.5 ** torch.arange(8, dtype=torch.float64))
    solution, info = inverse.solve(torch.zeros(0, 8, dtype=torch.float64))
    assert solution.shape == (0, 8) and info == SolveInfo(iterations=0, residual=0.0)
    with pytest.raises(ValueError, match="column must hold at least one system"):
        ToeplitzInverse(torch.zeros(0, 8, dtype=torch.float64))
