"""unroll.construction.constructor against independent oracles written here (mutation testing, issue 15).

Oracles: the dense ``C_{t,J} = e^-t kron(Gamma_J, Sigma) + (1 - e^-t) I`` (numpy/scipy, frame-major ``vec``) and
gradient descent on it as a dense loop in ``numpy.longdouble`` (its rounding far below float64's), with the step sizes
of the dense matrix's own eigenvalues (GD: ``2/(lambda_max + lambda_min)``; Chebyshev: the Leja-ordered nodes of its
interval, the order by its definition); for paper mode the same loop with every product ``c v`` replaced by the
multiplier's formula ``(q(c+v) - q(c-v))/4``, ``q`` the piecewise-linear interpolant of ``u^2`` on the knots
(``numpy.interp``, continued linearly), i.e. what the FFN should compute, not only within its error bound.

Tolerances.  Exact mode: the theory module's rounding bound of the first k blocks (``net_exact`` via
``plain_loop.network_rounding_bounds`` for GD; ``net_exact_chebyshev`` with the any-range amplification ``A_all``
for Chebyshev, as in tests/test_chebyshev.py).  Paper mode: the FFN's rounding, derived in
:func:`paper_rounding`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from plain_loop import chebyshev_leja_order, network_rounding_bounds

import theory
import unroll.construction.constructor as constructor
from unroll._validate import InputTypeError, NonFiniteError
from unroll.construction.constructor import construct_unrolled, frequency_period
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.model.transformer import Transformer

SIGMA_EIGENVALUES = (0.6, 1.4, 2.5)


def spatial(dim: int, seed: int = 0) -> torch.Tensor:
    """``Q diag(mu) Q^T``, the first ``dim`` of :data:`SIGMA_EIGENVALUES`, seeded orthogonal Q."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    sigma = (q * np.array(SIGMA_EIGENVALUES[:dim])) @ q.T
    return torch.from_numpy(0.5 * (sigma + sigma.T))


def make_gp(frames: int = 8, dim: int = 2, ell: float = 2.0, seed: int = 0) -> GaussianProcess:
    """Ornstein–Uhlenbeck in time (every plain cut positive definite), :func:`spatial` in space."""
    return GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=ell), frames, spatial(dim, seed))


def draw_x(gp: GaussianProcess, batch: int = 2, seed: int = 1) -> torch.Tensor:
    """Seeded standard normal ``(batch, H, d)``."""
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, gp.frames, gp.dim)))


def weights(frames: int, bands: int, taper: str | None) -> np.ndarray:
    """``w(m)`` by the definition: 1 or ``1 - m/(J+1)`` for ``m <= J``, 0 beyond."""
    out = np.zeros(frames)
    for m in range(bands + 1):
        out[m] = 1.0 if taper is None else 1.0 - m / (bands + 1)
    return out


def gamma_j(gp: GaussianProcess, bands: int, taper: str | None = None) -> np.ndarray:
    """The truncated lag values ``gamma(m) w(m)``."""
    return gp.temporal[0].numpy() * weights(gp.frames, bands, taper)


def dense_c(gp: GaussianProcess, t: float, bands: int, taper: str | None = None) -> np.ndarray:
    """``C_{t,J} = e^-t kron(Gamma_J, Sigma) + (1 - e^-t) I``."""
    size = gp.frames * gp.dim
    return math.exp(-t) * np.kron(scipy.linalg.toeplitz(gamma_j(gp, bands, taper)), gp.spatial.numpy()) \
        - math.expm1(-t) * np.eye(size)


def product_interval(gp: GaussianProcess, bands: int, taper: str | None = None) -> tuple[float, float]:
    """(min, max) eigenvalue of ``kron(Gamma_J, Sigma)``."""
    eig = np.linalg.eigvalsh(np.kron(scipy.linalg.toeplitz(gamma_j(gp, bands, taper)), gp.spatial.numpy()))
    return float(eig[0]), float(eig[-1])


