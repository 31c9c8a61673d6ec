"""Age training in phases under the shared budget: which splits each phase reads, its loaders, run_age_phases()."""
from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline import checkpoint, train
from pipeline.config import BudgetConfig, TrainConfig
from pipeline.data import loaders as L
from pipeline.data.cache import open_images

log = logging.getLogger(__name__)

CACHE = Path("data/cache")
SPLITS = Path("data/splits")
SEQUENCES = Path("data/sequences")
Phase = Literal["general", "korean"]
# phase -> (labelled training split, validation split); Korean labels obey the label budget
PHASE_SPLITS: dict[str, tuple[str, str]] = {
    "general": ("general_train", "general_val"),
    "korean": ("korean_train_labelled", "korean_val"),
}


def split_path(name: str) -> Path:
    return SPLITS / f"{name}.csv"


def age_loaders(images: np.ndarray, phase: Phase, cfg: TrainConfig, device: torch.device) -> L.Loaders:
    train_split, val_split = PHASE_SPLITS[phase]
    return L.Loaders(
        train=L.make_loader(L.photo_dataset(images, L.read_split(split_path(train_split))), cfg.batch_size, True,
                            cfg.seed, device, cfg.num_workers),
        val=L.make_loader(L.photo_dataset(images, L.read_split(split_path(val_split))), cfg.batch_size, False,
                          cfg.seed, device, cfg.num_workers),
    )


def tuple_loader(images: np.ndarray, split: Literal["train", "val"], batch_size: int, seed: int,
                 device: torch.device, train_mode: bool, num_workers: int = 0) -> L.EpochLoader:
    path = SEQUENCES / f"{split}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro build_sequences`")
    tuples = pd.read_csv(path, dtype={"person_id": str})
    if tuples.empty:
        raise ValueError(f"{path} holds no tuples: persons need >= tuple_len photos with min_gap_years between "
                         "them; lower build_sequences.min_gap_years or tuple_len")
    return L.make_loader(L.tuple_dataset(images, tuples, seed), batch_size, train_mode, seed, device, num_workers)


def run_age_phases(model: nn.Module, stage: str, phases: list[Phase], budget: BudgetConfig, settings: Any,
                   device: torch.device, step: train.Step, lr_scale: float = 1.0,
                   tuple_batch_of: int = 0) -> tuple[dict, list[dict]]:
    """Train through `phases` in order under the shared budget; the same loop for every condition.

    `settings` is the stage's config (its seed seeds every phase); it is part of the checkpoint key, so a
    changed loss or coupling never resumes a checkpoint trained without it. With `tuple_batch_of` > 0 every
    age batch is paired with a batch of that many VCOP training tuples (multitrain).
    """
    images = open_images(CACHE)
    metrics: dict[str, float] = {}
    history: list[dict] = []
    for phase in phases:
        cfg = budget.phase(phase, settings.seed)
        if lr_scale != 1.0:
            cfg = replace(cfg, lr=cfg.lr * lr_scale)
        loaders = age_loaders(images, phase, cfg, device)
        if tuple_batch_of:
            tuples = tuple_loader(images, "train", tuple_batch_of, cfg.seed, device, True, cfg.num_workers)
            loaders = L.Loaders(L.PairedLoader(loaders.train, tuples), L.PairedLoader(loaders.val, None))
        log.info("%s/%s: %d training batches/epoch, %d val batches", stage, phase, len(loaders.train),
                 len(loaders.val))
        digest = checkpoint.input_digest(*(split_path(s) for s in PHASE_SPLITS[phase]), SEQUENCES / "train.csv")
        result = train.fit(model, loaders, step, cfg, checkpoint.CHECKPOINTS / stage / phase, device, select="mae",
                           tag=f"{stage}/{phase}",
                           fingerprint_parts=(digest, asdict(settings), lr_scale, tuple_batch_of))
        metrics.update({f"{phase}_{k}": v for k, v in result.best.items()})
        history += result.history
    return metrics, history
