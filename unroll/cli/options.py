"""Command-line options shared by sub-commands, and the parsing that checks each option's range.

The Gaussian process (``--kernel --nu --ell --period --frames --dim --spatial-condition``), ``--seed`` and
``--threads`` are defined here once, so every sub-command takes them with the same type and range.  Each numeric
option is parsed by a type from :func:`integer` or :func:`real`, which refuses a value outside its range at parse
time with a message naming the option and the allowed range (exit code 2, ``unroll.cli.failures``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

import torch

from unroll.cli.failures import EXIT_USAGE, one_line
from unroll.cli.resources import core_count
from unroll.gp import GaussianProcess
from unroll.kernels import NAMED_KERNELS, DampedCosine, kernel_from_name

#: --nu when not given, for the kernels that have a decay exponent
DEFAULT_NU = 1.0
#: --period when not given, for the damped cosine (frames per oscillation)
DEFAULT_PERIOD = 6.0
#: --seed: ``0 <= seed <= SEED_MAX`` everywhere (commands add small offsets for their other streams, and
#: ``torch.Generator.manual_seed`` takes at most ``2**64 - 1``)
SEED_MAX = 2**32 - 1
#: --time, --t0: ``alpha_t^2 = exp(-t)`` stays above float64's rounding unit ``2**-52`` only for ``t < 52 ln 2``
#: (36.04); beyond, the noised data carry no signal in float64 and the bounds divide by a rounded-away zero
TIME_MAX = 36.0
#: --spatial-condition: above ~1e12 the random Sigma is not numerically positive definite (``check_spd``)
SPATIAL_CONDITION_MAX = 1e10


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit code 2):
    ``unroll verify: error: argument --frames: ... (see unroll verify --help)``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """As argparse's, and refuse ``--frames=--``, which Python < 3.12 turns into an empty list."""
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if action.nargs is None and action.type is not None and isinstance(getattr(namespace, action.dest,
                                                                                     None), list):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one value")
        return namespace, extras


def _number_text(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bound_text(low: float | None, high: float | None, *, open_low: bool = False) -> str:
    left = "" if low is None else f"{_number_text(low)} {'<' if open_low else '<='} "
    right = "" if high is None else f" <= {_number_text(high)}"
    return f"{left}value{right}"


def integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer with ``minimum <= value (<= maximum)``."""
    allowed = _bound_text(minimum, maximum)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be an integer with {allowed}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must satisfy {allowed}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def real(minimum: float | None = None, maximum: float | None = None, *, open_minimum: bool = False
         ) -> Callable[[str], float]:
    """An argparse type: a finite number with ``minimum <= value`` (``<`` if ``open_minimum``) ``<= maximum``."""
    allowed = _bound_text(minimum, maximum, open_low=open_minimum)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be a number with {allowed}, got {text!r}") from None
        below = minimum is not None and (value <= minimum if open_minimum else value < minimum)
        if not math.isfinite(value) or below or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be a finite number with {allowed}, got {text!r}")
        return value

    parse.__name__ = "real"
    return parse


#: a positive finite number (``0 < value``)
positive = real(0.0, open_minimum=True)


#: counts above this are refused outright (a typo, not a request); below it they are capped at the cores
COUNT_MAX = 4096


def capped_at_cores(name: str, minimum: int) -> Callable[[str], int]:
    """An argparse type for a thread or worker count: an integer ``minimum <= value <= COUNT_MAX``, capped at the
    cores this process may use (``core_count()``; a note on stderr says so): more threads or workers than cores
    only add contention, and torch's OpenMP runtime aborts on absurd counts."""
    check = integer(minimum, COUNT_MAX)

    def parse(text: str) -> int:
        value = check(text)
        cores = core_count()
        if value > cores:
            print(f"unroll: note: {name} {value} capped at the {cores} core(s) this process may use", file=sys.stderr)
            return cores
        return value

    parse.__name__ = "count"
    return parse


threads_type = capped_at_cores("--threads", 1)


def add_seed_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help_text: str) -> None:
    """``--seed``, the same everywhere: an integer ``0 <= seed <= 2**32 - 1`` (default 0)."""
    parser.add_argument("--seed", type=integer(0, SEED_MAX), default=0,
                        help=f"{help_text}, 0 <= seed <= 2**32 - 1 (default 0)")


def add_threads_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, note: str = "") -> None:
    """``--threads``: torch CPU threads, ``1 <= threads``, capped at the cores (default 1; ``note`` says why)."""
    parser.add_argument("--threads", type=threads_type, default=1,
                        help=f"torch CPU threads, 1 <= threads (more than the cores are capped at them) "
                             f"(default 1{note})")


