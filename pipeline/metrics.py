"""Metrics only (never trains): MAE, RMSE, cumulative scores, bias, per-band MAE, person-level paired bootstrap."""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from pipeline.data.splits import BAND_NAMES, MIN_TEST_PERSONS, age_band
from pipeline.models.tasks import to_years

log = logging.getLogger(__name__)
CS_LEVELS = (3, 5, 7)
CS_MAX_YEARS = 15  # the CS curve's last error level, years
MIN_BOOTSTRAP_PERSONS = MIN_TEST_PERSONS  # the number split_korean checks


class TooFewPersonsError(ValueError):
    """The test set is too small for a person-level bootstrap."""


@torch.inference_mode()
def predict_years(model: nn.Module, images: np.ndarray, rows: np.ndarray, device: torch.device,
                  batch_size: int = 256) -> np.ndarray:
    """Predicted ages (years) of cached photos `rows`; deterministic (eval mode, no augmentation)."""
    model.to(device).eval()
    out = []
    for start in range(0, len(rows), batch_size):
        batch = torch.from_numpy(images[rows[start:start + batch_size]]).permute(0, 3, 1, 2).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out.append(to_years(model(batch).float()).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def age_metrics(pred: np.ndarray, true: np.ndarray) -> dict:
    """The metrics of age-estimation papers; CS(n) is MegaAge-Asian's CA(n): share of |error| <= n years."""
    if len(true) == 0:
        raise ValueError("no test photos: the test split is empty; check metrics/splits.json")
    err = pred - true
    abs_err = np.abs(err)
    metrics = {"mae": float(abs_err.mean()), "rmse": float(np.sqrt((err**2).mean())), "bias": float(err.mean()),
               "n": int(len(true))}
    metrics.update({f"cs{n}": float((abs_err <= n).mean()) for n in CS_LEVELS})
    bands = age_band(true)
    metrics["mae_band"] = {name: (float(abs_err[bands == i].mean()) if (bands == i).any() else None)
                           for i, name in enumerate(BAND_NAMES)}
    return metrics


def cs_curve(pred: np.ndarray, true: np.ndarray, max_years: int = CS_MAX_YEARS) -> np.ndarray:
    abs_err = np.abs(pred - true)
    return np.array([(abs_err <= n).mean() for n in range(max_years + 1)])


def paired_bootstrap(abs_err_a: np.ndarray, abs_err_b: np.ndarray, persons: np.ndarray, n_boot: int,
                     seed: int, ci: float = 0.95) -> dict:
    """MAE(a) - MAE(b) with a percentile CI, resampling *persons* (a person's photos are correlated)."""
    ids, inverse = np.unique(persons, return_inverse=True)
    if len(ids) < MIN_BOOTSTRAP_PERSONS:
        raise TooFewPersonsError(f"the test set has {len(ids)} person(s); a person-level bootstrap needs >= "
                                 f"{MIN_BOOTSTRAP_PERSONS}: raise split_korean.korean_test_frac or add persons")
    diff_sum = np.bincount(inverse, weights=abs_err_a - abs_err_b, minlength=len(ids))
    count = np.bincount(inverse, minlength=len(ids)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(ids), size=(n_boot, len(ids)))
    boot = diff_sum[draws].sum(axis=1) / count[draws].sum(axis=1)
    alpha = (1 - ci) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return {"mae_diff": float((abs_err_a - abs_err_b).mean()), "ci_low": float(low), "ci_high": float(high),
            "significant": bool(low > 0 or high < 0), "n_persons": int(len(ids))}


def compare(abs_err_a: np.ndarray, abs_err_b: np.ndarray, persons: np.ndarray, n_boot: int, seed: int,
            ci: float = 0.95) -> dict:
    """paired_bootstrap, or the plain difference with a null CI (and the reason) when persons are too few.

    A leave-one-person-out fold has one test person: its difference is still worth reporting, its CI is not.
    """
    try:
        return paired_bootstrap(abs_err_a, abs_err_b, persons, n_boot, seed, ci)
    except TooFewPersonsError as err:
        log.warning("%s; reporting the difference without a CI", err)
        return {"mae_diff": float((abs_err_a - abs_err_b).mean()), "ci_low": None, "ci_high": None,
                "significant": False, "n_persons": int(len(np.unique(persons))), "no_ci_reason": str(err)}


@torch.inference_mode()
def vcop_accuracy(model: nn.Module, batches, device: torch.device) -> float:
    model.to(device).eval()
    correct = total = 0
    for tuples, labels in batches:
        logits = model(tuples.to(device))
        correct += int((logits.argmax(1).cpu() == labels).sum())
        total += len(labels)
    return correct / max(total, 1)
