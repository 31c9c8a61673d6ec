"""BatchNorm recalibration: running statistics become the plain average over the given training batches."""
import copy
import dataclasses
import itertools

import pytest
import torch
from torch import nn

from pipeline import batchnorm, steps, train
from pipeline.models import AgeRegressor, MultiTrainModel, VCOPModel, build_encoder
from tests.test_train import CPU, cfg, fresh_model, toy_images, toy_loaders, toy_multitask_loaders


def test_statistics_become_the_average_over_the_batches_and_nothing_else_changes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
    model.eval()
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [torch.randn(8, 3) * 2 + k for k in range(6)]
    drawn = []

    def source():
        for batch in batches:
            drawn.append(batch)
            yield batch

    used = batchnorm.recalibrate(model, source(), lambda m, b: m(b), 4)
    assert used == 4 and len(drawn) <= 5  # stops after n batches
    with torch.no_grad():
        hidden = [model[0](b) for b in batches[:4]]
    bn = model[1]
    assert torch.allclose(bn.running_mean, torch.stack([h.mean(0) for h in hidden]).mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, torch.stack([h.var(0) for h in hidden]).mean(0), atol=1e-5)
    assert bn.momentum == 0.1 and not model.training  # restored
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_a_layer_no_batch_reaches_keeps_its_statistics():
    torch.manual_seed(0)
    reached, missed = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    model = nn.ModuleDict({"reached": reached, "missed": missed})
    missed.train()
    missed(torch.randn(16, 3) * 3 + 5)  # statistics of its own, away from the reset values
    kept = {name: buffer.clone() for name, buffer in missed.named_buffers()}
    used = batchnorm.recalibrate(model, iter([torch.randn(8, 3) + 2 for _ in range(3)]),
                                 lambda m, b: m["reached"](b), 3)
    assert used == 3 and int(reached.num_batches_tracked) == 3
    assert all(torch.equal(buffer, kept[name]) for name, buffer in missed.named_buffers())
    assert missed.momentum == 0.1


def test_a_model_without_batchnorm_is_left_alone():
    model = nn.Linear(3, 1)
    assert batchnorm.recalibrate(model, iter([torch.ones(2, 3)]), lambda m, b: m(b), 4) == 0


@pytest.mark.parametrize("n_batches", [0, 3])
def test_fit_returns_the_recalibrated_statistics(tmp_path, n_batches):
    """With bn_recalibration the returned model's statistics are those of its own training batches (recomputing
    them changes nothing); without, they are the momentum average that lags the weights."""
    images, table = toy_images()
    c = dataclasses.replace(cfg(epochs=2), bn_recalibration=n_batches)
    model = fresh_model()
    assert batchnorm.batchnorms(model), "the toy encoder must have BatchNorm for this test to mean anything"
    train.fit(model, toy_loaders(images, table, c), steps.age_step, c, tmp_path, CPU)
    before = [layer.running_mean.clone() for layer in batchnorm.batchnorms(model)]
    loaders = toy_loaders(images, table, c)
    batchnorm.recalibrate(model, loaders.train.epoch(c.epochs - 1), steps.age_step, 3)
    after = [layer.running_mean for layer in batchnorm.batchnorms(model)]
    same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    assert same == (n_batches == 3)


def test_batches_from_continues_in_the_next_epochs_orders_and_stops_on_an_empty_epoch():
    orders = {e: [f"{e}a", f"{e}b"] for e in range(3, 9)}
    drawn = list(itertools.islice(batchnorm.batches_from(orders.__getitem__, 3), 5))
    assert drawn == ["3a", "3b", "4a", "4b", "5a"]
    assert list(batchnorm.batches_from(lambda epoch: [], 0)) == []


def test_a_small_training_split_is_recalibrated_over_several_of_its_epochs(tmp_path):
    """A phase whose epoch has fewer batches than bn_recalibration (a low label budget) returns statistics
    averaged over that many batches, drawn from its last epoch's order and the following ones, not over its one
    pass of a few batches."""
    images, table = toy_images()
    c = dataclasses.replace(cfg(epochs=2), bn_recalibration=11, swa_epochs=1)
    model = fresh_model()
    train.fit(model, toy_loaders(images, table, c), steps.age_step, c, tmp_path, CPU)
    loaders = toy_loaders(images, table, c)
    n_per_epoch = len(loaders.train)
    assert n_per_epoch < c.bn_recalibration  # otherwise this test would not test anything

    def running_means_after(source, n_batches):
        probe = copy.deepcopy(model)
        assert batchnorm.recalibrate(probe, source, steps.age_step, n_batches) == n_batches
        return [layer.running_mean for layer in batchnorm.batchnorms(probe)]

    returned = [layer.running_mean for layer in batchnorm.batchnorms(model)]
    chained = running_means_after(batchnorm.batches_from(loaders.train.epoch, c.epochs - 1), c.bn_recalibration)
    one_pass = running_means_after(loaders.train.epoch(c.epochs - 1), n_per_epoch)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(returned, chained))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(returned, one_pass))


def test_multitrain_recalibrates_its_age_encoder_on_the_age_photos_alone(tmp_path):
    """Validation scores multitrain's age encoder on single photos; its statistics come from the labelled age
    batches, not also from the tuple photos its coupling runs through it in training."""
    c = cfg(epochs=1, bn_recalibration=3)
    torch.manual_seed(0)
    model = MultiTrainModel(AgeRegressor(build_encoder("tiny_cnn"), augment=False),
                            VCOPModel(build_encoder("r21d_mini"), 3, 32), "rank")
    step = steps.MultiStep(1.0, 1.0)
    train.fit(model, toy_multitask_loaders(c)[0], step, c, tmp_path, CPU)
    returned = [layer.running_mean.clone() for layer in batchnorm.batchnorms(model.age)]

    def age_means_after(batches) -> list[torch.Tensor]:
        probe = copy.deepcopy(model)
        assert batchnorm.recalibrate(probe, batches, step, c.bn_recalibration) == c.bn_recalibration
        return [layer.running_mean for layer in batchnorm.batchnorms(probe.age)]

    multitask, age = toy_multitask_loaders(c)
    age_alone = age_means_after((batch, None) for batch in batchnorm.batches_from(age.train.epoch, 0))
    with_tuples = age_means_after(batchnorm.batches_from(multitask.train.epoch, 0))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(returned, age_alone))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(returned, with_tuples))
