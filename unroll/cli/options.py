"""Command-line options shared by sub-commands, and the parsing that checks each option's range.

The Gaussian process (``--kernel --nu --ell --period --frames --dim``, Sigma's ``--spatial --spatial-seed
--spatial-condition --spatial-correlation``), ``--seed``, ``--threads``, ``--json`` and ``--no-progress`` are
defined here once, so every sub-command takes them with the same type and range.  Each numeric
option is parsed by a type from :func:`integer` or :func:`real`, which refuses a value outside its range at parse
time with a message naming the option and the allowed range (exit code 2, ``unroll.cli.failures``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from unroll.cli.failures import EXIT_USAGE, one_line
from unroll.cli.resources import core_count
from unroll.data.gp import GaussianProcess
from unroll.data.gp_spec import DEFAULT_NU, DEFAULT_PERIOD, SPATIAL_KINDS, GPSpec
from unroll.data.gp_spec import (
    random_spatial_covariance as random_spatial_covariance,  # re-exported (tests, benchmarks)
)
from unroll.data.kernels import NAMED_KERNELS

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


def _bound_text(low: float | None, high: float | None, *, open_low: bool = False, open_high: bool = False) -> str:
    left = "" if low is None else f"{_number_text(low)} {'<' if open_low else '<='} "
    right = "" if high is None else f" {'<' if open_high else '<='} {_number_text(high)}"
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


def real(minimum: float | None = None, maximum: float | None = None, *, open_minimum: bool = False,
         open_maximum: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number with ``minimum <= value <= maximum`` (``<`` where ``open_minimum`` /
    ``open_maximum``)."""
    allowed = _bound_text(minimum, maximum, open_low=open_minimum, open_high=open_maximum)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be a number with {allowed}, got {text!r}") from None
        below = minimum is not None and (value <= minimum if open_minimum else value < minimum)
        above = maximum is not None and (value >= maximum if open_maximum else value > maximum)
        if not math.isfinite(value) or below or above:
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


#: the Gaussian process every command describes unless told otherwise (``unroll.data.gp_spec.GPSpec``'s defaults);
#: ``spatial_seed=None`` means ``--seed``
GP_DEFAULTS: dict[str, Any] = dict(kernel="gamma-exponential", nu=None, ell=2.0, period=None, frames=32, dim=4,
                                   spatial="random", spatial_seed=None, spatial_condition=4.0,
                                   spatial_correlation=0.5)


def add_gp_arguments(parser: argparse.ArgumentParser, *, defaults: Mapping[str, Any] | None = None,
                     reason: str = "", frames_range: tuple[int, int | None] = (1, None), dim_max: int | None = None,
                     seed_help: str = "seed of Sigma (unless --spatial-seed) and of the data") -> None:
    """Add the ``Gaussian process`` group: ``--kernel --nu --ell --period --frames --dim --spatial --spatial-seed
    --spatial-condition --spatial-correlation --seed``, with the defaults ``GP_DEFAULTS``.

    A command whose data deliberately differ (``unroll compare``'s record configuration) passes ``defaults``: they
    are set with ``parser.set_defaults`` and each changed option's help says ``reason``.
    """
    changed = dict(defaults or {})
    unknown = set(changed) - set(GP_DEFAULTS)
    if unknown:
        raise ValueError(f"defaults must be among {sorted(GP_DEFAULTS)}, got {sorted(unknown)}")
    value = {**GP_DEFAULTS, **changed}

    def shown(name: str, text: str) -> str:
        """``text``, and for an option whose default this command changes, why and the shared default."""
        if name not in changed:
            return text
        other = GP_DEFAULTS[name]
        other_text = f"{other:g}" if isinstance(other, float) else str(other)
        return f"{text}: {reason or 'this command’s own'}; the other commands' default is {other_text}"

    group = parser.add_argument_group("Gaussian process")
    group.add_argument("--kernel", choices=sorted(NAMED_KERNELS), default=GP_DEFAULTS["kernel"],
                       help=shown("kernel", f"temporal covariance family (default {value['kernel']}); damped-cosine "
                                            "is exp(-m/ell) cos(2 pi m/period)"))
    group.add_argument("--nu", type=positive, default=GP_DEFAULTS["nu"],
                       help=f"decay exponent nu > 0 (default {DEFAULT_NU:g}; not for damped-cosine, which has none)")
    group.add_argument("--ell", type=positive, default=GP_DEFAULTS["ell"],
                       help=shown("ell", f"length scale ell > 0 (default {value['ell']:g})"))
    group.add_argument("--period", type=positive, default=GP_DEFAULTS["period"],
                       help=f"damped-cosine only: period > 0 in frames (default {DEFAULT_PERIOD:g})")
    low, high = frames_range
    frames_text = f"{low} <= H" + (f" <= {high}" if high is not None else "")
    group.add_argument("--frames", type=integer(low, high), default=GP_DEFAULTS["frames"],
                       help=shown("frames", f"frames H, {frames_text} (default {value['frames']})"))
    dim_text = "1 <= d" + (f" <= {dim_max}" if dim_max is not None else "")
    group.add_argument("--dim", type=integer(1, dim_max), default=GP_DEFAULTS["dim"],
                       help=shown("dim", f"dimension d of a frame, {dim_text} (default {value['dim']})"))
    add_spatial_arguments(group, value, shown)
    add_seed_argument(group, seed_help)
    if changed:
        parser.set_defaults(**changed)


