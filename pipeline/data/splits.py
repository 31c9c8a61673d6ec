"""Identity-disjoint train/val/test splits: no person's photos on two sides of a split."""
from __future__ import annotations

import numpy as np
import pandas as pd

AGE_BANDS = (0, 13, 20, 30, 40, 50, 60, 200)  # 0-12, 13-19, 20-29, ..., 60+
BAND_NAMES = ("0-12", "13-19", "20-29", "30-39", "40-49", "50-59", "60+")


class EmptySplitError(ValueError):
    """A split ended up with no person; the message names the split and the fix."""


def age_band(ages_years: np.ndarray | pd.Series) -> np.ndarray:
    return np.digitize(np.asarray(ages_years, dtype=float), AGE_BANDS[1:-1])


def split_units(df: pd.DataFrame) -> pd.Series:
    """What a split assigns as a whole: the family when the source names one (relatives look alike, so a mother in
    training and her daughter in test would leak), else the person."""
    if "family_id" not in df.columns:
        return df["person_id"]
    family = df["family_id"].fillna("").astype(str)
    return family.where(family != "", "person:" + df["person_id"].astype(str))


def split_by_identity(df: pd.DataFrame, seed: int, val_frac: float, test_frac: float,
                      where: str, required: tuple[str, ...] = ("train", "val", "test")) -> pd.Series:
    """Assign each person (each family, when the source names them) to train/val/test, stratified by the band of
    its median age.

    Units are sorted before shuffling so the result depends only on (data, seed). Returns the split of every row
    of `df`.
    """
    rng = np.random.default_rng(seed)
    units = split_units(df)
    person_age = df.groupby(units)["age"].median().sort_index()
    bands = pd.Series(age_band(person_age.to_numpy()), index=person_age.index)
    assignment: dict[str, str] = {}
    carry_val = carry_test = 0.0  # fractional persons carried across bands keep global fractions exact
    for band in sorted(bands.unique()):
        persons = rng.permutation(bands.index[bands == band].to_numpy())
        want_test, want_val = len(persons) * test_frac + carry_test, len(persons) * val_frac + carry_val
        n_test, n_val = int(round(want_test)), int(round(want_val))
        n_test, n_val = min(n_test, len(persons)), min(n_val, len(persons) - min(n_test, len(persons)))
        carry_test, carry_val = want_test - n_test, want_val - n_val
        for i, person in enumerate(persons):
            assignment[person] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    split = units.map(assignment)
    for name in required:
        if not (split == name).any():
            fix = (f"raise params.yaml:split_korean.{where}_{name}_frac" if name != "train" else
                   f"lower split_korean.{where}_val_frac / {where}_test_frac")
            raise EmptySplitError(f"{where}: the {name} split is empty ({person_age.size} persons); add persons "
                                  f"or {fix}")
    return split


# the person-level bootstrap (pipeline.metrics.paired_bootstrap) needs this many test persons for a CI; split_korean
# checks it, so a test split that would lose its CI fails before any training
MIN_TEST_PERSONS = 5


def check_evaluable(korean: pd.DataFrame, leave_one_out: bool) -> None:
    """Fail in split_korean, not after hours of training, when the Korean test split cannot carry a CI.

    A leave-one-person-out fold has one test person by design (its folds are aggregated instead).
    """
    n_test = korean.loc[korean["split"] == "test", "person_id"].nunique()
    if not leave_one_out and n_test < MIN_TEST_PERSONS:
        raise EmptySplitError(
            f"korean: the test split holds {n_test} person(s) of {korean['person_id'].nunique()}; paired CIs "
            f"need >= {MIN_TEST_PERSONS}. Add Korean persons, raise params.yaml:split_korean.korean_test_frac, "
            "or set split_korean.korean_test_person for leave-one-person-out folds")


def require_person(person_ids: set[str], person: str) -> None:
    """split_korean.korean_test_person must name a Korean person (check_params asks before any stage runs)."""
    if person not in person_ids:
        examples = ", ".join(sorted(person_ids)[:5])
        raise EmptySplitError(f"params.yaml:split_korean.korean_test_person: no Korean person '{person}'; set it to "
                              f"one of the Korean role's person ids (e.g. {examples})")