def centers(gp: GaussianProcess, blocks: int, bands: int, taper: str | None, steps: str) -> list[float]:
    """``P_k``: the centre ``P`` of the products' interval (GD) or ``P + Q cos theta_{o(k)}`` (Chebyshev)."""
    low, high = product_interval(gp, bands, taper)
    if steps == "gd":
        return [0.5 * (low + high)] * blocks
    return [0.5 * (low + high) + 0.5 * (high - low) * math.cos((2 * k + 1) * math.pi / (2 * blocks))
            for k in chebyshev_leja_order(blocks)]


def etas(gp: GaussianProcess, t: float, blocks: int, bands: int, taper: str | None, steps: str) -> list[float]:
    """``eta_k = 1/(e^-t P_k + 1 - e^-t)``."""
    return [1.0 / (math.exp(-t) * p - math.expm1(-t)) for p in centers(gp, blocks, bands, taper, steps)]


def dense_loop(gp: GaussianProcess, x: torch.Tensor, t: float, blocks: int, bands: int, taper: str | None = None,
               steps: str = "gd") -> np.ndarray:
    """GD iterates ``y_0 = 0 .. y_L`` on the dense ``C_{t,J}`` in longdouble, ``(L+1,) + x.shape`` (float64)."""
    c = dense_c(gp, t, bands, taper).astype(np.longdouble)
    rhs = x.numpy().reshape(x.shape[0], -1).astype(np.longdouble)
    y = np.zeros_like(rhs)
    out = [y.copy()]
    for eta in etas(gp, t, blocks, bands, taper, steps):
        y = y - np.longdouble(eta) * (y @ c.T - rhs)
        out.append(y.copy())
    return np.stack(out).astype(np.float64).reshape((blocks + 1,) + tuple(x.shape))


def chebyshev_rounding_bound(gp: GaussianProcess, model: Transformer, t: float, x: torch.Tensor) -> float:
    """``net_exact_chebyshev`` with ``A_suf -> A_all`` (bounds every block, tests/test_chebyshev.py)."""
    y_star = gp.precision_apply(x, t)
    values = theory.symbol_values(theory.Configuration.from_model(gp, model, t),
                                  x_ratio=float(x.norm() / y_star.norm()))
    return theory.BOUNDS["net_exact_chebyshev"].evaluate({**values, "A_suf": values["A_all"]})


def check_exact_network(gp: GaussianProcess, model: Transformer, t: float, x: torch.Tensor, bands: int,
                        taper: str | None = None, steps: str = "gd") -> None:
    """Every block of ``model`` within the project's rounding bound of the dense longdouble GD iterate."""
    blocks = model.config["blocks"]
    with torch.no_grad():
        network = model.iterates(x, t).numpy()
    oracle = dense_loop(gp, x, t, blocks, bands, taper, steps)
    scale = float(gp.precision_apply(x, t).norm())
    if steps == "gd":
        bounds = network_rounding_bounds(gp, model, t, x)
    else:
        bounds = [chebyshev_rounding_bound(gp, model, t, x)] * (blocks + 1)
    assert network.shape == oracle.shape
    for k in range(1, blocks + 1):
        deviation = float(np.linalg.norm(network[k] - oracle[k])) / scale
        assert deviation <= bounds[k], (k, deviation, bounds[k])


# ------------------------------------------------------------------ exact mode, every option
@pytest.mark.parametrize(("frames", "bands", "options"), [
    (8, 3, {"frame_frequency": "sequence"}),
    (8, 3, {"slope_margin": 37.5}),
    (9, 4, {"looped": True}),
    (8, 0, {}),
    (8, 7, {}),
    (2, 1, {}),
    (2, 0, {"frame_frequency": "sequence"}),
    (9, 3, {"steps": "chebyshev"}),
    (9, 3, {"steps": "chebyshev", "taper": "triangular"}),
])
def test_exact_network_block_k_is_dense_gd_iterate_k(frames, bands, options):
    """Block k of the exact-mode network is iterate k of the dense loop (within the rounding bound), for each
    option that changes the weights: the sequence frequency, a slope margin, weight sharing, the band extremes
    J = 0 and J = H - 1, the smallest H = 2, and the Chebyshev schedule (one time group per block).  One time per
    sample spanning small to large t (the heights scale as ``eta_t alpha_t^2``, ``eta_t sigma_t^2``, ``eta_t``)."""
    gp = make_gp(frames, 2)
    taper, steps = options.get("taper"), options.get("steps", "gd")
    model = construct_unrolled(gp, blocks=7, bands=bands, **options)
    x = draw_x(gp)
    for t in (0.01, 0.4, 6.0):
        check_exact_network(gp, model, t, x, bands, taper, steps)
    assert model.construction.steps == steps and model.construction.looped == options.get("looped", False)


