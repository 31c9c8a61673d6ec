"""Where the pipeline's files live: the data cache, splits, VCOP tuples, model files and training outputs.

Training (phases, stages) and evaluation (artifacts, comparison, predict) both find files here, so neither
imports the other for a path.
"""
from __future__ import annotations

from pathlib import Path

CACHE = Path("data/cache")
SPLITS = Path("data/splits")
SEQUENCES = Path("data/sequences")  # train.csv, val.csv, sampling.json (+ train_photos.csv when resampling)
HISTORY, TRAIN_METRICS = Path("metrics/history"), Path("metrics/train")
# condition (row of the comparison, in report order) -> the stage whose model it evaluates
CONDITION_STAGES = {"baseline": "train_baseline", "finetune_korean": "finetune_korean", "downstream": "downstream",
                    "multitrain": "multitrain"}
CONDITIONS = tuple(CONDITION_STAGES)
# training phase -> (labelled training split, validation split); Korean labels obey the label budget
PHASE_SPLITS: dict[str, tuple[str, str]] = {
    "general": ("general_train", "general_val"),
    "korean": ("korean_train_labelled", "korean_val"),
}


def split_path(name: str) -> Path:
    return SPLITS / f"{name}.csv"


def tuples_path(split: str) -> Path:
    """build_sequences' fixed VCOP tuples of a split (`train` or `val`)."""
    return SEQUENCES / f"{split}.csv"


def sequence_files() -> list[Path]:
    """Everything build_sequences wrote (sorted: glob order is the file system's): a checkpoint's data key."""
    return sorted(p for p in SEQUENCES.glob("*") if p.is_file())


def model_path(stage: str) -> Path:
    return Path("models") / stage / "model.pt"
