"""The conditions as data: which splits each training phase reads, how models are saved, loaded and chained."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from pipeline import runtime, train
from pipeline.config import BudgetConfig, ConfigError, TrainConfig, load_section
from pipeline.data import loaders as L
from pipeline.data.cache import open_images
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

log = logging.getLogger(__name__)

CACHE = Path("data/cache")
SPLITS = Path("data/splits")
SEQUENCES = Path("data/sequences")
CHECKPOINTS = Path(".checkpoints")  # resumable state, outside DVC's outs so a rerun can resume it
Phase = Literal["general", "korean"]
# condition (row of the comparison) -> the stage whose model it evaluates
CONDITION_STAGES = {"baseline": "train_baseline", "finetune_korean": "finetune_korean", "downstream": "downstream",
                    "multitrain": "multitrain"}
# phase -> (labelled training split, validation split); Korean labels obey the label budget
PHASE_SPLITS: dict[str, tuple[str, str]] = {
    "general": ("general_train", "general_val"),
    "korean": ("korean_train_labelled", "korean_val"),
}


def split_path(name: str) -> Path:
    return SPLITS / f"{name}.csv"


def model_path(stage: str) -> Path:
    return Path("models") / stage / "model.pt"


def age_loaders(images: np.ndarray, phase: Phase, cfg: TrainConfig, device: torch.device) -> train.Loaders:
    train_split, val_split = PHASE_SPLITS[phase]
    return train.Loaders(
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


def input_digest(*names: str) -> str:
    """Content key of the split files a phase reads: a resumed checkpoint must come from the same data."""
    h = hashlib.sha256()
    for name in names:
        path = Path(name)
        h.update(path.read_bytes() if path.exists() else b"-")
    return h.hexdigest()[:16]


def run_age_phases(model: nn.Module, stage: str, phases: list[Phase], budget: BudgetConfig, settings: Any,
                   device: torch.device, step: train.Step, lr_scale: float = 1.0,
                   tuple_batch_of: int = 0) -> tuple[dict, list[dict]]:
    """Train through `phases` in order under the shared budget; the same loop for every condition.

    `settings` is the stage's config (its seed seeds every phase); it is part of the checkpoint key, so a
    changed loss or coupling never resumes a checkpoint trained without it. With `tuple_batch_of` > 0 every
    age batch is paired with a batch of that many VCOP training tuples (multitrain).
    """
    seed = settings.seed
    images = open_images(CACHE)
    metrics: dict[str, float] = {}
    history: list[dict] = []
    for phase in phases:
        cfg = budget.phase(phase, seed)
        if lr_scale != 1.0:
            cfg = TrainConfig(**{**cfg.__dict__, "lr": cfg.lr * lr_scale})
        loaders = age_loaders(images, phase, cfg, device)
        if tuple_batch_of:
            tuples = tuple_loader(images, "train", tuple_batch_of, cfg.seed, device, True, cfg.num_workers)
            loaders = train.Loaders(train.PairedLoader(loaders.train, tuples), train.PairedLoader(loaders.val, None))
        log.info("%s/%s: %d training batches/epoch, %d val batches", stage, phase, len(loaders.train),
                 len(loaders.val))
        digest = input_digest(*(str(split_path(s)) for s in PHASE_SPLITS[phase]), str(SEQUENCES / "train.csv"))
        result = train.fit(model, loaders, step, cfg, CHECKPOINTS / stage / phase, device, select="mae",
                           tag=f"{stage}/{phase}",
                           fingerprint_parts=(digest, asdict(settings), lr_scale, tuple_batch_of))
        metrics.update({f"{phase}_{k}": v for k, v in result.best.items()})
        history += result.history
    return metrics, history


def budget(seed: int) -> BudgetConfig:
    cfg = load_section(BudgetConfig, "budget")
    for phase in ("general", "korean"):
        cfg.phase(phase, seed)  # validate both phases before any work
    return cfg


# ---------------------------------------------------------------------------------------------- save / load
def save_model(path: Path, model: nn.Module, kind: Literal["age", "vcop"], encoder: str, **meta) -> None:
    payload = {"kind": kind, "encoder": encoder, "state": model.state_dict(), **meta}
    with runtime.atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path: Path, kind: str, needed_by: str) -> dict:
    if not path.exists():
        stage = path.parent.name
        raise FileNotFoundError(f"{path} not found: {needed_by} needs the output of stage '{stage}'; "
                                f"run `dvc repro {stage}`")
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("kind") != kind:
        raise ValueError(f"{path} holds a '{payload.get('kind')}' model, {needed_by} needs '{kind}'")
    return payload


def load_age_model(path: Path, needed_by: str = "this stage") -> tuple[AgeRegressor, str]:
    payload = _load(path, "age", needed_by)
    model = AgeRegressor(build_encoder(payload["encoder"]))
    model.load_state_dict(payload["state"])
    return model, payload["encoder"]


def _vcop_from(payload: dict) -> VCOPModel:
    model = VCOPModel(build_encoder(payload["encoder"]), payload["tuple_len"], payload["head_hidden"])
    model.load_state_dict(payload["state"])
    return model


def load_vcop_model(path: Path, needed_by: str) -> VCOPModel:
    return _vcop_from(_load(path, "vcop", needed_by))


def load_vcop_encoder(path: Path, encoder: str, needed_by: str) -> tuple[str, nn.Module]:
    """The encoder of a pretrained VCOP model (name, module); `encoder`, when given, must match it."""
    payload = _load(path, "vcop", needed_by)  # read once: the checkpoint is tens of MB
    name = payload["encoder"]
    if encoder and name != encoder:
        raise ConfigError(f"{needed_by} asks for encoder '{encoder}' but {path} was pretrained with "
                          f"'{name}'; leave {needed_by}.encoder empty or set both the same")
    return name, _vcop_from(payload).encoder


def save_outputs(stage: str, model: nn.Module, kind: Literal["age", "vcop"], encoder: str, metrics: dict,
                 history: list[dict], **meta) -> None:
    """A training stage's three outputs: models/<stage>/model.pt, metrics/train/<stage>.json, its history CSV.

    Under torchrun every rank holds the same weights and metrics; rank 0 writes them.
    """
    if not runtime.is_main():
        return
    save_model(model_path(stage), model, kind, encoder, **meta)
    write_history(Path("metrics/history") / f"{stage}.csv", history)
    runtime.write_json(Path("metrics/train") / f"{stage}.json", metrics)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch rows for `dvc plots`; `step` counts epochs across phases."""
    frame = pd.DataFrame(history)
    frame.insert(0, "step", np.arange(1, len(frame) + 1))
    with runtime.atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