def test_exact_network_in_one_dimension_and_three():
    """d = 1 and d = 3 (the value and output maps are d x d): block k is dense GD iterate k."""
    for dim in (1, 3):
        gp = make_gp(7, dim)
        model = construct_unrolled(gp, blocks=5, bands=2)
        check_exact_network(gp, model, 0.2, draw_x(gp), 2)


def test_unrolled_transformer_step_sizes_are_the_dense_ones():
    """``model.step_size(t)`` is ``2/(lambda_max + lambda_min)`` of the dense ``C_{t,J}``; ``model.step_sizes(t)`` the
    schedule of every block (GD: that step L times; Chebyshev: the Leja-ordered nodes), per time."""
    gp = make_gp(9, 2)
    times = torch.tensor([0.01, 0.5, 5.0])
    for steps in ("gd", "chebyshev"):
        model = construct_unrolled(gp, blocks=6, bands=3, steps=steps)
        got = model.step_sizes(times)
        assert got.shape == (3, 6)
        for n, t in enumerate(times.tolist()):
            eig = np.linalg.eigvalsh(dense_c(gp, t, 3))
            assert math.isclose(float(model.step_size(t)), 2.0 / (eig[0] + eig[-1]), rel_tol=1e-12)
            assert math.isclose(float(model.step_size(times)[n]), 2.0 / (eig[0] + eig[-1]), rel_tol=1e-12)
            assert np.allclose(got[n].numpy(), etas(gp, t, 6, 3, None, steps), rtol=1e-12, atol=0)


# ------------------------------------------------------------------ paper mode: the multiplier, exactly
def q_interpolant(u: np.ndarray, knots: int, value_range: float) -> np.ndarray:
    """The piecewise-linear interpolant of ``u^2`` on ``knots`` uniform knots of ``[-R, R]``, continued linearly
    beyond (slopes of the end segments)."""
    grid = np.linspace(-value_range, value_range, knots)
    h = grid[1] - grid[0]
    inside = np.interp(u, grid, grid**2)
    left = value_range**2 + (-2 * value_range + h) * (u + value_range)
    right = value_range**2 + (2 * value_range - h) * (u - value_range)
    return np.where(u < -value_range, left, np.where(u > value_range, right, inside))


def paper_loop(gp: GaussianProcess, x: torch.Tensor, t: float, blocks: int, bands: int, knots: int,
               value_range: float, steps: str = "gd") -> np.ndarray:
    """Paper mode written out: ``acc = Gamma_J y Sigma`` (exact), then ``y += -P(c0, acc) - P(c1, y) + P(c2, x)``
    with ``P(c, v) = (q(c+v) - q(c-v))/4`` and ``(c0, c1, c2) = eta_k (e^-t, 1 - e^-t, 1)``; ``(L+1,) + x.shape``."""
    g = scipy.linalg.toeplitz(gamma_j(gp, bands))
    sigma, xs = gp.spatial.numpy(), x.numpy()

    def product(c: float, v: np.ndarray) -> np.ndarray:
        return (q_interpolant(c + v, knots, value_range) - q_interpolant(c - v, knots, value_range)) / 4.0

    y = np.zeros_like(xs)
    out = [y]
    for eta in etas(gp, t, blocks, bands, None, steps):
        acc = g @ y @ sigma
        y = y - product(eta * math.exp(-t), acc) - product(-eta * math.expm1(-t), y) + product(eta, xs)
        out.append(y)
    return np.stack(out)


