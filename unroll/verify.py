"""Verification of a (constructed) score transformer against the closed form (docs/design.md §6).

For one GP, diffusion time ``t`` and a batch ``x (batch, H, d)`` (default: samples of the noised data
``x_t``), with ``y* = C_t^{-1} x`` (exact), ``y*_J = C_{t,J}^{-1} x`` (truncated fixed point), ``y_L`` the
L-th iterate of the construction's step schedule (``unroll.gd.unrolled_iterates``, the loop oracle: plain GD or
Chebyshev steps) and ``y_net = -model(x, t)``, every part is relative to ``||y*||`` (Frobenius over the whole batch):

    gd    = ||y_L - y*_J|| / ||y*||      L steps vs their own fixed point
    trunc = ||y*_J - y*|| / ||y*||      truncated vs full temporal covariance
    net   = ||y_net - y_L|| / ||y*||    network vs the GD iterate it unrolls
    total = ||y_net - y*|| / ||y*||     <= gd + trunc + net (triangle inequality)

``certificate`` = max over blocks k of ``||net_k - y_k|| / ||y_k||`` (``net_k`` read from the network after
block k; at k = 0 the gap ``||net_0|| / ||y*||``).  Bounds are attached by ``theory.bounds.attach_bounds``.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from unroll import gd
from unroll._validate import check_diffusion_time, check_finite, check_int, check_sample_shape

__all__ = ["verify", "VerificationReport", "ErrorPart"]

PART_MEANINGS = {
    "gd": "L steps on Gamma_J vs their fixed point",
    "trunc": "fixed point with Gamma_J vs with Gamma",
    "net": "network vs the iterate it unrolls",
    "total": "network vs closed-form score",
}


@dataclass
class ErrorPart:
    """One error part: ``measured`` relative error and its theoretical ``bound`` (``None`` if none)."""

    measured: float
    bound: float | None = None
    meaning: str = ""


@dataclass
class VerificationReport:
    """Result of :func:`verify` (all errors relative to ``solution_norm = ||y*||_F``)."""

    parts: dict[str, ErrorPart]
    certificate: float
    block_gaps: list[float]
    diffusion_time: float
    bands: int
    blocks: int
    taper: str | None
    mode: str
    kappa: float
    contraction: float  # per-step factor of GD (for Chebyshev steps: rho_C, the geometric mean rate)
    step_size: float  # eta_t of GD (the centre of the Chebyshev schedule)
    lambda_min: float  # of C_{t,J}
    lambda_max: float
    lambda_min_gamma: float  # of Gamma_J
    solution_norm: float
    batch: int
    dtype: str
    size: dict[str, Any]
    config: dict[str, Any]
    description: str = ""
    multiplier_peak: float | None = None  # paper mode: max |c| + |v| fed to the multiplier
    steps: str = "gd"  # step schedule of the construction (unroll.gd.STEP_RULES)
    other_schedule_gd_bound: dict[str, float] = field(default_factory=dict)  # {"gd" or "chebyshev": E_gd bound}
    construction: Any = field(default=None, repr=False)
    x: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (without the tensors and the construction object)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("construction", "x", "parts")}
        out["parts"] = {name: asdict(part) for name, part in self.parts.items()}
        return out

    def table(self) -> str:
        """A plain-text table: each error part measured and bound, the certificate, model size."""
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.3e}"

        lines = [self.description,
                 f"{'part':<7}{'measured':>12}{'bound':>12}  meaning"]
        for name, part in self.parts.items():
            flag = "  BOUND VIOLATED" if part.bound is not None and part.measured > part.bound else ""
            lines.append(f"{name:<7}{fmt(part.measured):>12}{fmt(part.bound):>12}  {part.meaning}{flag}")
        lines.append(f"certificate  max_k |net_k - y_k| / |y_k| over {self.blocks} blocks ({self.steps} steps): "
                     f"{self.certificate:.3e}")
        for name, value in self.other_schedule_gd_bound.items():
            lines.append(f"gd part bound with {name} steps at the same L: {value:.3e}")
        rate = "rho_C" if self.steps == "chebyshev" else "contraction"
        lines.append(f"kappa(C_tJ) = {self.kappa:.4g}   {rate} = {self.contraction:.4f}   "
                     f"step size = {self.step_size:.4g}   lambda_min(C_tJ) = {self.lambda_min:.4g}   "
                     f"lambda_min(Gamma_J) = {self.lambda_min_gamma:.4g}   ||y*|| = {self.solution_norm:.4g}")
        s = self.size
        bands = s.get("heads_per_band", {})
        band_text = ", ".join(f"{m}:{k}" for m, k in list(bands.items())[:3]) + (" ..." if len(bands) > 3 else "")
        lines.append(f"model  D = {s.get('D')}  L = {s.get('L')}  M = {s.get('M')} heads  FFN width = "
                     f"{s.get('ffn_width')}  B = {s.get('B', math.nan):.4g} (spectral norm; max entry "
                     f"{s.get('B_entry', math.nan):.4g})  R = {s.get('R', math.nan):.4g}  "
                     f"heads per band {band_text}")
        if self.multiplier_peak is not None:
            spec = self.construction.multiplier
            where = ("inside" if self.multiplier_peak <= spec.range else
                     "OUTSIDE the range: linear extrapolation, error ~ (|u| - R)^2/4; raise --range")
            lines.append(f"multiplier (FFN products): max |c|+|v| = {self.multiplier_peak:.3g}, range R = "
                         f"{spec.range:g}, {spec.knots} knots, product error <= {spec.product_error:.2e} "
                         f"inside the range -> {where}")
        return "\n".join(lines)


def _multiplier_peak(model: Any, x: torch.Tensor, diffusion_time: float) -> float:
    """Paper mode: the largest ``|c| + |v|`` over the products the FFNs form in this run."""
    layout = model.construction.layout
    x_in, t, _ = model._prepare(x, diffusion_time)
    kind, window, scale = model.config["attention"], model.config["window"], model.config["qk_scale"]
    with torch.no_grad():
        z = model.embed(x_in, t)
        peak = 0.0
        for block in model.block_sequence():
            z = z + block.attention(z, kind, window, scale)[0]
            parts = layout.decode(z.to(torch.float64))
            c = parts["phi"].abs().amax()
            v = max(float(parts[name].abs().max()) for name in ("acc", "y", "x"))
            peak = max(peak, float(c) + v)
            z = z + block.ffn(z)
    return peak


def _norm(tensor: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(tensor.to(torch.float64)))


def verify(gp: Any, model: Any, diffusion_time: float, x: torch.Tensor | None = None,
           generator: torch.Generator | None = None, *, batch: int = 8, bands: int | None = None,
           taper: str | None = None, attach_bounds: bool = True) -> VerificationReport:
    """Measure the score error of ``model`` at one diffusion time, split into gd / trunc / net / total.

    Args:
        gp: the ``GaussianProcess``.
        model: a ``Transformer``; for an ``UnrolledTransformer`` bands and taper come from its construction
            (else from ``bands`` (default ``H - 1``) and ``taper``).
        diffusion_time: a positive scalar t.
        x: ``(batch, H, d)``; default: ``batch`` draws of the noised data at t, from ``generator``
            (default seed 0).
        attach_bounds: call ``theory.bounds.attach_bounds`` (``False`` for constructions it has no bounds
            for, e.g. the softmax variant).
    Returns:
        a :class:`VerificationReport`; bounds are filled by ``theory.bounds.attach_bounds``.
    """
    t_tensor = check_diffusion_time(diffusion_time)
    if t_tensor.ndim != 0:
        raise ValueError(f"diffusion_time must be a scalar for verify, got shape {tuple(t_tensor.shape)}")
    t = float(t_tensor)
    construction = getattr(model, "construction", None)
    if construction is not None:
        bands, taper, mode = construction.bands, construction.taper, construction.mode
        steps = getattr(construction, "steps", "gd")
    else:
        bands = gp.frames - 1 if bands is None else check_int("bands", bands, minimum=0, maximum=gp.frames - 1)
        mode, steps = "trained", "gd"
    blocks = int(model.config["blocks"])
    if x is None:
        batch = check_int("batch", batch, minimum=1)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        x = gp.noised(gp.sample(batch, generator=generator), t, generator=generator)
    x = torch.as_tensor(x).to(torch.float64)
    check_sample_shape("x", x, gp.frames, gp.dim)
    check_finite("x", x)
    if x.ndim == 2:
        x = x.unsqueeze(0)

    lambda_min_gamma = gd.check_truncation(gd.factors(gp).gamma, bands, taper, on_indefinite="raise")
    y_star = gp.precision_apply(x, t)
    y_trunc = gd.fixed_point(gp, x, t, bands, taper)
    oracle = gd.unrolled_iterates(gp, x, t, blocks, bands, taper, steps=steps)
    with torch.no_grad():
        model_dtype = next(model.parameters()).dtype
        readouts = [r.to(torch.float64) for r in model.readouts(x.to(model_dtype), t)]
    net = [-r for r in readouts]
    y_net = net[-1]

    scale = _norm(y_star)
    gaps = [_norm(net[0]) / scale]
    for k in range(1, blocks + 1):
        gaps.append(_norm(net[k] - oracle[k]) / max(_norm(oracle[k]), 1e-300))
    parts = {
        "gd": ErrorPart(_norm(oracle[-1] - y_trunc) / scale, meaning=PART_MEANINGS["gd"]),
        "trunc": ErrorPart(_norm(y_trunc - y_star) / scale, meaning=PART_MEANINGS["trunc"]),
        "net": ErrorPart(_norm(y_net - oracle[-1]) / scale, meaning=PART_MEANINGS["net"]),
        "total": ErrorPart(_norm(y_net - y_star) / scale, meaning=PART_MEANINGS["total"]),
    }
    lam_min, lam_max = gd.spectrum(gp, t, bands, taper)
    kappa = float(lam_max / lam_min)
    rate = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1) if steps == "chebyshev" else float(gd.contraction(kappa))
    size = model.size() if hasattr(model, "size") else {"D": model.config["width"], "L": blocks,
                                                       "M": model.config["heads"],
                                                       "ffn_width": model.config["ffn_width"],
                                                       "B": model.max_weight_norm()["spectral"],
                                                       "B_entry": model.max_weight_norm()["entry"]}
    kernel = getattr(gp, "kernel", None)
    description = (f"unroll verify: {kernel!r} H={gp.frames} d={gp.dim} J={bands} L={blocks} t={t:g} "
                   f"mode={mode} steps={steps} taper={taper} dtype={str(model_dtype).replace('torch.', '')} "
                   f"batch={x.shape[0]}")
    report = VerificationReport(
        parts=parts, certificate=max(gaps), block_gaps=gaps, diffusion_time=t, bands=bands, blocks=blocks,
        taper=taper, mode=mode, kappa=kappa, contraction=rate,
        step_size=float(gd.step_size(gp, t, bands, taper)), lambda_min=float(lam_min),
        lambda_max=float(lam_max), lambda_min_gamma=lambda_min_gamma, solution_norm=scale,
        batch=int(x.shape[0]), dtype=str(model_dtype).replace("torch.", ""), size=size,
        config=dict(model.config), description=description, construction=construction, x=x, steps=steps,
    )
    if construction is not None and construction.multiplier is not None:
        report.multiplier_peak = _multiplier_peak(model, x.to(model_dtype), t)
    if attach_bounds:
        from theory.bounds import attach_bounds as attach

        attach(report, gp, model, t)
    return report


class _CallableModule(types.ModuleType):
    """``unroll.verify`` names both this module and its function: importing the sub-module makes
    ``unroll.verify`` the module, so the module itself forwards calls to :func:`verify`."""

    def __call__(self, *args: Any, **kwargs: Any) -> VerificationReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
