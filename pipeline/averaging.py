"""A phase's two weight averages: the EMA (WeightAverage, `ema_decay`), what validation scores and selection keeps,
so one noisy step at a high learning rate cannot decide which model a phase returns; and the epoch average
(EpochAverage, `swa_epochs`), what a phase returns instead of its best epoch."""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """`module` holds the average of `model`'s weights; update() after every optimizer step.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates (TensorFlow's ExponentialMovingAverage with
    num_updates; timm's ModelEmaV3 warm-up ramps as 1 - (1 + n / gamma) ** -power instead), so a freshly initialised
    head is forgotten within tens of steps instead of dominating the first epochs. BatchNorm's
    running statistics are averaged like weights; integer buffers (num_batches_tracked) are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay, self.updates = decay, 0
        self.module = copy.deepcopy(model).requires_grad_(False)
        # state_dict() tensors share storage with the live parameters and buffers (load_state_dict copies into
        # them), so the pairs are built once here, not on every optimizer step
        averaged, current = self.module.state_dict(), model.state_dict()
        floats = [k for k, v in current.items() if v.dtype.is_floating_point]
        others = [k for k, v in current.items() if not v.dtype.is_floating_point]
        self._avg_floats, self._floats = [averaged[k] for k in floats], [current[k].detach() for k in floats]
        self._avg_others, self._others = [averaged[k] for k in others], [current[k] for k in others]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self._avg_floats, self._floats, 1.0 - decay)
        for target, source in zip(self._avg_others, self._others):
            target.copy_(source)

    def state(self) -> dict:
        return {"weights": self.module.state_dict(), "updates": self.updates}

    def load(self, state: dict) -> None:
        self.module.load_state_dict(state["weights"])
        self.updates = int(state["updates"])


class EpochAverage:
    """The epoch average: the uniform average of a model's weights at the end of each of a phase's last `epochs`
    epochs (params key `swa_epochs`, after stochastic weight averaging, Izmailov et al. 2018, here over the cosine
    schedule's last epochs): what the phase returns instead of its best epoch, so which late epoch happened to score
    best on a small val split no longer decides the model.

    Integer buffers (num_batches_tracked) are copied. BatchNorm statistics are averaged like weights, but they do
    not belong to the averaged weights: fit() recomputes them (pipeline.batchnorm) before scoring the average.
    """

    def __init__(self, epochs: int, total_epochs: int):
        if not 1 <= epochs <= total_epochs:
            raise ValueError(f"epochs must be in [1, {total_epochs}], got {epochs}")
        self.first_epoch = total_epochs - epochs  # 0-based index of the first epoch averaged
        self.count = 0
        self.weights: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def add(self, model: nn.Module, epoch: int) -> bool:
        """Fold in `model`'s weights after 0-based `epoch`; False (nothing done) before the averaged epochs."""
        if epoch < self.first_epoch:
            return False
        self.count += 1
        for key, value in model.state_dict().items():
            value = value.detach().to("cpu", copy=True)
            if key not in self.weights or not value.dtype.is_floating_point:
                self.weights[key] = value
            else:
                self.weights[key].lerp_(value, 1.0 / self.count)  # running mean: avg + (x - avg) / n
        return True

    def state(self) -> dict:
        return {"weights": self.weights, "count": self.count}

    def load(self, state: dict) -> None:
        self.weights, self.count = dict(state["weights"]), int(state["count"])
