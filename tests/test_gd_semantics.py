"""unroll.construction.gd against independent oracles written here (mutation testing, issue 15).

Every oracle below is plain numpy/scipy that knows nothing of ``unroll``: ``scipy.linalg.toeplitz`` for Gamma,
``np.kron(Gamma_J, Sigma)`` for the Kronecker covariance ``C_{t,J} = e^-t Gamma_J ⊗ Sigma + (1 - e^-t) I`` (frame-major
``vec``), ``np.linalg.eigvalsh`` / ``np.linalg.solve`` on it, and gradient descent written as a dense loop.

Tolerances.  All sizes are small (``H d <= 40``), Sigma has condition number < 6 and the Gamma's here have
``lambda_min >= 0.05``, so ``C_{t,J}`` has condition number below ~1e3 at the times used and a float64 dense product,
solve or eigensolve agrees with another float64 implementation to ``kappa * n * eps`` (< 1e-11 relative).  The gaps
that the mutants open are O(1) or at least 1e-6 relative, so a fixed 1e-10 (or 1e-12 where the operations are the
same products in another order) separates them from rounding by orders of magnitude.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from plain_loop import chebyshev_leja_order

from unroll._validate import InputTypeError, NonFiniteError
from unroll.construction import gd
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name

#: eigenvalues of the test Sigma: distinct, so that a wrong eigenvalue index in a corner formula shows
SIGMA_EIGENVALUES = (0.5, 1.3, 2.9)


def spatial(dim: int = 3, seed: int = 0) -> np.ndarray:
    """``Q diag(mu) Q^T`` with the first ``dim`` of :data:`SIGMA_EIGENVALUES` and a seeded orthogonal Q."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    sigma = (q * np.array(SIGMA_EIGENVALUES[:dim])) @ q.T
    return 0.5 * (sigma + sigma.T)


def lags(frames: int, ell: float = 2.0) -> np.ndarray:
    """``gamma(m) = exp(-m/ell)`` (Ornstein–Uhlenbeck: positive definite for every H and every plain cut)."""
    return np.exp(-np.arange(frames) / ell)


def smooth_lags(frames: int, ell: float = 3.0) -> np.ndarray:
    """``gamma(m) = exp(-(m/ell)^2)``: its plain cuts at small J are indefinite."""
    return np.exp(-((np.arange(frames) / ell) ** 2))


def weights(frames: int, bands: int, taper: str | None) -> np.ndarray:
    """``w(m)`` by the definition: 1 (plain) or ``1 - m/(J+1)`` (triangular) for ``m <= J``, 0 beyond."""
    out = np.zeros(frames)
    for m in range(bands + 1):
        out[m] = 1.0 if taper is None else 1.0 - m / (bands + 1)
    return out


def dense_c(gamma: np.ndarray, sigma: np.ndarray, t: float, bands: int | None = None,
            taper: str | None = None) -> np.ndarray:
    """``C_{t,J}`` as a dense ``(H d, H d)`` matrix, ``alpha_t^2 = e^-t``, ``sigma_t^2 = 1 - e^-t``."""
    frames = gamma.size
    cut = gamma if bands is None else gamma * weights(frames, bands, taper)
    return math.exp(-t) * np.kron(scipy.linalg.toeplitz(cut), sigma) - math.expm1(-t) * np.eye(frames * sigma.shape[0])


def dense_loop(c: np.ndarray, x: np.ndarray, etas: list[float]) -> np.ndarray:
    """``y <- y - eta_k (C y - x)`` from ``y_0 = 0`` on ``x (..., H, d)``; every iterate, ``(L+1, ..., H, d)``."""
    flat = x.reshape(-1, c.shape[0])
    y = np.zeros_like(flat)
    out = [y]
    for eta in etas:
        y = y - eta * (y @ c.T - flat)
        out.append(y)
    return np.stack(out).reshape((len(etas) + 1,) + x.shape)


def gd_etas(c: np.ndarray, blocks: int) -> list[float]:
    """The GD step ``2/(lambda_max + lambda_min)`` of the dense matrix, ``blocks`` times."""
    eig = np.linalg.eigvalsh(c)
    return [2.0 / (eig[0] + eig[-1])] * blocks


def chebyshev_etas(c: np.ndarray, blocks: int) -> list[float]:
    """``1/(centre + half cos theta_{o(k)})`` of the dense matrix's eigenvalue interval, Leja order ``o``."""
    eig = np.linalg.eigvalsh(c)
    centre, half = 0.5 * (eig[-1] + eig[0]), 0.5 * (eig[-1] - eig[0])
    order = chebyshev_leja_order(blocks)
    return [1.0 / (centre + half * math.cos((2 * k + 1) * math.pi / (2 * blocks))) for k in order]


