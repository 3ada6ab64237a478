"""Command-line options shared by sub-commands: the Gaussian process (kernel, nu, ell, period, frames, dim)."""

from __future__ import annotations

import argparse

import torch

from unroll.gp import GaussianProcess
from unroll.kernels import NAMED_KERNELS, DampedCosine, kernel_from_name

#: --nu when not given, for the kernels that have a decay exponent
DEFAULT_NU = 1.0
#: --period when not given, for the damped cosine (frames per oscillation)
DEFAULT_PERIOD = 6.0


def random_spatial_covariance(dim: int, seed: int, condition: float = 4.0) -> torch.Tensor:
    """A seeded symmetric positive-definite ``(dim, dim)`` matrix ``Q diag(mu) Q^T``.

    ``Q`` is a random orthogonal matrix and the eigenvalues ``mu`` are spread log-uniformly over
    ``[1, condition]``, so the condition number is at most ``condition``.
    """
    generator = torch.Generator().manual_seed(seed)
    orthogonal, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    eigenvalues = condition ** torch.rand(dim, generator=generator, dtype=torch.float64)
    return (orthogonal * eigenvalues) @ orthogonal.T


def add_gp_arguments(parser: argparse.ArgumentParser, *, frames: int = 32, dim: int = 4) -> None:
    """Add ``--kernel --nu --ell --period --frames --dim --spatial-condition --seed``."""
    group = parser.add_argument_group("Gaussian process")
    group.add_argument("--kernel", choices=sorted(NAMED_KERNELS), default="gamma-exponential",
                       help="temporal covariance family (default gamma-exponential); damped-cosine is "
                            "exp(-m/ell) cos(2 pi m/period)")
    group.add_argument("--nu", type=float, default=None,
                       help=f"decay exponent nu > 0 (default {DEFAULT_NU:g}; not for damped-cosine, which has none)")
    group.add_argument("--ell", type=float, default=2.0, help="length scale ell > 0 (default 2)")
    group.add_argument("--period", type=float, default=None,
                       help=f"damped-cosine only: period > 0 in frames (default {DEFAULT_PERIOD:g})")
    group.add_argument("--frames", type=int, default=frames, help=f"frames H (default {frames})")
    group.add_argument("--dim", type=int, default=dim, help=f"dimension d of a frame (default {dim})")
    group.add_argument("--spatial-condition", type=float, default=4.0,
                       help="condition number bound of the random spatial covariance Sigma (default 4)")
    group.add_argument("--seed", type=int, default=0, help="seed for Sigma and the data (default 0)")


def gp_from_arguments(args: argparse.Namespace) -> GaussianProcess:
    """Build the ``GaussianProcess`` the options describe (Sigma drawn from ``--seed``)."""
    if args.kernel == DampedCosine.name:
        period = DEFAULT_PERIOD if args.period is None else args.period
        kernel = kernel_from_name(args.kernel, nu=args.nu, ell=args.ell, period=period)
    else:
        nu = DEFAULT_NU if args.nu is None else args.nu
        kernel = kernel_from_name(args.kernel, nu=nu, ell=args.ell, period=args.period)
    if args.dim < 1:
        raise ValueError(f"--dim must satisfy dim >= 1, got {args.dim}")
    if args.spatial_condition < 1:
        raise ValueError(f"--spatial-condition must be >= 1, got {args.spatial_condition}")
    spatial = random_spatial_covariance(args.dim, args.seed, args.spatial_condition)
    return GaussianProcess(kernel, args.frames, spatial).validate()
