"""Metrics only (never trains): MAE, RMSE, cumulative scores, bias, per-band MAE, the paired bootstrap over
(training seed, test person), VCOP pretext top-1 / top-3 / Kendall's tau."""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import torch
from torch import nn

from pipeline.data import intervals
from pipeline.data.sequences import chance_accuracy
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
                  batch_size: int = 256, mirror_average: bool = False) -> np.ndarray:
    """Predicted ages (years) of cached photos `rows`; deterministic (eval mode, no augmentation). With
    `mirror_average` each is the mean of the photo's and its mirror image's prediction: training flips photos
    left-right, so both are faces the model knows, and their mean has less variance (evaluate's default)."""
    model.to(device).eval()
    out = []
    for start in range(0, len(rows), batch_size):
        batch = torch.from_numpy(images[rows[start:start + batch_size]]).permute(0, 3, 1, 2).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            years = to_years(model(batch).float())
            if mirror_average:
                years = (years + to_years(model(batch.flip(-1)).float())) / 2
        out.append(years.cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def age_metrics(pred: np.ndarray, low: np.ndarray, high: np.ndarray | None = None) -> dict:
    """The metrics of age-estimation papers against exact ages (`low` alone) or age intervals [low, high]: an
    error is the distance to the interval (0 inside; pipeline.data.intervals), so exact ages give the plain
    numbers. CS(n) is MegaAge-Asian's CA(n): share of |error| <= n years. `band_acc` is the share of predictions
    in the label's life band (a-h), `mae_life_band` the MAE per life band of the label."""
    if len(low) == 0:
        raise ValueError("no test photos: the test split is empty; check metrics/splits.json")
    high = low if high is None else high
    err = intervals.signed_error(pred, low, high)
    abs_err = np.abs(err)
    metrics = {"mae": float(abs_err.mean()), "rmse": float(np.sqrt((err**2).mean())), "bias": float(err.mean()),
               "n": int(len(low))}
    metrics.update({f"cs{n}": float((abs_err <= n).mean()) for n in CS_LEVELS})
    bands = age_band((np.asarray(low, float) + np.asarray(high, float)) / 2)
    metrics["mae_band"] = {name: (float(abs_err[bands == i].mean()) if (bands == i).any() else None)
                           for i, name in enumerate(BAND_NAMES)}
    life = intervals.label_band(low, high)
    metrics["band_acc"] = float((intervals.life_band(pred) == life).mean())
    metrics["mae_life_band"] = {name: (float(abs_err[life == i].mean()) if (life == i).any() else None)
                                for i, name in enumerate(intervals.LIFE_BAND_NAMES)}
    return metrics


def cs_curve(pred: np.ndarray, low: np.ndarray, high: np.ndarray | None = None,
             max_years: int = CS_MAX_YEARS) -> np.ndarray:
    abs_err = intervals.abs_error(pred, low, low if high is None else high)
    return np.array([(abs_err <= n).mean() for n in range(max_years + 1)])


def _ci_over(n_seeds: int) -> str:
    """What a CI resamples, as `dvc metrics show` prints it: one training run can only speak for its test persons."""
    return "seeds+persons" if n_seeds > 1 else "persons"


def seed_person_bootstrap(blocks: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int,
                          ci: float = 0.95) -> dict:
    """Mean paired difference with a percentile CI that resamples (training seed, test person) clusters.

    `blocks`: one (diff, persons) pair per split, `diff` (n_seeds, n_photos) holding |err_a| - |err_b| of the same
    photos in every training seed's row (a (n_photos,) array is one seed), `persons` (n_photos,) their person ids.
    The estimate is the photo-weighted mean over blocks of each block's seed-mean MAE difference. Each replicate
    draws, in every block, persons with replacement and seeds with replacement, crossed: a drawn person counts in
    every drawn seed, as the same test persons meet every training run (drawing persons anew per seed would
    shrink the person term by the number of seeds). The two conditions stay paired on seed and person. Blocks
    are strata: a study's splits each keep their own persons and runs.
    """
    stats = [_block_sums(np.atleast_2d(np.asarray(diff, float)), persons) for diff, persons in blocks]
    n_persons = sum(len(count) for _, count in stats)
    if n_persons < MIN_BOOTSTRAP_PERSONS:
        raise TooFewPersonsError(f"the test set has {n_persons} person(s); a person-level bootstrap needs >= "
                                 f"{MIN_BOOTSTRAP_PERSONS}: raise split_korean.korean_test_frac or add persons")
    rng = np.random.default_rng(seed)
    numerator, denominator = np.zeros(n_boot), np.zeros(n_boot)
    for sums, count in stats:  # sums (n_seeds, n_persons): per seed and person; count: photos per person
        n_seeds, n_ids = sums.shape
        # persons first: a one-seed block's CI is the person-only bootstrap's, draw for draw
        person_draws = rng.integers(0, n_ids, size=(n_boot, n_ids))
        seed_draws = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
        person_weight = np.stack([np.bincount(d, minlength=n_ids) for d in person_draws])  # (n_boot, n_ids)
        seed_weight = np.stack([np.bincount(d, minlength=n_seeds) for d in seed_draws])  # (n_boot, n_seeds)
        numerator += ((seed_weight @ sums) * person_weight).sum(axis=1) / n_seeds
        denominator += person_weight @ count
    boot = numerator / denominator
    estimate = sum(s.sum() / s.shape[0] for s, _ in stats) / sum(c.sum() for _, c in stats)
    alpha = (1 - ci) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    n_seeds = max(s.shape[0] for s, _ in stats)
    return {"mae_diff": float(estimate), "ci_low": float(low), "ci_high": float(high),
            "significant": bool(low > 0 or high < 0), "n_persons": int(n_persons), "n_seeds": int(n_seeds),
            "ci_over": _ci_over(n_seeds)}


def _block_sums(diff: np.ndarray, persons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per seed and person sums of `diff` (n_seeds, n_persons), photos per person (n_persons,))."""
    if diff.shape[1] != len(persons):
        raise ValueError(f"{diff.shape[1]} differences per seed but {len(persons)} person ids: every seed's row "
                         "must hold the same test photos")
    ids, inverse = np.unique(persons, return_inverse=True)
    sums = np.stack([np.bincount(inverse, weights=row, minlength=len(ids)) for row in diff])
    return sums, np.bincount(inverse, minlength=len(ids)).astype(float)


def paired_bootstrap(abs_err_a: np.ndarray, abs_err_b: np.ndarray, persons: np.ndarray, n_boot: int,
                     seed: int, ci: float = 0.95) -> dict:
    """MAE(a) - MAE(b) on one split: `abs_err_*` (n_photos,) for one training seed or (n_seeds, n_photos), the
    same photos in each row; the CI resamples persons (a person's photos are correlated) and, with several
    seeds, training seeds too (seed_person_bootstrap)."""
    return seed_person_bootstrap([(np.asarray(abs_err_a, float) - np.asarray(abs_err_b, float), persons)], n_boot,
                                 seed, ci)


def compare(abs_err_a: np.ndarray, abs_err_b: np.ndarray, persons: np.ndarray, n_boot: int, seed: int,
            ci: float = 0.95) -> dict:
    """paired_bootstrap (arrays as there), or the plain difference with a null CI when persons are too few."""
    return compare_blocks([(np.asarray(abs_err_a, float) - np.asarray(abs_err_b, float), persons)], n_boot, seed, ci)


def compare_blocks(blocks: Sequence[tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int, ci: float = 0.95) -> dict:
    """seed_person_bootstrap, or the plain difference with a null CI (and the reason) when persons are too few.

    A leave-one-person-out fold has one test person: its difference is still worth reporting, its CI is not.
    """
    try:
        return seed_person_bootstrap(blocks, n_boot, seed, ci)
    except TooFewPersonsError as err:
        log.warning("%s; reporting the difference without a CI", err)
        diffs = [np.atleast_2d(np.asarray(diff, float)) for diff, _ in blocks]
        estimate = sum(d.sum() / d.shape[0] for d in diffs) / sum(d.shape[1] for d in diffs)
        return {"mae_diff": float(estimate), "ci_low": None, "ci_high": None, "significant": False,
                "n_persons": int(sum(len(np.unique(p)) for _, p in blocks)),
                "n_seeds": int(max(d.shape[0] for d in diffs)), "ci_over": "none", "no_ci_reason": str(err)}


def kendall_tau(order_a: np.ndarray, order_b: np.ndarray) -> np.ndarray:
    """Kendall's tau between matching rows of two (N, T) rank arrays (each row a permutation of 0..T-1):
    +1 the same order, -1 reversed, 0 on average for a random guess."""
    i, j = np.triu_indices(order_a.shape[1], k=1)
    agree = np.sign(order_a[:, i] - order_a[:, j]) * np.sign(order_b[:, i] - order_b[:, j])
    return agree.mean(axis=1)


def pretext_metrics(logits: np.ndarray, labels: np.ndarray, perms: np.ndarray) -> dict:
    """VCOP on val tuples as the order-prediction literature reports it: top-1 and top-3 accuracy over the T!
    permutation classes and Kendall's tau between the predicted and the true order, with each one's chance."""
    if len(labels) == 0:
        raise ValueError("no val tuples to score the pretext on; check metrics/sequences.json")
    top3 = np.argsort(-logits, axis=1)[:, :3]
    n_classes = len(perms)  # T! for tuples of T = perms.shape[1] photos
    return {"val_acc": float((top3[:, 0] == labels).mean()), "val_top3": float((top3 == labels[:, None]).any(1).mean()),
            "val_kendall_tau": float(kendall_tau(perms[top3[:, 0]], perms[labels]).mean()),
            "chance_acc": chance_accuracy(perms.shape[1]), "chance_top3": min(1.0, 3 / n_classes),
            "chance_kendall_tau": 0.0}


@torch.inference_mode()
def vcop_logits(model: nn.Module, batches, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The VCOP model's class scores (N, T!) and the true permutation labels (N,) of every tuple in `batches`."""
    model.to(device).eval()
    logits, labels = [], []
    for tuples, batch_labels in batches:
        logits.append(model(tuples.to(device)).float().cpu().numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(logits), np.concatenate(labels)
