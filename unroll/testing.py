"""Hypothesis strategies for property tests, in the style of ``hypothesis.extra.numpy``.

* :func:`kernels` — temporal kernels of the given families with ``nu``, ``ell`` (and, for the damped cosine,
  ``period``) in given ranges;
* :func:`spatial_covariances` — symmetric positive-definite ``Sigma (d, d)`` (torch float64) of every scale
  (eigenvalues in ``[1e-3, 1e3]`` by default) with a bounded condition number;
* :func:`configurations` — whole configurations (GP, bands J, blocks L, taper, diffusion time, mode) with
  their ``theory`` assumption table; ``satisfying_assumptions=True`` draws only configurations meeting
  the required assumptions, ``False`` draws any and reports which fail (``drawn.failed``).

A property test in a few lines — every measured error part of the constructed network below its bound::

    from hypothesis import given, settings
    import theory
    from unroll.testing import configurations

    @settings(max_examples=30, deadline=None)
    @given(configurations(families=["matern", "polynomial"], nu=(0.5, 3.0), frames=(2, 10)))
    def test_parts_below_bounds(drawn):
        report = drawn.verify()                      # constructs the model and runs unroll.verify
        for name, result in theory.check_report(report).items():
            assert result.holds, (name, result, drawn)

And the failure region — any configuration, a verdict and no crash::

    @given(configurations(satisfying_assumptions=False))
    def test_verdict(drawn):
        outcome = drawn.run()                        # report, or the reason it could not be built
        assert outcome.report is not None or outcome.failed
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

try:
    from hypothesis import strategies as st
except ImportError as error:  # hypothesis is an optional dependency: only this module needs it
    raise ImportError("unroll.testing needs hypothesis: pip install 'unroll-gp[testing]' "
                      f"(hypothesis could not be imported: {error})") from error

__all__ = [
    "kernels",
    "spatial_covariances",
    "configurations",
    "DrawnConfiguration",
    "Outcome",
    "REQUIRED_ASSUMPTIONS",
    "FAMILIES",
    "SPATIAL_EIGENVALUES",
]

FAMILIES = ("gamma-exponential", "matern", "polynomial", "logarithmic", "damped-cosine")
#: assumptions a "satisfying" configuration must meet (the bounds need them)
REQUIRED_ASSUMPTIONS = ("gamma_pd", "truncated_pd", "gd_converges", "lags_separated", "spatial_bounded",
                        "time_after_t0")


def _range(name: str, value: tuple[float, float] | float, *, positive: bool = True) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        value = (float(value), float(value))
    try:
        low, high = (float(value[0]), float(value[1]))
    except (TypeError, IndexError, ValueError):
        raise ValueError(f"{name} must be a number or a pair (low, high), got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high or (positive and low <= 0):
        raise ValueError(f"{name} must satisfy {'0 < ' if positive else ''}low <= high < inf, got {value!r}")
    return low, high


def _int_range(name: str, value: tuple[int, int] | int, minimum: int) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        value = (int(value), int(value))
    low, high = int(value[0]), int(value[1])
    if low < minimum or low > high:
        raise ValueError(f"{name} must satisfy {minimum} <= low <= high, got {value!r}")
    return low, high


def _families(families: Sequence[str] | str | None) -> list[str]:
    if families is None:
        return list(FAMILIES)
    chosen = [families] if isinstance(families, str) else list(families)
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown or not chosen:
        raise ValueError(f"families must be a non-empty subset of {list(FAMILIES)}, got {families!r}")
    return chosen


def _log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    if low == high:
        return st.just(low)
    return st.floats(math.log(low), math.log(high)).map(math.exp)


@st.composite
def kernels(draw: st.DrawFn, families: Sequence[str] | str | None = None, nu: tuple[float, float] = (0.3, 3.0),
            ell: tuple[float, float] = (0.5, 8.0), period: tuple[float, float] = (2.0, 16.0)) -> Any:
    """A kernel of one of ``families`` with ``nu`` in ``nu`` (clipped to ``(0, 2]`` for the
    gamma-exponential family) and ``ell`` log-uniform in ``ell``; the damped cosine (no ``nu``) gets a
    ``period`` log-uniform in ``period``."""
    from unroll.data.kernels import kernel_from_name

    chosen = _families(families)
    nu_low, nu_high = _range("nu", nu)
    ell_low, ell_high = _range("ell", ell)
    period_low, period_high = _range("period", period)
    family = draw(st.sampled_from(chosen))
    if family == "damped-cosine":
        return kernel_from_name(family, ell=draw(_log_uniform(ell_low, ell_high)),
                                period=draw(_log_uniform(period_low, period_high)))
    low, high = nu_low, nu_high
    if family == "gamma-exponential":
        high = min(high, 2.0)
        low = min(low, high)
    nu_value = draw(st.just(low) if low == high else st.floats(low, high))
    return kernel_from_name(family, nu=nu_value, ell=draw(_log_uniform(ell_low, ell_high)))


#: eigenvalue range of the drawn spatial covariances: every scale, so that the eigenvalue products of Gamma_J and
#: Sigma fall below 1 as often as above (the constructor's tent heights c_max = max(1, 1/P) change branch there)
SPATIAL_EIGENVALUES = (1e-3, 1e3)


@st.composite
def spatial_covariances(draw: st.DrawFn, dim: int | tuple[int, int] = (1, 4), max_condition: float = 10.0,
                        eigenvalues: tuple[float, float] = SPATIAL_EIGENVALUES) -> torch.Tensor:
    """``Sigma = Q diag(mu) Q^T`` (float64 ``(d, d)``): ``Q`` orthogonal from a drawn Gaussian matrix (a random
    rotation), ``mu`` log-uniform inside ``eigenvalues = (low, high)`` with ``kappa(Sigma) <= max_condition``.

    ``mu_min`` is log-uniform in ``[low, max(low, high / max_condition)]`` (every scale), the other eigenvalues
    log-uniform in ``[mu_min, min(high, mu_min max_condition)]``.  ``eigenvalues=(1, 1)`` with
    ``max_condition=1`` gives ``Sigma = I``.
    """
    low, high = _int_range("dim", dim, 1)
    if not (math.isfinite(max_condition) and max_condition >= 1):
        raise ValueError(f"max_condition must satisfy 1 <= max_condition < inf, got {max_condition!r}")
    mu_low, mu_high = _range("eigenvalues", eigenvalues)
    d = draw(st.integers(low, high))
    entries = draw(st.lists(st.floats(-1.0, 1.0), min_size=d * d, max_size=d * d))
    matrix = np.asarray(entries, dtype=np.float64).reshape(d, d) + 2.0 * np.eye(d)  # nonsingular
    q, _ = np.linalg.qr(matrix)
    smallest = draw(_log_uniform(mu_low, max(mu_low, mu_high / max_condition)))
    largest = min(mu_high, smallest * max_condition)
    rest = draw(st.lists(_log_uniform(smallest, largest) if largest > smallest else st.just(smallest),
                         min_size=d - 1, max_size=d - 1))
    mu = np.asarray([smallest, *rest])
    sigma = (q * mu) @ q.T
    return torch.from_numpy(0.5 * (sigma + sigma.T))


@dataclass
class Outcome:
    """What happened to one configuration: a verify ``report``, or the ``error`` that stopped it, with the
    assumption verdicts ``failed``."""

    report: Any
    error: str | None
    failed: list[str]


@dataclass
class DrawnConfiguration:
    """A drawn configuration: the GP and the construction parameters, plus ``theory`` objects."""

    gp: Any
    bands: int
    blocks: int
    taper: str | None
    diffusion_time: float
    mode: str
    batch: int = 2
    paper_knots: int = 65
    steps: str = "gd"
    config: Any = field(default=None, repr=False)
    assumptions: Any = field(default=None, repr=False)

    @property
    def failed(self) -> list[str]:
        return self.assumptions.failed

    def build(self, dtype: torch.dtype = torch.float64) -> Any:
        from unroll.construction.constructor import construct_unrolled

        return construct_unrolled(self.gp, blocks=self.blocks, bands=self.bands, mode=self.mode, taper=self.taper,
                                  steps=self.steps, paper_knots=self.paper_knots, dtype=dtype)

    def verify(self, dtype: torch.dtype = torch.float64, seed: int = 0) -> Any:
        """Construct the model and return ``unroll.verify``'s report (bounds attached)."""
        from unroll.verification import verify

        return verify(self.gp, self.build(dtype), self.diffusion_time,
                      generator=torch.Generator().manual_seed(seed), batch=self.batch)

    def run(self, dtype: torch.dtype = torch.float64, seed: int = 0) -> Outcome:
        """Like :meth:`verify`, but a configuration the constructor refuses (``ValueError``, e.g. an
        indefinite Gamma_J) gives an :class:`Outcome` with the error message instead of raising."""
        try:
            return Outcome(self.verify(dtype, seed), None, self.failed)
        except ValueError as error:
            return Outcome(None, str(error), self.failed)

    def __repr__(self) -> str:
        return (f"DrawnConfiguration({self.gp!r}, J={self.bands}, L={self.blocks}, taper={self.taper}, "
                f"t={self.diffusion_time:.4g}, mode={self.mode}, steps={self.steps}, failed={self.failed})")