def draw_x(shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """Seeded standard normal input of the given shape."""
    return np.random.default_rng(seed).standard_normal(shape)


def as_t(array: np.ndarray) -> torch.Tensor:
    """numpy -> torch, same dtype."""
    return torch.from_numpy(np.ascontiguousarray(array))


def relative(got: torch.Tensor | np.ndarray, want: np.ndarray) -> float:
    """``|got - want|_F / |want|_F``."""
    got = got.numpy() if isinstance(got, torch.Tensor) else got
    return float(np.linalg.norm(got - want) / np.linalg.norm(want))


# ------------------------------------------------------------------ inputs: factors, Toeplitz, truncation
def test_factors_reads_every_accepted_form_of_the_same_process():
    """A GP, a (lag values, Sigma) pair, an (H, H) Toeplitz matrix pair, a list, duck-typed objects with only
    ``temporal`` or only ``autocovariance``, and a Factors all give the same ``gamma`` and ``Sigma``; each
    refused form raises.  Kills mutants of the dispatch in ``factors`` (``and``/``or``, the ``stationary`` default,
    the ``autocovariance``-else-``temporal`` choice) and of ``_toeplitz_first_row``'s tolerance."""
    gamma, sigma = lags(6), spatial(2)
    matrix = scipy.linalg.toeplitz(gamma)
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 6, as_t(sigma))
    forms = [gp, (as_t(gamma), as_t(sigma)), (as_t(matrix), as_t(sigma)), [gamma, sigma],
             types.SimpleNamespace(temporal=as_t(matrix), spatial=as_t(sigma)),
             types.SimpleNamespace(autocovariance=as_t(gamma), spatial=as_t(sigma))]
    for form in forms:
        f = gd.factors(form)
        assert np.allclose(f.gamma.numpy(), gamma, rtol=0, atol=1e-15), form
        assert np.array_equal(f.spatial.numpy(), sigma) and f.gamma.dtype == torch.float64
        assert (f.frames, f.dim) == (6, 2)
    same = gd.Factors(as_t(gamma), as_t(sigma))
    assert gd.factors(same) is same
    # a Toeplitz matrix off by rounding is accepted; off by 1e-9 (absolute) or by 10% of an entry is not
    assert np.allclose(gd.factors((as_t(matrix + 1e-14 * np.eye(6)), as_t(sigma))).gamma.numpy(), gamma, atol=1e-13)
    for bad in (matrix + np.diag(np.linspace(0.0, 1e-9, 6)), matrix * (1.0 + 0.1 * np.eye(6)[::-1])):
        with pytest.raises(ValueError, match="Toeplitz"):
            gd.factors((as_t(bad), as_t(sigma)))
    with pytest.raises(ValueError, match="Toeplitz|stationary"):
        gd.factors(GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 6, as_t(sigma),
                                   times=np.arange(6.0) ** 1.5))
    with pytest.raises(InputTypeError):
        gd.factors(types.SimpleNamespace(spatial=as_t(sigma)))  # a spatial factor alone is not a GP
    with pytest.raises(InputTypeError):
        gd.factors((as_t(gamma),))
    with pytest.raises(ValueError, match="H >= 1"):
        gd.factors((torch.tensor(1.0), as_t(sigma)))
    with pytest.raises(ValueError, match="H >= 1"):
        gd.factors((torch.zeros(0), as_t(sigma)))
    with pytest.raises(ValueError, match="square"):
        gd.factors((as_t(gamma), torch.ones(2, 3)))
    with pytest.raises(ValueError, match="square"):
        gd.factors((as_t(gamma), torch.ones(2)))
    for shape in ((6, 5), (3, 3, 3)):
        with pytest.raises(ValueError, match=r"\(H, H\)"):
            gd.factors((torch.rand(shape, generator=torch.Generator().manual_seed(0)), as_t(sigma)))


