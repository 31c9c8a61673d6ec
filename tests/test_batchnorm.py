"""BatchNorm recalibration: running statistics become the plain average over the given training batches."""
import dataclasses

import pytest
import torch
from torch import nn

from pipeline import batchnorm, train
from tests.test_train import CPU, cfg, fresh_model, toy_images, toy_loaders


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
    train.fit(model, toy_loaders(images, table, c), train.age_step, c, tmp_path, CPU)
    before = [layer.running_mean.clone() for layer in batchnorm.batchnorms(model)]
    loaders = toy_loaders(images, table, c)
    batchnorm.recalibrate(model, loaders.train.epoch(c.epochs - 1), train.age_step, 3)
    after = [layer.running_mean for layer in batchnorm.batchnorms(model)]
    same = all(torch.allclose(a, b, atol=1e-6) for a, b in zip(before, after))
    assert same == (n_batches == 3)