@st.composite
def configurations(draw: st.DrawFn, families: Sequence[str] | str | None = None,
                   nu: tuple[float, float] = (0.3, 3.0), ell: tuple[float, float] = (0.5, 8.0),
                   frames: int | tuple[int, int] = (2, 12), dim: int | tuple[int, int] = (1, 3),
                   blocks: int | tuple[int, int] = (1, 12), bands: int | tuple[int, int] | None = None,
                   diffusion_time: tuple[float, float] = (0.02, 3.0),
                   tapers: Sequence[str | None] = (None, "triangular"), modes: Sequence[str] = ("exact",),
                   max_condition: float = 10.0, t0: float = 1e-3,
                   satisfying_assumptions: bool = True,
                   required: Sequence[str] = REQUIRED_ASSUMPTIONS,
                   period: tuple[float, float] = (2.0, 16.0),
                   steps: Sequence[str] = ("gd",),
                   spatial_eigenvalues: tuple[float, float] = SPATIAL_EIGENVALUES) -> DrawnConfiguration:
    """A whole configuration.  ``bands=None`` draws ``J`` in ``[0, H-1]``; ``period`` is the damped cosine's
    (see :func:`kernels`); ``steps`` the step schedules to draw from (``unroll.construction.gd.STEP_RULES``);
    ``spatial_eigenvalues`` and ``max_condition`` those of Sigma (see :func:`spatial_covariances`).

    ``satisfying_assumptions=True``: only configurations meeting every assumption in ``required``
    (a plain cut that is indefinite is redrawn with the triangular taper when allowed, then filtered);
    ``False``: any configuration; ``drawn.failed`` lists the assumptions that fail.
    """
    import theory
    from unroll.data.gp import GaussianProcess

    kernel = draw(kernels(families, nu, ell, period))
    h_low, h_high = _int_range("frames", frames, 2)
    frames_value = draw(st.integers(h_low, h_high))
    sigma = draw(spatial_covariances(dim, max_condition, spatial_eigenvalues))
    if bands is None:
        bands_value = draw(st.integers(0, frames_value - 1))
    else:
        b_low, b_high = _int_range("bands", bands, 0)
        bands_value = min(draw(st.integers(b_low, b_high)), frames_value - 1)
    l_low, l_high = _int_range("blocks", blocks, 1)
    blocks_value = draw(st.integers(l_low, l_high))
    t_low, t_high = _range("diffusion_time", diffusion_time)
    t_value = draw(_log_uniform(t_low, t_high))
    taper = draw(st.sampled_from(list(tapers)))
    mode = draw(st.sampled_from(list(modes)))
    unknown = [s for s in steps if s not in ("gd", "chebyshev")]
    if not steps or unknown:
        raise ValueError(f"steps must be a non-empty subset of ('gd', 'chebyshev'), got {tuple(steps)!r}")
    schedule = draw(st.sampled_from(list(steps)))
    gp = GaussianProcess(kernel, frames_value, sigma)

    def make(taper_choice: str | None) -> DrawnConfiguration:
        config = theory.Configuration.from_gp(gp, bands=bands_value, blocks=blocks_value,
                                              diffusion_time=t_value, taper=taper_choice, mode=mode,
                                              t0=t0, max_condition=max_condition, steps=schedule)
        return DrawnConfiguration(gp, bands_value, blocks_value, taper_choice, t_value, mode, steps=schedule,
                                  config=config, assumptions=theory.check_assumptions(config))

    drawn = make(taper)
    if satisfying_assumptions:
        if not drawn.assumptions.holds(*required) and taper is None and "triangular" in tapers:
            drawn = make("triangular")
        from hypothesis import assume

        assume(drawn.assumptions.holds(*required))
    return drawn