@settings(max_examples=25, deadline=None)
@given(frames=st.integers(1, 12), data=st.data(), taper=st.sampled_from([None, "triangular"]))
@example(frames=1, data=None, taper="triangular")
def test_toeplitz_taper_and_truncate_follow_their_definitions(frames, data, taper):
    """``Factors.toeplitz`` is ``scipy.linalg.toeplitz``; ``taper_weights`` is ``w(m)`` written out (1 or
    ``1 - m/(J+1)`` for ``m <= J``, 0 beyond, also at ``m = J`` and ``J = H - 1``); ``truncate`` multiplies by it,
    for lag values and for the matrix (which comes back as the banded Toeplitz matrix)."""
    bands = 0 if data is None else data.draw(st.integers(0, frames - 1))
    gamma = 1.0 + np.random.default_rng(frames).random(frames)  # no zeros: every weight shows
    assert np.array_equal(gd.Factors(as_t(gamma), torch.eye(1)).toeplitz().numpy(), scipy.linalg.toeplitz(gamma))
    w = weights(frames, bands, taper)
    assert np.allclose(gd.taper_weights(frames, bands, taper).numpy(), w, rtol=1e-15, atol=0)
    assert gd.taper_weights(frames, bands, taper).dtype == torch.float64
    assert np.allclose(gd.truncate(as_t(gamma), bands, taper).numpy(), gamma * w, rtol=1e-15, atol=0)
    banded = gd.truncate(as_t(scipy.linalg.toeplitz(gamma)), bands, taper)
    assert banded.shape == (frames, frames)
    assert np.allclose(banded.numpy(), scipy.linalg.toeplitz(gamma * w), rtol=1e-15, atol=0)


def test_check_truncation_returns_lambda_min_and_draws_the_line_at_1e_12():
    """``check_truncation`` returns ``lambda_min(Gamma_J)`` (numpy's eigvalsh), and calls Gamma_J indefinite exactly
    when ``lambda_min <= 1e-12 lambda_max``: H = 2, ``gamma = (1, 1 - e)`` has eigenvalues ``e`` and ``2 - e``, so
    ``e = 1e-12`` (ratio 5e-13) is refused and ``e = 4e-12`` (ratio 2e-12) accepted; a factor 2 either side of the
    line, far above eigvalsh's 4e-16 absolute error.  The message names the case: 'all lags kept' for the full,
    untapered Gamma, 'Gamma_J (bands J=...' otherwise.  'ignore' returns lambda_min, 'warn' warns."""
    gamma = lags(10)
    for bands, taper in ((9, None), (3, None), (3, "triangular"), (0, None)):
        want = np.linalg.eigvalsh(scipy.linalg.toeplitz(gamma * weights(10, bands, taper)))[0]
        assert math.isclose(gd.check_truncation(as_t(gamma), bands, taper), want, rel_tol=1e-12)
    with pytest.raises(gd.IndefiniteTruncationError, match="all lags kept"):
        gd.check_truncation(torch.tensor([1.0, 1.0 - 1e-12]), 1)
    assert gd.check_truncation(torch.tensor([1.0, 1.0 - 4e-12]), 1) == pytest.approx(4e-12, rel=1e-3, abs=0)
    smooth = as_t(smooth_lags(16))
    exact = float(np.linalg.eigvalsh(scipy.linalg.toeplitz(smooth_lags(16) * weights(16, 3, None)))[0])
    assert exact < 0
    with pytest.raises(gd.IndefiniteTruncationError, match=r"Gamma_J \(bands J=3, taper=None\)"):
        gd.check_truncation(smooth, 3)
    # the full Gamma with the taper is a truncation message too (the taper changes Gamma)
    with pytest.raises(gd.IndefiniteTruncationError, match=r"Gamma_J \(bands J=1, taper='triangular'\)"):
        gd.check_truncation(torch.tensor([1.0, -2.0]), 1, "triangular")
    assert gd.check_truncation(smooth, 3, on_indefinite="ignore") == pytest.approx(exact, rel=1e-10, abs=0)
    with pytest.warns(RuntimeWarning, match=r"bands J=3"):
        assert gd.check_truncation(smooth, 3, on_indefinite="warn") == pytest.approx(exact, rel=1e-10, abs=0)


# ------------------------------------------------------------------ the spectrum and the step size
def test_schedule_is_the_variance_preserving_schedule():
    """``(alpha_t^2, sigma_t^2) = (e^-t, 1 - e^-t)``, elementwise for a tensor of times."""
    times = torch.tensor([[1e-3, 0.5], [2.0, 30.0]])
    a2, s2 = gd.schedule(times)
    assert a2.shape == s2.shape == (2, 2)
    assert torch.allclose(a2, torch.exp(-times), rtol=1e-15, atol=0)
    assert torch.allclose(s2, -torch.expm1(-times), rtol=1e-15, atol=0)


@pytest.mark.parametrize(("make", "bands", "taper"), [(lags, None, None), (lags, 2, "triangular"),
                                                      (smooth_lags, 3, None)])
