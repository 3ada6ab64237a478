"""Verification of a (constructed) score transformer against the closed form (docs/design.md §6).

For one GP, diffusion time ``t`` and a batch ``x (batch, H, d)`` (default: samples of the noised data
``x_t``), with ``y* = C_t^{-1} x`` (exact), ``y*_J = C_{t,J}^{-1} x`` (truncated fixed point), ``y_L`` the
L-th iterate of the construction's step schedule (``unroll.construction.gd.unrolled_iterates``, the loop oracle: plain
GD or Chebyshev steps) and ``y_net = -model(x, t)``, every part is relative to ``||y*||`` (Frobenius over the whole
batch):

    gd    = ||y_L - y*_J|| / ||y*||      L steps vs their own fixed point
    trunc = ||y*_J - y*|| / ||y*||      truncated vs full temporal covariance
    net   = ||y_net - y_L|| / ||y*||    network vs the GD iterate it unrolls
    total = ||y_net - y*|| / ||y*||     <= gd + trunc + net (triangle inequality)

``certificate`` = max over blocks k of ``||net_k - y_k|| / ||y_k||`` (``net_k`` read from the network after
block k; at k = 0 the gap ``||net_0|| / ||y*||``).  Bounds are attached by ``theory.bounds.attach_bounds``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from unroll._validate import (
    InputTypeError,
    check_bool,
    check_diffusion_time,
    check_finite,
    check_generator,
    check_int,
    check_sample_shape,
    to_real_tensor,
)
from unroll.construction import gd

__all__ = ["verify", "check_model_gp", "VerificationReport", "ErrorPart"]

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

    @property
    def failed(self) -> bool:
        """A NaN or infinite measurement (with or without a bound), or a measurement above its bound."""
        return not math.isfinite(self.measured) or (self.bound is not None and self.measured > self.bound)

    def flag(self) -> str:
        """What the report table prints after the part: ``""`` or why it failed."""
        if not math.isfinite(self.measured):
            return "  NOT FINITE"
        return "  BOUND VIOLATED" if self.failed else ""


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
    steps: str = "gd"  # step schedule of the construction (unroll.construction.gd.STEP_RULES)
    other_schedule_gd_bound: dict[str, float] = field(default_factory=dict)  # {"gd" or "chebyshev": E_gd bound}
    construction: Any = field(default=None, repr=False)
    x: torch.Tensor | None = field(default=None, repr=False)

    @property
    def failures(self) -> list[str]:
        """The parts that failed: a NaN or infinite measurement, or one above its bound (``ErrorPart.failed``);
        a non-finite certificate counts as the part ``"certificate"``."""
        failed = [name for name, part in self.parts.items() if part.failed]
        return failed + ([] if math.isfinite(self.certificate) else ["certificate"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (without the tensors and the construction object)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("construction", "x", "parts")}
        out["parts"] = {name: {**asdict(part), "failed": part.failed} for name, part in self.parts.items()}
        out["failures"] = self.failures
        return out

    def table(self) -> str:
        """A plain-text table: each error part measured and bound, the certificate, model size."""
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.3e}"

        lines = [self.description,
                 f"{'part':<7}{'measured':>12}{'bound':>12}  meaning"]
        for name, part in self.parts.items():
            lines.append(f"{name:<7}{fmt(part.measured):>12}{fmt(part.bound):>12}  {part.meaning}{part.flag()}")
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
    """Frobenius norm in float64, scaled by the largest entry so that neither huge nor tiny entries over- or
    underflow in the sum of squares."""
    tensor = tensor.to(torch.float64)
    largest = float(tensor.abs().max()) if tensor.numel() else 0.0
    if largest == 0.0 or not math.isfinite(largest):
        return largest
    return largest * float(torch.linalg.vector_norm(tensor / largest))


def check_model_gp(gp: Any, model: Any) -> None:
    """Raise ``ValueError`` unless ``model`` was built for ``gp``.

    A constructed model records the GP it was built for (``model.construction.gp``); the check compares what its
    weights depend on: H, d, the lag values of Gamma (so the kernel and its parameters on these frames) and Sigma,
    each to ``1e-12`` of its largest entry.  A model without a construction (a trained ``Transformer``) records
    no GP: only its frame dimension d is checked.
    """
    construction = getattr(model, "construction", None)
    if construction is None:
        dim = int(model.config["dim"])
        if dim != gp.dim:
            raise ValueError(f"the model takes frames of dimension d = {dim}, the GP has d = {gp.dim}")
        return
    built = construction.gp
    if built is gp:
        return
    ours, theirs = gd.factors(built), gd.factors(gp)
    differences = []
    if ours.frames != theirs.frames:
        differences.append(f"frames H ({ours.frames} vs {theirs.frames})")
    if ours.dim != theirs.dim:
        differences.append(f"dimension d ({ours.dim} vs {theirs.dim})")
    if not differences:
        for name, mine, given in (("Gamma (kernel or its parameters)", ours.gamma, theirs.gamma),
                                  ("Sigma", ours.spatial, theirs.spatial)):
            gap = float((mine - given).abs().max())
            if gap > 1e-12 * max(float(mine.abs().max()), float(given.abs().max())):
                differences.append(f"{name} (max |difference| {gap:.3g})")
    if differences:
        raise ValueError(f"the model was built for {built!r}, not for the given {gp!r}: {', '.join(differences)} "
                         "differ. Verify it against the GP it was built for, or build one for this GP "
                         "(construct_unrolled(gp, ...))")


def _checked_inputs(gp: Any, model: Any, diffusion_time: Any, generator: Any, attach_bounds: Any) -> float:
    """Type and range checks of :func:`verify`'s arguments; returns the diffusion time as a float."""
    from unroll.data.gp import GaussianProcess
    from unroll.model.transformer import Transformer

    if not isinstance(gp, GaussianProcess):
        raise InputTypeError(f"gp must be an unroll.data.gp.GaussianProcess, got {type(gp).__name__}")
    if not isinstance(model, Transformer):
        raise InputTypeError(f"model must be an unroll.model.transformer.Transformer, got {type(model).__name__}")
    check_generator("generator", generator)
    check_bool("attach_bounds", attach_bounds)
    t_tensor = check_diffusion_time(diffusion_time)
    if t_tensor.ndim != 0:
        raise ValueError(f"diffusion_time must be a scalar for verify, got shape {tuple(t_tensor.shape)}")
    return float(t_tensor)


