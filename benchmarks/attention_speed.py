"""Benchmark: dense vs banded attention, and the unrolled-GD forward at long sequences, from one run.

Model: ``unroll.construct_unrolled(gp, blocks=L, bands=J, taper="triangular")`` (exact mode, ReLU heads,
``window = J``, ``3 + 3J`` heads per block) for a gamma-exponential GP (nu=1, ell=4) with a seeded
random Sigma.  Prints

1. construction time at H = --frames;
2. [issue item 3] the full L-block forward on the banded path (``attention_path="auto"`` selects it): time,
   peak memory, and its relative error against (a) plain GD on Gamma_J (vectorised reference, checked
   against ``unroll.construction.gd.gd_iterates`` at H=24 first) and (b) the closed-form score ``gp.score``;
3. [issue target] one attention layer (block 0, all heads) dense vs banded at H = --frames: the dense path
   is run on groups of --head-group heads (its (batch, M, H, H) score tensors for all heads at once would
   need ~3 x M H^2 x 8 bytes = ~20 GB at H=4096, M=51) and the group outputs summed — the same arithmetic
   as one call; the banded path runs all heads at once.  Time ratio and max relative difference
   ``max|banded - dense| / max|dense|``, peak memory of each;
4. the same for generic random heads (q, k, v standard normal, --generic-heads heads, dk=3, dv=d);
5. the full L-block model forward dense vs banded at H = --small-frames (where dense fits in memory);
6. the same model with ``frame_frequency="sequence"`` (``w = pi/H``, tent slope ``K ~ 2 H^2/pi^2``
   instead of ``~ 2 (J+2)^2/pi^2``): one layer dense vs banded and the forward against plain GD, to show
   the rounding that the H-independent default frequency removes.

Peak memory: see ``bench_utils.MEMORY_METHOD``.  Timings: ``bench_utils.round_robin`` (``torch.utils.benchmark``),
dense and banded of each comparison run in turn, once per round, the minimum over --repeats rounds (comparisons
with a dense layer at H=4096: --dense-repeats rounds); one torch thread; the header prints the load average of
the shared 2-core machine.

    python benchmarks/attention_speed.py [--frames 4096] [--bands 16] [--blocks 40] [--dim 16]
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_utils import MEMORY_METHOD, configure, peak_memory, round_robin, seconds_per_call

import unroll
from unroll.cli.options import random_spatial_covariance
from unroll.construction import gd
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import GammaExponential
from unroll.model.banded import banded_toeplitz_apply
from unroll.model.transformer import Transformer, attend

KERNEL = GammaExponential(nu=1.0, ell=4.0)
TAPER = "triangular"
DIFFUSION_TIME = 0.5


def max_relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a - b| / max|b|``."""
    return float((a - b).abs().max() / b.abs().max())


def gd_reference(model: unroll.UnrolledTransformer, x: torch.Tensor, diffusion_time: float, steps: int
                 ) -> torch.Tensor:
    """``steps`` GD steps on ``C_{t,J}`` with the model's step size, vectorised (O(H J d) per step)."""
    construction = model.construction
    eta = float(model.step_size(diffusion_time))
    a2, s2 = (float(v) for v in gd.schedule(diffusion_time))
    spatial = construction.gp.spatial
    y = torch.zeros_like(x)
    for _ in range(steps):
        gradient = a2 * banded_toeplitz_apply(construction.gamma_truncated, y) @ spatial + s2 * y - x
        y = y - eta * gradient
    return y


def check_reference() -> float:
    gp = GaussianProcess(KERNEL, 24, random_spatial_covariance(3, seed=1))
    model = unroll.construct_unrolled(gp, blocks=5, bands=4, taper=TAPER)
    x = gp.sample(2, torch.Generator().manual_seed(0))
    loop = gd.gd_iterates(gp, x, DIFFUSION_TIME, 5, bands=4, taper=TAPER)[-1]
    error = max_relative_difference(gd_reference(model, x, DIFFUSION_TIME, 5), loop)
    assert error <= 1e-12, f"vectorised GD reference disagrees with unroll.construction.gd.gd_iterates: {error:.2e}"
    return error


