"""Deterministic synthetic aging faces: persons with stable traits whose rendered apparent age drifts with time.

Generative model (per domain d, person p, photo k):
    true age        t_pk  drawn from the domain's age distribution (a series of ages for a Korean person)
    apparent age    a_pk = t_pk + shift_d + offset_p + (rate_p - 1) * (t_pk - 25) + noise_pk
    offset_p ~ N(0, person_offset_years), rate_p ~ N(1, RATE_STD), noise_pk ~ N(0, age_noise_years)
The face drawn from a_pk changes smoothly and monotonically with it (proportions up to adulthood, then
wrinkles, greying, hairline, sagging); everything else (pose, light, blur, noise, JPEG, background) is
nuisance. A single photo therefore cannot reveal t_pk better than the Bayes floor computed in floor.py.
This module is the model (who, at which ages, looking how old); render.py draws the pixels and
synthetic_photos.py renders every person on a process pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.config import SyntheticConfig

RATE_STD = 0.08
DOMAIN_SHIFT_YEARS = {"general": 0.0, "korean": -3.0}  # Korean faces look younger: fine-tuning matters
AGE_LIMITS = (0.0, 80.0)
DOMAIN_CODE = {"general": 1, "korean": 2}


@dataclass(frozen=True)
class Person:
    domain: str
    index: int
    ages_years: tuple[float, ...]
    split_hint: str

    @property
    def person_id(self) -> str:
        return f"{self.domain[0]}{self.index:05d}"


# ------------------------------------------------------------------------------------------- age distributions
def sample_general_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """MegaAge-Asian-like: most mass 15-45, tails to 0 and 70."""
    kind = rng.choice(3, size=n, p=[0.75, 0.13, 0.12])
    core = rng.normal(28.0, 9.0, size=n)
    young = rng.uniform(0.0, 15.0, size=n)
    old = rng.uniform(45.0, 75.0, size=n)
    ages = np.where(kind == 0, core, np.where(kind == 1, young, old))
    return np.clip(ages, *AGE_LIMITS)


def sample_series_ages(rng: np.random.Generator, n_photos: int, span: tuple[float, float]) -> np.ndarray:
    """One person's photos across the years: a start age and sorted capture ages within a span."""
    years = rng.uniform(*span)
    start = rng.uniform(0.0, max(AGE_LIMITS[1] - years, 1.0))
    return np.sort(np.clip(start + rng.uniform(0.0, years, size=n_photos), *AGE_LIMITS))


def plan_persons(cfg: SyntheticConfig, seed: int) -> list[Person]:
    """Who exists and at which true ages; depends only on (cfg, seed), never on worker count."""
    rng = np.random.default_rng([seed, 0])
    persons: list[Person] = []
    g_lo, g_hi = cfg.general_photos
    test_ids = set(rng.permutation(cfg.n_general_persons)[: round(cfg.official_test_frac * cfg.n_general_persons)])
    for i in range(cfg.n_general_persons):
        n = int(rng.integers(g_lo, g_hi + 1))
        base = float(sample_general_ages(rng, 1)[0])
        ages = np.clip(base + rng.uniform(0, 2.0, size=n) * np.arange(n), *AGE_LIMITS)  # 2nd photo: later
        persons.append(Person("general", i, tuple(np.round(ages, 1)), "test" if i in test_ids else "train"))
    k_lo, k_hi = cfg.korean_photos
    for i in range(cfg.n_korean_persons):
        n = int(rng.integers(k_lo, k_hi + 1))
        ages = sample_series_ages(rng, n, tuple(cfg.korean_years))
        persons.append(Person("korean", i, tuple(np.round(ages, 1)), ""))
    return persons


# ------------------------------------------------------------------------------------------------ identities
@dataclass(frozen=True)
class Traits:
    """Stable identity: the same person is recognisable at every age."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    eye_color: tuple[float, float, float]
    face_width: float
    face_length: float
    eye_gap: float
    eye_size: float
    nose_len: float
    mouth_width: float
    hair_style: int  # 0 short, 1 long, 2 fringe
    balding: float  # propensity for hairline recession
    brow: float
    background: tuple[float, float, float]
    offset_years: float
    rate: float


def draw_traits(rng: np.random.Generator, domain: str, cfg: SyntheticConfig) -> Traits:
    if domain == "korean":
        skin = np.array([226, 190, 160]) + rng.normal(0, 10, 3)
        hair = np.array([30, 25, 22]) + rng.normal(0, 8, 3)
        background = rng.uniform([150, 150, 140], [230, 225, 210])
    else:
        tone = rng.uniform(0, 1)
        skin = (1 - tone) * np.array([240, 200, 170]) + tone * np.array([150, 105, 80]) + rng.normal(0, 8, 3)
        hair = np.array([[30, 25, 20], [90, 60, 35], [150, 110, 60], [200, 170, 110]])[rng.integers(0, 4)]
        hair = hair + rng.normal(0, 10, 3)
        background = rng.uniform(40, 230, 3)
    return Traits(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(np.clip(hair, 0, 255)),
        eye_color=tuple(np.clip(rng.uniform(20, 90, 3), 0, 255)),
        face_width=float(rng.uniform(0.26, 0.32)),
        face_length=float(rng.uniform(0.95, 1.1)),
        eye_gap=float(rng.uniform(0.38, 0.48)),
        eye_size=float(rng.uniform(0.85, 1.15)),
        nose_len=float(rng.uniform(0.85, 1.2)),
        mouth_width=float(rng.uniform(0.8, 1.2)),
        hair_style=int(rng.integers(0, 3)),
        balding=float(rng.uniform(0, 1)),
        brow=float(rng.uniform(0.7, 1.3)),
        background=tuple(background),
        offset_years=float(rng.normal(0, cfg.person_offset_years)),
        rate=float(rng.normal(1.0, RATE_STD)),
    )


def apparent_age(true_age: float, traits: Traits, domain: str, noise: float) -> float:
    return true_age + DOMAIN_SHIFT_YEARS[domain] + traits.offset_years + (traits.rate - 1) * (true_age - 25) + noise


def person_apparent_ages(person: Person, cfg: SyntheticConfig, seed: int
                         ) -> tuple[Traits, list[float], np.random.Generator]:
    """Identity and apparent ages of one person, before any pixel: the renderer draws these, and
    tests/test_synthetic.py's Monte-Carlo check of the floor samples them."""
    rng = np.random.default_rng([seed, DOMAIN_CODE[person.domain], person.index])
    traits = draw_traits(rng, person.domain, cfg)
    noise = rng.normal(0, cfg.age_noise_years, size=len(person.ages_years))
    apparent = [apparent_age(age, traits, person.domain, float(eps)) for age, eps in zip(person.ages_years, noise)]
    return traits, apparent, rng
