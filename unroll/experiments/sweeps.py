"""Sweeps of the held-out score error of a trained model: vs frames H, model size and the kernel's decay
(nu, ell); the moving-ball video attention experiment.  Their log-log fits are ``unroll.experiments.claims.fit_loglog``.

The sample-complexity design that decides the rate in n is ``unroll.experiments.sample_complexity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["run_extra_sweeps", "video_attention"]


def _trained_error(config: Any, gp: Any, kind: str, options: dict | None = None) -> dict:
    from unroll import construct_unrolled
    from unroll.experiments.heldout import float64_score, heldout_set, score_error
    from unroll.experiments.trainer import train_score_model

    held = heldout_set(gp, config.heldout, config.eval_times, seed=config.seed + 1000)
    data = gp.sample(config.train_size, generator=torch.Generator().manual_seed(config.seed))
    model, info = train_score_model(kind, data, options or config.model_options(kind, gp),
                                    config.train_config(config.sweep_steps, seed_offset=13))
    constructed = construct_unrolled(gp, blocks=config.construct_blocks, bands=gp.frames - 1)
    return {"score_error": score_error(float64_score(model), held)["score_error"],
            "constructed_score_error": score_error(float64_score(constructed), held)["score_error"],
            "parameters": info["parameters"], "train_seconds": info["train_seconds"]}


def run_extra_sweeps(config: Any, which: list[str]) -> dict:
    """The sweeps named in ``which`` among ``"H"``, ``"size"``, ``"decay"`` (each trains a few models)."""
    from unroll.experiments.run import gp_from_spec

    def gp_for(**changes: Any) -> Any:  # the comparison's GP (its Sigma, correlated or random) with ``changes``
        return gp_from_spec(config.gp_spec(config.kernel, **changes))

    kind = config.sweep_model
    out: dict[str, Any] = {}
    if "H" in which:
        frames = [8, 16, 32]
        out["H"] = {"model": kind, "frames": frames,
                    "results": [_trained_error(config, gp_for(frames=h), kind) for h in frames]}
    if "size" in which:
        shapes = [(1, 2), (2, 4), (3, 4), (4, 8)] if kind == "dit" else [(1, 12), (2, 24), (4, 48), (6, 48)]
        results = []
        for blocks, heads in shapes:
            gp = gp_for()
            if kind == "dit":
                options = dict(width=config.dit_width, blocks=blocks, heads=heads)
            elif kind == "relu_transformer":
                options = dict(width=config.relu_width, blocks=blocks, heads=heads, ffn_width=32)
            else:
                options = dict(channels=8 * blocks, levels=min(blocks, 3))
            results.append({"blocks": blocks, "heads": heads, **_trained_error(config, gp, kind, options)})
        out["size"] = {"model": kind, "results": results}
    if "decay" in which:
        grid = [(config.nu, ell) for ell in (1.0, 2.0, 4.0, 8.0)]
        grid += [(nu, config.ell) for nu in (0.5, 1.5, 2.0) if nu != config.nu]
        results = []
        for nu, ell in grid:
            try:
                gp = gp_for(nu=nu, ell=ell)
            except ValueError as error:  # e.g. a nu outside the family's range
                results.append({"nu": nu, "ell": ell, "error": str(error)})
                continue
            results.append({"nu": nu, "ell": ell, **_trained_error(config, gp, kind)})
        out["decay"] = {"model": kind, "kernel": config.kernel, "results": results}
    return out


def video_attention(config: Any) -> tuple[dict, dict]:
    """Train a DiT on moving-ball clips; alignment of its maps with the empirical temporal correlation.

    Controls: the same DiT at initialisation, and trained on the clips with each frame shuffled
    independently across samples (same per-frame law, no temporal correlation).
    """
    from unroll.experiments import attention as att
    from unroll.experiments.heldout import float64_score
    from unroll.experiments.models import DiT
    from unroll.experiments.trainer import seeded_model, train_score_model
    from unroll.experiments.video import lag_profile_of_matrix, moving_ball_video, temporal_correlation

    generator = torch.Generator().manual_seed(config.seed + 555)
    video = moving_ball_video(config.train_size + config.heldout, frames=config.frames, size=config.video_size,
                              generator=generator)
    train_clips, held_clips = video[: config.train_size], video[config.train_size:]
    correlation = temporal_correlation(train_clips)
    profile = lag_profile_of_matrix(correlation)
    shuffled = train_clips.clone()
    for frame in range(config.frames):
        order = torch.randperm(config.train_size, generator=generator)
        shuffled[:, frame] = train_clips[order, frame]
    options = config.model_options("dit")
    dim = video.shape[-1]
    t = config.map_time
    x_t = np.exp(-t / 2) * held_clips + np.sqrt(1 - np.exp(-t)) * torch.randn(
        held_clips.shape, generator=generator, dtype=torch.float64)
    model, info = train_score_model("dit", train_clips, options, config.train_config(config.video_steps, 21))
    control, control_info = train_score_model("dit", shuffled, options, config.train_config(config.video_steps, 21))
    init = seeded_model(lambda: DiT(config.frames, dim, **options), config.seed + 21).double()
    maps: dict[str, Any]
    maps = {"learned": att.attention_maps(float64_score(model).model, x_t, t),
            "white": att.attention_maps(float64_score(control).model, x_t, t),
            "init": att.attention_maps(init, x_t, t), "correlation": correlation}
    result = {
        "frames": config.frames, "image_size": config.video_size, "dim": dim, "steps": config.video_steps,
        "temporal_correlation_lag_profile": profile.tolist(),
        "learned": att.alignment_summary(maps["learned"], profile),
        "control_shuffled_frames": att.alignment_summary(maps["white"], profile),
        "control_at_init": att.alignment_summary(maps["init"], profile),
        "final_loss": info["final_loss"], "control_final_loss": control_info["final_loss"],
        "train_seconds": info["train_seconds"] + control_info["train_seconds"],
    }
    return result, maps