def test_eigen_products_and_extremes_are_the_kronecker_spectrum(make, bands, taper):
    """The products ``lam_i(Gamma_J) mu_a`` are the eigenvalues of ``kron(Gamma_J, Sigma)``, and
    ``product_extremes`` is their (min, max) -- also for an indefinite plain cut (smooth kernel, J = 3), where the
    minimum is ``lambda_min(Gamma_J) mu_max``, the corner that a wrong eigenvalue index misses."""
    gamma, sigma = make(16), spatial(3)
    cut = gamma if bands is None else gamma * weights(16, bands, taper)
    want = np.linalg.eigvalsh(np.kron(scipy.linalg.toeplitz(cut), sigma))
    products = gd.eigen_products((as_t(gamma), as_t(sigma)), bands, taper)
    assert products.shape == (16, 3)
    assert np.allclose(np.sort(products.numpy().ravel()), want, rtol=0, atol=1e-12)
    low, high = gd.product_extremes((as_t(gamma), as_t(sigma)), bands, taper)
    assert math.isclose(low, want[0], rel_tol=1e-12) and math.isclose(high, want[-1], rel_tol=1e-12)


def test_spectrum_step_size_condition_number_and_contraction_from_the_dense_matrix():
    """``spectrum`` = (min, max) eigenvalue of the dense ``C_{t,J}``; ``step_size = 2/(sum)``, ``condition_number =
    max/min``, ``contraction = (kappa-1)/(kappa+1)``, elementwise over a tensor of times; ``condition_number`` is inf
    and ``contraction`` 1 where ``C_{t,J}`` is indefinite (the smooth kernel's plain cut at t = 1e-3)."""
    gamma, sigma = lags(8), spatial(3)
    gp = (as_t(gamma), as_t(sigma))
    times = torch.tensor([0.01, 0.7, 5.0])
    low, high = gd.spectrum(gp, times, 3, "triangular")
    eta, kappa = gd.step_size(gp, times, 3, "triangular"), gd.condition_number(gp, times, 3, "triangular")
    rho = gd.contraction(gp, times, 3, "triangular")
    for n, t in enumerate(times.tolist()):
        eig = np.linalg.eigvalsh(dense_c(gamma, sigma, t, 3, "triangular"))
        assert math.isclose(float(low[n]), eig[0], rel_tol=1e-12)
        assert math.isclose(float(high[n]), eig[-1], rel_tol=1e-12)
        assert math.isclose(float(eta[n]), 2.0 / (eig[0] + eig[-1]), rel_tol=1e-12)
        assert math.isclose(float(kappa[n]), eig[-1] / eig[0], rel_tol=1e-11)
        assert math.isclose(float(rho[n]), (eig[-1] - eig[0]) / (eig[-1] + eig[0]), rel_tol=1e-11)
    assert math.isclose(gd.contraction(3.0), 0.5) and gd.contraction(math.inf) == 1.0
    assert torch.equal(gd.contraction(torch.tensor([3.0, math.inf])), torch.tensor([0.5, 1.0]))
    bad = (as_t(smooth_lags(16)), as_t(spatial(2)))
    assert float(gd.spectrum(bad, 1e-3, 3)[0]) < 0
    assert math.isinf(float(gd.condition_number(bad, 1e-3, 3))) and float(gd.contraction(bad, 1e-3, 3)) == 1.0
    assert math.isfinite(float(gd.condition_number(bad, 1.0, 3)))  # positive definite again at t = 1


# ------------------------------------------------------------------ the objective, C y, the fixed point
def test_apply_covariance_objective_gradient_against_the_dense_matrix_per_sample_times():
    """``C_t y``, ``f(y) = 1/2 y^T C_t y - x^T y`` and ``grad f = C_t y - x`` against ``kron``, with one diffusion
    time per sample over a (2, 3) batch (the per-sample reshape) and with float32 ``y`` (the result is float32 and
    within float32 rounding, ~1e-6, of the float64 one)."""
    gamma, sigma = lags(5) * weights(5, 2, None), spatial(3)
    times = np.array([[0.05, 0.5, 3.0], [1.0, 0.2, 8.0]])
    y, x = draw_x((2, 3, 5, 3), 2), draw_x((2, 3, 5, 3), 3)
    cy = gd.apply_covariance(as_t(y), as_t(gamma), as_t(sigma), as_t(times))
    f = gd.objective(as_t(y), as_t(x), as_t(gamma), as_t(sigma), as_t(times))
    g = gd.gradient(as_t(y), as_t(x), as_t(gamma), as_t(sigma), as_t(times))
    assert f.shape == (2, 3)
    for b in np.ndindex(2, 3):
        c = dense_c(gamma, sigma, float(times[b]))
        want = (c @ y[b].ravel()).reshape(5, 3)
        assert relative(cy[b], want) <= 1e-13
        assert relative(g[b], want - x[b]) <= 1e-13
        value = 0.5 * y[b].ravel() @ c @ y[b].ravel() - x[b].ravel() @ y[b].ravel()
        assert math.isclose(float(f[b]), value, rel_tol=1e-12)
    for t in (0.5, as_t(times)):  # a scalar time and one per sample: float32 stays float32 either way
        low = gd.apply_covariance(as_t(y).float(), as_t(gamma), as_t(sigma), t)
        assert low.dtype == torch.float32
        assert relative(low.double(), gd.apply_covariance(as_t(y), as_t(gamma), as_t(sigma), t).numpy()) <= 1e-5


