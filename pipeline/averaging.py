"""An exponential moving average of a model's weights (and BatchNorm statistics): what validation scores and
selection keeps, so one noisy step at a high learning rate cannot decide which model a phase returns."""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """`module` holds the average of `model`'s weights; update() after every optimizer step.

    The decay ramps up as min(decay, (1 + n) / (10 + n)) after n updates (as timm's ModelEmaV3 warm-up does), so a
    freshly initialised head is forgotten within tens of steps instead of dominating the first epochs. BatchNorm's
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
