"""Model files and a training stage's outputs: the list of conditions, model paths, save / load, history CSVs."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from torch import nn

from pipeline import phases, runtime
from pipeline.config import ConfigError
from pipeline.data.cache import META
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

# condition (row of the comparison, in report order) -> the stage whose model it evaluates
CONDITION_STAGES = {"baseline": "train_baseline", "finetune_korean": "finetune_korean", "downstream": "downstream",
                    "multitrain": "multitrain"}
CONDITIONS = tuple(CONDITION_STAGES)
HISTORY, TRAIN_METRICS = Path("metrics/history"), Path("metrics/train")


def model_path(stage: str) -> Path:
    return Path("models") / stage / "model.pt"


def save_model(path: Path, model: nn.Module, kind: Literal["age", "vcop"], encoder: str, **meta) -> None:
    """Weights plus what rebuilds the model (kind, encoder name, `meta` such as tuple_len or input_record()):
    plain values only, so loading needs no pickled code (weights_only=True)."""
    runtime.save_torch(path, {"kind": kind, "encoder": encoder, "state": model.state_dict(), **meta})


def input_record(trained_on: Sequence[str] = ()) -> dict:
    """What a model file needs so predict needs nothing else: `preprocess`, the face settings (pipeline.faces.
    FaceSettings.to_dict()) of the role whose photos the model is for (the Korean role's when it learned Korean
    photos or VCOP, else the general role's), `preprocess_by_role` (each role's), and for an age model
    `age_range`, the [min, max] of the ages of its labelled training splits (`trained_on`: phases, e.g.
    ["general", "korean"]), and their names."""
    meta = runtime.read_json(phases.CACHE / META)
    if not isinstance(meta.get("face"), dict) or "korean" not in meta["face"]:
        raise ValueError(f"{phases.CACHE / META} does not say how each role's photos were prepared (built by an "
                         "older version); run `dvc repro prepare_data`")
    role = "korean" if not trained_on or "korean" in trained_on else "general"
    record: dict = {"preprocess": meta["face"][role], "preprocess_by_role": meta["face"]}
    if trained_on:
        splits = [phases.PHASE_SPLITS[phase][0] for phase in trained_on]
        ages = pd.concat([pd.read_csv(phases.split_path(s), usecols=["age"])["age"] for s in splits])
        record.update(age_range=[float(ages.min()), float(ages.max())], trained_on=splits)
    return record


def read_model_file(path: Path) -> dict:
    """A model file given by its path (predict from anywhere): no hint about stages, only what is wrong."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    return runtime.load_torch(path)


def age_model_from(payload: dict, path: Path | str = "model") -> AgeRegressor:
    if payload.get("kind") != "age":
        raise ValueError(f"{path} holds a '{payload.get('kind')}' model, not an age model")
    model = AgeRegressor(build_encoder(payload["encoder"]))
    model.load_state_dict(payload["state"])
    return model


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
    return age_model_from(payload, path), payload["encoder"]


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
                 history: list[dict], trained_on: Sequence[str] = (), **meta) -> None:
    """A training stage's three outputs: models/<stage>/model.pt, metrics/train/<stage>.json, its history CSV.

    The model file also records input_record(trained_on): its preprocessing and the ages it learned from
    (`trained_on`: the phases whose labels its weights saw, those of the model it started from included).
    Under torchrun every rank holds the same weights and metrics; rank 0 writes them.
    """
    if not runtime.is_main():
        return
    save_model(model_path(stage), model, kind, encoder, **input_record(trained_on), **meta)
    write_history(HISTORY / f"{stage}.csv", history)
    runtime.write_json(TRAIN_METRICS / f"{stage}.json", metrics)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch rows for `dvc plots`; `step` counts epochs across phases."""
    frame = pd.DataFrame(history)
    frame.insert(0, "step", np.arange(1, len(frame) + 1))
    runtime.write_csv(path, frame)