def test_dense_covariance_is_the_kronecker_formula():
    """``dense_covariance`` is ``e^-t kron(Gamma_J, Sigma) + (1 - e^-t) I``, with and without truncation."""
    gamma, sigma = lags(6), spatial(2)
    for bands, taper in ((None, None), (2, None), (2, "triangular")):
        got = gd.dense_covariance((as_t(gamma), as_t(sigma)), 0.4, bands, taper)
        assert np.allclose(got.numpy(), dense_c(gamma, sigma, 0.4, bands, taper), rtol=1e-15, atol=1e-16)


def test_dense_covariance_does_not_depend_on_the_default_dtype():
    """With torch's default dtype float32 the oracle is still float64 to rounding (the identity part is not
    rounded to float32, which would be off by ~1e-8)."""
    gamma, sigma = lags(6), spatial(2)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        got = gd.dense_covariance((as_t(gamma), as_t(sigma)), 0.4, 2)
    finally:
        torch.set_default_dtype(previous)
    assert got.dtype == torch.float64
    assert np.allclose(got.numpy(), dense_c(gamma, sigma, 0.4, 2), rtol=1e-15, atol=1e-16)


def test_fixed_point_is_the_dense_solve_per_sample_and_unbatched():
    """``C_{t,J}^{-1} x`` by ``np.linalg.solve``: one time per sample over a (2, 2) batch, an unbatched (H, d) input,
    float32 and integer inputs (computed in float64)."""
    gamma, sigma = lags(7), spatial(3)
    gp = (as_t(gamma), as_t(sigma))
    times = np.array([[0.01, 0.3], [1.0, 6.0]])
    x = draw_x((2, 2, 7, 3))
    got = gd.fixed_point(gp, as_t(x), as_t(times), 4, "triangular")
    for b in np.ndindex(2, 2):
        want = np.linalg.solve(dense_c(gamma, sigma, float(times[b]), 4, "triangular"), x[b].ravel()).reshape(7, 3)
        assert relative(got[b], want) <= 1e-11
    single = gd.fixed_point(gp, as_t(x[0, 0]), 0.3)
    assert single.shape == (7, 3) and single.dtype == torch.float64
    assert relative(single, np.linalg.solve(dense_c(gamma, sigma, 0.3), x[0, 0].ravel()).reshape(7, 3)) <= 1e-11
    low = gd.fixed_point(gp, as_t(x[0, 0]).float(), 0.3)
    assert low.dtype == torch.float64
    ints = np.arange(21).reshape(7, 3) % 5 - 2
    got_int = gd.fixed_point(gp, torch.from_numpy(ints), 0.3)
    assert relative(got_int, np.linalg.solve(dense_c(gamma, sigma, 0.3), ints.ravel().astype(float)).reshape(7, 3)) \
        <= 1e-11


def test_fixed_point_beyond_the_dense_size_is_the_toeplitz_solve():
    """Past ``DENSE_MAX_FRAMES`` frames the Toeplitz path: its result satisfies ``C_{t,J} y = x`` (residual by the
    banded product written here, lags 0..J) to ``rtol`` = 1e-10, within the solver's own stopping rule."""
    frames, bands = gd.DENSE_MAX_FRAMES + 1, 3
    gamma, sigma = lags(frames, 1.0), spatial(1)
    x = draw_x((frames, 1))
    y = gd.fixed_point((as_t(gamma), as_t(sigma)), as_t(x), 0.5, bands, rtol=1e-10).numpy()
    cut = gamma * weights(frames, bands, None)
    gy = cut[0] * y.copy()
    for m in range(1, bands + 1):
        gy[m:] += cut[m] * y[:-m]
        gy[:-m] += cut[m] * y[m:]
    residual = math.exp(-0.5) * gy @ sigma - math.expm1(-0.5) * y - x
    assert np.linalg.norm(residual) <= 1e-9 * np.linalg.norm(x)


