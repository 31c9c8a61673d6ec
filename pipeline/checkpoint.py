"""Resumable training state: the loop's progress, what a checkpoint was trained from, RNG states, save and resume."""
from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline import runtime
from pipeline.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class FitState:
    """Where the loop stands; saved with every checkpoint."""

    epoch: int = 0
    best_score: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    start: dict = field(default_factory=dict)  # val stats of the starting weights ("epoch 0"), when scored

    def record_start(self, score: float, row: dict) -> None:
        """The starting weights scored on val: an epoch must beat them to be selected (best_epoch stays -1)."""
        self.best_score, self.start = score, row

    def record(self, epoch: int, score: float | None, row: dict) -> bool:
        """Log one finished epoch (lower `score` is better); True when it is the best so far. `score` None: the
        epoch had no val pass (val_every), so it can be neither selected nor counted against patience."""
        improved = score is not None and score < self.best_score
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
        elif score is not None:
            self.bad_epochs += 1
        self.history.append(row)
        self.epoch = epoch + 1
        return improved


def fingerprint(cfg: TrainConfig, *parts: Any) -> str:
    """What a checkpoint was trained from: resuming is only allowed when this matches."""
    blob = json.dumps([asdict(cfg), [str(p) for p in parts]], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_digest(modules: dict[str, Any] | None = None) -> str:
    """Content key of the project code this process runs: every loaded `pipeline` module's file and the script.

    An edited loss (say in pipeline/models/tasks.py) makes DVC rerun the stage, as the file is in its deps; without
    this key the finished checkpoint would match and its old weights come back as the new output. The modules
    loaded are the stage's import closure, the files dvc.yaml lists as its deps. Keyed by module name, not path,
    so a clone elsewhere resumes the same checkpoint. `modules` defaults to sys.modules.
    """
    modules = sys.modules if modules is None else modules
    files = {name: getattr(module, "__file__", None) for name, module in list(modules.items())
             if name == "pipeline" or name.startswith("pipeline.") or name == "__main__"}
    h = hashlib.sha256()
    for name, file in sorted(files.items()):
        if file and Path(file).is_file():  # an interactive __main__ has no file
            h.update(f"{name}\0".encode())
            h.update(Path(file).read_bytes())
    return h.hexdigest()[:16]


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def input_digest(*paths: Path) -> str:
    """Content key of the files a phase reads: a resumed checkpoint must come from the same data."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes() if path.exists() else b"-")
    return h.hexdigest()[:16]


def rng_state() -> dict:
    """Every RNG the loop draws from, as tensors and plain numbers (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
             "python": {"version": version, "internal": list(internal), "gauss": gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict) -> None:
    runtime.save_torch(path, payload)


def save(path: Path, key: str, model: nn.Module, opt: Any, scheduler: Any, scaler: Any, state: FitState,
         best_weights: dict | None, average: dict | None = None) -> None:
    """`average`: the weight average's state (WeightAverage.state()), when the phase keeps one."""
    save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(), "scheduler": scheduler.state_dict(),
                           "scaler": scaler.state_dict(), "state": asdict(state), "rng": rng_state(),
                           "fingerprint": key, "best_model": best_weights, "average": average})


def resume(path: Path, key: str, model: nn.Module, opt: Any, scheduler: Any, scaler: Any, device: torch.device,
           tag: str) -> tuple[FitState, dict | None, dict | None]:
    """Load `path` into the given objects when it was trained from `key`; else a fresh state.

    Returns the loop state, the best weights so far and the weight average's state (None when starting afresh
    or when the phase keeps no average).
    """
    if not path.exists():
        return FitState(), None, None
    saved = runtime.load_torch(path, map_location=device)
    if saved.get("fingerprint") != key:
        log.info("%s: ignoring %s (trained from other params, data or code); starting afresh", tag, path)
        return FitState(), None, None
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    scheduler.load_state_dict(saved["scheduler"])
    scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    state = FitState(**saved["state"])
    log.info("%s: resuming from %s at epoch %d", tag, path, state.epoch)
    return state, saved["best_model"], saved.get("average")
