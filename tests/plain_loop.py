"""Test oracles shared by the construction tests: a plain dense gradient-descent loop in extended precision, the
tolerance the theory module's rounding bound gives a constructed network, and the Leja order of the Chebyshev
steps by its definition (``leja_order``).

``plain_gd_loop`` knows nothing of ``unroll``: ``C_J = a kron(Gamma_J, Sigma) + s I`` (``a = e^-t``,
``s = 1 - e^-t``) as a dense ``(H d, H d)`` matrix, ``eta = 2/(lambda_max + lambda_min)`` from its float64
eigenvalues, then ``y <- y - eta (C_J y - x)`` from ``y_0 = 0`` in ``numpy.longdouble`` (64-bit mantissa on x86),
so its own rounding is far below float64's and the network's deviation from it is the network's alone.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch

import theory
from theory.bounds import BOUNDS, PART_BOUNDS


def truncated_toeplitz(gamma: np.ndarray, bands: int, taper: str | None = None) -> np.ndarray:
    """``Gamma_J (H, H)``: lags ``m <= J`` kept, times ``(1 - m/(J+1))`` for the triangular taper."""
    lags = np.arange(gamma.size, dtype=np.float64)
    weights = (lags <= bands).astype(np.float64)
    if taper == "triangular":
        weights *= np.clip(1.0 - lags / (bands + 1), 0.0, None)
    return scipy.linalg.toeplitz(np.asarray(gamma, dtype=np.float64) * weights)


def dense_truncated_covariance(gamma: np.ndarray, spatial: np.ndarray, t: float, bands: int,
                               taper: str | None = None) -> np.ndarray:
    """``C_{t,J} (H d, H d)`` for ``vec`` of ``(H, d)`` row by row (frame-major)."""
    size = gamma.size * spatial.shape[0]
    return math.exp(-t) * np.kron(truncated_toeplitz(gamma, bands, taper), spatial) - math.expm1(-t) * np.eye(size)


def plain_gd_loop(gamma: np.ndarray, spatial: np.ndarray, x: np.ndarray, t: float, blocks: int, bands: int,
                  taper: str | None = None) -> np.ndarray:
    """Iterates ``y_0 .. y_L`` ``(L+1, batch, H, d)`` (as float64) of GD on ``C_{t,J}``, ``x (batch, H, d)``."""
    covariance = dense_truncated_covariance(gamma, spatial, t, bands, taper)
    eigenvalues = np.linalg.eigvalsh(covariance)
    eta = np.longdouble(2.0) / (np.longdouble(eigenvalues[-1]) + np.longdouble(eigenvalues[0]))
    matrix = covariance.astype(np.longdouble)
    rhs = x.reshape(x.shape[0], -1).astype(np.longdouble)
    y = np.zeros_like(rhs)
    iterates = [y.copy()]
    for _ in range(blocks):
        y = y - eta * (y @ matrix.T - rhs)
        iterates.append(y.copy())
    return np.stack(iterates).astype(np.float64).reshape((blocks + 1,) + x.shape)


def network_rounding_bounds(gp, model, t: float, x: torch.Tensor) -> list[float]:
    """The theory module's bound on ``|y_net,k - y_k| / |y*|`` after each block ``k = 0..L`` of this model and input
    (``net_exact``, GD steps: block k's bound is the bound of the first k blocks, ``L = k``; 0 at ``k = 0``)."""
    config = theory.Configuration.from_model(gp, model, t)
    if config.steps != "gd" or config.mode != "exact":
        raise ValueError("network_rounding_bounds: exact mode with GD steps only")
    y_star = gp.precision_apply(x, t)
    values = theory.symbol_values(config, x_ratio=float(x.norm() / y_star.norm()))
    bound = BOUNDS[PART_BOUNDS["gd"][1]]
    return [0.0] + [bound.evaluate({**values, "L": k}) for k in range(1, config.blocks + 1)]


def network_deviation(model, x: torch.Tensor, t: float, reference: np.ndarray, solution_norm: float) -> list[float]:
    """``|net_k - y_k|_F / |y*|_F`` for ``k = 0..L`` (Frobenius over the batch)."""
    with torch.no_grad():
        network = model.iterates(x, t).numpy()
    return [float(np.linalg.norm(network[k] - reference[k])) / solution_norm for k in range(reference.shape[0])]


def leja_order(nodes) -> list[int]:
    """Leja order by its definition: start at the largest ``|node|``, then each next node maximises the product of
    its distances to the chosen ones; ties (equal up to a relative 1e-9: Chebyshev nodes are symmetric) go to the
    first index."""
    def first_best(values, candidates):
        best = max(values)
        return candidates[next(i for i, v in enumerate(values) if v >= best * (1 - 1e-9))]

    order = [first_best([abs(v) for v in nodes], list(range(len(nodes))))]
    while len(order) < len(nodes):
        rest = [k for k in range(len(nodes)) if k not in order]
        order.append(first_best([math.prod(abs(nodes[k] - nodes[i]) for i in order) for k in rest], rest))
    return order


def chebyshev_leja_order(blocks: int) -> list[int]:
    """:func:`leja_order` of the ``blocks`` Chebyshev nodes ``cos((2k + 1) pi / (2 blocks))`` (it starts at k = 0)."""
    return leja_order([math.cos((2 * k + 1) * math.pi / (2 * blocks)) for k in range(blocks)])