def test_overflow_is_reported_not_returned():
    """A finite x whose solution overflows float64 in one entry (Gamma_0 = I, diagonal Sigma: the system is
    diagonal, so the other entries stay 0) raises ``NonFiniteError`` naming the function that overflowed and the
    size of x; a result with a single inf is not returned."""
    gp = (as_t(lags(4)), torch.diag(torch.tensor([0.5, 1.0])))
    x = torch.zeros(4, 2)
    x[1, 0] = 1.7e308  # / (e^-t 0.5 + 1 - e^-t) ~ 3.4e308 = inf; eta ~ 4/3 overflows the first step too
    calls = {"fixed_point": lambda: gd.fixed_point(gp, x, 1e-3, 0),
             "unrolled_solution": lambda: gd.unrolled_solution(gp, x, 1e-3, 3, 0),
             "unrolled_iterates": lambda: gd.unrolled_iterates(gp, x, 1e-3, 3, 0),
             "spectral_iterates": lambda: gd.spectral_iterates(gp, x, 1e-3, 3, 0)}
    for name, call in calls.items():
        with pytest.raises(NonFiniteError, match=rf"unroll\.construction\.gd\.{name}\b.*max \|x\| = 1\.7e\+308"):
            call()


def test_bad_integers_are_refused_under_their_own_name():
    """``check_int`` errors name the parameter as the caller spells it ('steps', 'blocks', 'bands'): the message
    starts with the name; ``steps = 0`` and ``blocks = 0`` are valid."""
    gp = (as_t(lags(5)), as_t(spatial(2)))
    x = torch.zeros(5, 2)
    for call, name in ((lambda: gd.gd_iterates(gp, x, 0.5, -1), "steps"),
                       (lambda: gd.unrolled_iterates(gp, x, 0.5, -1), "blocks"),
                       (lambda: gd.unrolled_solution(gp, x, 0.5, -1), "blocks"),
                       (lambda: gd.spectral_iterates(gp, x, 0.5, -1), "blocks"),
                       (lambda: gd.chebyshev_factor(3.0, -1), "blocks"),
                       (lambda: gd.chebyshev_order(0), "blocks"),
                       (lambda: gd.step_centers(gp, 0), "blocks"),
                       (lambda: gd.unrolled_solution(gp, x, 0.5, 2, bands=5), "bands"),
                       (lambda: gd.truncate(torch.ones(5), -1), "bands")):
        with pytest.raises(ValueError, match=rf"^{name} must satisfy"):
            call()
    assert gd.chebyshev_factor(3.0, 0) == 1.0


# ------------------------------------------------------------------ the unrolled solver and its oracles
@pytest.mark.parametrize("steps", ["gd", "chebyshev"])
def test_unrolled_solver_and_spectral_iterates_equal_the_dense_loop(steps):
    """``unrolled_iterates`` (every iterate), ``unrolled_solution`` (the last) and ``spectral_iterates`` against the
    dense loop with the dense matrix's own step sizes (GD: ``2/(lambda_max + lambda_min)``; Chebyshev: the
    Leja-ordered nodes of its eigenvalue interval), over lags J < H - 1 (the band loop's limits), a (2, 2) batch, and
    a triangular taper.  Relative 1e-11: kappa < 30 at t = 0.2 and L = 12 steps of rounding."""
    gamma, sigma, t, blocks, bands = lags(9), spatial(2), 0.2, 12, 3
    gp = (as_t(gamma), as_t(sigma))
    x = draw_x((2, 2, 9, 2))
    c = dense_c(gamma, sigma, t, bands, "triangular")
    want = dense_loop(c, x, gd_etas(c, blocks) if steps == "gd" else chebyshev_etas(c, blocks))
    loop = gd.unrolled_iterates(gp, as_t(x), t, blocks, bands, "triangular", steps=steps)
    assert loop.shape == (blocks + 1, 2, 2, 9, 2)
    for k in range(1, blocks + 1):
        assert relative(loop[k], want[k]) <= 1e-11, k
    assert relative(gd.unrolled_solution(gp, as_t(x), t, blocks, bands, "triangular", steps=steps), want[-1]) <= 1e-11
    spectral = gd.spectral_iterates(gp, as_t(x), t, blocks, bands, "triangular", steps)
    assert spectral.shape == loop.shape
    for k in range(1, blocks + 1):
        assert relative(spectral[k], want[k]) <= 1e-11, k


