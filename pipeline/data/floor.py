"""Bayes floor of the synthetic data: the lowest MAE any single-photo regressor can reach.

A perfect reader of the face recovers the apparent age a; the true age t given a has posterior
p(t | a) ∝ prior(t) · N(a; t + shift, var(t)), var(t) = offset² + (t - 25)²·rate_std² + noise².
Under absolute error the best guess is the posterior median, and its expected error is the floor.
"""
from __future__ import annotations

import numpy as np

from pipeline.config import SyntheticConfig
from pipeline.data.synthetic import AGE_LIMITS, DOMAIN_SHIFT_YEARS, RATE_STD, plan_persons

GRID_STEP = 0.25


def prior_grid(ages_years: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histogram prior of true ages on a fixed grid (bin centres, probabilities)."""
    edges = np.arange(AGE_LIMITS[0] - GRID_STEP / 2, AGE_LIMITS[1] + GRID_STEP, GRID_STEP)
    counts, _ = np.histogram(ages_years, bins=edges)
    return (edges[:-1] + edges[1:]) / 2, counts / counts.sum()


def _likelihood(apparent: np.ndarray, ages: np.ndarray, domain: str, cfg: SyntheticConfig) -> np.ndarray:
    """p(a | t) for every (a, t) pair: shape (len(apparent), len(ages))."""
    var = cfg.person_offset_years**2 + (ages - 25.0) ** 2 * RATE_STD**2 + cfg.age_noise_years**2
    mean = ages + DOMAIN_SHIFT_YEARS[domain]
    var = np.maximum(var, 1e-6)
    z = (apparent[:, None] - mean[None, :]) ** 2 / var[None, :]
    return np.exp(-0.5 * z) / np.sqrt(2 * np.pi * var[None, :])


def posterior_median(apparent: np.ndarray, prior: tuple[np.ndarray, np.ndarray], domain: str,
                     cfg: SyntheticConfig) -> np.ndarray:
    ages, probs = prior
    post = _likelihood(np.atleast_1d(apparent), ages, domain, cfg) * probs[None, :]
    cdf = np.cumsum(post, axis=1) / np.maximum(post.sum(axis=1, keepdims=True), 1e-300)
    return ages[np.argmax(cdf >= 0.5, axis=1)]


def bayes_floor(ages_years: np.ndarray, domain: str, cfg: SyntheticConfig) -> float:
    """Expected |t - median(t | a)| under the generative model, by numerical integration over a."""
    ages, probs = prior = prior_grid(ages_years)
    apparent = np.arange(ages[0] - 40, ages[-1] + 40, GRID_STEP)
    joint = _likelihood(apparent, ages, domain, cfg) * probs[None, :] * GRID_STEP  # p(a, t) da
    median = posterior_median(apparent, prior, domain, cfg)
    return float((joint * np.abs(ages[None, :] - median[:, None])).sum() / joint.sum())


def domain_floors(cfg: SyntheticConfig, seed: int) -> dict[str, float]:
    """Floor per domain, with the prior taken from a large draw of the same age distributions."""
    big = SyntheticConfig(**{**cfg.__dict__, "n_general_persons": 20000, "n_korean_persons": 4000})
    persons = plan_persons(big, seed + 1)
    floors = {}
    for domain in ("general", "korean"):
        ages = np.concatenate([p.ages_years for p in persons if p.domain == domain])
        floors[domain] = round(bayes_floor(ages, domain, cfg), 4)
    return floors