def paper_rounding(knots: int, value_range: float, blocks: int, amplification: float) -> float:
    """A float64 rounding allowance per entry after ``blocks`` blocks: each product is a sum of ``2(N-2) + 2``
    ReLU terms of size at most ``R^2`` (the FFN's hidden values times ``h/2`` summed to ``q``), so its rounding is
    at most ``(2N) eps R^2``; three products per entry per block, and a later block multiplies an earlier error by
    at most ``amplification``, the largest sub-product ``prod_{k<=i<m} |1 - eta_i lam|`` over the spectrum (1 for
    GD).  The mutants move a product by a knot's worth of ``q``, ``>= h^2/16`` = 1e-3 here, far above this."""
    return amplification * blocks * 3 * 2 * knots * np.finfo(np.float64).eps * value_range**2


def amplification(gp: GaussianProcess, t: float, blocks: int, bands: int, steps: str) -> float:
    """``max_{k <= m} max_lam prod_{k<=i<m} |1 - eta_i lam|`` over the eigenvalues of the dense ``C_{t,J}``."""
    lam = np.linalg.eigvalsh(dense_c(gp, t, bands))
    factors = np.abs(1.0 - np.array(etas(gp, t, blocks, bands, None, steps))[:, None] * lam[None, :])
    return max(float(np.prod(factors[k:m], axis=0).max()) for k in range(blocks) for m in range(k, blocks + 1))


@pytest.mark.parametrize("steps", ["gd", "chebyshev"])
def test_paper_network_computes_the_multiplier_formula(steps):
    """Paper mode's blocks compute exactly the multiplier ``(q(c+v) - q(c-v))/4`` of each of the three products
    (up to float64 rounding), knot for knot, with the operands partly outside ``[-R, R]`` (R = 2 < max |c| + |v|)
    so that the linear continuation is exercised too; and the ``acc`` scratch slot ends every block cleared."""
    gp = make_gp(7, 2)
    knots, value_range, blocks, t = 17, 2.0, 5, 0.3
    model = construct_unrolled(gp, blocks=blocks, bands=3, mode="paper", paper_knots=knots,
                               paper_range=value_range, steps=steps)
    x = 1.5 * draw_x(gp)
    with torch.no_grad():
        network = model.iterates(x, t).numpy()
        streams = model.tokens(x, t)
    want = paper_loop(gp, x, t, blocks, 3, knots, value_range, steps)
    assert float(x.abs().max()) > value_range  # some operand c + v (v = x) leaves the range
    allowance = paper_rounding(knots, value_range, blocks, amplification(gp, t, blocks, 3, steps))
    assert float(np.abs(network - want).max()) <= allowance
    layout = model.construction.layout
    for z in streams[1:]:
        assert float(layout.decode(z)["acc"].abs().max()) == 0.0
        assert torch.equal(layout.decode(z)["x"], x)


def test_multiplier_spec_is_the_knot_grid():
    """``MultiplierSpec``: spacing ``h = 2R/(N-1)``, product error ``h^2/16``, ``2(N-2)`` neurons per product
    (two per interior knot), three products per frame coordinate; the FFN width is ``d (3 * 2(N-2) + 6)``."""
    gp = make_gp(6, 3)
    model = construct_unrolled(gp, blocks=2, bands=2, mode="paper", paper_knots=9, paper_range=3.0)
    spec = model.construction.multiplier
    assert (spec.knots, spec.range, spec.neurons_per_product, spec.products_per_frame) == (9, 3.0, 14, 3)
    assert spec.spacing == pytest.approx(0.75, rel=1e-15, abs=0) and spec.product_error == pytest.approx(0.75**2 / 16)
    assert model.config["ffn_width"] == 3 * (3 * 14 + 6)
    assert construct_unrolled(gp, blocks=2, bands=2).construction.multiplier is None