def test_unrolled_solver_per_sample_times_all_bands_and_zero_blocks():
    """One time per sample (each sample its own dense loop), ``bands=None`` meaning all H - 1 lags, and L = 0 giving
    ``y_0 = 0`` only."""
    gamma, sigma = lags(6), spatial(3)
    gp = (as_t(gamma), as_t(sigma))
    times = np.array([0.02, 0.5, 4.0])
    x = draw_x((3, 6, 3))
    iterates = gd.unrolled_iterates(gp, as_t(x), as_t(times), 5)
    last = gd.unrolled_solution(gp, as_t(x), as_t(times), 5)
    for b, t in enumerate(times):
        c = dense_c(gamma, sigma, float(t))
        want = dense_loop(c, x[b], gd_etas(c, 5))
        assert relative(iterates[:, b][1:], want[1:]) <= 1e-12
        assert relative(last[b], want[-1]) <= 1e-12
    zero = gd.unrolled_iterates(gp, as_t(x), 0.5, 0)
    assert zero.shape == (1, 3, 6, 3) and float(zero.abs().max()) == 0.0
    assert float(gd.unrolled_solution(gp, as_t(x), 0.5, 0).abs().max()) == 0.0
    assert gd.spectral_iterates(gp, as_t(x), 0.5, 0).shape == (1, 3, 6, 3)
    assert gd.gd_iterates(gp, as_t(x), 0.5, 0).shape == (1, 3, 6, 3)
    with pytest.raises(ValueError, match="scalar"):
        gd.spectral_iterates(gp, as_t(x), as_t(times), 3)
    # one time per sample means exactly the batch shape: a (1,) tensor is not silently broadcast to 3 samples
    for call in (gd.unrolled_iterates, gd.unrolled_solution, gd.fixed_point):
        with pytest.raises(ValueError, match="diffusion_time"):
            call(gp, as_t(x), torch.tensor([0.5]), 2)


@pytest.mark.parametrize("blocks", [1, 2, 5, 8])
def test_step_centers_and_sizes_follow_the_leja_ordered_nodes(blocks):
    """Step k of the Chebyshev schedule is ``1/(alpha^2 P_k + sigma^2)`` with ``P_k = P + Q cos theta_{o(k)}`` in the
    Leja order (the definition, written here), ``P, Q`` the centre and half-width of the eigenvalue products; GD's
    are all ``P``.  In the given order, not only as a set (sorting would hide a permuted schedule)."""
    gamma, sigma = lags(8), spatial(3)
    gp = (as_t(gamma), as_t(sigma))
    products = np.linalg.eigvalsh(np.kron(scipy.linalg.toeplitz(gamma * weights(8, 4, None)), sigma))
    centre, half = 0.5 * (products[-1] + products[0]), 0.5 * (products[-1] - products[0])
    want = [centre + half * math.cos((2 * k + 1) * math.pi / (2 * blocks)) for k in chebyshev_leja_order(blocks)]
    assert gd.chebyshev_order(blocks).tolist() == chebyshev_leja_order(blocks)
    assert np.allclose(gd.step_centers(gp, blocks, 4, steps="chebyshev").numpy(), want, rtol=1e-12, atol=0)
    assert np.allclose(gd.step_centers(gp, blocks, 4).numpy(), [centre] * blocks, rtol=1e-12, atol=0)
    times = torch.tensor([0.1, 2.0])
    etas = gd.step_sizes(gp, times, blocks, 4, steps="chebyshev")
    assert etas.shape == (2, blocks)
    for n, t in enumerate(times.tolist()):
        assert np.allclose(etas[n].numpy(), [1.0 / (math.exp(-t) * p - math.expm1(-t)) for p in want], rtol=1e-12)


def test_one_chebyshev_step_is_the_centre_step():
    """L = 1: the single Chebyshev node is ``cos(pi/2) = 0``, so the step is the GD step ``1/(alpha^2 P +
    sigma^2)`` (the schedule must be the one of L = 1, not of any other length), in every solver."""
    gamma, sigma, t = lags(6), spatial(2), 0.3
    gp = (as_t(gamma), as_t(sigma))
    x = draw_x((6, 2))
    c = dense_c(gamma, sigma, t, 2)
    want = dense_loop(c, x, gd_etas(c, 1))[-1]
    assert relative(gd.unrolled_solution(gp, as_t(x), t, 1, 2, steps="chebyshev"), want) <= 1e-12
    assert relative(gd.unrolled_iterates(gp, as_t(x), t, 1, 2, steps="chebyshev")[-1], want) <= 1e-12
    assert relative(gd.spectral_iterates(gp, as_t(x), t, 1, 2, steps="chebyshev")[-1], want) <= 1e-12


