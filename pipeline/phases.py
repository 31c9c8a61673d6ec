"""Age training in phases under the shared budget: each phase's loaders and run_age_phases()."""
from __future__ import annotations

import logging
from dataclasses import asdict, replace
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from pipeline import checkpoint, runtime, steps, train
from pipeline.config import BudgetConfig, TrainConfig
from pipeline.data import loaders as L
from pipeline.data.cache import open_images
from pipeline.layout import CACHE, CHECKPOINTS, PHASE_SPLITS, sequence_files, split_path

log = logging.getLogger(__name__)

Phase = Literal["general", "korean"]
MIX_SEED_OFFSET = 7919  # the mixed-in general photos are shuffled by their own stream, not the Korean one's


def age_loaders(images: np.ndarray, phase: Phase, cfg: TrainConfig, device: torch.device,
                general_mix: float = 0.0) -> L.Loaders:
    """A phase's labelled batches; with `general_mix` > 0 that share of every training batch comes from the
    general *training* photos (validation stays the phase's own split)."""
    train_split, val_split = PHASE_SPLITS[phase]
    train_photos = L.photo_dataset(images, L.read_split(split_path(train_split)))
    n_general = round(general_mix * cfg.batch_size)
    if n_general:
        general = L.photo_dataset(images, L.read_split(split_path(PHASE_SPLITS["general"][0])))
        train = L.mixed_loader(
            L.make_loader(train_photos, cfg.batch_size - n_general, True, cfg.seed, device, cfg.num_workers),
            L.make_loader(general, n_general, True, cfg.seed + MIX_SEED_OFFSET, device, cfg.num_workers))
    else:
        train = L.make_loader(train_photos, cfg.batch_size, True, cfg.seed, device, cfg.num_workers)
    return L.Loaders(train=train, val=val_loader(images, val_split, cfg, device))


def val_loader(images: np.ndarray, split: str, cfg: TrainConfig, device: torch.device) -> L.EpochLoader:
    """Unshuffled batches of one split's photos, as every validation pass reads them."""
    return L.make_loader(L.photo_dataset(images, L.read_split(split_path(split))), cfg.batch_size, False, cfg.seed,
                         device, cfg.num_workers)


def run_age_phases(model: nn.Module, stage: str, phases: list[Phase], budget: BudgetConfig, settings: Any,
                   device: torch.device, step: steps.Step, lr_scale: float = 1.0,
                   tuple_batch_of: int = 0, from_trained: bool = False, age_model: nn.Module | None = None
                   ) -> tuple[dict, list[dict]]:
    """Train through `phases` in order under the shared budget; the same loop for every condition.

    `settings` is the stage's config (its seed seeds every phase); it is part of the checkpoint key, so a
    changed loss or coupling never resumes a checkpoint trained without it. With `tuple_batch_of` > 0 every
    age batch is paired with a batch of that many VCOP training tuples (multitrain). Every phase after the first,
    and the first when `from_trained` (the model holds trained weights), is a fine-tuning phase: with
    budget.select_start it keeps its starting weights unless an epoch beats them on val. In the Korean phase
    budget.korean.general_mix is the share of each batch drawn from general training photos, in every condition
    alike, and `korean_general_val_mae` records the general val MAE of `age_model` (the age regressor inside
    `model`; `model` itself when None) after it: forgetting.
    """
    images = open_images(CACHE)
    metrics: dict[str, float] = {}
    history: list[dict] = []
    for index, phase in enumerate(phases):
        cfg = budget.phase(phase, settings.seed)
        if lr_scale != 1.0:
            cfg = replace(cfg, lr=cfg.lr * lr_scale)
        general_mix = budget.korean.general_mix if phase == "korean" else 0.0
        loaders = age_loaders(images, phase, cfg, device, general_mix)
        if tuple_batch_of:
            tuples = L.tuple_loader(images, "train", tuple_batch_of, cfg.seed, device, True, cfg.num_workers)
            loaders = L.multitask_loaders(loaders, tuples)
        log.info("%s/%s: %d training batches/epoch, %d val batches", stage, phase, len(loaders.train),
                 len(loaders.val))
        mixed = (split_path(PHASE_SPLITS["general"][0]),) if general_mix else ()
        digest = checkpoint.input_digest(*(split_path(s) for s in PHASE_SPLITS[phase]), *mixed, *sequence_files())
        result = train.fit(model, loaders, step, cfg, CHECKPOINTS / stage / phase, device, select="mae",
                           tag=f"{stage}/{phase}",
                           fingerprint_parts=(digest, asdict(settings), lr_scale, tuple_batch_of,
                                              *((general_mix,) if general_mix else ())),
                           select_start=budget.select_start and (index > 0 or from_trained))
        metrics.update({f"{phase}_{k}": v for k, v in result.best.items()})
        if phase == "korean":
            metrics["korean_general_val_mae"] = general_val_mae(age_model or model, images, cfg, device)
        history += result.history
    return metrics, history


def general_val_mae(model: nn.Module, images: np.ndarray, cfg: TrainConfig, device: torch.device) -> float:
    """MAE on the general *validation* photos of the weights a Korean phase returned: how much of the general
    domain survived it (forgetting), scored where budget.korean.general_mix can be chosen without the test split."""
    val = val_loader(images, PHASE_SPLITS["general"][1], cfg, device)
    with runtime.forked_rng(device):  # nothing after this pass may draw differently because it was measured
        # full precision on every device (fit's val passes use AMP on CUDA): a forgetting score, not a selection
        stats = train.run_epoch(model, val.epoch(0), steps.age_step, device, use_amp=False, desc="general val")
    log.info("after the Korean phase: general val MAE %.3f", stats["mae"])
    return stats["mae"]
