"""Stage evaluate's work: every condition's model of every training seed on the test splits, the seed means,
paired comparisons over (seed, person), the pretext's scores, and their tables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from pipeline import artifacts, metrics, runtime
from pipeline.config import EvalConfig
from pipeline.data import intervals
from pipeline.data.loaders import tuple_loader
from pipeline.data.sequences import permutations
from pipeline.data.splits import AGE_BANDS, BAND_NAMES
from pipeline.layout import CONDITION_STAGES, CONDITIONS, model_path

REFERENCES = ("baseline", "finetune_korean")  # each other condition gets a paired Δ MAE against these
Predictions = dict[tuple[str, int, str], np.ndarray]  # (condition, training seed, test split) -> predicted ages
# the age metrics averaged over seeds (n is shared); against age intervals each error is the distance to the interval
SCALARS = ("mae", "rmse", "bias", "cs3", "cs5", "cs7", "band_acc")
PRETEXT = ("val_acc", "val_top3", "val_kendall_tau")


@dataclass
class Tables:
    """The per-photo and per-band tables written as CSV for `dvc plots` and drawn as figures."""

    cs_curve: pd.DataFrame
    predictions: pd.DataFrame
    mae_by_band: pd.DataFrame


def predict_conditions(images: np.ndarray, tests: dict[str, pd.DataFrame], device: torch.device,
                       batch_size: int, seeds: Sequence[int], mirror_average: bool) -> Predictions:
    preds = {}
    for condition, stage in CONDITION_STAGES.items():
        for seed in seeds:
            model, _ = artifacts.load_age_model(model_path(stage, seed), needed_by="evaluate")
            for test, table in tests.items():
                preds[condition, seed, test] = metrics.predict_years(model, images, table["cache_row"].to_numpy(),
                                                                     device, batch_size, mirror_average)
    return preds


def condition_metrics(preds: Predictions, tests: dict[str, pd.DataFrame], seeds: Sequence[int]) -> dict[str, dict]:
    """condition -> what metrics/eval/details/<condition>.json holds: per test split the age metrics averaged
    over training seeds, their seed std (`seed_std`, null for one seed) and every seed's own (`per_seed`)."""
    results = {}
    for condition in CONDITIONS:
        per_seed = {seed: {t: metrics.age_metrics(preds[condition, seed, t], *intervals.bounds(tests[t]))
                           for t in tests} for seed in seeds}
        results[condition] = {**{t: seed_mean([per_seed[s][t] for s in seeds]) for t in tests},
                              "seed_std": {t: seed_std([per_seed[s][t] for s in seeds]) for t in tests},
                              "n_seeds": len(seeds), "per_seed": {str(s): per_seed[s] for s in seeds}}
    return results


def seed_mean(runs: list[dict]) -> dict:
    """age_metrics() of several training seeds on the same photos -> their mean (MAE per band included)."""
    def band_means(key: str, names: Sequence[str]) -> dict:
        values = {b: [r[key][b] for r in runs if r[key][b] is not None] for b in names}
        return {b: float(np.mean(v)) if v else None for b, v in values.items()}

    return {**{k: float(np.mean([r[k] for r in runs])) for k in SCALARS}, "n": runs[0]["n"],
            "mae_band": band_means("mae_band", BAND_NAMES),
            "mae_life_band": band_means("mae_life_band", intervals.LIFE_BAND_NAMES)}


def seed_std(runs: list[dict]) -> dict:
    """The seed-to-seed std (ddof 1) of each scalar age metric; None with one seed."""
    return {k: float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else None for k in SCALARS}


def compare_conditions(preds: Predictions, korean: pd.DataFrame, cfg: EvalConfig, seeds: Sequence[int]) -> dict:
    """Δ MAE of every condition vs each reference on the Korean test split, paired on (training seed, person),
    with a CI that resamples both (seed_person_bootstrap); each seed's own Δ beside it."""
    persons = korean["person_id"].to_numpy()
    abs_err = {c: np.stack([intervals.table_abs_error(preds[c, s, "korean"], korean) for s in seeds])
               for c in CONDITIONS}
    out = {}
    for ref in REFERENCES:
        out[f"vs_{ref}"] = {}
        for c in CONDITIONS:
            if c == ref:
                continue
            entry = metrics.compare(abs_err[c], abs_err[ref], persons, cfg.n_bootstrap, cfg.seed)
            entry["per_seed_mae_diff"] = {str(s): float((abs_err[c][i] - abs_err[ref][i]).mean())
                                          for i, s in enumerate(seeds)}
            out[f"vs_{ref}"][c] = entry
    return out