# ------------------------------------------------------------------ what the construction records
@pytest.mark.parametrize(("frames", "bands", "taper", "frame_frequency", "mode"), [
    (10, 3, None, "window", "exact"), (10, 3, "triangular", "sequence", "exact"), (6, 5, None, "window", "paper"),
    (10, 8, None, "window", "exact"), (10, 2, None, "window", "paper")])
def test_construction_records_its_parameters(frames, bands, taper, frame_frequency, mode):
    """The recorded quantities against their definitions: ``Gamma_J``'s lags and ``lambda_min`` (numpy), the frame
    frequency ``pi/W`` (``W = min(H, J+2)`` or ``H``) and the lag values ``cos(w m)``, the smallest gap of
    consecutive lag values next to a used band, the product interval and its centre, the largest height
    (``max(1, 1/min_k P_k)`` in exact mode, 1 in paper mode), the slope ``K = margin c_max / g``, heads per band."""
    gp = make_gp(frames, 2)
    model = construct_unrolled(gp, blocks=3, bands=bands, taper=taper, frame_frequency=frame_frequency, mode=mode,
                               slope_margin=2.0)
    c = model.construction
    want_gamma = gamma_j(gp, bands, taper)
    assert np.allclose(c.gamma_truncated.numpy(), want_gamma[: bands + 1], rtol=1e-15, atol=0)
    assert c.gamma_truncated.shape == (bands + 1,)
    assert math.isclose(c.lambda_min_gamma, np.linalg.eigvalsh(scipy.linalg.toeplitz(want_gamma))[0], rel_tol=1e-12)
    period = min(frames, bands + 2) if frame_frequency == "window" else frames
    assert frequency_period(frames, bands, frame_frequency) == period
    assert math.isclose(c.frequency, math.pi / period, rel_tol=1e-15)
    assert np.allclose(c.lag_values.numpy(), np.cos(math.pi / period * np.arange(frames)), rtol=0, atol=1e-15)
    lag_values = np.cos(math.pi / period * np.arange(frames))
    gaps = [lag_values[k] - lag_values[k + 1] for k in range(min(bands + 1, frames - 1))]
    assert math.isclose(c.min_gap, min(gaps), rel_tol=1e-12)
    low, high = product_interval(gp, bands, taper)
    assert math.isclose(c.product_min, low, rel_tol=1e-12) and math.isclose(c.product_max, high, rel_tol=1e-12)
    assert math.isclose(c.step_center, 0.5 * (low + high), rel_tol=1e-12)
    height = max(1.0, 1.0 / (0.5 * (low + high))) if mode == "exact" else 1.0  # GD: every P_k is the centre
    assert math.isclose(c.height_max, height, rel_tol=1e-12)
    assert math.isclose(c.tent_slope, 2.0 * height / min(gaps), rel_tol=1e-12)
    assert c.heads_per_band == {0: 3 if mode == "exact" else 1, **{m: 3 for m in range(1, bands + 1)}}
    assert (c.bands, c.blocks, c.taper, c.mode, c.gp) == (bands, 3, taper, mode, gp)
    assert np.allclose(c.step_centers.numpy(), [0.5 * (low + high)] * 3, rtol=1e-12)


def test_chebyshev_heights_use_the_smallest_step_center():
    """With Chebyshev steps the largest height is ``max(1, 1/min_k P_k)``: the smallest centre, ``P - Q cos(pi/2L)``
    (a Sigma scaled by 0.05 puts ``1/min P_k`` above 1), and the phi slot holds 3 features per block."""
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 8, 0.05 * spatial(2))
    model = construct_unrolled(gp, blocks=4, bands=3, steps="chebyshev")
    smallest = min(centers(gp, 4, 3, None, "chebyshev"))
    assert 1.0 / smallest > 1.0
    assert math.isclose(model.construction.height_max, 1.0 / smallest, rel_tol=1e-12)
    assert model.construction.layout.size("phi") == 12 and model.config["time_groups"] == 4
    check_exact_network(gp, model, 0.05, draw_x(gp), 3, None, "chebyshev")