def verify(gp: Any, model: Any, diffusion_time: float, x: torch.Tensor | None = None,
           generator: torch.Generator | None = None, *, batch: int = 8, bands: int | None = None,
           taper: str | None = None, attach_bounds: bool = True, progress: bool = False) -> VerificationReport:
    """Measure the score error of ``model`` at one diffusion time, split into gd / trunc / net / total.

    Args:
        gp: the ``GaussianProcess``; a constructed model must have been built for it (:func:`check_model_gp`).
        model: a ``Transformer``; for an ``UnrolledTransformer`` bands and taper come from its construction
            (``bands``/``taper``, if given, must agree with it), else from ``bands`` (default ``H - 1``) and
            ``taper``.
        diffusion_time: a positive scalar t.
        x: ``(batch, H, d)`` or ``(H, d)``, finite and not all zero (the errors are relative to ``||C_t^{-1} x||``);
            default: ``batch`` draws of the noised data at t, from ``generator`` (default seed 0).
        attach_bounds: call ``theory.bounds.attach_bounds`` (``False`` for constructions it has no bounds
            for, e.g. the softmax variant).
        progress: a progress bar (tqdm, stderr) over the stages: the reference iterates, the network's read-outs,
            the bounds.
    Returns:
        a :class:`VerificationReport`; bounds are filled by ``theory.bounds.attach_bounds``.  A part whose
        measurement is NaN or infinite (a network output that overflowed) is reported, not raised, and counts as
        failed (``report.failures``) with or without bounds.
    Raises:
        TypeError for arguments of the wrong type; ValueError for a model built for another GP, bands or taper
        that disagree with the construction, a bad diffusion time, ``x`` of the wrong shape, non-finite or zero.
    """
    t = _checked_inputs(gp, model, diffusion_time, generator, attach_bounds)
    check_model_gp(gp, model)
    construction = getattr(model, "construction", None)
    if construction is not None:
        for name, given, built in (("bands", bands, construction.bands), ("taper", taper, construction.taper)):
            if given is not None and given != built:
                raise ValueError(f"{name}={given!r} disagrees with the construction, built with {name}={built!r}; "
                                 f"leave {name} out for a constructed model")
        bands, taper, mode = construction.bands, construction.taper, construction.mode
        steps = construction.steps
    else:
        bands = gp.frames - 1 if bands is None else check_int("bands", bands, minimum=0, maximum=gp.frames - 1)
        if taper not in gd.TAPERS:
            raise ValueError(f"taper must be None or 'triangular', got {taper!r}")
        mode, steps = "trained", "gd"
    blocks = int(model.config["blocks"])
    if x is None:
        batch = check_int("batch", batch, minimum=1)
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        x = gp.noised(gp.sample(batch, generator=generator), t, generator=generator)
    x = to_real_tensor("x", x).to(torch.float64)
    check_sample_shape("x", x, gp.frames, gp.dim)
    check_finite("x", x)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise ValueError(f"x must have shape (batch, H, d) or (H, d), got {tuple(x.shape)}")
    if not bool(x.any()):
        raise ValueError("x must not be all zeros: every error part is relative to ||C_t^{-1} x||, which is 0 "
                         "there (the score of x = 0 is exactly 0 for every model of this class)")

    from tqdm.auto import tqdm

    bar = tqdm(total=3, desc="verify: reference iterates", disable=not progress, leave=False)
    lambda_min_gamma = gd.check_truncation(gd.factors(gp).gamma, bands, taper, on_indefinite="raise")
    y_star = gp.precision_apply(x, t)
    y_trunc = gd.fixed_point(gp, x, t, bands, taper)
    oracle = gd.unrolled_iterates(gp, x, t, blocks, bands, taper, steps=steps)
    bar.set_description("verify: network read-outs")
    bar.update()
    with torch.no_grad():
        model_dtype = next(model.parameters()).dtype
        readouts = [r.to(torch.float64) for r in model.readouts(x.to(model_dtype), t, check_finite=False)]
    bar.set_description("verify: bounds")
    bar.update()
    net = [-r for r in readouts]
    y_net = net[-1]

    scale = _norm(y_star)
    if not scale > 0:
        raise ValueError(f"||C_t^{{-1}} x|| underflows to {scale} (max |x| = {float(x.abs().max()):.3g}); every "
                         "error part is relative to it: rescale x")
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
    kernel = gp.kernel  # None for GaussianProcess.from_temporal
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
    bar.update()
    bar.close()
    return report