def split_leave_one_out(df: pd.DataFrame, person: str, seed: int, val_frac: float) -> pd.Series:
    """One leave-one-person-out fold (FG-NET protocol): `person` is the test split, val comes from the rest."""
    require_person(set(df["person_id"]), person)
    units = split_units(df)
    relatives = (units == units[df["person_id"] == person].iloc[0]) & (df["person_id"] != person)
    rest = df[(df["person_id"] != person) & ~relatives]
    split = pd.Series("test", index=df.index)
    split.loc[rest.index] = split_by_identity(rest, seed, val_frac, 0.0, "korean", ("train", "val"))
    split.loc[relatives] = "unused"  # the test person's family trains nothing: relatives look alike
    return split


def check_disjoint(df: pd.DataFrame, where: str) -> None:
    """No person, and no family of a source that names them, on two sides of `df["split"]` (split_korean checks
    every split it writes, published lists included)."""
    used = df[df["split"].isin(("train", "val", "test"))]
    for column, name in (("person_id", "person"), ("family_id", "family")):
        if column not in used.columns:
            continue
        ids = used[column].fillna("").astype(str)
        sides = used[ids != ""].groupby(ids[ids != ""])["split"].nunique()
        if (crossing := sides[sides > 1]).any():
            raise EmptySplitError(f"{where}: {len(crossing)} {name}(s) on two sides of the split (e.g. "
                                  f"{crossing.index[0]}); fix the source's train/val/test lists")


def split_keeping_hints(df: pd.DataFrame, seed: int, val_frac: float, test_frac: float,
                        where: str = "general") -> pd.Series:
    """Keep an official train/test list when the source has one (split_hint: MegaAge's and AAF's test lists,
    AIHub's Validation persons) and carve val from train by person (by family, when the source names them); keep
    published train/val/test lists as they are (AIHub's family-relations folders). Without one, split by
    identity."""
    hints = df["split_hint"].fillna("")
    if set(hints.unique()) == {"train", "val", "test"}:  # all three published (AIHub family-relations): as is
        split = hints.copy()
        check_disjoint(df.assign(split=split), where)
        return split
    if set(hints.unique()) <= {"train", "test"} and (hints == "test").any() and (hints == "train").any():
        units = split_units(df)
        crossing = set(units[hints == "train"]) & set(units[hints == "test"])
        if crossing:
            raise EmptySplitError(f"{where}: the official split puts {len(crossing)} person(s) or families in train "
                                  f"and test (e.g. {sorted(crossing)[0]}); fix the source lists")
        split = hints.copy()
        train = df[hints == "train"]
        # val carved from the official train persons only: the official test list stays untouched
        split.loc[train.index] = split_by_identity(train, seed, val_frac, 0.0, where, ("train", "val"))
        return split
    return split_by_identity(df, seed, val_frac, test_frac, where)


def split_general(df: pd.DataFrame, seed: int, val_frac: float, test_frac: float) -> pd.Series:
    """The general role's split: its source's official list when it has one."""
    return split_keeping_hints(df, seed, val_frac, test_frac, "general")


def labelled_subset(train: pd.DataFrame, frac: float, seed: int) -> pd.DataFrame:
    """The Korean training persons whose ages may be used as labels (label-budget study), chosen by person."""
    persons = np.sort(train["person_id"].unique())
    n = max(1, int(round(frac * len(persons))))
    chosen = set(np.random.default_rng([seed, 7]).permutation(persons)[:n])
    return train[train["person_id"].isin(chosen)]


def summarise(df: pd.DataFrame) -> dict:
    """Persons, photos and age histogram per (domain, split), for metrics/splits.json."""
    summary: dict = {}
    for (domain, split), part in df.groupby(["domain", "split"], sort=True):
        counts = np.bincount(age_band(part["age"]), minlength=len(BAND_NAMES))
        summary[f"{domain}_{split}"] = {
            "n_persons": int(part["person_id"].nunique()),
            "n_photos": len(part),
            "mean_age": round(float(part["age"].mean()), 3),
            "age_bands": dict(zip(BAND_NAMES, counts.tolist())),
        }
    return summary
