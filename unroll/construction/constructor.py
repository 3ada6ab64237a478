"""Hand-built weights: a generic ``Transformer`` whose block k performs gradient-descent step k.

This is this project's own derivation (docs/design.md §5), not necessarily the paper's construction; the
paper's text is not part of the repository.  One GD step on ``f(y) = 1/2 y^T C_{t,J} y - x^T y`` reads

    y_i <- y_i - eta_t alpha_t^2 Sigma sum_{|i-j|<=J} gamma_J(|i-j|) y_j - eta_t sigma_t^2 y_i + eta_t x_i.

Token layout (``unroll.construction.layout``): ``z_i = [ y_i | x_i | e_i | phi(t) | 1 ]`` (+ ``acc`` scratch in paper
mode), ``e_i = (cos(w i), sin(w i))``, so ``s_ij = e_i·e_j = c_m = cos(w m)`` for ``m = |i-j|``.  Every head is
windowed (``window = J``: lags > J are masked), so ``c_m`` only has to be strictly decreasing on the lags
``0..J+1`` the tents look at.  ``frame_frequency="window"`` (default) takes ``w = pi/W`` with
``W = min(H, J + 2)``; ``"sequence"`` takes ``w = pi/H`` (strictly decreasing on all lags, docs/design.md §5's
example, needed only if the window were removed).  The rational time map gives exactly
``phi(t) = [eta_t alpha_t^2, eta_t sigma_t^2, eta_t]`` (``eta_t = 1/(alpha_t^2 P + sigma_t^2)``,
``P = (max + min)/2`` of the eigenvalue products of Gamma_J and Sigma, i.e. ``eta_t = 2/(lambda_max +
lambda_min)`` of ``C_{t,J}``).

**Step schedules** (``steps``, docs/design.md §7).  ``"gd"``: every block takes the step ``eta_t`` above and
reads the same three features.  ``"chebyshev"``: block k takes ``eta_k(t) = 1/(alpha_t^2 P_k + sigma_t^2)``,
``P_k = P + Q cos theta_{o(k)}`` (``unroll.construction.gd.step_centers``: Chebyshev nodes in Leja order), still one
exact gradient step per block.  The rational time map then has one denominator per block (``time_groups = L``): the phi
slot holds ``3L`` features ``[eta_k alpha_t^2, eta_k sigma_t^2, eta_k]_{k<L}``, exact rational functions of
``[alpha_t^2, sigma_t^2, 1]`` for every t, and block k's heads (exact mode) or FFN (paper mode) read group k. Only the
phi slot and the heights change: the tents, values and read-out are those of GD.

**Looped** (``looped=True``, ``steps="gd"`` only): the generic ``Transformer``'s weight sharing, one block applied
L times; the GD blocks are identical anyway, so the iterates are the same with ``1/L`` of the block parameters.

**Tents.**  For a height ``c >= 0`` and slope ``K`` the three-ReLU tent

    T_m(s) = ReLU(c + K(s - c_m)) - 2 ReLU(K(s - c_m)) + ReLU(K(s - c_m) - c) = ReLU(c - K|s - c_m|)

equals ``c`` at ``s = c_m`` and 0 at every other lag as soon as ``K g >= c``, ``g`` the smallest gap
between consecutive ``c_k`` next to a used band (``g = 1 - cos(w) ~ w^2/2`` at lag 0).  Each
ReLU is one attention head: query ``[K e_i ; c(t) - K c_m]`` (the ``c(t)`` from the ``phi`` slot, the
constant from the ``1`` slot), key ``[e_j ; 1]``.  Band 0 needs one head ``ReLU(c + K(s - 1))`` (``s <= 1``).

**exact mode** (t-scalars by ReLU's positive homogeneity): band ``m >= 1``: three heads with height
``c = eta_t alpha_t^2`` and value ``-gamma_J(m) Sigma y_j`` (scaled 1, -2, 1); band 0: three one-sided heads of
heights ``eta_t alpha_t^2``, ``eta_t sigma_t^2``, ``eta_t`` with values ``-gamma_J(0) Sigma y_j``, ``-y_j``,
``+x_j``.  All write the y slot; the FFN is zero.  ``c_max = max(1, 1/min_k P_k)`` bounds every height for every
t (``max(1, 1/P)`` for GD), so ``K = slope_margin * c_max / g``: exact for every diffusion time up to rounding.
The weight norm ``B ~ K ~ 2 c_max W^2 / pi^2`` grows like ``(J+2)^2`` with the window frequency and like ``H^2``
with the sequence frequency; rounding errors scale with it (float32, and float64 at H in the thousands).

**paper mode** (t-scalar × vector products by an FFN): height-1 tents (``K = slope_margin / g``) write
``acc_i = Sigma sum_j gamma_J(|i-j|) y_j`` into a scratch slot; the FFN then forms
``y_i += -(eta alpha^2) acc_i - (eta sigma^2) y_i + eta x_i`` and clears ``acc``.  Each product ``c v`` is
``((c+v)^2 - (c-v)^2)/4`` with ``u^2`` replaced by its piecewise-linear interpolant ``q`` on ``N`` uniform
knots over ``[-R, R]`` (spacing ``h = 2R/(N-1)``), a sum of ReLUs.  Inside the range (``|c| + |v| <= R``)
``0 <= q(u) - u^2 <= h^2/4``, so each product is off by at most ``h^2/16``; outside, ``q`` continues
linearly and the error grows like ``(|u| - R)^2/4`` — choose ``R`` above ``max |c| + |v|`` over the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from unroll._validate import (
    InputTypeError,
    NonFiniteError,
    check_bool,
    check_diffusion_time,
    check_int,
    check_memory,
    check_positive,
)
from unroll.construction import gd
from unroll.construction.layout import TokenLayout
from unroll.model.transformer import Block, Transformer

__all__ = ["construct_unrolled", "UnrolledTransformer", "Construction", "MultiplierSpec"]

MODES = ("exact", "paper")
FRAME_FREQUENCIES = ("window", "sequence")
#: largest ``slope_margin``: the tents' rounding error grows in proportion to it (measured on a GP with H = 12,
#: J = 4, L = 10 in float64: net error 2e-15 at margin 1, 2e-12 at 1e3, 1.7e-9 at 1e6, 2e-6 at 1e9, 2e-3 at 1e12)
MAX_SLOPE_MARGIN = 1e6
#: largest ``paper_range`` R: the ReLU sum that forms ``u^2`` carries values of size ``R^2``, so rounding alone
#: adds about ``eps R^2`` (1e-4 in float64 at R = 1e6) to every product, whatever the number of knots
MAX_PAPER_RANGE = 1e6
#: parameter dtypes the construction can be returned in
DTYPES = (torch.float64, torch.float32, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class MultiplierSpec:
    """The FFN multiplication module of paper mode: ``c v ~ (q(c+v) - q(c-v))/4``.

    ``knots`` N uniform knots on ``[-range, range]``, spacing ``h``; ``product_error = h^2/16`` bounds
    ``|approx - c v|`` whenever ``|c| + |v| <= range``.
    """

    knots: int
    range: float
    spacing: float
    product_error: float
    neurons_per_product: int
    products_per_frame: int


@dataclass
class Construction:
    """What the constructor built and why (read by ``unroll.verify`` and ``theory.bounds``)."""

    gp: Any
    bands: int
    blocks: int
    taper: str | None
    mode: str
    gamma_truncated: torch.Tensor  # (J+1,) float64: gamma_J(m), m = 0..J
    lambda_min_gamma: float  # lambda_min(Gamma_J)
    lag_values: torch.Tensor  # (H,) float64: c_m = cos(w m)
    frequency: float  # w = pi/W, W = min(H, J+2) ("window") or H ("sequence")
    min_gap: float  # g: smallest gap of consecutive c_k next to a used band
    height_max: float  # c_max: largest tent height over all diffusion times
    tent_slope: float  # K
    product_min: float  # min eigenvalue product lam_i(Gamma_J) mu_a(Sigma)
    product_max: float
    step_center: float  # P = (product_max + product_min)/2; eta_t = 1/(alpha^2 P + sigma^2)
    layout: TokenLayout
    step_centers: torch.Tensor  # (L,) float64: P_k, eta_k(t) = 1/(alpha^2 P_k + sigma^2); all P for plain GD
    heads_per_band: dict[int, int] = field(default_factory=dict)
    multiplier: MultiplierSpec | None = None
    steps: str = "gd"  # step schedule, one of unroll.construction.gd.STEP_RULES
    looped: bool = False  # one shared block applied L times
    # softmax variant only (unroll.construction.softmax)
    softmax_beta: float | None = None  # inverse temperature beta
    kernel_mismatch: float | None = None  # max_m |gamma_vM(m) - gamma(m)|
    row_normaliser: float | None = None  # Nbar


class UnrolledTransformer(Transformer):
    """A :class:`Transformer` with constructed weights; its ``forward`` is the plain transformer forward."""

    def __init__(self, construction: Construction, **config: Any) -> None:
        super().__init__(**config)
        self.construction = construction

    def step_size(self, diffusion_time: Any) -> torch.Tensor:
        """``eta_t = 1 / (alpha_t^2 P + sigma_t^2) = 2/(lambda_max + lambda_min)`` of ``C_{t,J}`` (float64): the GD
        step, the centre of the Chebyshev schedule."""
        a2, s2 = gd.schedule(check_diffusion_time(diffusion_time))
        return 1.0 / (a2 * self.construction.step_center + s2)

    def step_sizes(self, diffusion_time: Any) -> torch.Tensor:
        """The step of each block, ``eta_k(t) = 1 / (alpha_t^2 P_k + sigma_t^2)``: shape ``t.shape + (L,)`` (float64).

        Constant for ``steps="gd"``; the Leja-ordered Chebyshev steps for ``steps="chebyshev"``.
        """
        a2, s2 = gd.schedule(check_diffusion_time(diffusion_time))
        return 1.0 / (a2[..., None] * self.construction.step_centers + s2[..., None])

    def iterates(self, x: Any, diffusion_time: Any) -> torch.Tensor:
        """GD iterates read from the network: ``(L+1, ..., H, d)``, ``y_0 = 0`` then ``-readout`` per block."""
        return -torch.stack(self.readouts(x, diffusion_time))

    def output_bound(self) -> float:
        """``R`` with ``||model(x, t)||_F <= R ||x||_F`` for every t, in exact arithmetic (exact mode):
        ``||y_L|| <= (1 + max |p_L|) ||y*_J||`` with ``max |p_L| <= 1`` on the spectrum (``rho^L`` for GD,
        ``2 rho_C^L / (1 + rho_C^(2L))`` for Chebyshev), ``||y*_J|| <= ||x|| / lambda_min(C_{t,J})`` and
        ``lambda_min(C_{t,J}) >= min(P_min, 1)``, so ``R = 2 / min(P_min, 1)`` for both schedules."""
        return 2.0 / min(self.construction.product_min, 1.0)

    def size(self) -> dict[str, Any]:
        """Class parameters: width D, blocks L, heads M, FFN width, largest weight norm B (spectral norm,
        the operator 2-norm of every weight matrix; ``B_entry`` the largest absolute entry), output bound R
        (``||model(x,t)||_F <= R ||x||_F``), heads per band, parameter count."""
        norms = self.max_weight_norm()
        return {
            "D": self.config["width"],
            "L": self.config["blocks"],
            "steps": self.construction.steps,
            "looped": self.construction.looped,
            "M": self.config["heads"],
            "ffn_width": self.config["ffn_width"],
            "B": norms["spectral"],
            "B_norm": "spectral (operator 2-norm) of each weight matrix",
            "B_entry": norms["entry"],
            "R": self.output_bound(),
            "heads_per_band": dict(self.construction.heads_per_band),
            "tent_slope": self.construction.tent_slope,
            "parameters": sum(p.numel() for p in self.parameters()),
        }


def _layout(dim: int, mode: str, time_groups: int = 1) -> TokenLayout:
    slots = [("y", dim), ("x", dim), ("e", 2), ("phi", 3 * time_groups), ("one", 1)]
    if mode == "paper":
        slots.append(("acc", dim))
    return TokenLayout(slots)


def _multiplier(knots: int, value_range: float) -> MultiplierSpec:
    spacing = 2.0 * value_range / (knots - 1)
    return MultiplierSpec(knots=knots, range=value_range, spacing=spacing, product_error=spacing**2 / 16.0,
                          neurons_per_product=2 * (knots - 2), products_per_frame=3)


class _HeadWriter:
    """Writes tent heads ``ReLU(K s + a phi_p + b)`` into one block's Q, K, V, W_O (no gradient)."""

    def __init__(self, block: Block, layout: TokenLayout, slope: float, phi_offset: int = 0) -> None:
        self.block, self.layout, self.slope, self.phi_offset = block, layout, slope, phi_offset
        self.next = 0
        e, one = layout["e"], layout.index("one")
        for weight in (block.query, block.key, block.value, block.output):
            weight.zero_()
        self.key_rows = [(0, e.start), (1, e.start + 1), (2, one)]

    def head(self, phi_index: int | None, phi_sign: float, constant: float, value: torch.Tensor,
             read: str, write: str) -> None:
        """Score ``K e_i·e_j + phi_sign * phi[phi_index](t) + constant``; value ``value @ z_j[read]``
        written to slot ``write``."""
        h, lay, b = self.next, self.layout, self.block
        self.next += 1
        e = lay["e"]
        b.query[h, 0, e.start] = self.slope
        b.query[h, 1, e.start + 1] = self.slope
        if phi_index is not None:
            b.query[h, 2, lay.index("phi", self.phi_offset + phi_index)] = phi_sign
        b.query[h, 2, lay.index("one")] = constant
        for row, column in self.key_rows:
            b.key[h, row, column] = 1.0
        b.value[h, :, lay[read]] = value
        b.output[h, lay[write], :] = torch.eye(value.shape[0], dtype=value.dtype)