def test_size_and_output_bound():
    """``size()``: width ``D = 2d + 3G + 3`` (+ d in paper mode), L, heads ``3 + 3J`` (exact) or ``1 + 3J``
    (paper), the schedule flags, the parameter count (numel of the parameters), and the output bound
    ``R = 2 / min(P_min, 1)`` with ``P_min`` the smallest eigenvalue product (numpy) -- with Sigma scaled down
    so that ``P_min < 1`` and the bound's minimum is the product, and up so that it is 1."""
    for scale, steps in ((0.2, "gd"), (40.0, "chebyshev")):
        gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 8, scale * spatial(3))
        model = construct_unrolled(gp, blocks=4, bands=2, steps=steps)
        size = model.size()
        groups = 1 if steps == "gd" else 4
        assert (size["D"], size["L"], size["M"], size["steps"], size["looped"]) == (6 + 3 * groups + 3, 4, 9, steps,
                                                                                    False)
        assert size["parameters"] == sum(p.numel() for p in model.parameters())
        assert size["tent_slope"] == model.construction.tent_slope and size["ffn_width"] == 1
        low, _ = product_interval(gp, 2)
        assert (low < 1.0) == (scale < 1.0)
        assert math.isclose(size["R"], 2.0 / min(low, 1.0), rel_tol=1e-12)
        assert math.isclose(model.output_bound(), 2.0 / min(low, 1.0), rel_tol=1e-12)
        assert size["heads_per_band"] == {0: 3, 1: 3, 2: 3}
        norms = model.max_weight_norm()
        assert (size["B"], size["B_entry"]) == (norms["spectral"], norms["entry"])
        assert size["B_norm"].startswith("spectral")
    paper = construct_unrolled(make_gp(8, 3), blocks=2, bands=2, mode="paper", paper_knots=5, looped=True)
    assert (paper.size()["D"], paper.size()["M"], paper.size()["looped"]) == (6 + 3 + 3 + 3, 7, True)


