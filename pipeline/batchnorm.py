"""BatchNorm statistics recomputed for the weights being scored ("precise BN"): what validation, selection and
the saved model use when a phase sets `bn_recalibration`.

Training updates BatchNorm's running statistics with momentum 0.1, so at a pretrained encoder's high lr they lag
the weights by tens of steps, and eval-mode val MAE jumps by years between epochs while train MAE falls smoothly
(benchmarks/README.md). Recomputing them, as a plain average over a fixed number of training batches, makes the
scored model the model that was trained.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, BATCHNORMS) and m.track_running_stats]


@torch.no_grad()
def recalibrate(model: nn.Module, batches: Iterable, forward: Callable[[nn.Module, object], object],
                n_batches: int) -> int:
    """Replace every BatchNorm's running mean and variance by their average over the first `n_batches` of
    `batches` (train-mode forward passes through `forward(model, batch)`, no gradients, weights untouched).
    A layer that no batch reaches (multitrain's VCOP encoder when only age photos are forwarded) keeps its
    statistics. Returns the number of batches used (0: the model has no BatchNorm, nothing changed)."""
    layers = batchnorms(model)
    if not layers or n_batches <= 0:
        return 0
    momenta = [layer.momentum for layer in layers]
    kept = [{name: buffer.clone() for name, buffer in layer.named_buffers()} for layer in layers]
    was_training = model.training
    used = 0
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # None: a cumulative average over the batches seen
        model.train()
        for batch in itertools.islice(batches, n_batches):  # islice: no batch beyond the n is drawn
            forward(model, batch)
            used += 1
    finally:
        for layer, momentum, buffers in zip(layers, momenta, kept):
            layer.momentum = momentum
            if int(layer.num_batches_tracked) == 0:  # not reached: reset_running_stats() must not stand
                for name, value in buffers.items():
                    getattr(layer, name).copy_(value)
        model.train(was_training)
    return used


def batches_from(epochs: Callable[[int], Iterable], first_epoch: int) -> Iterator:
    """Training batches in epoch `first_epoch`'s order, then the next epochs' orders, for as long as the caller
    draws. A split with fewer batches than a recalibration asks for (a low label budget: 4 batches at 16 labelled
    persons) is passed over again in new orders instead of resting its statistics on those few batches, whose
    draw moved a finished model's Korean val MAE by up to a year. Stops at an epoch that yields nothing."""
    for epoch in itertools.count(first_epoch):
        empty = True
        for batch in epochs(epoch):
            empty = False
            yield batch
        if empty:
            return
