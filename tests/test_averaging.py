"""The weight averages: the per-step EMA validation scores and the epoch average (`swa_epochs`) a phase returns; their
arithmetic, and that fit() returns them (resume: test_train)."""
import pytest
import torch
from torch import nn

from pipeline import checkpoint, steps, train
from pipeline.averaging import EpochAverage, WeightAverage
from pipeline.config import TrainConfig
from pipeline.models import AgeRegressor, build_encoder
from tests.test_train import CPU, cfg, fresh_model, pretrained, shifted_step, toy_images, toy_loaders


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
    train.fit(plain, toy_loaders(images, table, cfg(epochs=3)), steps.age_step, cfg(epochs=3), tmp_path / "p", CPU)
    result = train.fit(averaged, toy_loaders(images, table, c), steps.age_step, c, tmp_path / "a", CPU)
    assert any(not torch.equal(a, b) for a, b in zip(plain.state_dict().values(), averaged.state_dict().values()))
    saved = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    best = saved["best_model"]
    assert saved["average"]["updates"] == 3 * len(toy_loaders(images, table, c).train)
    for name, tensor in averaged.state_dict().items():
        assert torch.equal(tensor, best[name]), name
    assert result.best["val_mae"] == min(row["val_mae"] for row in result.history)


def test_epoch_average_is_the_running_mean_of_the_tail_and_copies_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    average = EpochAverage(epochs=2, total_epochs=4)
    seen = []
    for epoch in range(4):
        with torch.no_grad():
            model[0].weight.fill_(float(epoch))
            model[1].num_batches_tracked.fill_(10 * epoch)
        seen.append(average.add(model, epoch))
    assert seen == [False, False, True, True] and average.count == 2
    assert torch.equal(average.weights["0.weight"], torch.full((1, 2), 2.5))  # epochs 3 and 4 (0-based 2, 3)
    assert int(average.weights["1.num_batches_tracked"]) == 30
    with pytest.raises(ValueError, match="epochs"):
        EpochAverage(epochs=5, total_epochs=4)


def test_fit_with_swa_returns_the_average_of_its_last_epochs_with_batchnorm_recomputed(tmp_path, monkeypatch):
    images, table = toy_images()
    c = cfg(epochs=4, swa_epochs=2, val_every=1)  # history[0] below is scored
    trained = []  # the trained weights after every epoch (checkpoint_every_s 0: a checkpoint per epoch)
    save = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda path, payload: (
        trained.append({k: v.clone() for k, v in payload["model"].items()}), save(path, payload)))
    model = fresh_model()
    loaders = toy_loaders(images, table, c)
    result = train.fit(model, loaders, steps.age_step, c, tmp_path, CPU)
    assert len(trained) == 4 and result.best["averaged_epochs"] == 2 and result.best["best_epoch"] == 4
    state = model.state_dict()
    for name, tensor in state.items():
        if "running_" in name or "num_batches" in name:
            continue
        torch.testing.assert_close(tensor, (trained[2][name] + trained[3][name]) / 2, msg=name)
    # the statistics are the average weights' own, not an average of the epochs' statistics
    stats = [n for n in state if n.endswith("running_mean")]
    assert stats and all(not torch.allclose(state[n], (trained[2][n] + trained[3][n]) / 2) for n in stats)
    # what the result reports is the returned model's val MAE
    val = train.run_epoch(model, loaders.val.epoch(0), steps.age_step, CPU, use_amp=False)
    assert result.best["val_mae"] == pytest.approx(val["mae"], abs=1e-5)
    assert result.best["val_mae"] < result.history[0]["val_mae"]


def test_fit_with_swa_keeps_a_better_start_and_resumes_its_average(tmp_path):
    model, images, table = pretrained(tmp_path)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    c = cfg(epochs=3, swa_epochs=2)
    result = train.fit(model, toy_loaders(images, table, c), shifted_step, c, tmp_path / "ft", CPU, select_start=True)
    assert result.best["best_epoch"] == 0 and result.best["averaged_epochs"] == 0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in start.items())
    saved = torch.load(tmp_path / "ft" / "last.pt", weights_only=True)
    assert saved["average"]["count"] == 2  # the average is part of the resumable state
    # a finished run rebuilds the same result from its checkpoint
    model.load_state_dict(start)
    again = train.fit(model, toy_loaders(images, table, c), shifted_step, c, tmp_path / "ft", CPU, select_start=True)
    assert again.best == result.best


def test_val_every_changes_what_is_recorded_not_the_trained_weights(tmp_path):
    """With the epoch average a single epoch's val pass is only recorded: scoring every epoch, every other one or
    none gives the same weights (augmentation draws from the global RNG, which a val pass must not move), and the
    history says which epochs were scored."""
    images, table = toy_images()
    weights, scored = {}, {}
    for every in (1, 2, 0):
        c = cfg(epochs=4, swa_epochs=2, bn_recalibration=2, val_every=every)
        torch.manual_seed(0)
        model = AgeRegressor(build_encoder("tiny_cnn"), augment=True)
        result = train.fit(model, toy_loaders(images, table, c), steps.age_step, c, tmp_path / str(every), CPU)
        weights[every] = model.state_dict()
        scored[every] = ["val_mae" in row for row in result.history]
        assert result.best["averaged_epochs"] == 2 and "val_mae" in result.best  # the average is always scored
    assert scored == {1: [True] * 4, 2: [False, True, False, True], 0: [False] * 4}
    for every in (2, 0):
        for name, tensor in weights[1].items():
            assert torch.equal(tensor, weights[every][name]), (every, name)


def test_without_the_epoch_average_every_epoch_is_scored_whatever_val_every_says(tmp_path):
    images, table = toy_images()
    c = cfg(epochs=3, val_every=0)  # swa_epochs 0: best-epoch selection reads every epoch
    result = train.fit(fresh_model(), toy_loaders(images, table, c), steps.age_step, c, tmp_path, CPU)
    assert all("val_mae" in row for row in result.history)
    assert result.best["val_mae"] == min(row["val_mae"] for row in result.history)


@pytest.mark.parametrize("other, message", [({"ema_decay": 0.9}, "swa_epochs and ema_decay"),
                                            ({"patience": 2}, "early stopping"), ({"swa_epochs": -1}, "swa_epochs"),
                                            ({"val_every": -1}, "val_every")])
def test_swa_with_another_averaging_or_early_stopping_is_refused(other, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(seed=0, epochs=4, batch_size=8, lr=1.0e-3, **{"swa_epochs": 3, **other})