def add_spatial_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup,
                          value: Mapping[str, Any] = GP_DEFAULTS,
                          shown: Callable[[str, str], str] = lambda name, text: text) -> None:
    """``--spatial --spatial-seed --spatial-condition --spatial-correlation``: how Sigma is built
    (``unroll.data.gp_spec``)."""
    group.add_argument("--spatial", choices=SPATIAL_KINDS, default=GP_DEFAULTS["spatial"],
                       help=shown("spatial", f"spatial covariance Sigma: random (Q diag(mu) Q^T drawn from "
                                             f"--spatial-seed, eigenvalues log-uniform in [1, --spatial-condition]) "
                                             f"or correlated (fixed Sigma[a, b] = rho^|a-b|, rho = "
                                             f"--spatial-correlation) (default {value['spatial']})"))
    group.add_argument("--spatial-seed", type=integer(0, SEED_MAX), default=GP_DEFAULTS["spatial_seed"],
                       help="random Sigma: its seed, 0 <= seed <= 2**32 - 1 (default: --seed)")
    group.add_argument("--spatial-condition", type=real(1.0, SPATIAL_CONDITION_MAX),
                       default=GP_DEFAULTS["spatial_condition"],
                       help=f"random Sigma: bound on its condition number, 1 <= value <= "
                            f"{SPATIAL_CONDITION_MAX:g} (default {value['spatial_condition']:g})")
    group.add_argument("--spatial-correlation", type=real(-1.0, 1.0, open_minimum=True, open_maximum=True),
                       default=GP_DEFAULTS["spatial_correlation"],
                       help=f"correlated Sigma: rho, -1 < rho < 1 (default {value['spatial_correlation']:g})")


def spatial_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The Sigma fields of ``GPSpec`` from the options (``--spatial-seed`` defaults to ``--seed``)."""
    seed = args.seed if getattr(args, "spatial_seed", None) is None else args.spatial_seed
    return dict(spatial=args.spatial, spatial_seed=seed, spatial_condition=args.spatial_condition,
                spatial_correlation=args.spatial_correlation)


def gp_spec_from_arguments(args: argparse.Namespace) -> GPSpec:
    """The ``GPSpec`` the options describe."""
    return GPSpec(kernel=args.kernel, nu=args.nu, ell=args.ell, period=args.period, frames=args.frames,
                  dim=args.dim, **spatial_fields(args))


def check_bands(args: argparse.Namespace) -> None:
    """``--frames >= 2`` and ``0 <= --bands <= frames - 1`` for the commands that build or bound a construction
    (softmax mode attends to all frames and ignores ``--bands``)."""
    if args.frames < 2:
        raise ValueError(f"--frames must satisfy frames >= 2 for the construction, got {args.frames}")
    if getattr(args, "mode", None) != "softmax" and args.bands > args.frames - 1:
        raise ValueError(f"--bands must satisfy 0 <= bands <= frames - 1 = {args.frames - 1}, got {args.bands}")


def gp_from_arguments(args: argparse.Namespace) -> GaussianProcess:
    """Build the ``GaussianProcess`` the options describe (``gp_spec_from_arguments(args).build()``)."""
    return gp_spec_from_arguments(args).build()


def add_json_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup, what: str = "the results") -> None:
    """``--json PATH``: also write ``what`` as JSON (``-``: standard output, the table then goes to stderr)."""
    parser.add_argument("--json", default=None, metavar="PATH",
                        help=f"also write {what} as JSON, with the run's configuration and provenance, to PATH "
                             "(- for standard output; the printed table then goes to standard error)")


def add_progress_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--no-progress``: silences the progress bars only; status lines are logging (``-q`` silences them)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (the status lines stay; unroll -q silences them)")
