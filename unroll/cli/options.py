"""Command-line options shared by sub-commands: the Gaussian process (kernel, nu, ell, frames, dim)."""

from __future__ import annotations

import argparse

import torch

from unroll.gp import GaussianProcess
from unroll.kernels import KERNEL_FAMILIES, kernel_from_name


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
    """Add ``--kernel --nu --ell --frames --dim --spatial-condition --seed``."""
    group = parser.add_argument_group("Gaussian process")
    group.add_argument("--kernel", choices=sorted(KERNEL_FAMILIES), default="gamma-exponential",
                       help="temporal covariance family (default gamma-exponential)")
    group.add_argument("--nu", type=float, default=1.0, help="decay exponent nu > 0 (default 1)")
    group.add_argument("--ell", type=float, default=2.0, help="length scale ell > 0 (default 2)")
    group.add_argument("--frames", type=int, default=frames, help=f"frames H (default {frames})")
    group.add_argument("--dim", type=int, default=dim, help=f"dimension d of a frame (default {dim})")
    group.add_argument("--spatial-condition", type=float, default=4.0,
                       help="condition number bound of the random spatial covariance Sigma (default 4)")
    group.add_argument("--seed", type=int, default=0, help="seed for Sigma and the data (default 0)")


def gp_from_arguments(args: argparse.Namespace) -> GaussianProcess:
    """Build the ``GaussianProcess`` the options describe (Sigma drawn from ``--seed``)."""
    kernel = kernel_from_name(args.kernel, nu=args.nu, ell=args.ell)
    if args.dim < 1:
        raise ValueError(f"--dim must satisfy dim >= 1, got {args.dim}")
    if args.spatial_condition < 1:
        raise ValueError(f"--spatial-condition must be >= 1, got {args.spatial_condition}")
    spatial = random_spatial_covariance(args.dim, args.seed, args.spatial_condition)
    return GaussianProcess(kernel, args.frames, spatial).validate()
