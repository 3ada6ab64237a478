"""Softmax variant: one softmax head per block carries a Gaussian-type temporal kernel (docs/design.md §5).

This project's own construction (not necessarily the paper's).  Frame embeddings have constant norm,
``e_i = (cos(w i), sin(w i))``, ``w = pi/H``, and the head's score is ``beta e_i·e_j = beta cos(w (i-j))``, so

    P_ij = softmax_j(beta e_i·e_j) = gamma_vM(|i-j|) / N_i,    gamma_vM(m) = exp(beta (cos(w m) - 1)),
    N_i = sum_j gamma_vM(|i-j|)       (the row normaliser; N_i depends on i near the sequence ends).

``gamma_vM`` (a von Mises / wrapped-Gaussian kernel; ``gamma_vM(m) ~ exp(-(m/ell)^2)`` for
``beta = 2/(w ell)^2`` and ``m << H``) is positive definite on the integers (``exp(beta cos theta) = sum_n
I_n(beta) e^{i n theta}`` with ``I_n(beta) > 0``).  The value matrix multiplies by the boundary-free
normaliser ``Nbar = sum_{|m| <= H-1} gamma_vM(m)``, so the head writes

    acc_i = (Nbar / N_i) Sigma sum_j gamma_vM(|i-j|) y_j

into a scratch slot: exact for a row that sees the whole kernel, too large by the factor ``Nbar/N_i``
(up to ~2 at the ends when the kernel is short) near the boundary.  That row-normalisation error is
measured and reported (:func:`measure_softmax`), not hidden.  The FFN is the paper-mode multiplication
module of ``unroll.construction.constructor`` (``y += -(eta alpha^2) acc - (eta sigma^2) y + eta x``, products to
``h^2/16``), so the block is a GD step for every diffusion time up to the multiplier and boundary errors.
If the GP's kernel is not ``gamma_vM`` itself, ``beta`` is fitted at lag 1 and the kernel mismatch is
reported too; use :func:`von_mises_kernel` to isolate the boundary error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from unroll._validate import check_int, check_positive
from unroll.construction import gd
from unroll.construction.constructor import (
    Construction,
    MultiplierSpec,
    UnrolledTransformer,
    _layout,
    _multiplier,
    _write_paper_ffn,
)
from unroll.data.kernels import LagFunction

__all__ = ["von_mises_kernel", "construct_softmax", "boundary_factors", "measure_softmax", "SoftmaxErrors"]


def von_mises_kernel(ell: float, frames: int) -> LagFunction:
    """``gamma_vM(m) = exp(beta (cos(pi m / H) - 1))`` with ``beta = 2 / ((pi/H) ell)^2`` (~ ``exp(-(m/ell)^2)``
    for ``m << H``): the kernel one softmax head represents exactly up to row normalisation."""
    ell = check_positive("ell", ell)
    frames = check_int("frames", frames, minimum=2)
    frequency = math.pi / frames
    beta = 2.0 / (frequency * ell) ** 2
    return LagFunction(lambda lags: np.exp(beta * (np.cos(frequency * np.asarray(lags)) - 1.0)),
                       name="von-mises", nu=2.0, ell=ell)


def _normalisers(beta: float, frequency: float, frames: int) -> tuple[torch.Tensor, float]:
    """``(N_i for i = 0..H-1, Nbar)`` of ``gamma_vM``."""
    lags = torch.arange(frames, dtype=torch.float64)
    kernel = torch.exp(beta * (torch.cos(frequency * lags) - 1.0))
    index = torch.arange(frames)
    rows = kernel[(index[:, None] - index[None, :]).abs()].sum(dim=1)
    full = float(kernel[0] + 2.0 * kernel[1:].sum())
    return rows, full


def _softmax_fields(construction: Construction) -> tuple[float, float]:
    """``(softmax_beta, kernel_mismatch)`` of a softmax construction; ValueError for another construction."""
    beta, mismatch = construction.softmax_beta, construction.kernel_mismatch
    if construction.mode != "softmax" or beta is None or mismatch is None:
        raise ValueError(f"model must be a softmax construction (unroll.construction.softmax.construct_softmax), "
                         f"got a construction of mode {construction.mode!r}")
    return beta, mismatch


def _softmax_beta(construction: Construction) -> float:
    return _softmax_fields(construction)[0]


def boundary_factors(model: UnrolledTransformer) -> torch.Tensor:
    """``Nbar / N_i - 1`` per frame ``(H,)``: the relative over-weighting of row i by the softmax head."""
    c = model.construction
    rows, full = _normalisers(_softmax_beta(c), c.frequency, c.gp.frames)
    return full / rows - 1.0


def construct_softmax(gp: Any, blocks: int, *, beta: float | None = None, paper_knots: int = 257,
                      paper_range: float = 16.0, dtype: torch.dtype = torch.float64) -> UnrolledTransformer:
    """Build an L-block softmax-attention transformer (one head per block) unrolling GD on the full Gamma.

    Args:
        gp: a ``GaussianProcess`` with a Gaussian-type temporal kernel.
        blocks: L >= 1.
        beta: softmax inverse temperature; default: fitted so that ``gamma_vM(1) = gamma(1)``.
        paper_knots: knots of the FFN multiplier (``unroll.construction.constructor`` paper mode).
        paper_range: the FFN multiplier's interval ``[-R, R]`` (``unroll.construction.constructor`` paper mode).
    Returns:
        an ``UnrolledTransformer`` (``attention="softmax"``, ``heads=1``); ``.construction.mode ==
        "softmax"`` with extra attributes ``softmax_beta``, ``kernel_mismatch`` (max_m |gamma_vM - gamma|),
        ``row_normaliser`` (Nbar).
    """
    factors = gd.factors(gp)
    frames, dim = factors.frames, factors.dim
    if frames < 2:
        raise ValueError(f"frames must be >= 2 for the construction, got H={frames}")
    blocks = check_int("blocks", blocks, minimum=1)
    paper_knots = check_int("paper_knots", paper_knots, minimum=3)
    paper_range = check_positive("paper_range", paper_range)
    frequency = math.pi / frames
    gamma = factors.gamma
    if beta is None:
        if not 0.0 < float(gamma[1]) < 1.0:
            raise ValueError(f"a softmax head needs 0 < gamma(1) < 1 to fit beta, got gamma(1) = {float(gamma[1])}")
        beta = -math.log(float(gamma[1])) / (1.0 - math.cos(frequency))
    beta = check_positive("beta", beta)
    lags = torch.arange(frames, dtype=torch.float64)
    kernel = torch.exp(beta * (torch.cos(frequency * lags) - 1.0))
    _, full = _normalisers(beta, frequency, frames)
    bands = frames - 1
    lambda_min_gamma = gd.check_truncation(gamma, bands, None, on_indefinite="raise")
    products = gd.eigen_products(factors)
    product_min, product_max = float(products.min()), float(products.max())
    layout = _layout(dim, "paper")
    multiplier = _multiplier(paper_knots, paper_range)
    ffn_width = dim * (multiplier.products_per_frame * multiplier.neurons_per_product + 6)
    config = dict(dim=dim, width=layout.width, blocks=blocks, heads=1, head_dim=2, value_dim=dim,
                  ffn_width=ffn_width, attention="softmax", window=None, qk_scale=1.0, frequencies=1,
                  frame_scale=float(frames), time_embedding="rational", time_features=3, layer_norm=False,
                  seed=0)
    construction = Construction(
        gp=gp, bands=bands, blocks=blocks, taper=None, mode="softmax", gamma_truncated=gamma.clone(),
        lambda_min_gamma=lambda_min_gamma, lag_values=torch.cos(frequency * lags), frequency=frequency,
        min_gap=float("nan"), height_max=1.0, tent_slope=float("nan"), product_min=product_min,
        product_max=product_max, step_center=0.5 * (product_min + product_max), layout=layout,
        step_centers=torch.full((blocks,), 0.5 * (product_min + product_max), dtype=torch.float64),
        heads_per_band={}, multiplier=multiplier, softmax_beta=beta,
        kernel_mismatch=float((kernel - gamma).abs().max()), row_normaliser=full,
    )
    model = UnrolledTransformer(construction, **config).to(torch.float64)
    _write_softmax_weights(model, construction, multiplier, factors.spatial, full)
    return model.to(dtype)


@torch.no_grad()
def _write_softmax_weights(model: UnrolledTransformer, construction: Construction, multiplier: MultiplierSpec,
                           spatial: torch.Tensor, value_scale: float) -> None:
    layout, dim = construction.layout, model.config["dim"]
    eye = torch.eye(dim, dtype=torch.float64)
    for weight in (model.input_x, model.input_frame, model.input_time, model.input_bias, model.readout_weight,
                   model.readout_bias):
        weight.zero_()
    model.input_x[layout["x"], :] = eye
    model.input_frame[layout["e"], :] = torch.eye(2, dtype=torch.float64)
    model.input_time[layout["phi"], :] = torch.eye(3, dtype=torch.float64)
    model.input_bias[layout.index("one")] = 1.0
    model.frame_frequencies.copy_(torch.tensor([construction.frequency], dtype=torch.float64))
    model.time_weight.copy_(torch.eye(3, dtype=torch.float64))
    model.time_norm.copy_(torch.tensor([[construction.step_center, 1.0, 0.0]], dtype=torch.float64))
    model.readout_weight[:, layout["y"]] = -eye
    block, *others = model.distinct_blocks()
    for weight in (block.query, block.key, block.value, block.output):
        weight.zero_()
    e = layout["e"]
    block.query[0, :, e] = _softmax_beta(construction) * torch.eye(2, dtype=torch.float64)
    block.key[0, :, e] = torch.eye(2, dtype=torch.float64)
    block.value[0, :, layout["y"]] = value_scale * spatial
    block.output[0, layout["acc"], :] = eye
    _write_paper_ffn(block, layout, multiplier)
    for other in others:
        for target, source in zip(other.parameters(), block.parameters(), strict=True):
            target.copy_(source)


@dataclass
class SoftmaxErrors:
    """Errors of the softmax construction at one diffusion time (relative Frobenius norms).

    - ``boundary``: one attention layer, ``||acc - Sigma Gamma_vM y|| / ||Sigma Gamma_vM y||`` on the GD
      iterate ``y_1`` (row normalisation only);
    - ``boundary_factor_max``: ``max_i Nbar/N_i - 1`` (at the ends), ``boundary_factor_middle``: at the
      middle frame;
    - ``step``: one block vs the exact GD step on the GP's Gamma, from ``y_1``, relative to ``||y_2||``;
    - ``kernel_mismatch``: ``max_m |gamma_vM(m) - gamma(m)|``;
    - ``certificate``: ``unroll.verify``'s block-by-block gap against exact GD (everything included);
    - ``certificate_row_normalised``: the same gap against GD with the row-normalised operator
      ``diag(Nbar/N_i) Gamma_vM`` (what the head computes), i.e. the multiplier error alone.
    """

    boundary: float
    boundary_factor_max: float
    boundary_factor_middle: float
    step: float
    kernel_mismatch: float
    certificate: float
    certificate_row_normalised: float
    report: Any = None


def _row_normalised_gd(model: UnrolledTransformer, x: torch.Tensor, t: float, steps: int) -> torch.Tensor:
    """GD with ``(alpha^2 D Gamma_vM y Sigma + sigma^2 y - x)``, ``D = diag(Nbar/N_i)`` (float64, dense in H)."""
    c = model.construction
    frames = c.gp.frames
    lags = torch.arange(frames, dtype=torch.float64)
    kernel = torch.exp(_softmax_beta(c) * (torch.cos(c.frequency * lags) - 1.0))
    index = torch.arange(frames)
    gamma_vm = kernel[(index[:, None] - index[None, :]).abs()]
    operator = (1.0 + boundary_factors(model))[:, None] * gamma_vm
    a2, s2 = (float(v) for v in gd.schedule(t))
    eta = float(model.step_size(t))
    spatial = gd.factors(c.gp).spatial
    y = torch.zeros_like(x)
    out = [y]
    for _ in range(steps):
        y = y - eta * (a2 * operator @ y @ spatial + s2 * y - x)
        out.append(y)
    return torch.stack(out)


def measure_softmax(gp: Any, model: UnrolledTransformer, diffusion_time: float, x: torch.Tensor | None = None,
                    generator: torch.Generator | None = None, batch: int = 8) -> SoftmaxErrors:
    """Measure the boundary (row-normalisation) error of a softmax construction; see :class:`SoftmaxErrors`."""
    from unroll.verification import verify

    # theory.bounds covers the exact and paper constructions only: no bounds attached here
    report = verify(gp, model, diffusion_time, x=x, generator=generator, batch=batch, attach_bounds=False)
    assert report.x is not None  # verify records the batch it measured
    x = report.x
    t = float(diffusion_time)
    c = model.construction
    layout = c.layout
    dtype = next(model.parameters()).dtype
    oracle = gd.gd_iterates(gp, x, t, 2, c.bands)
    y1 = oracle[1]
    with torch.no_grad():
        x_in, t_in, _ = model._prepare(x.to(dtype), t)
        z = model.embed(x_in, t_in)
        z[..., layout["y"]] = y1.to(dtype)
        block = model.distinct_blocks()[0]
        z = z + block.attention(z, "softmax", None, 1.0)[0]
        acc = z[..., layout["acc"]].to(torch.float64)
        z = z + block.ffn(z)
        y2_net = z[..., layout["y"]].to(torch.float64)
    frames = gp.frames
    lags = torch.arange(frames, dtype=torch.float64)
    kernel = torch.exp(_softmax_beta(c) * (torch.cos(c.frequency * lags) - 1.0))
    index = torch.arange(frames)
    exact_acc = kernel[(index[:, None] - index[None, :]).abs()] @ y1 @ gd.factors(gp).spatial
    factors = boundary_factors(model)
    row_gd = _row_normalised_gd(model, x, t, model.config["blocks"])
    with torch.no_grad():
        net = [-r.to(torch.float64) for r in model.readouts(x.to(dtype), t)]
    gaps = [float((net[k] - row_gd[k]).norm() / row_gd[k].norm()) for k in range(1, len(net))]
    return SoftmaxErrors(
        boundary=float((acc - exact_acc).norm() / exact_acc.norm()),
        boundary_factor_max=float(factors.max()), boundary_factor_middle=float(factors[frames // 2]),
        step=float((y2_net - oracle[2]).norm() / oracle[2].norm()), kernel_mismatch=_softmax_fields(c)[1],
        certificate=report.certificate, certificate_row_normalised=max(gaps), report=report,
    )