def diffusion_time_type(text: str) -> float:
    """``--time``, ``--t0``: ``0 < t <= 36`` (``TIME_MAX``)."""
    return real(0.0, TIME_MAX, open_minimum=True)(text)


def random_spatial_covariance(dim: int, seed: int, condition: float = 4.0) -> torch.Tensor:
    """A seeded symmetric positive-definite ``(dim, dim)`` matrix ``Q diag(mu) Q^T``.

    ``Q`` is a random orthogonal matrix and the eigenvalues ``mu`` are spread log-uniformly over
    ``[1, condition]``, so the condition number is at most ``condition``.
    """
    generator = torch.Generator().manual_seed(seed)
    orthogonal, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    eigenvalues = condition ** torch.rand(dim, generator=generator, dtype=torch.float64)
    return (orthogonal * eigenvalues) @ orthogonal.T


def add_construction_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The construction options ``verify`` and ``bounds`` share (``--bands``, ``--blocks``, ``--time``,
    ``--taper``), in a group ``construction`` that is returned for each command's own options."""
    group = parser.add_argument_group("construction")
    group.add_argument("--bands", type=integer(0), default=8, help="lags kept J, 0 <= J <= frames-1 (default 8)")
    group.add_argument("--blocks", type=integer(1), default=40,
                       help="blocks L >= 1, one solver step each (default 40; the Chebyshev certificate of the bounds "
                            "takes O(L^3) time: L = 1000 about 40 s)")
    group.add_argument("--time", type=diffusion_time_type, default=0.5,
                       help=f"diffusion time 0 < t <= {TIME_MAX:g} (default 0.5)")
    group.add_argument("--taper", choices=("none", "triangular"), default="none",
                       help="band truncation: plain cut (none) or triangular taper")
    return group


def add_gp_arguments(parser: argparse.ArgumentParser, *, frames: int = 32, dim: int = 4) -> None:
    """Add ``--kernel --nu --ell --period --frames --dim --spatial-condition --seed``."""
    group = parser.add_argument_group("Gaussian process")
    group.add_argument("--kernel", choices=sorted(NAMED_KERNELS), default="gamma-exponential",
                       help="temporal covariance family (default gamma-exponential); damped-cosine is "
                            "exp(-m/ell) cos(2 pi m/period)")
    group.add_argument("--nu", type=positive, default=None,
                       help=f"decay exponent nu > 0 (default {DEFAULT_NU:g}; not for damped-cosine, which has none)")
    group.add_argument("--ell", type=positive, default=2.0, help="length scale ell > 0 (default 2)")
    group.add_argument("--period", type=positive, default=None,
                       help=f"damped-cosine only: period > 0 in frames (default {DEFAULT_PERIOD:g})")
    group.add_argument("--frames", type=integer(1), default=frames, help=f"frames H >= 1 (default {frames})")
    group.add_argument("--dim", type=integer(1), default=dim, help=f"dimension d >= 1 of a frame (default {dim})")
    group.add_argument("--spatial-condition", type=real(1.0, SPATIAL_CONDITION_MAX), default=4.0,
                       help="condition number bound of the random spatial covariance Sigma, 1 <= value <= 1e10 "
                            "(default 4)")
    add_seed_argument(group, "seed for Sigma and the data")


def check_bands(args: argparse.Namespace) -> None:
    """``--frames >= 2`` and ``0 <= --bands <= frames - 1`` for the commands that build or bound a construction
    (softmax mode attends to all frames and ignores ``--bands``)."""
    if args.frames < 2:
        raise ValueError(f"--frames must satisfy frames >= 2 for the construction, got {args.frames}")
    if getattr(args, "mode", None) != "softmax" and args.bands > args.frames - 1:
        raise ValueError(f"--bands must satisfy 0 <= bands <= frames - 1 = {args.frames - 1}, got {args.bands}")


def gp_from_arguments(args: argparse.Namespace) -> GaussianProcess:
    """Build the ``GaussianProcess`` the options describe (Sigma drawn from ``--seed``)."""
    if args.kernel == DampedCosine.name:
        period = DEFAULT_PERIOD if args.period is None else args.period
        kernel = kernel_from_name(args.kernel, nu=args.nu, ell=args.ell, period=period)
    else:
        nu = DEFAULT_NU if args.nu is None else args.nu
        kernel = kernel_from_name(args.kernel, nu=nu, ell=args.ell, period=args.period)
    spatial = random_spatial_covariance(args.dim, args.seed, args.spatial_condition)
    return GaussianProcess(kernel, args.frames, spatial).validate()