def test_leja_order_emits_no_warning():
    """The log of the zero distance to an already used node is masked, and silenced: no RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gd.chebyshev_order(6).tolist() == chebyshev_leja_order(6)


def test_residual_polynomial_is_the_running_product():
    """``p_k(lam) = prod_{j<k} (1 - eta_j lam)``, ``p_0 = 1``, for an (2, 3) grid of eigenvalues."""
    etas = torch.tensor([0.5, 0.25, 2.0])
    lam = torch.tensor([[0.1, 1.0, 3.0], [2.0, 4.0, 0.0]])
    got = gd.residual_polynomial(etas, lam)
    assert got.shape == (4, 2, 3)
    running = torch.ones(2, 3)
    for k in range(4):
        assert torch.allclose(got[k], running, rtol=1e-15, atol=0)
        if k < 3:
            running = running * (1 - etas[k] * lam)


def test_residual_polynomial_is_float64_for_lists_under_a_float32_default():
    """The docstring's float64 contract: Python lists of step sizes and eigenvalues are read as float64 even when
    torch's default dtype is float32 (read as float32, 0.1 and 0.3 would be off by ~1e-8 relative), so the result
    equals the float64-tensor computation exactly."""
    etas, lam = [0.3, 0.7, 1.9], [0.1, 1.0, 2.5]
    want = gd.residual_polynomial(torch.tensor(etas, dtype=torch.float64), torch.tensor(lam, dtype=torch.float64))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        got = gd.residual_polynomial(etas, lam)
    finally:
        torch.set_default_dtype(previous)
    assert got.dtype == torch.float64 and torch.equal(got, want)


@settings(max_examples=30, deadline=None)
@given(kappa=st.floats(1.01, 1e6), blocks=st.integers(0, 60))
@example(kappa=1.5, blocks=0)
def test_chebyshev_factor_is_one_over_the_chebyshev_polynomial(kappa, blocks):
    """``1/T_L((kappa+1)/(kappa-1))`` with ``T_L(z) = cosh(L arccosh z)`` (a closed form independent of the rho form
    used in the code), for a float and a tensor; 1 for kappa = inf and for L = 0."""
    z = (kappa + 1) / (kappa - 1)
    want = 1.0 / math.cosh(blocks * math.acosh(z)) if blocks * math.acosh(z) < 700 else 0.0
    assert gd.chebyshev_factor(kappa, blocks) == pytest.approx(want, rel=1e-8, abs=1e-300)
    tensor = gd.chebyshev_factor(torch.tensor([kappa, math.inf]), blocks)
    assert float(tensor[0]) == pytest.approx(want, rel=1e-8, abs=1e-300) and float(tensor[1]) == 1.0
    assert gd.chebyshev_factor(math.inf, blocks) == 1.0


@pytest.mark.parametrize("bad, pattern", [("abc", r"^x must be"),
                                          (torch.ones(4, 2, dtype=torch.complex128), r"^x must be real")])
def test_iterates_name_x_when_it_is_not_a_real_tensor(bad, pattern):
    """Every GD entry point refuses a non-real ``x`` with an error that names ``x`` (from the sampled mutation run
    of unroll/construction/gd.py, seed 1)."""
    gp = (as_t(lags(4)), torch.eye(2, dtype=torch.float64))
    for call in (lambda: gd.unrolled_iterates(gp, bad, 0.3, 2, 1), lambda: gd.spectral_iterates(gp, bad, 0.3, 2, 1),
                 lambda: gd.fixed_point(gp, bad, 0.3, 1)):
        with pytest.raises(InputTypeError, match=pattern):
            call()


def test_fixed_point_with_one_batch_axis_takes_one_time_per_sample():
    """``(batch, H, d)`` with times ``(batch,)``: the batch shape is everything before the last two axes (a (2, 2)
    batch cannot tell that from the first two axes)."""
    gamma, sigma = lags(7), spatial(3)
    times = np.array([0.05, 0.5, 4.0])
    x = draw_x((3, 7, 3))
    got = gd.fixed_point((as_t(gamma), as_t(sigma)), as_t(x), as_t(times))
    for b in range(3):
        want = np.linalg.solve(dense_c(gamma, sigma, float(times[b])), x[b].ravel()).reshape(7, 3)
        assert relative(got[b], want) <= 1e-11