def _write_paper_ffn(block: Block, layout: TokenLayout, spec: MultiplierSpec, phi_offset: int = 0) -> None:
    """FFN: ``y += -phi0*acc - phi1*y + phi2*x`` (approximate products), ``acc -= acc`` (exact); ``phi_j`` is
    entry ``phi_offset + j`` of the phi slot."""
    for weight in (block.ffn_in, block.ffn_in_bias, block.ffn_out, block.ffn_out_bias):
        weight.zero_()
    dim = layout.size("y")
    h, knots, value_range = spec.spacing, spec.knots, spec.range
    interior = [-value_range + k * h for k in range(1, knots - 1)]
    slope0 = -2.0 * value_range + h  # slope of q on the first segment
    neuron = 0
    # products: (phi index, operand slot, sign of the product in the update)
    products = [(0, "acc", -1.0), (1, "y", -1.0), (2, "x", +1.0)]
    for a in range(dim):
        y_index = layout.index("y", a)
        for phi_index, slot, sign in products:
            c_index, v_index = layout.index("phi", phi_offset + phi_index), layout.index(slot, a)
            for knot in interior:
                for v_sign in (+1.0, -1.0):  # ReLU(c + v - u_k) and ReLU(c - v - u_k)
                    block.ffn_in[neuron, c_index] = 1.0
                    block.ffn_in[neuron, v_index] = v_sign
                    block.ffn_in_bias[neuron] = -knot
                    block.ffn_out[y_index, neuron] = sign * v_sign * h / 2.0
                    neuron += 1
        # linear parts: ReLU(v) - ReLU(-v) = v for v in acc_a, y_a, x_a
        for slot in ("acc", "y", "x"):
            v_index = layout.index(slot, a)
            for v_sign in (+1.0, -1.0):
                block.ffn_in[neuron, v_index] = v_sign
                if slot == "acc":
                    block.ffn_out[layout.index("acc", a), neuron] = -v_sign
                    block.ffn_out[y_index, neuron] = -v_sign * slope0 / 2.0
                elif slot == "y":
                    block.ffn_out[y_index, neuron] = -v_sign * slope0 / 2.0
                else:
                    block.ffn_out[y_index, neuron] = v_sign * slope0 / 2.0
                neuron += 1
    assert neuron == block.ffn_in.shape[0]


