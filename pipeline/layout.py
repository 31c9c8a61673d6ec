"""Where the pipeline's files live (the one owner of each path): data, the cache, splits, VCOP tuples, model files,
checkpoints, training and evaluation outputs. Stages name theirs at the top from these, in dvc.yaml order.

A training stage runs once per training seed k; each run's outputs sit under `<stage>/seed<k>` (run_name).

Training (phases, stages) and evaluation (artifacts, comparison, predict) both find files here, so neither
imports the other for a path.
"""
from __future__ import annotations

from pathlib import Path

PROFILES = Path("profiles")  # named params overrides (pipeline.profiles)
INPUTS = Path("data/inputs.json")  # check_params' fingerprint of the real data roots
SYNTHETIC_RAW = Path("data/raw/synthetic")  # the synthetic source's photos
MANIFEST = Path("data/manifest.csv")
CACHE = Path("data/cache")
CACHE_INDEX = CACHE / "index.csv"
SPLITS = Path("data/splits")
SEQUENCES = Path("data/sequences")  # train.csv, val.csv, sampling.json (+ train_photos.csv when resampling)
MODELS = Path("models")
# outside DVC's outs, so a rerun of an interrupted stage can resume (training phases, a killed cache build)
CHECKPOINTS = Path(".checkpoints")
CACHE_RESUME = CHECKPOINTS / "prepare_data"
METRICS = Path("metrics")
DATA_SUMMARY, SPLITS_SUMMARY, SEQUENCES_SUMMARY = METRICS / "data.json", METRICS / "splits.json", \
    METRICS / "sequences.json"
HISTORY, TRAIN_METRICS = METRICS / "history", METRICS / "train"
EVAL, PLOTS, REPORT = METRICS / "eval", METRICS / "plots", METRICS / "report.md"
PREDICTIONS = EVAL / "predictions.csv"  # per-photo Korean-test predictions of every training seed
CONTACT_SHEET = PLOTS / "contact_sheet.png"
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


def eval_details_path(condition: str) -> Path:
    """Every number evaluate computed for a condition (per test split, per seed, CIs)."""
    return EVAL / "details" / f"{condition}.json"


def tuples_path(split: str) -> Path:
    """build_sequences' fixed VCOP tuples of a split (`train` or `val`)."""
    return SEQUENCES / f"{split}.csv"


def sequence_files() -> list[Path]:
    """Everything build_sequences wrote (sorted: glob order is the file system's): a checkpoint's data key."""
    return sorted(p for p in SEQUENCES.glob("*") if p.is_file())


def run_name(stage: str, seed: int) -> str:
    """One training run of a stage, `<stage>/seed<k>`: the folder or file stem of each of its outputs
    (models/<run>/model.pt, metrics/train/<run>.json, metrics/history/<run>.csv, .checkpoints/<run>/)."""
    return f"{stage}/seed{seed}"


def model_path(stage: str, seed: int) -> Path:
    return MODELS / run_name(stage, seed) / "model.pt"


def trained_seeds(stage: str) -> list[int]:
    """The training seeds whose model file of `stage` exists, ascending."""
    runs = (p.parent.name for p in (MODELS / stage).glob("seed*/model.pt"))
    return sorted(int(run[4:]) for run in runs if run[4:].isdigit())


def train_metrics_path(stage: str, seed: int) -> Path:
    return TRAIN_METRICS / f"{run_name(stage, seed)}.json"


def history_path(stage: str, seed: int) -> Path:
    return HISTORY / f"{run_name(stage, seed)}.csv"