def pretext_scores(images: np.ndarray, device: torch.device, cfg: EvalConfig, seeds: Sequence[int]) -> dict:
    """Every seed's VCOP model on the val tuples (shuffled by the split seed, as pretrain_vcop selected on them):
    top-1, top-3, Kendall's tau, their means over seeds, and chance."""
    per_seed, n_val = {}, 0
    for seed in seeds:
        model = artifacts.load_vcop_model(model_path("pretrain_vcop", seed), needed_by="evaluate")
        val_tuples = tuple_loader(images, "val", cfg.batch_size, cfg.seed, device, train_mode=False,
                                  control=model.photo_control)
        perms, n_val = permutations(val_tuples.dataset.tuple_len), len(val_tuples.dataset)
        per_seed[str(seed)] = metrics.pretext_metrics(*metrics.vcop_logits(model, val_tuples.epoch(0), device), perms)
        per_seed[str(seed)]["photo_control"] = model.photo_control
    first = next(iter(per_seed.values()))
    return {**{k: float(np.mean([m[k] for m in per_seed.values()])) for k in PRETEXT},
            **{k: v for k, v in first.items() if k.startswith("chance_")},
            "photo_control": first["photo_control"], "n_val_tuples": n_val, "n_seeds": len(seeds),
            "per_seed": per_seed}


def tables(preds: Predictions, korean: pd.DataFrame, results: dict[str, dict], seeds: Sequence[int]) -> Tables:
    true, conditions = korean["age"].to_numpy(), CONDITIONS
    low, high = intervals.bounds(korean)
    curves = {c: np.mean([metrics.cs_curve(preds[c, s, "korean"], low, high) for s in seeds], axis=0)
              for c in conditions}
    # interval labels: their bounds beside the midpoint `age`, so a reader of predictions.csv scores it the same way
    bounds = {"age_low": low, "age_high": high} if intervals.has_intervals(korean) else {}
    # one row per (training seed, test photo); `photo` is its row in the test split and person ids let the study
    # pair and pool errors over runs
    predictions = pd.concat([pd.DataFrame({"seed": seed, "photo": np.arange(len(true)), "age": true, **bounds,
                                           **{c: preds[c, seed, "korean"].round(2) for c in conditions},
                                           "person_id": korean["person_id"].to_numpy()}) for seed in seeds],
                            ignore_index=True)
    return Tables(cs_curve=pd.DataFrame({"n": range(metrics.CS_MAX_YEARS + 1), **curves}), predictions=predictions,
                  mae_by_band=band_frame(results))


def band_frame(results: dict[str, dict]) -> pd.DataFrame:
    """Korean test MAE per age band (mean over seeds): one row per band, one column per condition.

    `band_start` (the band's lowest age) gives `dvc plots` a numeric x axis; `band` names it for people.
    """
    return pd.DataFrame({"band": list(BAND_NAMES), "band_start": list(AGE_BANDS[:len(BAND_NAMES)]),
                         **{name: [results[name]["korean"]["mae_band"][b] for b in BAND_NAMES]
                            for name in CONDITIONS}})


def headline(result: dict, vs_finetune: dict | None) -> dict:
    """A condition's row in `dvc metrics show`: the numbers the study compares, in reading order.

    DVC sorts metric columns by name, so the keys are numbered (two digits: `10_` must sort after `09_`). Every
    number is a mean over the training seeds, beside the seed std of the Korean MAE. The paired Δ MAE vs
    finetune_korean (negative = better), its CI and `09_ci_over` (what the CI resamples: "seeds+persons", or
    "persons" for a one-seed run, whose CI leaves training noise out) are empty (null) for finetune_korean itself.
    """
    korean, general = result["korean"], result["general"]
    return {"01_korean_mae": korean["mae"], "02_korean_mae_seed_std": result["seed_std"]["korean"]["mae"],
            "03_korean_cs5": korean["cs5"], "04_korean_bias": korean["bias"], "05_general_mae": general["mae"],
            "06_dmae_vs_finetune": vs_finetune["mae_diff"] if vs_finetune else None,
            "07_dmae_ci_low": vs_finetune["ci_low"] if vs_finetune else None,
            "08_dmae_ci_high": vs_finetune["ci_high"] if vs_finetune else None,
            "09_ci_over": vs_finetune["ci_over"] if vs_finetune else None,
            "10_n_seeds": result["n_seeds"], "11_korean_band_acc": korean["band_acc"]}


def write_outputs(out_dir: Path, results: dict[str, dict], comparison: dict, frames: Tables) -> None:
    """metrics/eval/<condition>.json (headline metrics), details/<condition>.json (every number per test split,
    seed means, seed std and each seed's: MAE, RMSE, CS, bias, n, MAE per band), comparison.json and the three
    plot CSVs."""
    for condition, result in results.items():
        runtime.write_json(out_dir / f"{condition}.json",
                           headline(result, comparison["vs_finetune_korean"].get(condition)))
        runtime.write_json(out_dir / "details" / f"{condition}.json", result)
    runtime.write_json(out_dir / "comparison.json", comparison)
    for name in ("cs_curve", "predictions", "mae_by_band"):
        runtime.write_csv(out_dir / f"{name}.csv", getattr(frames, name))
