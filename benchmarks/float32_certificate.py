"""Experiment: where float32 degrades the constructed network, from one run.

For H = 16 ... 512 frames (gamma-exponential nu=1, ell=2, d=4, J=8, L=40, t=0.5, a seeded Sigma and
--batch seeded draws), builds the exact-mode construction with both frame frequencies — ``window``
(``w = pi/min(H, J+2)``, the default) and ``sequence`` (``w = pi/H``) — in float32 and float64 and prints
the largest weight norm B, the float32 block certificate (max_k |net_k - gd_k| / |gd_k|), the float32 net
error and the float64 certificate.  With ``sequence`` B grows like H^2 and the float32 certificate with
it; with ``window`` both stay flat.

    python benchmarks/float32_certificate.py [--frames 16 32 64 128 256 512] [--batch 4]
"""

from __future__ import annotations

import argparse

import torch
from bench_utils import configure

import unroll
from unroll.cli.options import random_spatial_covariance
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--bands", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--dim", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"{configure(threads=1)}; gamma-exponential nu=1 ell=2, "
          f"d={args.dim}, J={args.bands}, L={args.blocks}, t=0.5")
    print(f"{'H':>5} {'frequency':>9} {'B':>10} {'f32 certificate':>16} {'f32 net error':>14} {'f64 certificate':>16}")
    for frames in args.frames:
        gp = GaussianProcess(GammaExponential(nu=1.0, ell=2.0), frames, random_spatial_covariance(args.dim, 0))
        for frame_frequency in ("window", "sequence"):
            reports = {}
            for dtype in (torch.float32, torch.float64):
                model = unroll.construct_unrolled(gp, blocks=args.blocks, bands=min(args.bands, frames - 1),
                                                  frame_frequency=frame_frequency, dtype=dtype)
                reports[dtype] = unroll.verify(gp, model, 0.5, generator=torch.Generator().manual_seed(0),
                                               batch=args.batch)
            single, double = reports[torch.float32], reports[torch.float64]
            print(f"{frames:>5} {frame_frequency:>9} {single.size['B']:>10.1f} {single.certificate:>16.2e} "
                  f"{single.parts['net'].measured:>14.2e} {double.certificate:>16.2e}", flush=True)


if __name__ == "__main__":
    main()
