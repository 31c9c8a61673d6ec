"""VCOP tuples: `tuple_len` photos of one person in age (or capture-date) order, from one split's persons.

With interval ages (age bands) two photos are ordered only when their intervals do not overlap, and
`min_gap_years` is the gap between the intervals: a tuple takes its photos from distinct bands."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from pipeline.data import intervals

MAX_ENUMERATE = 20000  # beyond this many combinations per person, sample instead of enumerating


def chance_accuracy(tuple_len: int) -> float:
    """The pretext accuracy of guessing: one of the T! orderings."""
    return 1 / math.factorial(tuple_len)


class NoTuplesError(ValueError):
    """No person of a split has `tuple_len` photos `min_gap_years` apart."""


def no_tuples(where: str, tuple_len: int | str = "tuple_len", min_gap_years: float | str = "min_gap_years"
              ) -> NoTuplesError:
    """The one error for a split without VCOP tuples, wherever it is found (building, loading or drawing)."""
    return NoTuplesError(f"no tuples {where}: no person has {tuple_len} photos {min_gap_years} years apart; lower "
                         "build_sequences.min_gap_years or tuple_len")


def permutations(tuple_len: int) -> np.ndarray:
    """All orderings of range(tuple_len), in lexicographic order; the VCOP label is a row index."""
    return np.array(list(itertools.permutations(range(tuple_len))), dtype=np.int64)


def _order_key(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) of each photo in years since an arbitrary origin: its capture date when the source has one
    (start = end), else its age interval (pipeline.data.intervals; start = end for an exact age)."""
    if "date" in part and (part["date"] != "").all():
        dates = pd.to_datetime(part["date"], errors="coerce")
        if dates.notna().all():
            times = ((dates - pd.Timestamp("1900-01-01")).dt.days / 365.25).to_numpy()
            return times, times
    return intervals.bounds(part)


def _valid(starts: np.ndarray, ends: np.ndarray, combo: tuple[int, ...], min_gap: float) -> bool:
    """Each photo of the tuple strictly after the one before it, by >= min_gap: the gap between two intervals
    (next start - previous end), so photos whose intervals overlap (one age band) are never ordered."""
    index = list(combo)
    gaps = starts[index[1:]] - ends[index[:-1]]
    return bool((gaps > 0).all() and (gaps >= min_gap).all())


def valid_tuples(times: tuple[np.ndarray, np.ndarray], tuple_len: int, min_gap: float
                 ) -> list[tuple[int, ...]] | None:
    """Every valid index tuple of one person's time-sorted photos ((start, end) arrays); None when too many to
    enumerate (sample)."""
    starts, ends = times
    if math.comb(len(starts), tuple_len) > MAX_ENUMERATE:
        return None
    return [c for c in itertools.combinations(range(len(starts)), tuple_len) if _valid(starts, ends, c, min_gap)]


def person_tuples(times: tuple[np.ndarray, np.ndarray], tuple_len: int, min_gap: float, n_wanted: int,
                  rng: np.random.Generator, valid: list[tuple[int, ...]] | None = None) -> list[tuple[int, ...]]:
    """Distinct index tuples (into the person's time-sorted photos) with every neighbour gap >= min_gap.

    `valid`: valid_tuples() computed before (a per-epoch draw enumerates each person once)."""
    n = len(times[0])
    if n < tuple_len:
        return []
    if valid is None:
        valid = valid_tuples(times, tuple_len, min_gap)
    if valid is not None:
        if len(valid) <= n_wanted:
            return valid
        picked = rng.choice(len(valid), size=n_wanted, replace=False)
        return [valid[i] for i in sorted(picked)]
    found: set[tuple[int, ...]] = set()
    for _ in range(50 * n_wanted):  # many photos: rejection-sample sorted draws
        combo = tuple(sorted(rng.choice(n, size=tuple_len, replace=False).tolist()))
        if _valid(*times, combo, min_gap):
            found.add(combo)
            if len(found) == n_wanted:
                break
    return sorted(found)