def layer(block: torch.nn.Module, z: torch.Tensor, heads: slice, path: str, window: int) -> torch.Tensor:
    """Attention update of ``block`` restricted to ``heads`` (``Block.attention`` on a subset of heads)."""
    q = torch.einsum("mkD,bhD->bmhk", block.query[heads], z)
    k = torch.einsum("mkD,bhD->bmhk", block.key[heads], z)
    v = torch.einsum("mkD,bhD->bmhk", block.value[heads], z)
    out, _ = attend(q, k, v, "relu", window, 1.0, path=path, need_weights=False)
    return torch.einsum("mDk,bmhk->bhD", block.output[heads], out)


def grouped_layer(block: torch.nn.Module, z: torch.Tensor, group: int, path: str, window: int) -> torch.Tensor:
    heads = block.query.shape[0]
    return sum(layer(block, z, slice(start, min(start + group, heads)), path, window)
               for start in range(0, heads, group))


def with_path(model: Transformer, path: str) -> Transformer:
    twin = Transformer(**{**model.config, "attention_path": path})
    twin.load_state_dict(model.state_dict())
    return twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--small-frames", type=int, default=512)
    parser.add_argument("--bands", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--head-group", type=int, default=3)
    parser.add_argument("--generic-heads", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dense-repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    frames, bands, blocks = args.frames, args.bands, args.blocks
    print(f"{configure(threads=1)}; float64, diffusion_time {DIFFUSION_TIME}, kernel {KERNEL!r}, taper {TAPER}")
    print(f"peak memory: {MEMORY_METHOD}")
    print("vectorised GD reference vs unroll.construction.gd.gd_iterates at H=24: "
          f"max rel diff {check_reference():.2e}")

    spatial = random_spatial_covariance(args.dim, seed=0)
    gp = GaussianProcess(KERNEL, frames, spatial)
    start = time.perf_counter()
    model = unroll.construct_unrolled(gp, blocks=blocks, bands=bands, taper=TAPER)
    seconds = time.perf_counter() - start
    print(f"\n[1] construct_unrolled H={frames} J={bands} L={blocks} d={args.dim}: {seconds:.1f} s, "
          f"heads per block M={model.config['heads']}, width D={model.config['width']}, "
          f"window={model.config['window']}, attention_path={model.config['attention_path']!r}")

    x = gp.noised(gp.sample(args.batch, torch.Generator().manual_seed(0)), DIFFUSION_TIME,
                  torch.Generator().manual_seed(1))
    score, memory = peak_memory(lambda: model(x, DIFFUSION_TIME))
    forward_time = seconds_per_call(lambda: model(x, DIFFUSION_TIME), 1)
    reference = gd_reference(model, x, DIFFUSION_TIME, blocks)
    exact = gp.score(x, DIFFUSION_TIME)
    print(f"\n[2] full forward, banded path, H={frames} J={bands} L={blocks} d={args.dim} batch={args.batch}: "
          f"{forward_time:.2f} s, peak memory {memory:.0f} MiB")
    print(f"    relative error |net - GD_L| / |GD_L| (Frobenius) = "
          f"{float((-score - reference).norm() / reference.norm()):.2e}")
    print(f"    relative error |net - closed-form score| / |score| = {float((score - exact).norm() / exact.norm()):.2e}"
          f"   (GD truncation + finite L, not a path error)")

    block = model.blocks[0]
    z = model.embed(x, torch.full((args.batch,), DIFFUSION_TIME, dtype=torch.float64))
    heads = block.query.shape[0]
    dense_out, dense_memory = peak_memory(lambda: grouped_layer(block, z, args.head_group, "dense", bands))
    band_out, band_memory = peak_memory(lambda: layer(block, z, slice(0, heads), "banded", bands))
    times = round_robin({"dense": lambda: grouped_layer(block, z, args.head_group, "dense", bands),
                         "banded": lambda: layer(block, z, slice(0, heads), "banded", bands)}, args.dense_repeats)
    dense_time, band_time = times["dense"], times["banded"]
    print(f"\n[3] one attention layer of the constructed model, {heads} heads, H={frames} J={bands} "
          f"batch={args.batch}:")
    print(f"    dense  (groups of {args.head_group} heads) {dense_time:9.3f} s   peak memory {dense_memory:8.0f} MiB")
    print(f"    banded (all heads at once)      {band_time:9.3f} s   peak memory {band_memory:8.0f} MiB")
    print(f"    ratio dense/banded {dense_time / band_time:8.1f}   (target >= 20)")
    print(f"    max relative difference {max_relative_difference(band_out, dense_out):.2e}   (target <= 1e-12)")

    generator = torch.Generator().manual_seed(2)
    shape = (args.batch, args.generic_heads, frames)
    q = torch.randn(*shape, 3, generator=generator, dtype=torch.float64)
    k = torch.randn(*shape, 3, generator=generator, dtype=torch.float64)
    v = torch.randn(*shape, args.dim, generator=generator, dtype=torch.float64)
    generic_dense = attend(q, k, v, "relu", bands, 1.0, path="dense", need_weights=False)[0]
    generic_band = attend(q, k, v, "relu", bands, 1.0, path="banded", need_weights=False)[0]
    times = round_robin({path: (lambda path=path: attend(q, k, v, "relu", bands, 1.0, path=path, need_weights=False))
                         for path in ("dense", "banded")}, args.repeats)
    generic_dense_time, generic_band_time = times["dense"], times["banded"]
    print(f"\n[4] generic random heads ({args.generic_heads} heads, dk=3, dv={args.dim}), H={frames} J={bands}:")
    print(f"    dense {generic_dense_time:.4f} s, banded {generic_band_time:.4f} s, ratio "
          f"{generic_dense_time / generic_band_time:.1f}, max relative difference "
          f"{max_relative_difference(generic_band, generic_dense):.2e}")

    small = GaussianProcess(KERNEL, args.small_frames, spatial)
    small_model = unroll.construct_unrolled(small, blocks=blocks, bands=bands, taper=TAPER)
    x_small = small.noised(small.sample(args.batch, torch.Generator().manual_seed(3)), DIFFUSION_TIME,
                           torch.Generator().manual_seed(4))
    dense_model, band_model = with_path(small_model, "dense"), with_path(small_model, "banded")
    small_dense, small_dense_memory = peak_memory(lambda: dense_model(x_small, DIFFUSION_TIME))
    small_band, small_band_memory = peak_memory(lambda: band_model(x_small, DIFFUSION_TIME))
    times = round_robin({"dense": lambda: dense_model(x_small, DIFFUSION_TIME),
                         "banded": lambda: band_model(x_small, DIFFUSION_TIME)}, args.dense_repeats)
    small_dense_time, small_band_time = times["dense"], times["banded"]
    print(f"\n[5] full model forward, H={args.small_frames} J={bands} L={blocks} batch={args.batch}, all heads:")
    print(f"    dense  {small_dense_time:8.3f} s   peak memory {small_dense_memory:8.0f} MiB")
    print(f"    banded {small_band_time:8.3f} s   peak memory {small_band_memory:8.0f} MiB")
    print(f"    ratio dense/banded {small_dense_time / small_band_time:.1f}, max relative difference "
          f"{max_relative_difference(small_band, small_dense):.2e}")
    print(f"    tent slope K = {small_model.construction.tent_slope:.3g}")
    small_reference = gd_reference(small_model, x_small, DIFFUSION_TIME, blocks)
    for name, out in (("dense", small_dense), ("banded", small_band)):
        print(f"    {name:<6} vs plain GD_L: max relative difference "
              f"{max_relative_difference(-out, small_reference):.2e}")

    sequence = unroll.construct_unrolled(gp, blocks=blocks, bands=bands, taper=TAPER, frame_frequency="sequence")
    print(f"\n[6] frame_frequency='sequence' (w = pi/H, K = {sequence.construction.tent_slope:.3g}; the default "
          f"'window' model above has w = pi/{bands + 2}, K = {model.construction.tent_slope:.3g}), H={frames}, "
          f"J={bands}:")
    block = sequence.blocks[0]
    z = sequence.embed(x, torch.full((args.batch,), DIFFUSION_TIME, dtype=torch.float64))
    dense_out = grouped_layer(block, z, args.head_group, "dense", bands)
    band_out = layer(block, z, slice(0, heads), "banded", bands)
    print(f"    one layer: max relative difference dense vs banded {max_relative_difference(band_out, dense_out):.2e}")
    sequence_score = sequence(x, DIFFUSION_TIME)
    print(f"    full forward (banded): relative error |net - GD_L| / |GD_L| = "
          f"{float((-sequence_score - reference).norm() / reference.norm()):.2e}")

if __name__ == "__main__":
    main()
