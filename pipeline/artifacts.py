"""Model files and a training stage's outputs: the list of conditions, model paths, save / load, history CSVs."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from torch import nn

from pipeline import runtime
from pipeline.config import ConfigError
from pipeline.data.cache import META
# the conditions and run paths are part of this module's interface (predict, report, study import them here)
from pipeline.data import intervals
from pipeline.layout import (CONDITION_STAGES, CONDITIONS, model_path, run_name,  # noqa: F401
                             trained_seeds)
from pipeline.layout import CACHE, PHASE_SPLITS, history_path, split_path, train_metrics_path
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

FACE_SETTINGS, LEGACY_FACE_SETTINGS = "face_settings", "preprocess"  # the model-file key, and its older name
MODEL_KEYS = ("kind", "encoder", "state")  # what every model file of this project holds (save_model)


class ModelFileError(ValueError):
    """A file that is not a readable model file of this project (truncated, corrupt, foreign); the message says
    which and what to do."""


def save_model(path: Path, model: nn.Module, kind: Literal["age", "vcop"], encoder: str, **meta) -> None:
    """Weights plus what rebuilds the model (kind, encoder name, `meta` such as tuple_len or input_record()):
    plain values only, so loading needs no pickled code (weights_only=True)."""
    runtime.save_torch(path, {"kind": kind, "encoder": encoder, "state": model.state_dict(), **meta})


def input_record(trained_on: Sequence[str] = ()) -> dict:
    """What a model file needs so predict needs nothing else: `face_settings`, the face settings (pipeline.faces.
    FaceSettings.to_dict()) of the role whose photos the model is for (the Korean role's when it learned Korean
    photos or VCOP, else the general role's), `face_settings_by_role` (each role's), and for an age model
    `age_range`, the [min, max] of the ages of its labelled training splits (`trained_on`: phases, e.g.
    ["general", "korean"]), and their names."""
    meta = runtime.read_json(CACHE / META)
    if not isinstance(meta.get("face"), dict) or "korean" not in meta["face"]:
        raise ValueError(f"{CACHE / META} does not say how each role's photos were prepared (built by an "
                         "older version); run `dvc repro prepare_data`")
    role = "korean" if not trained_on or "korean" in trained_on else "general"
    record: dict = {FACE_SETTINGS: meta["face"][role], "face_settings_by_role": meta["face"]}
    if trained_on:
        splits = [PHASE_SPLITS[phase][0] for phase in trained_on]
        # interval labels (age bands) reach from their low to their high ends
        lows, highs = zip(*(intervals.bounds(pd.read_csv(split_path(s))) for s in splits))
        record.update(age_range=[float(min(x.min() for x in lows)), float(max(x.max() for x in highs))],
                      trained_on=splits)
    return record


def face_settings_of(payload: dict) -> dict | None:
    """The face settings a model file records (FaceSettings.to_dict()); model files written before the key was
    named `face_settings` hold them under `preprocess`. None: the file records none."""
    return payload.get(FACE_SETTINGS, payload.get(LEGACY_FACE_SETTINGS))


def read_model_file(path: Path) -> dict:
    """A model file given by its path (predict from anywhere): no hint about stages, only what is wrong.

    Raises FileNotFoundError, or ModelFileError for a file that does not load or holds something else.
    """
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of foreign files
            payload = runtime.load_torch(path)
    except pickle.UnpicklingError:  # weights_only refuses pickled classes and code
        raise ModelFileError(f"{path}: not a model file of this project: it holds pickled objects, which are never "
                             "loaded (torch.load weights_only); pass a models/<stage>/seed<k>/model.pt") from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError, ... for a cut or corrupt file
        first_line = next(iter(str(err).splitlines()), "") or type(err).__name__
        raise ModelFileError(f"{path}: cannot be read as a model file, it is truncated or corrupt ({first_line[:120]});"
                             " copy it again, or rebuild it with `dvc repro`") from None
    if not isinstance(payload, dict) or any(key not in payload for key in MODEL_KEYS):
        held = f"keys {sorted(map(str, payload))[:6]}" if isinstance(payload, dict) else type(payload).__name__
        raise ModelFileError(f"{path}: not a model file of this project (it holds {held}, a model file holds "
                             f"{list(MODEL_KEYS)}); pass a models/<stage>/seed<k>/model.pt")
    settings = face_settings_of(payload)
    if settings is not None:  # predict allocates image_size² pixels per face: a doctored 10**9 must not reach it
        size = settings.get("image_size") if isinstance(settings, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 512:
            raise ModelFileError(f"{path}: its recorded face settings' image_size {size!r} is not a whole number in "
                                 "16..512 px; the file is damaged or foreign: pass a "
                                 "models/<stage>/seed<k>/model.pt")
    return payload


def age_model_from(payload: dict, path: Path | str = "model") -> AgeRegressor:
    if payload.get("kind") != "age":
        raise ValueError(f"{path} holds a '{payload.get('kind')}' model, not an age model")
    model = AgeRegressor(build_encoder(payload["encoder"]))
    model.load_state_dict(payload["state"])
    return model


def _load(path: Path, kind: str, needed_by: str) -> dict:
    if not path.exists():
        stage = _producer(path)
        raise FileNotFoundError(f"{path} not found: {needed_by} needs the output of stage '{stage}'; "
                                f"run `dvc repro {stage}`")
    payload = read_model_file(path)
    if payload.get("kind") != kind:
        raise ValueError(f"{path} holds a '{payload.get('kind')}' model, {needed_by} needs '{kind}'")
    return payload


def _producer(path: Path) -> str:
    """The dvc stage that writes a model file: models/<stage>/seed<k>/model.pt -> `<stage>@<k>`."""
    run = path.parent.name
    if run.startswith("seed") and run[4:].isdigit():
        return f"{path.parent.parent.name}@{run[4:]}"
    return run


def load_age_model(path: Path, needed_by: str = "this stage") -> tuple[AgeRegressor, str]:
    payload = _load(path, "age", needed_by)
    return age_model_from(payload, path), payload["encoder"]


def _vcop_from(payload: dict) -> VCOPModel:
    model = VCOPModel(build_encoder(payload["encoder"]), payload["tuple_len"], payload["head_hidden"])
    model.load_state_dict(payload["state"])
    # what of the photograph its tuples showed (pipeline.data.photo_control): evaluate scores it on the same
    model.photo_control = str(payload.get("photo_control", "none"))
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


def save_outputs(stage: str, seed: int, model: nn.Module, kind: Literal["age", "vcop"], encoder: str,
                 metrics: dict, history: list[dict], trained_on: Sequence[str] = (), **meta) -> None:
    """One training run's three outputs (run_name: `<stage>/seed<k>`, `seed` its training seed):
    models/<run>/model.pt, metrics/train/<run>.json and its history CSV, metrics/history/<run>.csv.

    The model file also records input_record(trained_on): its preprocessing and the ages it learned from
    (`trained_on`: the phases whose labels its weights saw, those of the model it started from included).
    Under torchrun every rank holds the same weights and metrics; rank 0 writes them.
    """
    if not runtime.is_main():
        return
    save_model(model_path(stage, seed), model, kind, encoder, **input_record(trained_on), train_seed=seed, **meta)
    write_history(history_path(stage, seed), history)
    runtime.write_json(train_metrics_path(stage, seed), metrics)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch rows for `dvc plots`; `step` counts epochs across phases."""
    frame = pd.DataFrame(history)
    frame.insert(0, "step", np.arange(1, len(frame) + 1))
    runtime.write_csv(path, frame)