def construct_unrolled(gp: Any, blocks: int, bands: int, mode: str = "exact", taper: str | None = None, *,
                       steps: str = "gd", looped: bool = False, paper_knots: int = 257, paper_range: float = 16.0,
                       slope_margin: float = 1.0, frame_frequency: str = "window",
                       dtype: torch.dtype = torch.float64) -> UnrolledTransformer:
    """Build the transformer whose block k performs step k of the unrolled solver on the score objective with
    ``Gamma_J``.

    Args:
        gp: a ``GaussianProcess`` (or ``(temporal, spatial)`` factors, see ``unroll.construction.gd.factors``).
        blocks: L >= 1 (one gradient step per block).
        bands: J, ``0 <= J <= H - 1`` lags kept.
        mode: ``"exact"`` or ``"paper"`` (module docstring).
        taper: ``None`` (plain cut) or ``"triangular"``.
        steps: the step schedule, ``"gd"`` (constant ``eta_t``) or ``"chebyshev"`` (module docstring).
        looped: one block's weights applied L times (weight sharing); needs ``steps="gd"``.
        paper_knots: N >= 3 knots of the paper-mode multiplier.
        paper_range: the multiplier's interval ``[-R, R]``, ``0 < R <= MAX_PAPER_RANGE = 1e6``.
        slope_margin: factor on the smallest tent slope that separates the lags, ``1 <= slope_margin <=
            MAX_SLOPE_MARGIN = 1e6`` (the rounding error grows in proportion to it).
        frame_frequency: ``"window"`` (``w = pi/min(H, J+2)``: tent slope independent of H) or
            ``"sequence"`` (``w = pi/H``: slope ~ H^2; module docstring).
        dtype: parameter dtype of the returned model (one of ``DTYPES``).
    Raises:
        ValueError naming the parameter (TypeError for a value of the wrong type); ``unroll.construction.gd.
        IndefiniteTruncationError`` if Gamma_J is not positive definite (use ``taper="triangular"`` or a larger J);
        ``NonFiniteError`` if the weights overflow (eigenvalue products of Gamma_J and Sigma near the float range).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if steps not in gd.STEP_RULES:
        raise ValueError(f"steps must be one of {gd.STEP_RULES}, got {steps!r}")
    check_bool("looped", looped)
    if dtype not in DTYPES:
        raise InputTypeError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if frame_frequency not in FRAME_FREQUENCIES:
        raise ValueError(f"frame_frequency must be one of {FRAME_FREQUENCIES}, got {frame_frequency!r}")
    if looped and steps != "gd":
        raise ValueError(f"looped=True applies one block L times, so it needs a constant step schedule "
                         f"(steps='gd'), got steps={steps!r}")
    factors = gd.factors(gp)
    frames, dim = factors.frames, factors.dim
    if frames < 2:
        raise ValueError(f"frames must be >= 2 for the construction, got H={frames}")
    blocks = check_int("blocks", blocks, minimum=1)
    bands = check_int("bands", bands, minimum=0, maximum=frames - 1)
    if taper not in gd.TAPERS:
        raise ValueError(f"taper must be None or 'triangular', got {taper!r}")
    paper_knots = check_int("paper_knots", paper_knots, minimum=3)
    paper_range = check_positive("paper_range", paper_range, upper=MAX_PAPER_RANGE)
    slope_margin = check_positive("slope_margin", slope_margin, upper=MAX_SLOPE_MARGIN)
    if slope_margin < 1.0:
        raise ValueError(f"slope_margin must satisfy 1 <= slope_margin <= {MAX_SLOPE_MARGIN:g}, got {slope_margin}")
    _check_model_memory(dim, blocks, bands, mode, paper_knots, looped, 1 if steps == "gd" else blocks)

    lambda_min_gamma = gd.check_truncation(factors.gamma, bands, taper, on_indefinite="raise")
    gamma_truncated = gd.truncate(factors.gamma, bands, taper)
    product_min, product_max = gd.product_extremes(factors, bands, taper)
    step_center = 0.5 * (product_min + product_max)
    step_centers = gd.step_centers(factors, blocks, bands, taper, steps)
    time_groups = 1 if steps == "gd" else blocks

    frequency = math.pi / frequency_period(frames, bands, frame_frequency)
    lags = torch.arange(frames, dtype=torch.float64)
    lag_values = torch.cos(frequency * lags)
    gaps = lag_values[:-1] - lag_values[1:]  # gap k: between c_k and c_{k+1}
    min_gap = float(gaps[: min(bands + 1, frames - 1)].min())
    height_max = max(1.0, 1.0 / float(step_centers.min())) if mode == "exact" else 1.0
    slope = slope_margin * height_max / min_gap

    layout = _layout(dim, mode, time_groups)
    if mode == "exact":
        heads, ffn_width, multiplier = 3 + 3 * bands, 1, None
        heads_per_band = {0: 3, **{m: 3 for m in range(1, bands + 1)}}
    else:
        multiplier = _multiplier(paper_knots, paper_range)
        heads = 1 + 3 * bands
        ffn_width = dim * (multiplier.products_per_frame * multiplier.neurons_per_product + 6)
        heads_per_band = {0: 1, **{m: 3 for m in range(1, bands + 1)}}
    config = dict(dim=dim, width=layout.width, blocks=blocks, heads=heads, head_dim=3, value_dim=dim,
                  ffn_width=ffn_width, attention="relu", window=bands, qk_scale=1.0, frequencies=1,
                  frame_scale=math.pi / frequency, time_embedding="rational", time_features=3 * time_groups,
                  time_groups=time_groups, looped=looped, layer_norm=False, seed=0)
    construction = Construction(
        gp=gp, bands=bands, blocks=blocks, taper=taper, mode=mode,
        gamma_truncated=gamma_truncated[: bands + 1].clone(), lambda_min_gamma=lambda_min_gamma,
        lag_values=lag_values, frequency=frequency, min_gap=min_gap, height_max=height_max,
        tent_slope=slope, product_min=product_min, product_max=product_max, step_center=step_center,
        layout=layout, heads_per_band=heads_per_band, multiplier=multiplier, steps=steps,
        step_centers=step_centers, looped=looped,
    )
    model = UnrolledTransformer(construction, **config).to(torch.float64)
    _write_weights(model, construction, factors.spatial)
    _check_weights(model)
    return model.to(dtype)


def _check_model_memory(dim: int, blocks: int, bands: int, mode: str, knots: int, looped: bool,
                        time_groups: int) -> None:
    """``ValueError`` (saying how much) if the float64 weights of the construction would not fit in memory."""
    width = _layout(dim, mode, time_groups).width
    heads = 3 * bands + 3
    ffn_width = dim * (3 * 2 * (knots - 2) + 6) if mode == "paper" else 1
    per_block = heads * (2 * 3 * width + 2 * dim * width) + 2 * ffn_width * width + ffn_width + width
    stored = 1 if looped else blocks
    # float64 while written, and a second copy during the conversion to ``dtype``
    check_memory(f"construct_unrolled(blocks={blocks}, bands={bands}, mode={mode!r})", 2 * 8.0 * per_block * stored)


def _check_weights(model: UnrolledTransformer) -> None:
    """Every written weight must be finite: a tent slope or height past the float range raises, not NaN later."""
    for name, parameter in model.named_parameters():
        if not bool(torch.isfinite(parameter).all()):
            c = model.construction
            raise NonFiniteError(
                f"construct_unrolled produced non-finite weights ({name}): tent slope K = {c.tent_slope:.3g}, "
                f"largest height c_max = {c.height_max:.3g} (1/P for the smallest eigenvalue product "
                f"P_min = {c.product_min:.3g} of Gamma_J and Sigma); rescale Sigma")


def frequency_period(frames: int, bands: int, frame_frequency: str = "window") -> int:
    """``W`` in the frame frequency ``w = pi/W``: ``min(H, J + 2)`` for ``"window"``, ``H`` for ``"sequence"``."""
    return min(frames, bands + 2) if frame_frequency == "window" else frames


@torch.no_grad()
def _write_weights(model: UnrolledTransformer, construction: Construction, spatial: torch.Tensor) -> None:
    layout, dim = construction.layout, model.config["dim"]
    groups = model.config["time_groups"]
    eye = torch.eye(dim, dtype=torch.float64)
    # input map: x -> x slot, e(i) -> e slot, phi(t) -> phi slot, bias -> constant slot
    for weight in (model.input_x, model.input_frame, model.input_time, model.input_bias):
        weight.zero_()
    model.input_x[layout["x"], :] = eye
    model.input_frame[layout["e"], :] = torch.eye(2, dtype=torch.float64)
    model.input_time[layout["phi"], :] = torch.eye(3 * groups, dtype=torch.float64)
    model.input_bias[layout.index("one")] = 1.0
    model.frame_frequencies.copy_(torch.tensor([construction.frequency], dtype=torch.float64))
    # group g of the time features: [a2, s2, 1] / (P_g a2 + s2) = [eta_g a2, eta_g s2, eta_g]
    model.time_weight.copy_(torch.eye(3, dtype=torch.float64).repeat(groups, 1))
    centers = construction.step_centers[:groups].to(torch.float64)
    model.time_norm.copy_(torch.stack([centers, torch.ones_like(centers), torch.zeros_like(centers)], dim=-1))
    # read-out: score = -y
    model.readout_weight.zero_()
    model.readout_bias.zero_()
    model.readout_weight[:, layout["y"]] = -eye

    blocks = model.distinct_blocks()
    written = blocks if groups > 1 else blocks[:1]
    for group, block in enumerate(written):
        _write_block(block, construction, spatial, phi_offset=3 * group)
    assert model.config["heads"] == 3 * construction.bands + (3 if construction.mode == "exact" else 1)
    for block in blocks[len(written):]:  # GD: every block is the same step, copy block 0
        for target, source in zip(block.parameters(), blocks[0].parameters(), strict=True):
            target.copy_(source)


def _write_block(block: Block, construction: Construction, spatial: torch.Tensor, phi_offset: int) -> None:
    """One block: the tent heads (and in paper mode the FFN) reading the time features at ``phi_offset``."""
    layout = construction.layout
    eye = torch.eye(spatial.shape[0], dtype=torch.float64)
    slope, c = construction.tent_slope, construction.lag_values
    gamma = construction.gamma_truncated
    writer = _HeadWriter(block, layout, slope, phi_offset)
    if construction.mode == "exact":
        # band 0: one-sided heads ReLU(c(t) + K(s - 1)) with heights eta a^2, eta s^2, eta
        writer.head(0, 1.0, -slope, -float(gamma[0]) * spatial, "y", "y")
        writer.head(1, 1.0, -slope, -eye, "y", "y")
        writer.head(2, 1.0, -slope, eye, "x", "y")
        for m in range(1, construction.bands + 1):
            value = -float(gamma[m]) * spatial
            shift = -slope * float(c[m])
            writer.head(0, 1.0, shift, value, "y", "y")
            writer.head(None, 0.0, shift, -2.0 * value, "y", "y")
            writer.head(0, -1.0, shift, value, "y", "y")
        for weight in (block.ffn_in, block.ffn_in_bias, block.ffn_out, block.ffn_out_bias):
            weight.zero_()
    else:
        writer.head(None, 0.0, 1.0 - slope, float(gamma[0]) * spatial, "y", "acc")
        for m in range(1, construction.bands + 1):
            value = float(gamma[m]) * spatial
            shift = -slope * float(c[m])
            writer.head(None, 0.0, 1.0 + shift, value, "y", "acc")
            writer.head(None, 0.0, shift, -2.0 * value, "y", "acc")
            writer.head(None, 0.0, shift - 1.0, value, "y", "acc")
        if construction.multiplier is None:
            raise ValueError("a paper-mode construction needs its FFN multiplier, got multiplier=None")
        _write_paper_ffn(block, layout, construction.multiplier, phi_offset)
    assert writer.next == block.query.shape[0]