def test_memory_estimate_is_twice_the_float64_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory check is asked for ``2 x 8`` bytes per block parameter (float64 while written, a second copy
    during the dtype conversion), per stored block (one when looped); paper mode counts 3J + 3 heads, two more
    than it uses (an upper bound).  The estimate is compared with the numel of the model actually built."""
    asked: list[float] = []
    monkeypatch.setattr(constructor, "check_memory", lambda what, nbytes: asked.append(nbytes))
    gp = make_gp(8, 2)
    for options in ({}, {"looped": True}, {"steps": "chebyshev"}, {"mode": "paper", "paper_knots": 7}):
        asked.clear()
        model = construct_unrolled(gp, blocks=3, bands=2, **options)
        block = model.distinct_blocks()[0]
        per_block = sum(p.numel() for p in block.parameters())
        if options.get("mode") == "paper":
            width, dim = model.config["width"], model.config["dim"]
            per_block += 2 * (2 * 3 * width + 2 * dim * width)
        stored = len(model.distinct_blocks())
        assert stored == (1 if options.get("looped") else 3)
        assert asked == [16.0 * per_block * stored], options


def test_non_finite_weights_are_refused():
    """A Sigma of 1e-305 makes ``1/P_min`` about 1e305, and with the largest slope margin the tent slope overflows:
    ``NonFiniteError`` naming the slope, not a model that returns NaN; the same Sigma with margin 1 still builds."""
    gp = (torch.exp(-torch.arange(6.0) / 2), 1e-305 * torch.eye(2, dtype=torch.float64))
    with pytest.raises(NonFiniteError, match="tent slope K = inf"):
        construct_unrolled(gp, blocks=2, bands=3, slope_margin=1e6)
    model = construct_unrolled(gp, blocks=2, bands=3)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_refused_arguments():
    """The argument checks whose conditions are mutated: slope margins below 1 (but positive), H = 1, a non-bool
    ``looped``, a non-dtype."""
    gp = make_gp(8, 2)
    with pytest.raises(ValueError, match=r"1 <= slope_margin"):
        construct_unrolled(gp, blocks=2, bands=3, slope_margin=0.999)
    assert construct_unrolled(gp, blocks=2, bands=3, slope_margin=1.0).construction.tent_slope > 0
    with pytest.raises(ValueError, match="frames must be >= 2"):
        construct_unrolled((torch.ones(1), torch.eye(2, dtype=torch.float64)), blocks=2, bands=0)
    with pytest.raises(InputTypeError, match="looped"):
        construct_unrolled(gp, blocks=2, bands=3, looped=1)
    with pytest.raises(InputTypeError, match="dtype"):
        construct_unrolled(gp, blocks=2, bands=3, dtype="float64")


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_construction_does_not_depend_on_the_default_dtype(mode):
    """The weights are written in float64 whatever torch's default dtype: built under a float32 default, every
    parameter and buffer is bit-identical to the build under float64 (a float32 tent slope or lag value would be
    off by ~1e-7 relative, and the tents then miss their lags by K * 1e-7)."""
    gp = make_gp(8, 2)
    reference = construct_unrolled(gp, blocks=3, bands=3, mode=mode, paper_knots=9, steps="chebyshev")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        model = construct_unrolled(gp, blocks=3, bands=3, mode=mode, paper_knots=9, steps="chebyshev")
    finally:
        torch.set_default_dtype(previous)
    want = reference.state_dict()
    got = model.state_dict()
    assert list(got) == list(want)
    for name, value in got.items():
        assert value.dtype == want[name].dtype and torch.equal(value, want[name]), name
    for field in ("lag_values", "gamma_truncated", "step_centers"):
        assert torch.equal(getattr(model.construction, field), getattr(reference.construction, field)), field


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_models_are_the_float64_model_cast(dtype):
    """The returned model's parameters are the float64 construction's, cast to ``dtype``."""
    gp = make_gp(8, 2)
    model = construct_unrolled(gp, blocks=2, bands=3, dtype=dtype)
    reference = construct_unrolled(gp, blocks=2, bands=3)
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        assert p.dtype == dtype, name
        assert torch.equal(p, q.to(dtype)), name


# ---- from the sampled mutation run of unroll/construction/constructor.py (50 mutants, seed 0) ------------------


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_memory_check_counts_one_stored_block_when_looped_and_every_block_otherwise(monkeypatch, mode):
    """The weights checked against memory are ``L`` blocks' worth, or one block's when the blocks share weights
    (``looped=True``): the two estimates differ by exactly the factor ``L``.  Independent of the per-block formula."""
    asked = []
    monkeypatch.setattr(constructor, "check_memory", lambda what, size: asked.append(float(size)))
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=2.0), 8, torch.eye(2, dtype=torch.float64))
    blocks = 5
    construct_unrolled(gp, blocks=blocks, bands=3, mode=mode, looped=False)
    construct_unrolled(gp, blocks=blocks, bands=3, mode=mode, looped=True)
    assert len(asked) == 2 and asked[1] > 0
    assert asked[0] == pytest.approx(blocks * asked[1], rel=1e-15, abs=0)


def test_size_names_the_norm_that_bounds_the_weights():
    """``size()["B"]`` is the largest spectral norm of a weight matrix, and the record says so in ``B_norm``
    (a results file carries both; a reader of the file needs the definition)."""
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 8, torch.eye(2, dtype=torch.float64))
    size = construct_unrolled(gp, blocks=2, bands=7).size()
    assert size["B_norm"].startswith("spectral (operator 2-norm)")
    assert size["B"] >= size["B_entry"] > 0  # the spectral norm of a matrix is at least its largest entry


@pytest.mark.parametrize("bands", [8, 10**12])
def test_bands_past_the_sequence_are_refused_by_their_range_before_anything_is_sized(bands):
    """``J >= H`` is refused with the allowed range, also when ``J`` is so large that sizing the weights first
    would report a memory error instead (the range check must come before the memory check)."""
    gp = GaussianProcess(kernel_from_name("matern", nu=1.5, ell=2.0), 8, torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=rf"^bands must satisfy 0 <= bands <= 7, got bands={bands}$"):
        construct_unrolled(gp, blocks=2, bands=bands)
