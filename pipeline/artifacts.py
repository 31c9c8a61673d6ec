"""Model files and a training stage's outputs: the list of conditions, model paths, save / load, history CSVs."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from torch import nn

from pipeline import runtime
from pipeline.config import ConfigError
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

# condition (row of the comparison, in report order) -> the stage whose model it evaluates
CONDITION_STAGES = {"baseline": "train_baseline", "finetune_korean": "finetune_korean", "downstream": "downstream",
                    "multitrain": "multitrain"}
CONDITIONS = tuple(CONDITION_STAGES)
HISTORY, TRAIN_METRICS = Path("metrics/history"), Path("metrics/train")


def model_path(stage: str) -> Path:
    return Path("models") / stage / "model.pt"


def save_model(path: Path, model: nn.Module, kind: Literal["age", "vcop"], encoder: str, **meta) -> None:
    """Weights plus what rebuilds the model (kind, encoder name, `meta` such as tuple_len): plain values only,
    so loading needs no pickled code (weights_only=True)."""
    runtime.save_torch(path, {"kind": kind, "encoder": encoder, "state": model.state_dict(), **meta})


def _load(path: Path, kind: str, needed_by: str) -> dict:
    if not path.exists():
        stage = path.parent.name
        raise FileNotFoundError(f"{path} not found: {needed_by} needs the output of stage '{stage}'; "
                                f"run `dvc repro {stage}`")
    payload = runtime.load_torch(path)
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
    write_history(HISTORY / f"{stage}.csv", history)
    runtime.write_json(TRAIN_METRICS / f"{stage}.json", metrics)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch rows for `dvc plots`; `step` counts epochs across phases."""
    frame = pd.DataFrame(history)
    frame.insert(0, "step", np.arange(1, len(frame) + 1))
    runtime.write_csv(path, frame)
