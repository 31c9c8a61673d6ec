"""The one training loop: it learns, resumes exactly, stops on NaN, and multitrain couples for real."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import checkpoint, steps, train
from pipeline.config import TrainConfig
from pipeline.data import loaders
from pipeline.data.sequences import permutations
from pipeline.models import AgeRegressor, MultiTrainModel, VCOPModel, build_encoder
from pipeline.models.tasks import order_margin_loss

CPU = torch.device("cpu")


def toy_images(n: int = 96, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Photos whose brightness encodes age, plus noise: a model can learn it in a few epochs."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(0, 80, n)
    base = (30 + 2.5 * ages)[:, None, None, None] + rng.normal(0, 8, (n, 16, 16, 3))
    images = np.clip(base, 0, 255).astype(np.uint8)
    return images, pd.DataFrame({"cache_row": np.arange(n), "age": ages})


def toy_loaders(images, table, cfg) -> loaders.Loaders:
    make = lambda t, is_train: loaders.make_loader(loaders.photo_dataset(images, t), cfg.batch_size, is_train,  # noqa
                                                   cfg.seed, CPU)
    return loaders.Loaders(make(table.iloc[:72], True), make(table.iloc[72:], False))


def cfg(**overrides) -> TrainConfig:
    # no BatchNorm recalibration and no epoch average unless a test asks: steps counted by a test are training
    # steps only, and the returned weights are the best epoch's
    base = TrainConfig(seed=0, epochs=6, batch_size=16, lr=3.0e-3, warmup_epochs=0.2, checkpoint_every_s=0.0,
                       bn_recalibration=0, swa_epochs=0)
    return dataclasses.replace(base, **overrides)


def fresh_model(seed: int = 0) -> AgeRegressor:
    torch.manual_seed(seed)
    return AgeRegressor(build_encoder("tiny_cnn"), augment=False)


def test_fit_lowers_val_mae(tmp_path):
    images, table = toy_images()
    result = train.fit(fresh_model(), toy_loaders(images, table, cfg()), steps.age_step, cfg(), tmp_path, CPU)
    maes = [row["val_mae"] for row in result.history]
    assert result.best["val_mae"] == min(maes) and min(maes) < 0.6 * maes[0]
    saved = torch.load(tmp_path / "last.pt", weights_only=True)  # plain tensors and containers only
    assert saved["state"]["epoch"] == 6 and saved["state"]["best_epoch"] == result.best["best_epoch"] - 1


def test_finished_run_returns_its_best_weights_without_training(tmp_path, monkeypatch):
    images, table = toy_images()
    c = cfg(epochs=3, checkpoint_every_s=3600.0)
    writes = []
    save = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", lambda path, payload: (writes.append(path), save(path, payload)))
    first = fresh_model()
    result = train.fit(first, toy_loaders(images, table, c), steps.age_step, c, tmp_path, CPU)
    assert len(writes) == 1  # long interval: only the finished state is written

    def no_training(model, batch):
        raise AssertionError("a finished checkpoint must not train again")

    again = fresh_model()
    rerun = train.fit(again, toy_loaders(images, table, c), no_training, c, tmp_path, CPU)
    assert rerun.best == result.best
    for (name, a), b in zip(first.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name


class Interrupt(Exception):
    pass


# with a weight average (EMA, or the epoch average of the last epochs) the checkpoint must carry it too;
# recalibrated BatchNorm statistics must not change what training draws
# (the epoch-average runs die in their last epoch, when the checkpoint holds one averaged epoch: 8 step calls an
# epoch, 4 training, 2 recalibration, 2 val; 4 with val_every 0, which scores no single epoch)
@pytest.mark.parametrize("ema_decay, bn_recalibration, swa_epochs, val_every, die_at",
                         [(0.0, 0, 0, 1, 7), (0.9, 0, 0, 1, 7), (0.0, 2, 0, 1, 7), (0.0, 2, 2, 1, 21),
                          (0.0, 2, 2, 0, 11)])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, ema_decay, bn_recalibration, swa_epochs, val_every,
                                                      die_at):
    images, table = toy_images()
    c = cfg(epochs=3, ema_decay=ema_decay, bn_recalibration=bn_recalibration, swa_epochs=swa_epochs,
            val_every=val_every)
    torch.manual_seed(123)
    full = fresh_model()
    train.fit(full, toy_loaders(images, table, c), steps.age_step, c, tmp_path / "full", CPU)

    calls = {"n": 0}

    def dying_step(model, batch):  # dies mid-way through an epoch, like a kill -9 would
        calls["n"] += 1
        if calls["n"] == die_at:
            raise Interrupt
        return steps.age_step(model, batch)

    torch.manual_seed(123)
    with pytest.raises(Interrupt):
        train.fit(fresh_model(), toy_loaders(images, table, c), dying_step, c, tmp_path / "cut", CPU)
    if swa_epochs:
        assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["average"]["count"] == 1
    torch.manual_seed(999)  # the resumed process starts with other RNG state; the checkpoint restores it
    resumed = fresh_model()
    result = train.fit(resumed, toy_loaders(images, table, c), steps.age_step, c, tmp_path / "cut", CPU)
    assert len(result.history) == 3
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_checkpoint_from_other_params_is_not_resumed(tmp_path):
    images, table = toy_images()
    train.fit(fresh_model(), toy_loaders(images, table, cfg(epochs=1)), steps.age_step, cfg(epochs=1), tmp_path, CPU)
    other = cfg(epochs=2, lr=1.0e-3)
    result = train.fit(fresh_model(), toy_loaders(images, table, other), steps.age_step, other, tmp_path, CPU)
    assert [row["epoch"] for row in result.history] == [1, 2]  # started afresh, not from epoch 1


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    images, table = toy_images()
    calls = {"n": 0}

    def exploding_step(model, batch):
        calls["n"] += 1
        loss, stats = steps.age_step(model, batch)
        return (loss * float("nan") if calls["n"] > 6 else loss), stats

    with pytest.raises(train.NonFiniteLossError, match="last good checkpoint is kept"):
        train.fit(fresh_model(), toy_loaders(images, table, cfg()), exploding_step, cfg(), tmp_path, CPU)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)  # plain tensors and containers only
    assert saved["state"]["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())


# ------------------------------------------------------------------------------------------------ multitrain
def multitrain_model(coupling: str) -> MultiTrainModel:
    torch.manual_seed(0)
    return MultiTrainModel(AgeRegressor(build_encoder("tiny_cnn")), VCOPModel(build_encoder("r21d_mini"), 3, 32),
                           coupling)


def order_losses(model: MultiTrainModel) -> torch.Tensor:
    """The VCOP-side loss only (pretext + coupling): what must, or must not, reach the age encoder."""
    torch.manual_seed(1)
    tuples = torch.randint(0, 256, (4, 3, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 4, 5])
    features = model.vcop.features(tuples)
    vcop = torch.nn.functional.cross_entropy(model.vcop.head(features), labels)
    return vcop + model.coupling_loss(tuples, labels, torch.as_tensor(permutations(3)), features)


def age_encoder_grad_norm(model: MultiTrainModel) -> float:
    return sum(float(p.grad.abs().sum()) for p in model.age.encoder.parameters() if p.grad is not None)


@pytest.mark.parametrize("coupling", ["shared_head", "distill", "rank"])
def test_order_loss_reaches_the_age_encoder(coupling):
    model = multitrain_model(coupling).train()
    order_losses(model).backward()
    assert age_encoder_grad_norm(model) > 0


def test_none_coupling_sends_exactly_zero_gradient_to_the_age_encoder():
    model = multitrain_model("none").train()
    order_losses(model).backward()
    assert age_encoder_grad_norm(model) == 0.0
    assert all(p.grad is None for p in model.age.parameters())


def test_distill_teacher_is_not_trained_by_the_student():
    model = multitrain_model("distill").train()
    torch.manual_seed(1)
    tuples = torch.randint(0, 256, (4, 3, 3, 32, 32), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3])
    loss = model.coupling_loss(tuples, labels, torch.as_tensor(permutations(3)), model.vcop.features(tuples))
    loss.backward()
    assert all(p.grad is None for p in model.vcop.encoder.parameters())


def test_order_margin_loss_is_zero_only_when_predictions_follow_the_order():
    rank = torch.tensor([[2, 0, 1]])  # element 0 was taken last, element 1 first
    in_order = torch.tensor([[3.0, 1.0, 2.0]])
    assert float(order_margin_loss(in_order, rank, margin=0.5)) == 0.0
    too_close = torch.tensor([[1.2, 1.0, 1.1]])
    assert float(order_margin_loss(too_close, rank, margin=0.5)) > 0
    reversed_ = torch.tensor([[1.0, 3.0, 2.0]])
    assert float(order_margin_loss(reversed_, rank, margin=0.5)) > float(order_margin_loss(too_close, rank, 0.5))


def toy_multitask_loaders(cfg: TrainConfig) -> tuple[loaders.Loaders, loaders.Loaders]:
    """Multitrain's batches over 32 px toy photos (r21d_mini's smallest input): toy age batches, each paired with
    4 of 12 toy tuples; and the age batches alone."""
    images, table = toy_images(n=96)
    images = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)
    tuples = pd.DataFrame({"person_id": [f"p{i}" for i in range(12)], "row_0": np.arange(12),
                           "row_1": np.arange(12, 24), "row_2": np.arange(24, 36)})
    tuple_loader = loaders.make_loader(loaders.tuple_dataset(images, tuples, 0), 4, True, 0, CPU)
    age = toy_loaders(images, table, cfg)
    return loaders.multitask_loaders(age, tuple_loader), age


def test_fit_runs_multitrain_with_paired_batches(tmp_path):
    c = cfg(epochs=1)
    model = multitrain_model("rank")
    result = train.fit(model, toy_multitask_loaders(c)[0], steps.MultiStep(1.0, 1.0), c, tmp_path, CPU)
    row = result.history[0]
    assert row["train_coupling_loss"] > 0 and row["train_vcop_loss"] > 0 and np.isfinite(row["val_mae"])


# ------------------------------------------------------------------------------- select_start (fine-tuning)
def shifted_step(model, batch):
    """Trains towards ages 30 years too old (val stays true): every epoch ends worse on val than a good start."""
    images, ages = batch
    return steps.age_step(model, (images, ages + 30.0 * model.training))


def pretrained(tmp_path) -> tuple[AgeRegressor, np.ndarray, pd.DataFrame]:
    images, table = toy_images()
    model = fresh_model()
    train.fit(model, toy_loaders(images, table, cfg()), steps.age_step, cfg(), tmp_path / "pre", CPU)
    return model, images, table


def test_select_start_keeps_the_starting_weights_when_no_epoch_beats_them(tmp_path):
    model, images, table = pretrained(tmp_path)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    c = cfg(epochs=2)
    result = train.fit(model, toy_loaders(images, table, c), shifted_step, c, tmp_path / "ft", CPU, select_start=True)
    assert result.best["best_epoch"] == 0 and result.best["val_mae"] == result.best["start_val_mae"]
    assert all(row["val_mae"] > result.best["start_val_mae"] for row in result.history)
    for key, value in start.items():
        assert torch.equal(value, model.state_dict()[key]), key
    # without it, the phase returns the best *fine-tuning* epoch: worse on val than where it started
    model.load_state_dict(start)
    plain = train.fit(model, toy_loaders(images, table, c), shifted_step, c, tmp_path / "ft2", CPU)
    assert plain.best["best_epoch"] >= 1 and plain.best["val_mae"] > result.best["start_val_mae"]


def test_select_start_changes_nothing_when_an_epoch_beats_the_start(tmp_path):
    """Scoring the start draws no random numbers: the trained weights are those of a run without it."""
    images, table = toy_images()
    c = cfg(epochs=3)
    runs = []
    for select_start in (False, True):
        torch.manual_seed(5)
        model = AgeRegressor(build_encoder("tiny_cnn"), augment=True)  # augmentation draws from the global RNG
        result = train.fit(model, toy_loaders(images, table, c), steps.age_step, c, tmp_path / str(select_start),
                           CPU, select_start=select_start)
        runs.append((model, result))
    (plain, plain_result), (selecting, result) = runs
    assert result.best["best_epoch"] == plain_result.best["best_epoch"] >= 1
    assert result.best["start_val_mae"] > result.best["val_mae"] and "start_val_mae" not in plain_result.best
    for (name, a), b in zip(plain.state_dict().items(), selecting.state_dict().values()):
        assert torch.equal(a, b), name


def test_select_start_survives_a_resume(tmp_path):
    model, images, table = pretrained(tmp_path)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    c = cfg(epochs=3)
    calls = {"n": 0}

    def dying(m, batch):
        calls["n"] += 1
        if calls["n"] == 7:  # in the second epoch
            raise Interrupt
        return shifted_step(m, batch)

    with pytest.raises(Interrupt):
        train.fit(model, toy_loaders(images, table, c), dying, c, tmp_path / "ft", CPU, select_start=True)
    model.load_state_dict(start)  # a new process rebuilds the model from the same start
    result = train.fit(model, toy_loaders(images, table, c), shifted_step, c, tmp_path / "ft", CPU, select_start=True)
    assert result.best["best_epoch"] == 0 and len(result.history) == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in start.items())
