"""Step functions, one per task (age, VCOP, multitrain): a batch in, `(loss, stats)` out; fit() runs any of them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data.sequences import permutations
from pipeline.models.tasks import AGE_SCALE, to_normalised

Batch = Any
Step = Callable[[nn.Module, Batch], tuple[torch.Tensor, dict[str, torch.Tensor]]]  # batch in, (loss, stats) out


def _interval_distance(pred: torch.Tensor, intervals_years: torch.Tensor) -> torch.Tensor:
    """Per photo, the distance of normalised predictions to their [low, high] interval (0 inside)."""
    low, high = to_normalised(intervals_years[:, 0]), to_normalised(intervals_years[:, 1])
    return F.relu(low - pred) + F.relu(pred - high)


def age_loss(pred: torch.Tensor, ages_years: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """The age loss of normalised predictions (B,). Targets (B,) are exact ages; (B, 2) are [low, high] intervals
    (pipeline.data.intervals), for which `l1` and `smooth_l1` take the distance to the interval (0 inside) and
    `l1_midpoint` the L1 to its midpoint. On exact ages `l1_midpoint` is `l1`."""
    if ages_years.dim() == 2:
        if kind == "l1_midpoint":
            return F.l1_loss(pred, (to_normalised(ages_years[:, 0]) + to_normalised(ages_years[:, 1])) / 2)
        distance = _interval_distance(pred, ages_years)
        if kind == "smooth_l1":
            return F.smooth_l1_loss(distance, torch.zeros_like(distance), beta=1.0 / AGE_SCALE)
        return distance.mean()
    target = to_normalised(ages_years)
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, target, beta=1.0 / AGE_SCALE)  # quadratic only within ±1 year
    return F.l1_loss(pred, target)  # we report MAE, so we train on it


def age_error(pred: torch.Tensor, ages_years: torch.Tensor) -> torch.Tensor:
    """Mean absolute error in years of normalised predictions: to the age, or to the interval (0 inside)."""
    if ages_years.dim() == 2:
        return _interval_distance(pred, ages_years).mean() * AGE_SCALE
    return (pred - to_normalised(ages_years)).abs().mean() * AGE_SCALE


def age_step(model: nn.Module, batch: Batch, loss_kind: str = "l1") -> tuple[torch.Tensor, dict]:
    images, ages = batch
    pred = model(images).float()
    loss = age_loss(pred, ages, loss_kind)
    return loss, {"loss": loss.detach(), "mae": age_error(pred.detach(), ages)}


def vcop_step(model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict]:
    tuples, labels = batch
    logits = model(tuples).float()
    loss = F.cross_entropy(logits, labels)
    return loss, {"loss": loss.detach(), "acc": (logits.argmax(1) == labels).float().mean()}


@dataclass
class MultiStep:
    """Age loss on labelled photos + weighted VCOP loss + weighted coupling loss, all in one backward."""

    vcop_weight: float
    coupling_weight: float
    loss_kind: str = "l1"

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict]:
        age_batch, tuple_batch = batch
        loss, stats = age_step(model.age, age_batch, self.loss_kind)
        stats = {"age_loss": stats["loss"], "mae": stats["mae"]}
        if tuple_batch is None:  # validation: age only
            return loss, {"loss": loss.detach(), **stats}
        tuples, labels = tuple_batch
        vcop_features = model.vcop.features(tuples)
        logits = model.vcop.head(vcop_features).float()
        vcop = F.cross_entropy(logits, labels)
        perms = torch.as_tensor(permutations(tuples.shape[1]), device=labels.device)
        coupling = model.coupling_loss(tuples, labels, perms, vcop_features).float()
        total = loss + self.vcop_weight * vcop + self.coupling_weight * coupling
        stats.update(vcop_loss=vcop.detach(), coupling_loss=coupling.detach(),
                     acc=(logits.argmax(1) == labels).float().mean())
        return total, {"loss": total.detach(), **stats}
