"""The memory a command needs, estimated from its sizes before any work starts, and the machine's limits.

Each estimate sums a run's dominant arrays only (the ones that grow with the options: ``H x H`` temporal matrices,
the dense ``(H d) x (H d)`` covariance of ``demo``, the weights of ``L`` blocks, the read-outs of every block,
the ``(L, 8L)`` arrays of the Chebyshev certificate, the training data...), each counted once, so it is a lower
bound on what the run allocates.  ``check_memory`` refuses a run whose estimate exceeds ``USABLE_FRACTION`` (80%)
of the memory available (``MemAvailable`` of ``/proc/meminfo``, else ``os.sysconf``): the rest is headroom for
what the estimate does not count, so that a refused run is one that would not have fitted, and an accepted one
near the limit does not drive the machine into its out-of-memory killer.  Where the available memory cannot be
read the check is skipped, and an allocation failure still ends in one line (exit code 4).

Thread and worker counts above the cores this process may use (``core_count``) are capped at them, with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from unroll.cli.failures import ResourceLimitError

if TYPE_CHECKING:  # the comparison (torch and all) is imported only when it runs
    from unroll.experiments.compare import CompareConfig

__all__ = ["Part", "Estimate", "available_memory", "core_count", "format_bytes", "check_memory", "gp_parts",
           "demo_estimate", "verify_estimate", "bounds_estimate", "train_estimate", "compare_estimate",
           "figures_estimate"]

FLOAT64 = 8
FLOAT32 = 4
#: bytes per entry of a Python list of floats (the loss history): a float object and its pointer
PYTHON_FLOAT = 32
#: ``theory.schedules.NODES_PER_DEGREE``: the Chebyshev certificate evaluates ``8 L`` points per block
CERTIFICATE_NODES = 8
MEMINFO = Path("/proc/meminfo")
#: the fraction of the available memory a run's estimate may take (module docstring)
USABLE_FRACTION = 0.8


@dataclass(frozen=True)
class Part:
    """One dominant array (or group of arrays) of a run: what it holds, its bytes, the options it grows with."""

    name: str
    bytes: int
    options: str


@dataclass(frozen=True)
class Estimate:
    """The dominant arrays of one run (a lower bound on its memory)."""

    parts: tuple[Part, ...]

    @property
    def total(self) -> int:
        return sum(part.bytes for part in self.parts)

    @property
    def dominant(self) -> Part:
        return max(self.parts, key=lambda part: part.bytes)


def core_count() -> int:
    """The cores this process may run on: ``os.sched_getaffinity`` where the platform has it (a container or
    ``taskset`` limit counts), else ``os.cpu_count()``; 1 if unknown."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def available_memory(meminfo: Path = MEMINFO) -> tuple[int, str] | None:
    """``(bytes, source)`` of the memory available to a new run, or ``None`` if it cannot be read.

    ``MemAvailable`` of ``/proc/meminfo`` (Linux: free memory plus reclaimable caches), else the free physical
    pages of ``os.sysconf``.
    """
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    if pages > 0 and size > 0:
        return pages * size, "free physical memory (os.sysconf)"
    return None