def distinct_times(times: tuple[np.ndarray, np.ndarray]) -> int:
    """How many distinct (start, end) a person's photos have: distinct age bands for a band source."""
    return len(set(zip(*(t.tolist() for t in times))))


def person_series(df: pd.DataFrame) -> list[tuple[str, tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]]:
    """(person_id, (starts, ends), cache rows, ages) of each person, time-sorted, persons in sorted order."""
    series = []
    for person_id, part in sorted(df.groupby("person_id"), key=lambda kv: kv[0]):
        starts, ends = _order_key(part)
        order = np.lexsort((ends, starts))  # by start, then end; stable: ties keep their row order
        series.append((person_id, (starts[order], ends[order]), part["cache_row"].to_numpy()[order],
                       part["age"].to_numpy()[order]))
    return series


class TupleDraw:
    """Fresh tuples each epoch from every valid tuple of the given persons (the VCOP recipe draws clips afresh):
    up to `n_per_person` per person, the same for the same (seed, epoch), so a resumed run draws what an
    uninterrupted one did."""

    def __init__(self, df: pd.DataFrame, tuple_len: int, min_gap_years: float, n_per_person: int, seed: list[int]):
        self.tuple_len, self.min_gap, self.n, self.seed = tuple_len, min_gap_years, n_per_person, list(seed)
        self.persons = [(times, rows, valid_tuples(times, tuple_len, min_gap_years))
                        for _, times, rows, _ in person_series(df) if len(times[0]) >= tuple_len]

    def __call__(self, epoch: int) -> np.ndarray:
        """(N, tuple_len) cache rows in temporal order, persons in sorted order."""
        rng = np.random.default_rng([*self.seed, epoch, 23])
        drawn = [rows[list(combo)] for times, rows, valid in self.persons
                 for combo in person_tuples(times, self.tuple_len, self.min_gap, self.n, rng, valid)]
        if not drawn:
            raise no_tuples(f"to draw in epoch {epoch}", self.tuple_len, self.min_gap)
        return np.stack(drawn).astype(np.int64)


def build_tuples(df: pd.DataFrame, tuple_len: int, min_gap_years: float, tuples_per_person: int,
                 seed: int) -> tuple[pd.DataFrame, dict]:
    """Tuples of cache rows (`row_0..` in capture order, row_0 the earliest) and counts of used / skipped persons.

    `df` must hold one split's photos with a `cache_row` column; persons are visited in sorted order.
    """
    rng = np.random.default_rng(seed)
    records, skipped_few, skipped_bands, skipped_gap = [], 0, 0, 0
    banded = intervals.has_intervals(df)
    for person_id, times, rows, ages in person_series(df):
        if len(times[0]) < tuple_len:
            skipped_few += 1
            continue
        if banded and distinct_times(times) < tuple_len:  # e.g. 10 photos in 2 age bands: no order among 3
            skipped_bands += 1
            continue
        combos = person_tuples(times, tuple_len, min_gap_years, tuples_per_person, rng)
        if not combos:
            skipped_gap += 1
            continue
        for combo in combos:
            record = {"person_id": person_id}
            record.update({f"row_{k}": int(rows[i]) for k, i in enumerate(combo)})
            record.update({f"age_{k}": float(ages[i]) for k, i in enumerate(combo)})
            records.append(record)
    columns = ["person_id"] + [f"row_{k}" for k in range(tuple_len)] + [f"age_{k}" for k in range(tuple_len)]
    tuples = pd.DataFrame(records, columns=columns)
    counts = {
        "n_tuples": len(tuples),
        "n_persons_used": int(tuples["person_id"].nunique()) if len(tuples) else 0,
        "n_persons_too_few_photos": skipped_few,
        "n_persons_no_gap": skipped_gap,
        **({"n_persons_too_few_bands": skipped_bands} if banded else {}),
    }
    return tuples, counts


def tuple_rows(tuples: pd.DataFrame) -> np.ndarray:
    """(N, tuple_len) cache rows in temporal order."""
    cols = sorted((c for c in tuples.columns if c.startswith("row_")), key=lambda c: int(c.split("_")[1]))
    return tuples[cols].to_numpy(dtype=np.int64)
