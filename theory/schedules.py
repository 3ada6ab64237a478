"""Step schedules of the unrolled solver: the residual polynomials and their largest sub-products.

For steps ``eta_0..eta_{L-1}`` the error of the iterates from ``y_0 = 0`` is ``y_k - y*_J = -p_k(C_J) y*_J`` with
``p_k(lam) = prod_{j<k} (1 - eta_j lam)``, and a perturbation ``delta`` added at step ``k`` reaches step ``m``
multiplied by the sub-product ``prod_{k<j<m} (1 - eta_j C_J)``.  Rounding bounds need three numbers per schedule,
maxima over an interval ``I`` that contains the spectrum of ``C_J``:

    A_pre = max_k      max_{lam in I} |prod_{j<k} (1 - eta_j lam)|        (|y_k| <= (1 + A_pre) |y*_J|)
    A_suf = max_k      max_{lam in I} |prod_{k<=j<L} (1 - eta_j lam)|     (a perturbation at step k, seen at L)
    A_all = max_{k<=m} max_{lam in I} |prod_{k<=j<m} (1 - eta_j lam)|     (any range: the Gronwall factor)

For gradient descent with ``eta = 2/(lambda_max + lambda_min)`` every factor has modulus ``<= rho < 1`` on
``[lambda_min, lambda_max]``, so all three are 1 (the empty product).  For the Chebyshev steps they depend on the
order: a single step with ``eta ~ 1/lambda_min`` already has ``|1 - eta lambda_max| ~ kappa - 1``, so ``A_all``
grows with kappa whatever the order, while the Leja order keeps ``A_pre`` and ``A_suf`` moderate (natural order:
they grow like ``kappa^(L/2)``).

``A`` is certified, not sampled: each sub-product is a polynomial of degree ``n <= L`` in ``lam``, and for the ``N``
Chebyshev points of the first kind on ``I`` (Ehlich & Zeller 1964; Rivlin, *Chebyshev Polynomials*, 1990)

    max_{lam in I} |q(lam)| <= max_nodes |q| / cos(n pi / (2N))        (n < N),

so with ``N = 8L`` nodes the maximum over the nodes, times ``1/cos(pi/16) ~ 1.02``, bounds the maximum over ``I``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["NODES_PER_DEGREE", "Amplification", "subproduct_bounds", "chebyshev_centers"]

#: nodes per polynomial degree of the certified maximum (``N = NODES_PER_DEGREE * L``)
NODES_PER_DEGREE = 8


@dataclass(frozen=True)
class Amplification:
    """Certified ``A_pre``, ``A_suf``, ``A_all`` of a schedule (module docstring); ``inf`` where a product overflows."""

    prefix: float
    suffix: float
    any: float

    @classmethod
    def contracting(cls) -> Amplification:
        """Every factor a contraction (gradient descent): all three are 1."""
        return cls(1.0, 1.0, 1.0)


def chebyshev_centers(product_min: float, product_max: float, blocks: int) -> np.ndarray:
    """``P_k = P + Q cos theta_{o(k)}`` (``unroll.construction.gd.step_centers``'s formula, in its Leja order), ``(L,)``
    float64."""
    from unroll.construction.gd import chebyshev_order

    order = chebyshev_order(blocks).numpy()
    theta = (2 * order + 1) * math.pi / (2 * blocks)
    return 0.5 * (product_max + product_min) + 0.5 * (product_max - product_min) * np.cos(theta)


def subproduct_bounds(step_sizes: np.ndarray, lam_lo: float, lam_hi: float) -> Amplification:
    """Certified :class:`Amplification` of the steps ``step_sizes (L,)`` on the interval ``[lam_lo, lam_hi]``.

    Each maximum is taken over ``N = 8L`` Chebyshev points of the interval and multiplied by ``1/cos(pi/16)``
    (module docstring); the empty product counts, so every number is ``>= 1``.
    """
    steps = np.asarray(step_sizes, dtype=np.float64).reshape(-1)
    blocks = steps.size
    if blocks == 0:
        return Amplification.contracting()
    if not lam_hi >= lam_lo > 0:
        raise ValueError(f"need 0 < lam_lo <= lam_hi, got [{lam_lo}, {lam_hi}]")
    count = NODES_PER_DEGREE * blocks
    nodes = np.cos((2 * np.arange(1, count + 1) - 1) * math.pi / (2 * count))
    lam = 0.5 * (lam_hi + lam_lo) + 0.5 * (lam_hi - lam_lo) * nodes
    factors = 1.0 - steps[:, None] * lam[None, :]  # (L, N)
    prefix = suffix = largest = 1.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(blocks):
            partial = np.abs(np.cumprod(factors[start:], axis=0))  # ranges [start, start + 1 .. L)
            if not np.all(np.isfinite(partial)):
                return Amplification(math.inf, math.inf, math.inf)
            largest = max(largest, float(partial.max()))
            suffix = max(suffix, float(partial[-1].max()))
            if start == 0:
                prefix = max(prefix, float(partial.max()))
    certify = 1.0 / math.cos(math.pi / (2 * NODES_PER_DEGREE))
    return Amplification(prefix * certify, suffix * certify, largest * certify)
