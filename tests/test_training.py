"""Training by denoising score matching: the loss decreases, resume is exact, models are well-formed."""

from __future__ import annotations

import pytest
import torch

from unroll.data.gp import GaussianProcess
from unroll.data.kernels import kernel_from_name
from unroll.experiments.models import DiT, TemporalUNet, build_model, model_from_config
from unroll.experiments.trainer import TrainConfig, load_checkpoint, seeded_model, train


def _tiny_data(n: int = 256, frames: int = 8, dim: int = 2) -> torch.Tensor:
    gp = GaussianProcess(kernel_from_name("gamma-exponential", nu=1.0, ell=3.0), frames, torch.eye(dim))
    return gp.sample(n, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", ["dit", "unet", "relu_transformer"])
def test_dsm_loss_decreases_on_tiny_problem(kind):
    data = _tiny_data()
    options = {"dit": dict(width=16, blocks=1, heads=2), "unet": dict(channels=8, levels=1),
               "relu_transformer": dict(width=12, blocks=1, heads=4, ffn_width=8)}[kind]
    model = seeded_model(lambda: build_model(kind, 8, 2, **options), 0)
    result = train(model, data, TrainConfig(steps=80, batch_size=32, learning_rate=3e-3, warmup=10,
                                            progress=False))
    first, last = sum(result.losses[:20]) / 20, sum(result.losses[-20:]) / 20
    # The noise-prediction loss starts near 1 (zero-initialised read-outs) or above; it must fall clearly.
    assert last < 0.85 * first, (first, last)


@pytest.mark.parametrize("kind", ["dit", "unet"])
def test_resume_reaches_same_parameters_as_uninterrupted_run(kind, tmp_path):
    data = _tiny_data(n=64)
    options = {"dit": dict(width=16, blocks=1, heads=2), "unet": dict(channels=8, levels=1)}[kind]
    config = TrainConfig(steps=12, batch_size=16, warmup=3, seed=5, checkpoint_every=4, progress=False)
    build = lambda: build_model(kind, 8, 2, **options)  # noqa: E731

    straight = train(seeded_model(build, 1), data, config)

    path = tmp_path / "ckpt.pt"
    partial = train(seeded_model(build, 1), data, config, checkpoint=path, stop_after=7)
    assert partial.interrupted and partial.steps == 7
    assert load_checkpoint(path)["step"] == 7
    # A freshly built model with a different init: everything must come from the checkpoint.
    resumed = train(seeded_model(build, 99), data, config, checkpoint=path)
    assert resumed.resumed_from == 7 and resumed.steps == 12
    assert resumed.losses == straight.losses
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


def test_resume_refuses_other_settings(tmp_path):
    data = _tiny_data(n=32)
    path = tmp_path / "ckpt.pt"
    build = lambda: DiT(8, 2, width=8, blocks=1, heads=2)  # noqa: E731
    train(seeded_model(build, 0), data, TrainConfig(steps=3, batch_size=8, warmup=1, progress=False),
          checkpoint=path)
    with pytest.raises(ValueError, match="settings"):
        train(seeded_model(build, 0), data, TrainConfig(steps=3, batch_size=8, warmup=1, learning_rate=1e-2,
                                                        progress=False), checkpoint=path)
    with pytest.raises(ValueError, match="different data"):
        train(seeded_model(build, 0), data + 1, TrainConfig(steps=3, batch_size=8, warmup=1, progress=False),
              checkpoint=path)


def test_models_map_shapes_and_rebuild_from_config():
    x = torch.randn(3, 8, 2, generator=torch.Generator().manual_seed(0))
    for kind, model in (("dit", DiT(8, 2, width=16, blocks=2, heads=4)), ("unet", TemporalUNet(8, 2, channels=8))):
        assert model(x, 0.3).shape == x.shape
        assert model(x, torch.tensor([0.1, 0.2, 0.3])).shape == x.shape
        clone = model_from_config(kind, model.config)
        clone.load_state_dict(model.state_dict())
        assert torch.equal(clone(x, 0.3), model(x, 0.3))
    # Odd frame counts are padded inside the U-Net and cropped back.
    assert TemporalUNet(7, 2, channels=8, levels=2)(x[:, :7], 0.5).shape == (3, 7, 2)


def test_bad_inputs_raise_value_errors():
    model = DiT(8, 2, width=16, blocks=1, heads=4)
    with pytest.raises(ValueError, match="diffusion_time"):
        model(torch.zeros(2, 8, 2), 0.0)
    with pytest.raises(ValueError, match="width"):
        DiT(8, 2, width=10, blocks=1, heads=4)
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0).validate()
    with pytest.raises(ValueError, match="device"):
        TrainConfig(device="tpu").validate()
    with pytest.raises(ValueError, match="kind"):
        build_model("mlp", 8, 2)
