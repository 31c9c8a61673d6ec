"""Stage evaluate's work: every condition's model on the test splits, paired comparisons, and their tables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import artifacts, metrics, runtime
from pipeline.config import EvalConfig
from pipeline.data.loaders import tuple_loader
from pipeline.data.sequences import chance_accuracy
from pipeline.data.splits import AGE_BANDS, BAND_NAMES
from pipeline.layout import CONDITION_STAGES, CONDITIONS, model_path

REFERENCES = ("baseline", "finetune_korean")  # each other condition gets a paired Δ MAE against these
Predictions = dict[tuple[str, str], np.ndarray]  # (condition, test split) -> predicted ages (years)


@dataclass
class Tables:
    """The per-photo and per-band tables written as CSV for `dvc plots` and drawn as figures."""

    cs_curve: pd.DataFrame
    predictions: pd.DataFrame
    mae_by_band: pd.DataFrame


def predict_conditions(images: np.ndarray, tests: dict[str, pd.DataFrame], device: torch.device,
                       batch_size: int) -> Predictions:
    preds = {}
    for condition, stage in CONDITION_STAGES.items():
        model, _ = artifacts.load_age_model(model_path(stage), needed_by="evaluate")
        for test, table in tests.items():
            preds[condition, test] = metrics.predict_years(model, images, table["cache_row"].to_numpy(), device,
                                                            batch_size)
    return preds


def condition_metrics(preds: Predictions, tests: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """condition -> test split -> age metrics (what metrics/eval/<condition>.json holds)."""
    return {c: {t: metrics.age_metrics(preds[c, t], tests[t]["age"].to_numpy()) for t in tests}
            for c in CONDITIONS}


def compare_conditions(preds: Predictions, korean: pd.DataFrame, cfg: EvalConfig) -> dict:
    """Δ MAE of every condition vs each reference on the Korean test split, with person-level paired CIs."""
    true, persons = korean["age"].to_numpy(), korean["person_id"].to_numpy()
    abs_err = {c: abs(preds[c, "korean"] - true) for c in CONDITIONS}
    return {f"vs_{ref}": {c: metrics.compare(abs_err[c], abs_err[ref], persons, cfg.n_bootstrap, cfg.seed)
                          for c in CONDITIONS if c != ref}
            for ref in REFERENCES}


def pretext_accuracy(images: np.ndarray, device: torch.device, cfg: EvalConfig) -> dict:
    """The VCOP model's permutation accuracy on val tuples, beside chance (1 / T!)."""
    model = artifacts.load_vcop_model(model_path("pretrain_vcop"), needed_by="evaluate")
    val_tuples = tuple_loader(images, "val", cfg.batch_size, cfg.seed, device, train_mode=False)
    return {"val_acc": metrics.vcop_accuracy(model, val_tuples.epoch(0), device),
            "chance": chance_accuracy(val_tuples.dataset.tuple_len)}


def tables(preds: Predictions, korean: pd.DataFrame, results: dict[str, dict]) -> Tables:
    true, conditions = korean["age"].to_numpy(), CONDITIONS
    return Tables(
        cs_curve=pd.DataFrame({"n": range(metrics.CS_MAX_YEARS + 1),
                               **{c: metrics.cs_curve(preds[c, "korean"], true) for c in conditions}}),
        # person ids let the study pool paired errors over runs
        predictions=pd.DataFrame({"age": true, **{c: preds[c, "korean"].round(2) for c in conditions},
                                  "person_id": korean["person_id"].to_numpy()}),
        mae_by_band=band_frame(results),
    )


def band_frame(results: dict[str, dict]) -> pd.DataFrame:
    """Korean test MAE per age band: one row per band, one column per condition.

    `band_start` (the band's lowest age) gives `dvc plots` a numeric x axis; `band` names it for people.
    """
    return pd.DataFrame({"band": list(BAND_NAMES), "band_start": list(AGE_BANDS[:len(BAND_NAMES)]),
                         **{name: [results[name]["korean"]["mae_band"][b] for b in BAND_NAMES]
                            for name in CONDITIONS}})


def headline(result: dict, vs_finetune: dict | None) -> dict:
    """A condition's row in `dvc metrics show`: the numbers the study compares, in reading order.

    DVC sorts metric columns by name, so the keys are numbered. The paired Δ MAE vs finetune_korean (negative =
    better) and its CI are empty (null) for finetune_korean itself.
    """
    korean, general = result["korean"], result["general"]
    return {"1_korean_mae": korean["mae"], "2_korean_cs5": korean["cs5"], "3_korean_bias": korean["bias"],
            "4_general_mae": general["mae"],
            "5_dmae_vs_finetune": vs_finetune["mae_diff"] if vs_finetune else None,
            "6_dmae_ci_low": vs_finetune["ci_low"] if vs_finetune else None,
            "7_dmae_ci_high": vs_finetune["ci_high"] if vs_finetune else None}


def write_outputs(out_dir: Path, results: dict[str, dict], comparison: dict, frames: Tables) -> None:
    """metrics/eval/<condition>.json (headline metrics), details/<condition>.json (every number per test split:
    MAE, RMSE, CS, bias, n, MAE per band), comparison.json and the three plot CSVs."""
    for condition, result in results.items():
        runtime.write_json(out_dir / f"{condition}.json",
                           headline(result, comparison["vs_finetune_korean"].get(condition)))
        runtime.write_json(out_dir / "details" / f"{condition}.json", result)
    runtime.write_json(out_dir / "comparison.json", comparison)
    for name in ("cs_curve", "predictions", "mae_by_band"):
        runtime.write_csv(out_dir / f"{name}.csv", getattr(frames, name))
