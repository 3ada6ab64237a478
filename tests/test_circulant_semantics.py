"""Semantic tests of ``unroll.linalg.circulant`` (issue 15, mutation survivors): the embedding sizes it tries, its
verdict on each size against the eigenvalues of the explicit circulant matrix (``numpy.linalg.eigvalsh`` of
``scipy.linalg.circulant``), the lag-values path, the smallest eigenvalue it reports, the number of normals a seeded
draw consumes, the batches' work space, and independence of torch's default dtype.

Every oracle here is independent of the code under test: sizes by a brute-force search for 5-smooth numbers,
eigenvalues by a dense symmetric eigensolver, the random stream by a fresh generator drawing the documented count.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.linalg
import torch

from unroll.data.kernels import LagFunction, Matern
from unroll.linalg import circulant
from unroll.linalg.circulant import (
    MAX_GROWTH,
    NEGATIVE_TOLERANCE,
    IndefiniteEmbeddingError,
    embedding_eigenvalues,
    sample_stationary,
)


def is_5_smooth(n: int) -> bool:
    """True if ``n >= 1`` has no prime factor above 5 (the sizes scipy's real FFTs are fastest for)."""
    for prime in (2, 3, 5):
        while n % prime == 0:
            n //= prime
    return n == 1


def smallest_5_smooth_at_least(n: int) -> int:
    """The smallest 5-smooth integer ``>= n`` by brute force (independent of ``scipy.fft.next_fast_len``)."""
    m = max(int(n), 1)
    while not is_5_smooth(m):
        m += 1
    return m


def expected_sizes(frames: int, max_growth: int = MAX_GROWTH) -> list[int]:
    """The documented growth: the minimal ``2(H - 1)``, then each time the smallest fast (5-smooth) size at least
    twice the last, as long as it is at most ``max_growth`` times the minimal one (the bound is inclusive)."""
    minimal = max(2 * (frames - 1), 1)
    sizes = [minimal]
    while smallest_5_smooth_at_least(2 * sizes[-1]) <= max_growth * minimal:
        sizes.append(smallest_5_smooth_at_least(2 * sizes[-1]))
    return sizes


def circulant_spectrum(gamma: Callable[[np.ndarray], np.ndarray], size: int) -> np.ndarray:
    """Ascending eigenvalues of the explicit ``size x size`` circulant with first column ``gamma(min(k, M - k))``."""
    lags = np.arange(size)
    return np.linalg.eigvalsh(scipy.linalg.circulant(gamma(np.minimum(lags, size - lags))))


def full_spectrum(eigenvalues: torch.Tensor, size: int) -> np.ndarray:
    """The ``M`` eigenvalues ``lam_k = lam_{M-k}`` from the ``M // 2 + 1`` returned ones, ascending."""
    half = eigenvalues.numpy()
    return np.sort(np.concatenate([half, half[1: size - size // 2][::-1]]))


def rbf(length_scale: float) -> LagFunction:
    """The squared-exponential correlation ``exp(-lag^2 / (2 l^2))``: smooth, so its minimal embedding is indefinite
    unless ``l`` is small next to ``H``."""
    return LagFunction(lambda lag: np.exp(-0.5 * (np.asarray(lag, dtype=np.float64) / length_scale) ** 2),
                       name=f"rbf{length_scale:g}")


def lag_values_with_spectrum(spectrum: np.ndarray) -> np.ndarray:
    """Lag values ``gamma(0..H-1)`` whose minimal embedding (``M = 2(H - 1)``) has the rfft-eigenvalues ``spectrum``
    (``H`` of them): the inverse real FFT of a real spectrum is an even sequence, ``c_k = c_{M-k}``."""
    frames = spectrum.shape[0]
    column = np.fft.irfft(spectrum, 2 * (frames - 1))
    return column[:frames]


# ------------------------------------------------------------------------------------------------ sizes and verdicts
@pytest.mark.parametrize("frames", [8, 16])
def test_a_kernel_that_never_decays_names_every_size_tried(frames):
    """A correlation that has not decayed by lag 16 (H - 1) (l = 1000) is indefinite at every size; the error names the
    first and last size tried and the smallest ``lam_min / lam_max`` met, both against the oracles: the brute-force
    size sequence (H = 8: 14, 30, 60, 120 -- 28 is not 5-smooth; H = 16: up to 480 = 16 * 30, the inclusive
    bound) and the dense eigenvalues of each explicit circulant.  Kills the growth factor 3, the sizes rounded to
    7- or 11-smooth ones (``real=False`` / ``None`` / omitted) and the exclusive bound ``>=``."""
    flat = rbf(1000.0)
    sizes = expected_sizes(frames)
    ratios = []
    for size in sizes:
        spectrum = circulant_spectrum(flat, size)
        assert spectrum[0] < -NEGATIVE_TOLERANCE * spectrum[-1]  # the oracle agrees: indefinite at every size
        ratios.append(spectrum[0] / spectrum[-1])
    with pytest.raises(IndefiniteEmbeddingError) as caught:
        embedding_eigenvalues(flat, frames)
    message = str(caught.value)
    assert f"sizes {sizes[0]}..{sizes[-1]} " in message
    assert f"smallest eigenvalue {min(ratios):.3g} of lambda_max" in message


@pytest.mark.parametrize("length_scale, frames", [(6.0, 8), (6.0, 16), (3.0, 20), (1.0, 12)])
def test_the_embedding_is_the_first_size_whose_circulant_is_non_negative(length_scale, frames):
    """The size returned is the first of the documented sequence whose explicit circulant has ``lam_min >=
    -NEGATIVE_TOLERANCE lam_max`` (dense eigvalsh), and the eigenvalues returned are that circulant's, clamped at 0
    (to 1e-12 lam_max: eigvalsh and the FFT each err by a few eps * M * lam_max).  ``l = 1`` is non-negative at the
    minimal size, the others grow."""
    kernel = rbf(length_scale)
    spectra = {size: circulant_spectrum(kernel, size) for size in expected_sizes(frames)}
    expected = next(size for size, spectrum in spectra.items() if spectrum[0] >= -NEGATIVE_TOLERANCE * spectrum[-1])
    eigenvalues, size = embedding_eigenvalues(kernel, frames)
    assert size == expected
    assert eigenvalues.dtype == torch.float64 and eigenvalues.shape == (size // 2 + 1,)
    dense = np.clip(spectra[size], 0.0, None)
    assert np.allclose(full_spectrum(eigenvalues, size), dense, rtol=0, atol=1e-12 * dense[-1])


# ------------------------------------------------------------------------------------------------ the lag-values path
def test_lag_values_give_the_minimal_embedding_of_those_values():
    """Lag values ``gamma(0..H-1)`` (a ``from_temporal`` GP's path) embed at ``M = 2(H - 1)`` with the eigenvalues of
    the explicit circulant of those values, the same as the kernel itself when that is non-negative at the minimal
    size (Matérn 1/2, l = 2, H = 24).  Kills reading ``H - 2`` lag values (``[: half - 1]``)."""
    kernel, frames = Matern(nu=0.5, ell=2.0), 24
    values = np.asarray(kernel(np.arange(frames)), dtype=np.float64)
    eigenvalues, size = embedding_eigenvalues(values, frames)
    assert size == 2 * (frames - 1)
    dense = circulant_spectrum(lambda lag: values[lag], size)
    assert dense[0] > 0
    assert np.allclose(full_spectrum(eigenvalues, size), dense, rtol=0, atol=1e-12 * dense[-1])
    from_kernel, kernel_size = embedding_eigenvalues(kernel, frames)
    assert kernel_size == size and torch.allclose(from_kernel, eigenvalues, rtol=0, atol=1e-12 * dense[-1])


def test_one_lag_value_is_a_one_frame_embedding():
    """``H = 1`` from its single lag value: the 1 x 1 circulant ``[gamma_0]`` (size 1, eigenvalue gamma_0), like the
    kernel path; and its samples have variance gamma_0 exactly (the map is ``sqrt(gamma_0)`` times the noise).
    Kills ``max(2 (H - 1), 2)`` on the lag-values path."""
    eigenvalues, size = embedding_eigenvalues(np.array([2.5]), 1)
    assert size == 1 and torch.equal(eigenvalues, torch.tensor([2.5], dtype=torch.float64))
    noise = torch.randn((3, 1, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    draws = sample_stationary(eigenvalues, size, 1, 6, torch.Generator().manual_seed(1))
    expected = torch.cat([noise[:, 0, 0], noise[:, 0, 1]]) * np.sqrt(2.5)
    assert torch.allclose(draws[:, 0], expected, rtol=1e-15, atol=0)


def test_the_zero_process_embeds_with_zero_eigenvalues_and_samples_zeros():
    """``gamma = 0`` (a degenerate but valid covariance): every eigenvalue is 0, which is non-negative (``0 >= -tol *
    0``), so it embeds at the minimal size and its draws are exactly 0.  Kills the strict ``low > -tol lam_max``."""
    frames = 6
    for lags in (np.zeros(frames), lambda lag: np.zeros(np.shape(lag))):  # lag values, a callable
        eigenvalues, size = embedding_eigenvalues(lags, frames)
        assert size == 2 * (frames - 1) and torch.equal(eigenvalues, torch.zeros(size // 2 + 1, dtype=torch.float64))
    draws = sample_stationary(eigenvalues, size, frames, 5, torch.Generator().manual_seed(2))
    assert torch.equal(draws, torch.zeros(5, frames, dtype=torch.float64))


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_the_rounding_tolerance_is_relative_to_lambda_max(scale):
    """The verdict is scale invariant: an embedding whose smallest eigenvalue is ``-5e-11 lam_max`` (inside the
    rounding tolerance ``1e-10 lam_max``) is accepted with that eigenvalue set to 0 for ``gamma`` scaled by 1e-4, 1 or
    1e4, and one at ``-0.25 lam_max`` is refused at every scale, the error reporting ``-0.25`` (``lam_min / lam_max``,
    not ``lam_min lam_max``).  Kills ``-tol / lam_max`` (at 1e4 it refuses -5e-7 < -1e-14) and ``low * largest``."""
    frames = 9
    spectrum = np.linspace(4.0, 0.5, frames)
    spectrum[-1] = -5e-11 * 4.0
    eigenvalues, size = embedding_eigenvalues(scale * lag_values_with_spectrum(spectrum), frames)
    expected = scale * np.clip(spectrum, 0.0, None)
    assert size == 16 and np.allclose(eigenvalues.numpy(), expected, rtol=0, atol=1e-14 * scale)
    assert float(eigenvalues[-1]) == 0.0
    spectrum[-1] = -1.0
    with pytest.raises(IndefiniteEmbeddingError, match=r"smallest eigenvalue -0\.25 of lambda_max"):
        embedding_eigenvalues(scale * lag_values_with_spectrum(spectrum), frames)


def test_float32_lag_values_give_float64_eigenvalues():
    """Float32 lag values (exactly representable in float64) are read as float64: the eigenvalues are float64 and
    those of the float64 values to 1e-14 lam_max (numpy 2 would keep a float32 FFT: error ~1e-7).  Kills the dropped
    ``dtype=np.float64``."""
    values = np.asarray(Matern(nu=0.5, ell=2.0)(np.arange(24)), dtype=np.float32)
    eigenvalues, size = embedding_eigenvalues(values, 24)
    exact, exact_size = embedding_eigenvalues(values.astype(np.float64), 24)
    assert size == exact_size and eigenvalues.dtype == torch.float64
    assert torch.allclose(eigenvalues, exact, rtol=0, atol=1e-14 * float(exact.max()))


# ------------------------------------------------------------------------------------------------ the random stream
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_a_draw_consumes_ceil_count_over_2_complex_normal_vectors(count):
    """``sample_stationary`` draws ``ceil(count / 2)`` complex normal vectors of length M (one batch here): the
    generator ends in the state of a fresh one that drew ``(ceil(count / 2), M, 2)`` normals, and the draws are the
    ``Re`` and ``Im`` of the transform of exactly those normals.  Kills ``(count + 2) // 2``."""
    eigenvalues, size = embedding_eigenvalues(Matern(nu=1.5, ell=3.0), 10)
    generator = torch.Generator().manual_seed(7)
    draws = sample_stationary(eigenvalues, size, 10, count, generator)
    reference = torch.Generator().manual_seed(7)
    pairs = -(-count // 2)
    noise = torch.view_as_complex(torch.randn((pairs, size, 2), generator=reference, dtype=torch.float64))
    assert torch.equal(generator.get_state(), reference.get_state())
    both = circulant.circulant_transform(noise, eigenvalues, size, 10)
    assert draws.shape == (count, 10) and torch.equal(draws, both[:count])  # one batch: all Re rows, then all Im


@pytest.mark.parametrize("budget_pairs, expected", [(3, [3, 3, 1]), (1, [1] * 7), (0.5, [1] * 7)])
def test_batches_are_the_largest_that_fit_the_work_space(monkeypatch, budget_pairs, expected):
    """Each batch of r complex noise vectors holds four complex128 arrays of length M (the noise, its weighted copy,
    their FFT, the real/imag split): ``64 M r`` bytes.  With the budget ``PAIRS_PER_BATCH_BYTES`` set to 3, 1 and 0.5
    pairs' worth, 13 draws (7 pairs) come in batches of the largest r that fits (at least 1).  Kills every change to
    the batch formula (16 * 4 * M read as 4 M, 17, 5 or 16 / 4, a floor of 2)."""
    eigenvalues, size = embedding_eigenvalues(Matern(nu=1.5, ell=3.0), 10)
    monkeypatch.setattr(circulant, "PAIRS_PER_BATCH_BYTES", budget_pairs * 64.0 * size)
    rows: list[int] = []
    transform = circulant.circulant_transform

    def recording(noise: torch.Tensor, *args: object) -> torch.Tensor:
        rows.append(int(noise.shape[0]))
        return transform(noise, *args)

    monkeypatch.setattr(circulant, "circulant_transform", recording)
    draws = sample_stationary(eigenvalues, size, 10, 13, torch.Generator().manual_seed(3))
    assert rows == expected and draws.shape == (13, 10) and bool(torch.isfinite(draws).all())


def test_seeded_draws_do_not_depend_on_the_default_dtype(float32_default):
    """With torch's default dtype float32 the noise is still drawn in float64: the same seed gives the same draws as
    the float64 stream (drawn here explicitly).  Kills ``torch.randn(..., dtype=None)`` and the dropped dtype."""
    eigenvalues, size = embedding_eigenvalues(Matern(nu=1.5, ell=3.0), 10)
    draws = sample_stationary(eigenvalues, size, 10, 4, torch.Generator().manual_seed(4))
    noise = torch.randn((2, size, 2), generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    both = circulant.circulant_transform(torch.view_as_complex(noise), eigenvalues, size, 10)
    assert draws.dtype == torch.float64 and torch.equal(draws, both)
