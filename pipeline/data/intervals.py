"""Ages as intervals: a photo's label is [age_low, age_high] years; an exact age a is the interval [a, a].

A source that knows only an age band (the AIHub family-relations set: "b" = 7-12 years) writes `age_low` and
`age_high` beside `age` (the interval's midpoint, which orders, stratifies and plots). A source without the two
columns has exact ages, and every function here then computes exactly what it computed for a plain age: the
distance of a prediction to [a, a] is |pred - a| bit for bit, so exact-age runs keep their numbers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

INTERVAL_COLUMNS = ("age_low", "age_high")
# the AIHub family-relations set's life bands, in whole years (inclusive): a photo of band "b" shows a person
# aged 7 to 12. Band accuracy and per-band MAE use them for every source, exact ages included.
LIFE_BANDS: dict[str, tuple[int, int]] = {"a": (0, 6), "b": (7, 12), "c": (13, 19), "d": (20, 30), "e": (31, 45),
                                          "f": (46, 55), "g": (56, 66), "h": (67, 80)}
LIFE_BAND_NAMES = tuple(f"{k}:{lo}-{hi}" for k, (lo, hi) in LIFE_BANDS.items())
# a prediction between two bands' whole-year ranges (6.7 years) belongs to the nearer one
_CUTS = np.array([(LIFE_BANDS[a][1] + LIFE_BANDS[b][0]) / 2 for a, b in zip("abcdefg", "bcdefgh")])


def has_intervals(table: pd.DataFrame) -> bool:
    """True when the table carries interval labels (both columns), whatever their widths."""
    return all(c in table.columns for c in INTERVAL_COLUMNS)


def bounds(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of every row: the interval columns when present, else the exact `age` twice."""
    if has_intervals(table):
        return table["age_low"].to_numpy(float), table["age_high"].to_numpy(float)
    ages = table["age"].to_numpy(float)
    return ages, ages


def signed_error(pred: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """pred minus the nearest point of [low, high]: 0 inside, negative below, positive above (pred - a when exact)."""
    pred = np.asarray(pred, float)
    return pred - np.clip(pred, low, high)


def abs_error(pred: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The interval form of the absolute error: the distance of each prediction to its label interval."""
    return np.abs(signed_error(pred, low, high))


def table_abs_error(pred: np.ndarray, table: pd.DataFrame) -> np.ndarray:
    """abs_error of predictions for the rows of a split or predictions table (exact or interval labels)."""
    return abs_error(pred, *bounds(table))


def life_band(ages: np.ndarray) -> np.ndarray:
    """Index (0 = "a") of the life band each age (or prediction) falls in; beyond "h" stays "h"."""
    return np.digitize(np.asarray(ages, float), _CUTS)


def label_band(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The life band of each label: its midpoint's (a band label's own band; an exact age's band)."""
    return life_band((np.asarray(low, float) + np.asarray(high, float)) / 2)


def band_of_letter(letter: str) -> tuple[int, int]:
    """The whole-year range of a band letter; KeyError for a letter outside a-h."""
    return LIFE_BANDS[letter]
