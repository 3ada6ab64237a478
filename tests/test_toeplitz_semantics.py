"""Semantic tests of ``unroll.linalg.toeplitz`` (issue 15, mutation survivors).

Oracles, none of them the code under test: dense products and solves (``scipy.linalg.toeplitz``, ``torch.linalg``),
``scipy.linalg.solve_toeplitz`` (Levinson), a textbook preconditioned-CG loop on dense matrices with the circulant
preconditioners built from their definitions, brute-force 5-smooth sizes, exact identities of floating point (a
float32 input cast to float64 is exact; scaling by a power of two is exact), and systems whose PCG behaviour is
known in closed form (a circulant T is its own preconditioner: one iteration; a right-hand side along a negative
eigenvector of an indefinite T with the identity preconditioner: no step is ever taken).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg
import torch
from toeplitz_cases import dense, relative_error, spd_columns

from unroll import GaussianProcess
from unroll.data.kernels import Matern
from unroll.linalg import toeplitz
from unroll.linalg.toeplitz import (
    DEFAULT_RTOL,
    KroneckerToeplitzSolver,
    SolveInfo,
    ToeplitzInverse,
    ToeplitzSolveError,
    circulant_preconditioner,
    embedding_size,
    pcg,
    toeplitz_matmul,
)


# ------------------------------------------------------------------------------------------------ helpers
def strang_first_column(column: torch.Tensor) -> torch.Tensor:
    """Strang's circulant by definition: keep the central diagonals, ``s_k = c_k`` (k <= H/2), ``c_{H-k}`` beyond."""
    frames = column.shape[-1]
    return torch.stack([column[k] if k <= frames // 2 else column[frames - k] for k in range(frames)])


def chan_first_column(column: torch.Tensor) -> torch.Tensor:
    """T. Chan's optimal circulant by definition: each wrapped diagonal of C is the mean of T over it."""
    frames = column.shape[-1]
    matrix, index = dense(column), torch.arange(frames)
    wrapped = (index[:, None] - index[None, :]) % frames
    return torch.stack([matrix[wrapped == k].mean() for k in range(frames)])


def textbook_pcg(matrix: torch.Tensor, preconditioner: torch.Tensor, rhs: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` iterations of preconditioned CG (Saad, Alg. 9.1) from 0 on dense matrices, one right-hand side."""
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = torch.linalg.solve(preconditioner, r)
    p, rz = z.clone(), r @ z
    for _ in range(steps):
        tp = matrix @ p
        alpha = rz / (p @ tp)
        x, r = x + alpha * p, r - alpha * tp
        z = torch.linalg.solve(preconditioner, r)
        rz_new = r @ z
        p, rz = z + (rz_new / rz) * p, rz_new
    return x


def stuck_system(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``T = I + 2 (e_0 e_{H-1}^T + e_{H-1} e_0^T)`` (column ``[1, 0, ..., 0, 2]``): indefinite (eigenvalues 3, -1 and
    1), yet Strang's circulant is the identity (it never reads lag H-1), so PCG runs.  For ``b`` along the eigenvector
    ``v = e_0 - e_{H-1}`` of eigenvalue -1 every direction is a multiple of v with curvature ``-|p|^2 < 0``: no step is
    ever taken, the iterate stays exactly 0 (relative residual exactly 1) until the iteration cap."""
    column = torch.zeros(frames, dtype=torch.float64)
    column[0], column[-1] = 1.0, 2.0
    direction = torch.zeros(frames, dtype=torch.float64)
    direction[0], direction[-1] = 1.0, -1.0
    return column, direction


def counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the circulant products ``T y`` (``_embedded_product``) PCG makes: one per iteration, one per true-residual
    check, one for the final residual."""
    calls = [0]
    product: Callable[..., torch.Tensor] = toeplitz._embedded_product

    def counted(*args: torch.Tensor | int) -> torch.Tensor:
        calls[0] += 1
        return product(*args)

    monkeypatch.setattr(toeplitz, "_embedded_product", counted)
    return calls


# ------------------------------------------------------------------------------------------------ sizes and inputs
def test_embedding_size_is_the_smallest_fast_size_of_the_embedding():
    """``n`` is the smallest 5-smooth integer (the sizes scipy's real FFT is fastest for) with ``n >= 2H - 1`` (the
    least size whose circulant contains T), by brute force for H = 1..300: 1, 3, 5, 8, 9, 12, 15, 15, 18, ...
    Kills ``2H + 1``, ``3H - 1``, ``max(., 2)`` (n = 2 for H = 1) and the 7- and 11-smooth sizes of ``real=False``."""
    def smooth(m: int) -> bool:
        for prime in (2, 3, 5):
            while m % prime == 0:
                m //= prime
        return m == 1

    for frames in range(1, 301):
        least = 2 * frames - 1
        expected = next(m for m in range(least, 2 * least + 2) if smooth(m))
        assert embedding_size(frames) == expected, frames


@pytest.mark.parametrize("column", [torch.tensor(2.0), torch.zeros(3, 0), [1.0, 0.5], np.array([1.0, 0.5])],
                         ids=["0-d", "H=0", "list", "numpy"])
def test_a_column_that_is_not_a_tensor_with_frames_is_refused(column):
    """``column`` must be a tensor ``(..., H)`` with H >= 1: a 0-d tensor, zero frames, a list and a numpy array are
    each refused with the documented ValueError (not an IndexError / AttributeError / TypeError from deeper down).
    Kills the ``or`` -> ``and`` mutants of the shape check."""
    with pytest.raises(ValueError, match="column must be a tensor"):
        toeplitz_matmul(column, torch.ones(2))


def test_products_broadcast_one_vector_against_every_system():
    """``toeplitz_matmul(column (3, H), y (H,))`` is the three dense products ``T_k y`` (to 1e-14), and ``y (2, 1, H)``
    against the same columns the (2, 3) grid of them: a spectrum with more leading axes than the vectors widens the
    product, which cannot be done in place.  Kills the in-place / out-of-place choice inverted or always in place,
    and the widened product replaced (``None``, a quotient)."""
    columns = spd_columns(33)
    generator = torch.Generator().manual_seed(15)
    for y in (torch.randn(33, generator=generator, dtype=torch.float64),
              torch.randn(2, 1, 33, generator=generator, dtype=torch.float64)):
        expected = (torch.stack([dense(column) for column in columns]) @ y.unsqueeze(-1)).squeeze(-1)
        product = toeplitz_matmul(columns, y)
        assert product.shape == expected.shape and relative_error(product, expected) <= 1e-14


def test_a_float32_column_is_used_at_float64_precision():
    """A float32 column (its values exactly representable in float64) gives the float64 product of those values to
    1e-14 (the float64 FFT product's own error, < 1e-14 in test_toeplitz) -- a product taken in float32 errs by ~1e-7.
    Kills ``column.to(None)`` in the column check."""
    column = spd_columns(64)[2].to(torch.float32)
    y = torch.randn(4, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    product = toeplitz_matmul(column, y)
    assert product.dtype == torch.float64
    assert relative_error(product, y @ dense(column.double())) <= 1e-14


def test_float32_right_hand_sides_are_their_exact_float64_cast():
    """float32 ``y`` / ``rhs`` are cast once, exactly, to float64: every entry point gives bitwise the result of the
    float64 cast (solutions and reported residuals).  Kills the ``.to(None)`` of toeplitz_matmul's y, pcg's rhs,
    ToeplitzInverse.apply's and .solve's rhs (a float32 norm, or an in-place complex64 spectrum)."""
    columns = spd_columns(40)
    b32 = torch.randn(2, 3, 40, generator=torch.Generator().manual_seed(2)).to(torch.float32)
    b64 = b32.to(torch.float64)
    assert torch.equal(toeplitz_matmul(columns, b32), toeplitz_matmul(columns, b64))
    y32, info32 = pcg(columns, b32, rtol=1e-12)
    y64, info64 = pcg(columns, b64, rtol=1e-12)
    assert torch.equal(y32, y64) and info32 == info64
    inverse = ToeplitzInverse(columns)
    assert torch.equal(inverse.apply(b32), inverse.apply(b64))
    s32, sinfo32 = inverse.solve(b32, rtol=1e-12)
    s64, sinfo64 = inverse.solve(b64, rtol=1e-12)
    assert torch.equal(s32, s64) and sinfo32 == sinfo64


def test_results_do_not_depend_on_the_default_dtype(float32_default):
    """With torch's default dtype float32, T. Chan's circulant is still its definition to 1e-13 (a float32 weight
    ``k / H`` errs by ~1e-8), and a zero right-hand side returns float64 zeros.  Kills ``lags.to(None)`` in the
    preconditioner and ``torch.zeros(shape, dtype=None)`` / without a dtype for PCG's first iterate."""
    column = spd_columns(6)[1]
    chan = torch.fft.rfft(chan_first_column(column)).real
    assert torch.allclose(circulant_preconditioner(column, "chan"), chan, rtol=0, atol=1e-13)
    solution, info = pcg(column, torch.zeros(6, dtype=torch.float64))
    assert solution.dtype == torch.float64


def test_the_default_preconditioner_is_strang():
    """``circulant_preconditioner(column)`` is Strang's (the documented default), built from its definition."""
    column = spd_columns(7)[1]
    assert torch.allclose(circulant_preconditioner(column), torch.fft.rfft(strang_first_column(column)).real,
                          rtol=0, atol=1e-13)


# ------------------------------------------------------------------------------------------------ PCG
@pytest.mark.parametrize("preconditioner, first_column", [("strang", strang_first_column),
                                                            ("chan", chan_first_column)])
@pytest.mark.parametrize("steps", [1, 2, 3, 5])
def test_pcg_iterates_are_textbook_pcg_with_the_named_preconditioner(preconditioner, first_column, steps):
    """With ``max_iterations = k`` and an unreachable target (``on_failure="return"``), pcg returns the k-th iterate
    of textbook PCG on the dense T with the dense circulant of the named preconditioner (Strang's / Chan's, from their
    definitions), for two systems at once; ``iterations == k``.  Their Strang eigenvalues are positive (no fallback
    to Chan) but some below 1.  Tolerance 1e-10: k <= 5 steps at cond(T) <= 2e3 carry ~k cond eps ~ 2e-12 of
    rounding, while another preconditioner or one step more / fewer changes the iterate at O(1e-3) or more.  Kills
    Strang replaced by Chan (``or``, ``bool(None)``, ``> 1``), the cap ignored or off by one, iterations counted from
    1 or by 2."""
    columns = spd_columns(24)[[0, 2]]  # the 4.0 system's Strang circulant is indefinite: the batch would use Chan
    rhs = torch.randn(2, 24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    solution, info = pcg(columns, rhs, rtol=1e-30, max_iterations=steps, preconditioner=preconditioner,
                         on_failure="return")
    assert info.iterations == steps
    for k, column in enumerate(columns):
        first = first_column(column)
        assert 0 < float(torch.fft.rfft(first).real.min()) < (1 if preconditioner == "strang" else math.inf)
        circulant = torch.from_numpy(scipy.linalg.circulant(first.numpy()))
        expected = textbook_pcg(dense(column), circulant, rhs[k], steps)
        assert relative_error(solution[k], expected) <= 1e-10


def test_a_circulant_toeplitz_matrix_is_solved_in_one_iteration():
    """If ``c_k = c_{H-k}``, T is itself circulant and equals both Strang's and Chan's circulant: one PCG iteration is
    the exact solve (``y = T^{-1} b`` from the first direction ``M^{-1} b``).  Kills iteration counts started at 1 or
    incremented by 2."""
    frames = 16
    lags = torch.arange(frames, dtype=torch.float64)
    column = 0.3 ** torch.minimum(lags, frames - lags) + (lags == 0).to(torch.float64)
    assert torch.equal(column[1:], column[1:].flip(-1))
    rhs = torch.randn(2, frames, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for preconditioner in ("strang", "chan"):
        solution, info = pcg(column, rhs, rtol=1e-12, preconditioner=preconditioner)
        assert info.iterations == 1 and info.residual <= 1e-12
        assert relative_error(solution, torch.linalg.solve(dense(column), rhs.T).T) <= 1e-13


@pytest.mark.parametrize("frames", [5, 2600])
def test_the_default_iteration_cap_is_max_200_4_sqrt_h(frames):
    """On the stuck system (no step is ever taken) PCG runs exactly to the documented default cap ``max(200,
    4 sqrt(H))`` -- 200 for H = 5, 203 for H = 2600 -- and returns the zero iterate with relative residual exactly 1.
    Kills 201, ``4 / sqrt(H)`` and ``5 sqrt(H)`` (254)."""
    column, direction = stuck_system(frames)
    solution, info = pcg(column, 3.0 * direction, on_failure="return")
    assert info == SolveInfo(iterations=max(200, int(4 * math.sqrt(frames))), residual=1.0)
    assert torch.equal(solution, torch.zeros(frames, dtype=torch.float64))


def test_a_failed_solve_reports_each_right_hand_side_s_own_residual():
    """The error of a failed solve names the worst relative residual over the right-hand sides, each relative to its
    own norm.  Stuck system, a (2, 3, H) batch of multiples 1..6 of v: every iterate stays 0, every relative residual
    is exactly 1, so the message says "residual 1 after 7 iterations" (max_iterations 7).  Norms taken over the batch
    or the wrong axis, without keepdim (a (2, 3, 3) broadcast), or times instead of over the norm, all report another
    number."""
    column, direction = stuck_system(12)
    rhs = torch.arange(1.0, 7.0, dtype=torch.float64).reshape(2, 3, 1) * direction
    with pytest.raises(ToeplitzSolveError, match=r"PCG reached relative residual 1 after 7 iterations"):
        pcg(column, rhs, max_iterations=7)


def test_an_unreachable_target_reports_the_rounding_floor_it_reached():
    """``rtol = 1e-19`` cannot be met (rounding floor ~1e-14 here): the error names the residual reached, which is the
    true one of the best iterate: at the floor (<= 1e-12, where ``|b + T y|`` would be ~2) and the same number as the
    ``on_failure="return"`` iterate's (which the dense product confirms to 1e-12)."""
    columns = spd_columns(100)
    rhs = torch.randn(2, 3, 100, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with pytest.raises(ToeplitzSolveError) as caught:
        pcg(columns, rhs, rtol=1e-19)
    reported = float(re.search(r"relative residual (\S+) after", str(caught.value)).group(1))
    solution, info = pcg(columns, rhs, rtol=1e-19, on_failure="return")
    assert reported == float(f"{info.residual:.3g}") and reported <= 1e-12
    residual = torch.einsum("kij,bkj->bki", torch.stack([dense(c) for c in columns]), solution) - rhs
    assert float((residual.norm(dim=-1) / rhs.norm(dim=-1)).max()) <= 1e-12


@pytest.mark.parametrize("max_restarts", [0, 1, 3])
def test_pcg_gives_up_after_max_restarts_from_the_true_residual(monkeypatch, max_restarts):
    """At an unreachable target PCG checks the true residual each time the recursion claims convergence, restarts from
    it, and gives up after ``MAX_RESTARTS`` restarts, long before the cap: ``MAX_RESTARTS + 1`` true-residual
    products beyond the one per iteration and the final one, ``iterations < 200``, and the iterate returned is at the
    rounding floor (dense residual <= 1e-12).  Kills restart counts set to 1, decremented, stepped by 2, started at
    1, compared with ``>=``, and a restart whose first inner product is wrong (summed over the batch or another axis,
    or a quotient)."""
    monkeypatch.setattr(toeplitz, "MAX_RESTARTS", max_restarts)
    calls = counting(monkeypatch)
    columns = spd_columns(100)
    rhs = torch.randn(2, 3, 100, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    solution, info = pcg(columns, rhs, rtol=1e-19, on_failure="return")
    assert calls[0] == info.iterations + (max_restarts + 1) + 1
    assert info.iterations < 200
    residual = torch.einsum("kij,bkj->bki", torch.stack([dense(c) for c in columns]), solution) - rhs
    assert float((residual.norm(dim=-1) / rhs.norm(dim=-1)).max()) <= 1e-12


def test_pcg_is_homogeneous_in_each_right_hand_side():
    """Scaling one right-hand side by 2^-30 (exact in floating point) scales its PCG iterates exactly, so the batch
    takes the same iterations, reports the same residual and returns that solution scaled by 2^-30, bitwise: each
    right-hand side is judged against its own norm.  Kills norms taken over the whole batch (``dim=None`` / no dim)
    in the loop's stopping test and in the final residual."""
    columns = spd_columns(64)
    rhs = torch.randn(2, 3, 64, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    scaled = rhs.clone()
    scaled[1] *= 2.0 ** -30
    solution, info = pcg(columns, rhs, rtol=1e-12)
    scaled_solution, scaled_info = pcg(columns, scaled, rtol=1e-12)
    assert scaled_info == info
    assert torch.equal(scaled_solution[0], solution[0]) and torch.equal(scaled_solution[1], solution[1] * 2.0 ** -30)


def test_a_zero_right_hand_side_is_solved_by_zero_without_iterating():
    """``b = 0``: the zero iterate meets every target (``|b - T 0| = 0 <= rtol |b| = 0``): no iteration, residual 0.
    One b of shape (H,) against three systems gives the (3, H) zeros of the broadcast shape even though no step ever
    widens the iterate.  Kills the strict ``norm < 0.5 target`` and ``true residual < target`` (they never accept
    0 <= 0 and run to the cap, then raise), an iteration count started at 1, and the shape taken from b alone."""
    for rhs in (torch.zeros(3, 10, dtype=torch.float64), torch.zeros(10, dtype=torch.float64)):
        solution, info = pcg(spd_columns(10), rhs)
        assert info == SolveInfo(iterations=0, residual=0.0)
        assert torch.equal(solution, torch.zeros(3, 10, dtype=torch.float64))  # (H,) broadcast against (3, H)


def test_a_zero_row_next_to_a_nonzero_one_stays_zero():
    """A batch with a zero right-hand side beside a nonzero one: the zero row's direction is 0, its curvature 0, so it
    takes no step and stays exactly 0 while the other row converges to the Levinson solution.  Kills ``curvature >= 0``
    (a step ``0 / 0 = nan``)."""
    column = spd_columns(30)[1]
    rhs = torch.zeros(2, 30, dtype=torch.float64)
    rhs[1] = torch.randn(30, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    solution, info = pcg(column, rhs, rtol=1e-12)
    assert torch.equal(solution[0], torch.zeros(30, dtype=torch.float64)) and info.residual <= 1e-12
    expected = torch.from_numpy(scipy.linalg.solve_toeplitz(column.numpy(), rhs[1].numpy()))
    assert relative_error(solution[1], expected) <= 1e-10


def test_a_singular_circulant_preconditioner_is_refused():
    """``T = [[1, 1], [1, 1]]`` (PSD, singular): its circulant has the eigenvalue 0 exactly, so T is refused as not
    positive definite before any iteration, for either preconditioner requested.  Kills ``circulant >= 0`` (which
    divides by the zero eigenvalue and fails later with a NaN residual)."""
    for preconditioner in ("strang", "chan"):
        with pytest.raises(ToeplitzSolveError, match="not positive definite"):
            pcg(torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), preconditioner=preconditioner)


def test_one_right_hand_side_broadcasts_against_every_system():
    """``rhs (H,)`` against ``column (3, H)`` solves the three systems for the same b (Levinson for each)."""
    columns = spd_columns(20)
    rhs = torch.randn(20, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    solution, info = pcg(columns, rhs, rtol=1e-12)
    assert solution.shape == (3, 20) and info.residual <= 1e-12
    for k, column in enumerate(columns):
        expected = torch.from_numpy(scipy.linalg.solve_toeplitz(column.numpy(), rhs.numpy()))
        assert relative_error(solution[k], expected) <= 1e-10


# ------------------------------------------------------------------------------------------------ Gohberg–Semencul
def test_the_generator_solve_uses_the_requested_preconditioner():
    """``ToeplitzInverse(..., preconditioner="chan")`` solves ``T g = e_0`` by PCG with Chan's circulant: its
    ``generator_info`` is that solve's, which differs from Strang's on these systems (18 vs 6 iterations).  Kills the
    preconditioner not passed on."""
    columns = spd_columns(300)
    unit = torch.zeros_like(columns)
    unit[..., 0] = 1.0
    infos = {kind: pcg(columns, unit, rtol=DEFAULT_RTOL / 10, preconditioner=kind, on_failure="return")[1]
             for kind in ("strang", "chan")}
    assert infos["strang"].iterations != infos["chan"].iterations
    for kind, info in infos.items():
        inverse = ToeplitzInverse(columns, preconditioner=kind)
        assert inverse.generator_info == info
        assert inverse.frames == 300 and inverse.size == embedding_size(300) and torch.equal(inverse.column, columns)


def test_an_unreachable_generator_target_is_not_an_error():
    """The generator target need not be reached (documented): with ``rtol = 1e-25`` the best generator is kept and
    :meth:`solve` still reaches 1e-12, its answer the dense solve's.  Kills the generator solve raising."""
    columns = spd_columns(100)
    inverse = ToeplitzInverse(columns, rtol=1e-25)
    assert inverse.generator_info.residual > 1e-25
    rhs = torch.randn(2, 3, 100, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    solution, info = inverse.solve(rhs, rtol=1e-12)
    expected = torch.linalg.solve(torch.stack([dense(c) for c in columns]), rhs.unsqueeze(-1)).squeeze(-1)
    assert info.residual <= 1e-12 and relative_error(solution, expected) <= 1e-9


def test_a_zero_generator_is_refused():
    """Column ``[1, 0.5, -0.25, -0.5, 0.5]``: indefinite (eigenvalue -0.19), but its Strang circulant is positive, and
    PCG's first direction has negative curvature, so it never steps: the generator is exactly 0, ``(T^-1)_00 <= 0``
    cannot be a positive definite T's, and the inverse is refused.  Kills ``first >= 0`` (a scale 1/0)."""
    column = torch.tensor([1.0, 0.5, -0.25, -0.5, 0.5], dtype=torch.float64)
    assert float(torch.linalg.eigvalsh(dense(column))[0]) < 0 and bool((circulant_preconditioner(column) > 0).all())
    with pytest.raises(ToeplitzSolveError, match=r"\(T\^-1\)_00 <= 0"):
        ToeplitzInverse(column)


def test_gohberg_semencul_solve_edge_cases():
    """``rtol = 0`` is refused (ValueError), and the target is inclusive: asked for exactly the residual one apply
    reaches, solve stops after that apply.  Kills ``rtol >= 0`` and ``worst < rtol``."""
    column = spd_columns(50)[2]
    inverse = ToeplitzInverse(column)
    rhs = torch.randn(3, 50, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        inverse.solve(rhs, rtol=0.0)
    _, first = inverse.solve(rhs, rtol=1.0)
    assert first.iterations == 1
    _, again = inverse.solve(rhs, rtol=first.residual)
    assert again == first


# ------------------------------------------------------------------------------------------------ Kronecker solver
def kronecker_case(dim: int = 2) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Matérn lag values (H = 8, so ``n = 15`` is odd) and the eigenpairs of a fixed SPD Sigma."""
    lags = torch.from_numpy(np.asarray(Matern(nu=1.5, ell=3.0)(np.arange(8)), dtype=np.float64))
    generator = torch.Generator().manual_seed(12)
    a = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    mu, vectors = torch.linalg.eigh(a @ a.T + torch.eye(dim, dtype=torch.float64))
    return lags, (mu, vectors)


@pytest.mark.parametrize("per_sample, expected", [(3, [3, 3, 1]), (1, [1] * 7), (0.1, [1] * 7)])
def test_samples_are_chunked_to_the_work_space(monkeypatch, per_sample, expected):
    """``chunk_bytes`` bounds the work space of one Gohberg–Semencul call: six complex128 spectra of ``d (n // 2 + 1)``
    entries per sample (H = 8, n = 15, d = 2: 1536 bytes).  With a budget of 3, 1 and 0.1 samples' worth, 7 samples
    at one diffusion time go in chunks of the largest count that fits (at least 1).  Kills every change to the
    formula (``n / 2`` for odd n, ``// 3``, ``+ 2``, 17 bytes, 7 spectra, ``16 / d``, ``d / (.)``, ``6 / (.)``, a
    floor of 2, the step of the loop over chunks dropped)."""
    lags, eigen = kronecker_case()
    size = embedding_size(8)
    assert size == 15
    per_sample_bytes = 6 * 16.0 * 2 * (size // 2 + 1)
    solver = KroneckerToeplitzSolver(lags, eigen, chunk_bytes=per_sample * per_sample_bytes)
    rows: list[int] = []
    solve = ToeplitzInverse.solve

    def recording(self: ToeplitzInverse, rhs: torch.Tensor, **kwargs: float) -> tuple[torch.Tensor, SolveInfo]:
        rows.append(int(rhs.shape[0]))
        return solve(self, rhs, **kwargs)

    monkeypatch.setattr(ToeplitzInverse, "solve", recording)
    x = torch.randn(7, 8, 2, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    out = solver.solve(x, torch.tensor(0.3, dtype=torch.float64))
    assert rows == expected and out.shape == x.shape


def test_float32_spatial_eigenpairs_are_cast_exactly():
    """float32 ``(mu, V)`` are cast once, exactly, to float64: the solve equals bitwise the one from their float64
    casts (a float32 V would not even multiply a float64 x).  Kills ``value.to(None)``."""
    lags, (mu, vectors) = kronecker_case()
    mu32, vectors32 = mu.to(torch.float32), vectors.to(torch.float32)
    x = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(14), dtype=torch.float64)
    time = torch.tensor(0.2, dtype=torch.float64)
    solved = KroneckerToeplitzSolver(lags, (mu32, vectors32)).solve(x, time)
    exact = KroneckerToeplitzSolver(lags, (mu32.double(), vectors32.double())).solve(x, time)
    assert torch.equal(solved, exact)


def test_a_bad_rtol_is_refused_before_any_generator_is_computed():
    """``rtol = 0`` is refused up front: ValueError, and no diffusion time's generators were solved for (the cache is
    empty).  Kills ``rtol >= 0`` (the inner solve would refuse it only after PCG built the generators)."""
    lags, eigen = kronecker_case()
    solver = KroneckerToeplitzSolver(lags, eigen)
    with pytest.raises(ValueError, match="rtol must be > 0"):
        solver.solve(torch.ones(2, 8, 2, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64), rtol=0.0)
    assert len(solver._inverses) == 0


def test_last_solve_is_none_before_the_first_solve():
    """``GaussianProcess.last_solve`` (and the solver's) is ``None`` before the first Toeplitz solve, as documented,
    and a SolveInfo after it.  Kills ``last_solve = ""``."""
    gp = GaussianProcess(Matern(nu=1.0, ell=3.0), 16, torch.eye(2, dtype=torch.float64))
    assert gp.toeplitz_solver.last_solve is None and gp.last_solve is None
    gp.score(torch.ones(16, 2, dtype=torch.float64), 0.3, method="toeplitz")
    assert isinstance(gp.last_solve, SolveInfo) and gp.last_solve.residual <= DEFAULT_RTOL


def test_an_empty_batch_solves_nothing():
    """No samples (``x (0, H, d)``): an empty result, no generator solved for, and ``last_solve`` reports zero sweeps
    with residual 0 (none was done).  Kills the sweep count started at 1."""
    lags, eigen = kronecker_case()
    solver = KroneckerToeplitzSolver(lags, eigen)
    out = solver.solve(torch.zeros(0, 8, 2, dtype=torch.float64), torch.tensor(0.3, dtype=torch.float64))
    assert out.shape == (0, 8, 2) and len(solver._inverses) == 0
    assert solver.last_solve == SolveInfo(iterations=0, residual=0.0)
