"""The weight average that validation scores: its arithmetic, and that fit() returns it (resume: test_train)."""
import pytest
import torch
from torch import nn

from pipeline import train
from pipeline.averaging import WeightAverage
from tests.test_train import CPU, cfg, fresh_model, toy_images, toy_loaders


def test_average_follows_the_decay_ramp_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    average = WeightAverage(model, decay=0.9)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked.fill_(7)
    average.update()  # first update: decay ramps to min(0.9, 2/11)
    expected = start + (1 - 2 / 11) * 1.0
    assert torch.allclose(average.module[0].weight, expected)
    assert int(average.module[1].num_batches_tracked) == 7
    for _ in range(200):
        average.update()
    assert torch.allclose(average.module[0].weight, model[0].weight, atol=1e-6)  # converges to a still model


def test_decay_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(1, 1), decay=1.0)


def test_fit_returns_the_average_not_the_last_step(tmp_path):
    images, table = toy_images()
    c = cfg(epochs=3, ema_decay=0.9)
    plain, averaged = fresh_model(), fresh_model()
    train.fit(plain, toy_loaders(images, table, cfg(epochs=3)), train.age_step, cfg(epochs=3), tmp_path / "p", CPU)
    result = train.fit(averaged, toy_loaders(images, table, c), train.age_step, c, tmp_path / "a", CPU)
    assert any(not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), averaged.state_dict().values()))
    saved = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    best = saved["best_model"]
    assert saved["average"]["updates"] == 3 * len(toy_loaders(images, table, c).train)
    for name, tensor in averaged.state_dict().items():
        assert torch.equal(tensor, best[name]), name
    assert result.best["val_mae"] == min(row["val_mae"] for row in result.history)
