"""The weight average of the train scripts (dlhub.training.ema_model): its warmed-up decay, the average it keeps,
and resuming it from a checkpoint's safetensors. A short GTSRB run with it: tests/test_gtsrb.py."""

import pytest
import safetensors.torch
import torch

from dlhub.errors import DataError
from dlhub.training import ema_decay, ema_model


def test_decay_warms_up_to_its_ceiling():
    decays = [ema_decay(0.998, step) for step in range(10_000)]
    assert decays[0] == pytest.approx(0.1) and decays[10] == pytest.approx(11 / 20)
    assert all(a <= b for a, b in zip(decays, decays[1:]))
    assert max(decays) == 0.998 and decays.index(0.998) == 4490  # (1 + s) / (10 + s) reaches 0.998 at s = 4490
    assert ema_decay(0.9, 80) == 0.9 > ema_decay(0.9, 79)  # a low decay is reached sooner: (1 + 80) / 90 = 0.9


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


def train_steps(model, ema, steps: range) -> None:
    """A stand-in for training: weights and BatchNorm statistics change every step."""
    for step in steps:
        with torch.no_grad():
            model[0].weight.add_(0.1 * step)
        model.train()(torch.randn(8, 3, generator=torch.Generator().manual_seed(step)))
        ema.update_parameters(model)


def test_average_follows_the_warmed_up_recursion():
    model = small_model()
    ema = ema_model(model, 0.998)
    expected = None
    for step in range(30):
        train_steps(model, ema, range(step, step + 1))
        weight = model[0].weight.detach().clone()
        # the first update copies the weights; update n mixes in the new weights with 1 - ema_decay(decay, n)
        expected = weight if expected is None else torch.lerp(expected, weight, 1 - ema_decay(0.998, step))
        assert torch.allclose(ema.module[0].weight, expected, atol=1e-6), step
    assert ema.module[1].num_batches_tracked == model[1].num_batches_tracked == 30  # counters follow the model
    assert not torch.allclose(ema.module[1].running_mean, model[1].running_mean)  # statistics are averaged


def test_warm_up_keeps_a_short_run_near_its_latest_weights():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    model = small_model()
    warm = ema_model(model, 0.998)
    fixed = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.998), use_buffers=True)  # the old average
    for step in range(30):
        train_steps(model, warm, range(step, step + 1))
        fixed.update_parameters(model)
    distance = {name: (ema.module[0].weight - model[0].weight).abs().max() for name, ema in
                (("warm", warm), ("fixed", fixed))}
    # the fixed decay keeps 0.998^29 = 94% of the first step's weights; the warmed-up one a small fraction
    assert distance["warm"] < 0.3 * distance["fixed"], distance


def test_resumed_average_matches_an_uninterrupted_one(tmp_path):
    model = small_model()
    straight = ema_model(model, 0.998)
    train_steps(model, straight, range(40))

    model = small_model()
    first = ema_model(model, 0.998)
    train_steps(model, first, range(25))
    saved = {k: v.contiguous() for k, v in first.state_dict().items()}  # what save_checkpoint writes
    safetensors.torch.save_file(saved, tmp_path / "ema.safetensors")
    resumed = ema_model(model, 0.998)
    resumed.load_state_dict(safetensors.torch.load_file(tmp_path / "ema.safetensors"))
    assert int(resumed.n_averaged) == 25  # the warm-up goes on where it stopped
    train_steps(model, resumed, range(25, 40))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(DataError, match="outside \\(0, 1\\)"):
        ema_model(small_model(), decay)