def format_bytes(count: int) -> str:
    """``count`` bytes in binary units, e.g. ``"1.5 GiB"`` (``"3.2e+30 bytes"`` beyond EiB)."""
    if count < 1024:
        return f"{count} bytes"
    for exponent, unit in enumerate(("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), start=1):
        value = count / 1024**exponent
        if value < 1024:
            return f"{value:.3g} {unit}"
    return f"{float(count):.3g} bytes"


def check_memory(estimate: Estimate, available: tuple[int, str] | None = None) -> None:
    """Raise :class:`~unroll.cli.failures.ResourceLimitError` if ``estimate.total`` exceeds ``USABLE_FRACTION`` of
    the memory available.

    Args:
        estimate: the run's dominant arrays.
        available: ``(bytes, source)``; default :func:`available_memory` (the check is skipped if unknown).
    """
    available = available_memory() if available is None else available
    if available is None or estimate.total <= USABLE_FRACTION * available[0]:
        return
    part = estimate.dominant
    raise ResourceLimitError(
        f"this run needs at least {format_bytes(estimate.total)} of memory ({part.name}: "
        f"{format_bytes(part.bytes)}), more than {USABLE_FRACTION:.0%} of the {format_bytes(available[0])} "
        f"available ({available[1]}); lower {part.options}")


def gp_parts(frames: int, dim: int) -> list[Part]:
    """The Gaussian process of the options: ``Gamma``, its eigenvectors and a Toeplitz copy (``H x H``), and the
    spatial covariance with its factors (``d x d``)."""
    return [Part("the temporal covariance and its eigenvectors (H x H)", 3 * frames * frames * FLOAT64, "--frames"),
            Part("the spatial covariance and its factors (d x d)", 3 * dim * dim * FLOAT64, "--dim")]


def demo_estimate(*, frames: int, dim: int, batch: int) -> Estimate:
    """``unroll demo``: the GP, the dense ``C_t`` of the oracle (``(H d) x (H d)``: the matrix, the identity it
    adds, the solve's factor) and the samples ``(batch, H, d)``."""
    size = frames * dim
    return Estimate((*gp_parts(frames, dim),
                     Part("the dense covariance C_t of the oracle ((H d) x (H d))", 3 * size * size * FLOAT64,
                          "--frames or --dim"),
                     Part("the samples and scores (batch x H x d)", 4 * batch * size * FLOAT64, "--batch")))


def _certificate(blocks: int) -> Part:
    """``theory.schedules.subproduct_bounds``: the factors ``(L, 8L)``, their running product and its modulus."""
    return Part("the Chebyshev certificate's (L, 8L) arrays", 3 * blocks * CERTIFICATE_NODES * blocks * FLOAT64,
                "--blocks")


def verify_estimate(*, frames: int, dim: int, bands: int, blocks: int, batch: int, mode: str = "exact",
                    steps: str = "gd", looped: bool = False, knots: int = 257) -> Estimate:
    """``unroll verify``: the GP, the model's weights (``unroll.construction.constructor``'s sizes: width ``D = 2d + 2 +
    3G + 1`` (``+ d`` in paper and softmax modes; ``G = L`` time groups for Chebyshev steps), ``M`` heads, FFN width
    ``F``), the iterates and read-outs of every block, the attention weights ``(batch, M, H, H)`` of every block (kept
    by ``Transformer.readouts``), and (exact and paper modes) the Chebyshev certificate."""
    softmax = mode == "softmax"
    groups = blocks if steps == "chebyshev" and not softmax else 1
    width = 2 * dim + 2 + 3 * groups + 1 + (dim if mode in ("paper", "softmax") else 0)
    if softmax:
        heads, head_dim = 1, 2
    else:
        heads, head_dim = (3 * (bands + 1) if mode == "exact" else 3 * bands + 1), 3
    ffn = 1 if mode == "exact" else dim * (6 * (knots - 2) + 6)
    per_block = heads * (2 * head_dim + 2 * dim) * width + 2 * ffn * width
    stored_blocks = 1 if looped else blocks
    sample = batch * frames * dim
    parts = [*gp_parts(frames, dim),
             Part("the weights of the blocks", stored_blocks * per_block * FLOAT64,
                  "--blocks, --bands, --dim or --knots"),
             Part("the iterates and read-outs of every block (L x batch x H x d)",
                  2 * (blocks + 1) * sample * FLOAT64, "--blocks or --batch"),
             Part("the attention weights of every block (L x batch x heads x H x H)",
                  blocks * batch * heads * frames * frames * FLOAT64, "--blocks, --batch, --frames or --bands")]
    if not softmax:
        parts.append(_certificate(blocks))
    return Estimate(tuple(parts))


def bounds_estimate(*, frames: int, dim: int, blocks: int) -> Estimate:
    """``unroll bounds``: the GP and the Chebyshev certificate (its ``(L, 8L)`` arrays)."""
    return Estimate((*gp_parts(frames, dim), _certificate(blocks)))


#: the trained models' sizes (``CompareConfig`` defaults): width, blocks and heads of their attention
_MODEL_SHAPES = {"dit": (40, 3, 4), "relu_transformer": (32, 4, 15), "unet": (16, 2, 0)}


def train_estimate(*, model: str, frames: int, dim: int, train_size: int, batch_size: int, steps: int,
                   heldout: int = 0) -> Estimate:
    """``unroll train``: the training data (float64 draw and float32 copy), one batch's activations (inputs,
    noise, targets, the hidden states of every block and the attention weights, float32), the held-out set and
    the loss history (one Python float per step)."""
    width, blocks, heads = _MODEL_SHAPES.get(model, (32, 4, 0))
    batch = batch_size * frames
    activations = batch * (3 * dim + 4 * width * blocks) + batch_size * heads * frames * frames * blocks
    return Estimate((Part("the training data (train-size x H x d)", train_size * frames * dim * (FLOAT64 + FLOAT32),
                          "--train-size"),
                     Part("one batch's activations (batch-size x H x width, per block)", activations * FLOAT32,
                          "--batch-size"),
                     Part("the held-out set", 2 * heldout * frames * dim * FLOAT64, "--frames or --dim"),
                     Part("the loss history (one float per step)", steps * PYTHON_FLOAT, "--steps")))


def compare_estimate(config: CompareConfig) -> Estimate:
    """``unroll compare``: each of the parallel workers holds the largest training of the design
    (``train_estimate`` of its largest training set), plus the held-out sets."""
    workers = max(int(config.workers), 1)
    largest = max(int(config.train_size), *(int(n) for n in config.sweep_sizes))
    one = train_estimate(model="dit", frames=config.frames, dim=config.dim,
                         train_size=largest + int(config.validation_size), batch_size=config.batch_size,
                         steps=config.steps, heldout=int(config.heldout) * len(config.eval_times))
    scaled = tuple(Part(f"{part.name}, in each of {workers} workers" if workers > 1 else part.name,
                        part.bytes * workers, part.options + (" or --workers" if workers > 1 else ""))
                   for part in one.parts)
    return Estimate(scaled)


def figures_estimate(*, train_steps: int) -> Estimate:
    """``unroll figures``: the attention-map trainings keep one loss per step (the figures' other arrays are of
    fixed, small sizes)."""
    return Estimate((Part("the loss history of the attention-map trainings (one float per step)",
                          train_steps * PYTHON_FLOAT, "--train-steps"),))
