"""Benchmark: how to batch the Jacobians of ``unroll.experiments.linear_response``, and what one call costs.

Model: ``unroll.experiments.models.DiT(H, d, width=48, blocks=3, heads=4)`` in float64, eval mode, with its
zero-initialised layers (adaLN modulations, read-out) set to seeded N(0, 0.05^2) entries so that the
Jacobian is not 0; 64 points ``x (64, H, d)``; one torch thread.  For ``H d`` in --sizes (d = --dim) it
times the per-sample Jacobians ``(64, Hd, Hd)`` computed

1. ``loop``: the samples are independent, so one forward of ``x_chunk -> sum_s S(x_chunk)_s`` and ``Hd``
   backward passes (one per output coordinate) give every Jacobian of the chunk (what ``linear_response``
   does by default);
2. ``vectorized``: the same forward and one vmapped backward over all ``Hd`` output coordinates
   (``torch.autograd.grad(..., is_grads_batched=True)``, as ``torch.autograd.functional.jacobian(...,
   vectorize=True)`` does; ``linear_response(..., vectorize=True)``);
3. ``vmap-jacrev``: ``torch.func.vmap(torch.func.jacrev(per-sample score))`` over all 64 points (only for
   ``Hd <= --vmap-limit``: its memory grows fast);

each with chunks of --chunks samples (the best chunk is what counts), then the whole ``linear_response(dit,
gp, t, samples=64)`` call at ``H = 16`` (Jacobians, the independence check, the exact ``-C_t^{-1}`` and the
statistics) and the same for ``gp.score``.  Times: ``bench_utils.round_robin`` (``torch.utils.benchmark``): at each
size every method and chunk runs once per round, in turn, after one calibrating warm-up run, and the minimum over
--repeats rounds is kept; one torch thread; the header prints the load average of the shared 2-core machine.

    python benchmarks/linear_response_speed.py [--sizes 32 64 128] [--chunks 4 16 64] [--repeats 2]
"""

from __future__ import annotations

import argparse

import torch
from bench_utils import configure, round_robin

import unroll
from unroll.experiments.compare import make_gp
from unroll.experiments.models import DiT


def random_dit(frames: int, dim: int, seed: int = 0) -> DiT:
    """A float64 DiT in eval mode whose zero-initialised layers are given small seeded random entries."""
    torch.manual_seed(seed)
    model = DiT(frames, dim, width=48, blocks=3, heads=4).double().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.parameters():
            if not bool(parameter.any()):
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64))
    return model


def jacobians_loop(score, x: torch.Tensor, t: float) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    count, size = x.shape[0], x[0].numel()
    total = score(leaf, t).reshape(count, size).sum(dim=0)
    rows = [torch.autograd.grad(total[k], leaf, retain_graph=k < size - 1)[0].reshape(count, size)
            for k in range(size)]
    return torch.stack(rows, dim=1)


def jacobians_vectorized(score, x: torch.Tensor, t: float) -> torch.Tensor:
    leaf = x.detach().clone().requires_grad_(True)
    count, size = x.shape[0], x[0].numel()
    total = score(leaf, t).reshape(count, size).sum(dim=0)
    (grads,) = torch.autograd.grad(total, leaf, grad_outputs=torch.eye(size, dtype=x.dtype), is_grads_batched=True)
    return grads.reshape(size, count, size).permute(1, 0, 2)


def jacobians_vmap_jacrev(score, x: torch.Tensor, t: float) -> torch.Tensor:
    size = x[0].numel()
    per_sample = torch.func.jacrev(lambda point: score(point[None], t)[0].reshape(size))
    return torch.func.vmap(per_sample)(x).reshape(x.shape[0], size, size)



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="H d (H = size / d)")
    parser.add_argument("--dim", type=int, default=2)
    parser.add_argument("--chunks", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--vmap-limit", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(configure(threads=1))
    t = 0.5

    methods = {"loop": jacobians_loop, "vectorized": jacobians_vectorized}
    print(f"per-sample Jacobians of a float64 DiT(width=48, blocks=3, heads=4), {args.samples} points, seconds")
    print(f"{'H d':>5} {'method':>12} " + " ".join(f"{'chunk ' + str(c):>10}" for c in args.chunks))
    for size in args.sizes:
        frames = size // args.dim
        model = random_dit(frames, args.dim)
        x = torch.randn(args.samples, frames, args.dim, generator=torch.Generator().manual_seed(2),
                        dtype=torch.float64)
        reference = jacobians_loop(model, x[:4], t)
        for method in methods.values():
            assert torch.allclose(method(model, x[:4], t), reference, rtol=0, atol=1e-12 * float(reference.abs().max()))
        seconds = round_robin({(name, c): (lambda method=method, c=c, model=model, x=x: [
            method(model, x[i: i + c], t) for i in range(0, args.samples, c)])
            for name, method in methods.items() for c in args.chunks}, args.repeats)
        for name in methods:
            print(f"{size:>5} {name:>12} " + " ".join(f"{seconds[name, c]:10.3f}" for c in args.chunks), flush=True)
        if size <= args.vmap_limit:
            try:
                vmap = round_robin({"vmap": lambda model=model, x=x: jacobians_vmap_jacrev(model, x, t)}, 1)["vmap"]
                print(f"{size:>5} {'vmap-jacrev':>12} {vmap:10.3f}  (all {args.samples} at once)", flush=True)
            except RuntimeError as error:
                print(f"{size:>5} {'vmap-jacrev':>12} failed: {str(error).splitlines()[0][:90]}")

    gp = make_gp("gamma-exponential", 1.0, 4.0, 16, args.dim)
    model = random_dit(16, args.dim)
    print(f"\nlinear_response(score, gp, t={t}, samples={args.samples}) at H = 16, d = {args.dim}: whole call")
    results: dict = {}
    calls = {}
    for label, score, options in (("random DiT", model, {}), ("random DiT, vectorize", model, dict(vectorize=True)),
                                  ("gp.score", gp.score, {}), ("gp.score, vectorize", gp.score, dict(vectorize=True))):
        def call(label=label, score=score, options=options):
            results[label] = unroll.linear_response(score, gp, t, samples=args.samples, **options)

        calls[label] = call
    times = round_robin(calls, args.repeats)
    for label, seconds in times.items():
        result = results[label]
        print(f"  {label:<22} {seconds:7.3f} s   error {result.error:.3e}  nonlinearity {result.nonlinearity:.3e}  "
              f"lag-profile error {result.lag_profile_error:.3e}  [{result.method}]")


if __name__ == "__main__":
    main()
