"""Validation, early stopping, the infinite-data (sampler) arm and their checkpoints (unroll.experiments.trainer)."""

from __future__ import annotations

import math

import pytest
import torch

from unroll.data.diffusion import dsm_loss, sample_diffusion_times
from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments.models import build_model
from unroll.experiments.trainer import (
    TrainConfig,
    load_checkpoint,
    seeded_model,
    train,
    validation_draw,
    validation_loss,
)

FRAMES, DIM = 8, 2
OPTIONS = dict(width=16, blocks=1, heads=2)


def _gp() -> GaussianProcess:
    return GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=3.0), FRAMES, torch.eye(DIM))


def _data(n: int, seed: int) -> torch.Tensor:
    return _gp().sample(n, generator=torch.Generator().manual_seed(seed))


def _build():
    return build_model("dit", FRAMES, DIM, **OPTIONS)


def _plain_training(model, data, config):
    """main's training loop written out plainly (AdamW, warm-up + cosine, minibatch, times, DSM, clipping)."""
    model.to(torch.float32).train()
    data = data.to(torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    for step in range(config.steps):
        if step < config.warmup:
            lr = config.learning_rate * (step + 1) / config.warmup
        else:
            progress = min((step - config.warmup) / max(config.steps - config.warmup, 1), 1.0)
            lr = config.learning_rate * (config.final_lr_fraction
                                         + (1 - config.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(data.shape[0], (config.batch_size,), generator=generator)
        times = sample_diffusion_times(config.batch_size, t_min=config.t_min, t_max=config.t_max,
                                       generator=generator, dtype=torch.float32)
        loss = dsm_loss(model, data[index], diffusion_time=times, generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
    return model


def _plain_validation_loss(model, clean, config):
    """The documented fixed draw and loss, computed directly (one chunk, float64 accumulation)."""
    generator = torch.Generator().manual_seed(config.validation_seed)
    x0 = clean.to(torch.float64).repeat(config.validation_repeats, 1, 1)
    u = torch.rand(x0.shape[0], generator=generator, dtype=torch.float64)
    t = torch.exp(math.log(config.t_min) + u * (math.log(config.t_max) - math.log(config.t_min)))
    z = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    s = torch.sqrt(1 - torch.exp(-t))[:, None, None]
    x_t = torch.exp(-t / 2)[:, None, None] * x0 + s * z
    with torch.no_grad():
        out = model(x_t.to(torch.float32), t.to(torch.float32)).to(torch.float64)
    return float(((s.to(torch.float32).to(torch.float64) * out + z.to(torch.float32).to(torch.float64)) ** 2)
                 .sum() / z.numel())


def _equal_states(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_run_without_validation_matches_the_plain_loop_bit_for_bit():
    data = _data(64, 0)
    config = TrainConfig(steps=25, batch_size=16, warmup=5, seed=3, progress=False)
    trained = train(seeded_model(_build, 1), data, config).model
    oracle = _plain_training(seeded_model(_build, 1), data, config)
    assert _equal_states(trained, oracle)


def test_validation_loss_is_the_documented_fixed_draw():
    clean = _data(40, 7)
    config = TrainConfig(validation_repeats=2, validation_seed=11, t_min=0.05, t_max=4.0)
    model = seeded_model(_build, 2).to(torch.float32)
    with torch.no_grad():  # a non-trivial read-out, so the loss depends on the model
        model.readout.weight.normal_(generator=torch.Generator().manual_seed(0))
    value = validation_loss(model, validation_draw(clean, config))
    assert value == pytest.approx(_plain_validation_loss(model, clean, config), rel=1e-6, abs=0)
    assert value == validation_loss(model, validation_draw(clean, config))  # deterministic
    other = validation_loss(model, validation_draw(clean, TrainConfig(validation_repeats=2, validation_seed=12,
                                                                      t_min=0.05, t_max=4.0)))
    assert other != value


def _overfitting_run(**changes):
    """8 training samples, a DiT that memorises them: the held-out loss falls, then rises or stalls."""
    settings = dict(steps=1500, batch_size=8, learning_rate=1e-2, warmup=5, seed=0, progress=False,
                    schedule="constant", eval_every=20, patience=4, checkpoint_every=1000)
    settings.update(changes)
    return TrainConfig(**settings), _data(8, 1), _data(64, 2)


def test_early_stopping_stops_and_restores_the_best_parameters():
    config, data, held = _overfitting_run()
    result = train(seeded_model(_build, 0), data, config, validation=held)
    assert result.stopped_early and result.steps < config.steps
    assert result.validation_steps[0] == 0 and result.validation_steps[-1] == result.steps
    steps = result.validation_steps
    assert all(b - a == config.eval_every for a, b in zip(steps[:-1], steps[1:], strict=True))
    best = min(range(len(result.validation_losses)), key=result.validation_losses.__getitem__)
    assert result.best_step == result.validation_steps[best] > 0
    assert result.best_validation_loss == result.validation_losses[best]
    # Patience: the run ends exactly `patience` evaluations after the best one (min_delta = 0).
    assert len(result.validation_losses) - 1 - best == config.patience
    assert result.best_step < result.steps
    # The returned model holds the best parameters, not the last ones.
    draw = validation_draw(held, config)
    assert validation_loss(result.model, draw) == result.best_validation_loss
    assert result.validation_losses[-1] > result.best_validation_loss
    # ... and they are the parameters a run with the budget cut at best_step ends with.
    cut = train(seeded_model(_build, 0), data, config, stop_after=result.best_step)
    assert _equal_states(cut.model, result.model)


def test_min_delta_stops_earlier_and_plateau_lowers_the_learning_rate():
    config, data, held = _overfitting_run()
    plain = train(seeded_model(_build, 0), data, config, validation=held)
    strict = train(seeded_model(_build, 0), data, TrainConfig(**{**config.__dict__, "min_delta": 0.2}),
                   validation=held)
    assert strict.steps < plain.steps
    plateau = train(seeded_model(_build, 0), data, TrainConfig(**{**config.__dict__, "schedule": "plateau",
                                                                  "plateau_patience": 2, "patience": 5}),
                    validation=held)
    assert plateau.lr_reduced_at and all(s in plateau.validation_steps for s in plateau.lr_reduced_at)


def test_interrupted_early_stopped_run_resumes_to_the_same_result(tmp_path):
    config, data, held = _overfitting_run(checkpoint_every=7)
    straight = train(seeded_model(_build, 0), data, config, validation=held)
    assert straight.stopped_early
    path = tmp_path / "ckpt.pt"
    # Interrupt after the best step (best parameters already saved) and before the stop.
    middle = (straight.best_step + straight.steps) // 2 + 3
    partial = train(seeded_model(_build, 0), data, config, validation=held, checkpoint=path, stop_after=middle)
    assert partial.interrupted and partial.steps == middle and not partial.stopped_early
    resumed = train(seeded_model(_build, 99), data, config, validation=held, checkpoint=path)
    assert resumed.resumed_from == middle
    assert (resumed.steps, resumed.best_step, resumed.stopped_early) == (straight.steps, straight.best_step, True)
    assert resumed.validation_losses == straight.validation_losses and resumed.losses == straight.losses
    assert _equal_states(resumed.model, straight.model)
    # A finished checkpoint resumes to the finished result without training further.
    again = train(seeded_model(_build, 5), data, config, validation=held, checkpoint=path)
    assert again.steps == straight.steps and _equal_states(again.model, straight.model)
    with pytest.raises(ValueError, match="validation"):
        train(seeded_model(_build, 0), data, config, validation=held + 1, checkpoint=path)


def test_interruption_during_an_evaluation_resumes_to_the_same_result(tmp_path, monkeypatch):
    import unroll.experiments.trainer as trainer

    config, data, held = _overfitting_run(steps=200, patience=100)
    straight = train(seeded_model(_build, 0), data, config, validation=held)
    real, calls = trainer.validation_loss, []

    def interrupted_on_third_call(model, draw):
        calls.append(1)
        if len(calls) == 3:  # the evaluation at step 2 * eval_every, after that step was taken
            raise KeyboardInterrupt
        return real(model, draw)

    monkeypatch.setattr(trainer, "validation_loss", interrupted_on_third_call)
    path = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        train(seeded_model(_build, 0), data, config, validation=held, checkpoint=path)
    monkeypatch.setattr(trainer, "validation_loss", real)
    resumed = train(seeded_model(_build, 1), data, config, validation=held, checkpoint=path)
    assert resumed.resumed_from == 2 * config.eval_every
    assert resumed.validation_steps == straight.validation_steps
    assert resumed.validation_losses == straight.validation_losses
    assert _equal_states(resumed.model, straight.model)


def test_sampler_arm_is_reproducible_and_draws_fresh_batches():
    gp = _gp()
    seen = []

    def sampler(n, generator):
        batch = gp.sample(n, generator=generator)
        seen.append(batch)
        return batch

    config = TrainConfig(steps=6, batch_size=8, warmup=2, seed=4, progress=False)
    first = train(seeded_model(_build, 0), None, config, sampler=sampler)
    draws = seen[1:]  # seen[0] is the probe draw that fingerprints the sampler
    assert len(draws) == config.steps
    assert not torch.equal(draws[0], draws[1])
    flat = torch.cat(draws).reshape(-1, FRAMES * DIM)
    assert torch.unique(flat, dim=0).shape[0] == flat.shape[0]  # no sample repeats across steps
    seen.clear()
    second = train(seeded_model(_build, 0), None, config, sampler=sampler)
    assert _equal_states(first.model, second.model) and first.losses == second.losses
    other = train(seeded_model(_build, 0), None, TrainConfig(**{**config.__dict__, "seed": 5}), sampler=sampler)
    assert other.losses != first.losses


def test_sampler_arm_resumes_bit_exactly(tmp_path):
    gp = _gp()

    def sampler(n, g):
        return gp.sample(n, generator=g)

    config = TrainConfig(steps=12, batch_size=8, warmup=2, seed=4, progress=False, checkpoint_every=5)
    straight = train(seeded_model(_build, 0), None, config, sampler=sampler)
    path = tmp_path / "ckpt.pt"
    train(seeded_model(_build, 0), None, config, sampler=sampler, checkpoint=path, stop_after=7)
    resumed = train(seeded_model(_build, 3), None, config, sampler=sampler, checkpoint=path)
    assert resumed.resumed_from == 7 and resumed.losses == straight.losses
    assert _equal_states(resumed.model, straight.model)
    with pytest.raises(ValueError, match="different data"):
        train(seeded_model(_build, 0), None, config, sampler=lambda n, g: 2 * gp.sample(n, generator=g),
              checkpoint=path)


@pytest.mark.parametrize("changes, name", [
    (dict(eval_every=0), "eval_every"), (dict(patience=0), "patience"), (dict(min_delta=-0.1), "min_delta"),
    (dict(min_delta=1.0), "min_delta"), (dict(schedule="linear"), "schedule"),
    (dict(validation_repeats=0), "validation_repeats"), (dict(plateau_factor=1.0), "plateau_factor"),
    (dict(plateau_patience=0), "plateau_patience"), (dict(validation_seed=-1), "validation_seed"),
])
def test_bad_settings_raise_value_errors_naming_the_parameter(changes, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**changes).validate()


def test_bad_inputs_raise_value_errors_naming_the_parameter():
    gp = _gp()
    data = _data(16, 0)
    config = TrainConfig(steps=2, batch_size=4, warmup=1, progress=False)
    model = seeded_model(_build, 0)
    with pytest.raises(ValueError, match="exactly one of data"):
        train(model, None, config)
    with pytest.raises(ValueError, match="exactly one of data"):
        train(model, data, config, sampler=lambda n, g: gp.sample(n, generator=g))
    with pytest.raises(ValueError, match="sampler"):
        train(model, None, config, sampler=lambda n, g: gp.sample(n + 1, generator=g))
    with pytest.raises(ValueError, match="sampler"):
        train(model, None, config, sampler=lambda n, g: torch.full((n, FRAMES, DIM), float("nan")))
    with pytest.raises(ValueError, match="validation"):
        train(model, data, config, validation=data[:, :4])
    with pytest.raises(ValueError, match="validation"):
        train(model, data, config, validation=data[0])
    with pytest.raises(ValueError, match="validation"):
        train(model, data, config, validation=torch.full_like(data, float("inf")))
    with pytest.raises(ValueError, match="plateau"):
        train(model, data, TrainConfig(steps=2, schedule="plateau", progress=False))


def test_a_checkpoint_written_before_the_early_stopping_settings_existed_still_resumes(tmp_path):
    data = _data(32, 0)
    config = TrainConfig(steps=8, batch_size=8, warmup=2, seed=1, progress=False)
    straight = train(seeded_model(_build, 0), data, config)
    path = tmp_path / "ckpt.pt"
    train(seeded_model(_build, 0), data, config, checkpoint=path, stop_after=4)
    state = load_checkpoint(path)  # then saved as a bare torch.save archive, the format of that time
    for name in ("schedule", "eval_every", "patience", "min_delta", "validation_repeats", "validation_seed",
                 "plateau_factor", "plateau_patience"):
        del state["settings"][name]
    del state["validation_fingerprint"], state["early_stopping"]
    torch.save(state, path)
    resumed = train(seeded_model(_build, 3), data, config, checkpoint=path)
    assert resumed.resumed_from == 4 and _equal_states(resumed.model, straight.model)
    with pytest.raises(ValueError, match="settings"):  # ... but not into a run with other settings
        train(seeded_model(_build, 0), data, TrainConfig(**{**config.__dict__, "schedule": "constant"}),
              checkpoint=path)


def test_seeded_model_gives_the_same_init_in_concurrent_threads():
    from concurrent.futures import ThreadPoolExecutor

    def build():
        return torch.nn.Sequential(*[torch.nn.Linear(64, 64) for _ in range(8)])

    flat = lambda m: torch.cat([p.detach().reshape(-1) for p in m.parameters()])  # noqa: E731
    expected = {seed: flat(seeded_model(build, seed)) for seed in range(16)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        built = list(pool.map(lambda seed: (seed, flat(seeded_model(build, seed))), list(range(16)) * 4))
    assert all(torch.equal(values, expected[seed]) for seed, values in built)
