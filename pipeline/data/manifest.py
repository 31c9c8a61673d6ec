"""The one manifest schema every source produces (`path, person_id, age, domain` [+ date, split_hint]), validated."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.intervals import INTERVAL_COLUMNS

REQUIRED = ("path", "person_id", "age", "domain")
OPTIONAL = ("date", "split_hint")
DOMAINS = ("general", "korean")
MAX_AGE = 120.0
CSV_LINES = "csv_lines"  # DataFrame.attrs key: each row's line number in the file it was read from


class ManifestError(ValueError):
    """A manifest problem; the message names the file, the rows and the fix."""


def with_optional_columns(df: pd.DataFrame) -> pd.DataFrame:
    """`date` and `split_hint` present as text, empty where a source has none (in place; returned for chaining)."""
    for column in OPTIONAL:
        if column not in df.columns:
            df[column] = ""
        df[column] = df[column].fillna("").astype(str)
    return df


def _rows(mask: pd.Series | np.ndarray, df: pd.DataFrame, limit: int = 5) -> str:
    """CSV line numbers (header is line 1) of the offending rows, a few of them.

    A table from read_table() carries its rows' own line numbers (blank lines skipped); others count from 2.
    """
    numbers = np.asarray(df.attrs.get(CSV_LINES, np.arange(len(df)) + 2))
    lines = numbers[np.flatnonzero(np.asarray(mask))].tolist()
    shown = ", ".join(str(x) for x in lines[:limit])
    return f"line(s) {shown}" + (f" and {len(lines) - limit} more" if len(lines) > limit else "")


def validate(df: pd.DataFrame, source: str, root: Path | None = None, check_files: bool = True) -> pd.DataFrame:
    """Check schema, ages, ids, duplicates and (optionally) that every file exists; return a clean copy.

    Paths are resolved against `root` when relative. Every problem raises ManifestError: a wrong age or
    a missing file is a data error the user must fix, not something to skip silently.
    """
    if missing := [c for c in REQUIRED if c not in df.columns]:
        raise ManifestError(f"{source}: missing column(s) {missing}; a manifest needs {list(REQUIRED)} "
                            f"(optional {list(OPTIONAL)}), found {list(df.columns)}")
    if df.empty:
        raise ManifestError(f"{source}: no rows; point params.yaml:data at a folder that holds photos")
    df = df.copy()
    df["person_id"] = df["person_id"].astype("string").str.strip()
    if (bad := df["person_id"].isna() | (df["person_id"] == "")).any():
        raise ManifestError(f"{source}: empty person_id at {_rows(bad, df)}; every photo needs its person's id")
    ages = pd.to_numeric(df["age"], errors="coerce")
    if (bad := ages.isna()).any():
        raise ManifestError(f"{source}: non-numeric or missing age at {_rows(bad, df)} "
                            f"(e.g. {df.loc[bad, 'age'].iloc[0]!r}); ages are years as numbers")
    if (bad := ~np.isfinite(ages) | (ages < 0) | (ages > MAX_AGE)).any():
        raise ManifestError(f"{source}: impossible age at {_rows(bad, df)} (e.g. {ages[bad].iloc[0]}); "
                            f"ages must be in [0, {MAX_AGE:g}] years")
    df["age"] = ages.astype(float)
    _check_intervals(df, source)
    if (bad := ~df["domain"].isin(DOMAINS)).any():
        raise ManifestError(f"{source}: unknown domain at {_rows(bad, df)} (e.g. {df.loc[bad, 'domain'].iloc[0]!r});"
                            f" allowed: {list(DOMAINS)}")
    df["path"] = df["path"].astype(str)
    if (bad := df["path"].duplicated(keep="first")).any():
        raise ManifestError(f"{source}: duplicate path at {_rows(bad, df)} "
                            f"(e.g. {df.loc[bad, 'path'].iloc[0]}); list each photo once")
    df = with_optional_columns(df)
    if check_files:
        resolved = df["path"].map(lambda p: resolve(p, root))
        if (bad := ~resolved.map(lambda p: p.is_file())).any():
            raise ManifestError(f"{source}: file not found at {_rows(bad, df)} (e.g. {resolved[bad].iloc[0]}); "
                                "fix the path or remove the row")
    extra = [c for c in df.columns if c not in REQUIRED + OPTIONAL]  # e.g. apparent_age of synthetic photos
    return df[list(REQUIRED) + list(OPTIONAL) + extra].reset_index(drop=True)


def _check_intervals(df: pd.DataFrame, source: str) -> None:
    """Interval labels (pipeline.data.intervals): both columns or neither, numbers with low <= age <= high, in
    [0, MAX_AGE] (an empty cell: the exact `age`); converted to float in place."""
    present = [c for c in INTERVAL_COLUMNS if c in df.columns]
    if not present:
        return
    if len(present) == 1:
        raise ManifestError(f"{source}: column {present[0]} without its partner; an interval age needs both "
                            f"{list(INTERVAL_COLUMNS)} (or neither, for exact ages)")
    # an empty cell is an exact age (a role with exact ages beside one with intervals, after pd.concat)
    low, high = (pd.to_numeric(df[c].replace("", np.nan), errors="coerce").fillna(df["age"])
                 for c in INTERVAL_COLUMNS)
    bad = low.isna() | high.isna() | ~np.isfinite(low) | ~np.isfinite(high)
    bad |= (low < 0) | (high > MAX_AGE) | (low > df["age"]) | (df["age"] > high)
    if bad.any():
        raise ManifestError(f"{source}: impossible age interval at {_rows(bad, df)} (e.g. "
                            f"[{df.loc[bad, 'age_low'].iloc[0]}, {df.loc[bad, 'age_high'].iloc[0]}] with age "
                            f"{df.loc[bad, 'age'].iloc[0]}); need 0 <= age_low <= age <= age_high <= {MAX_AGE:g}")
    df["age_low"], df["age_high"] = low.astype(float), high.astype(float)


def resolve(path: str, root: Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or root is None else root / p


def read_table(path: Path) -> pd.DataFrame:
    """A manifest-like CSV as strings, each row remembering its line number; every unreadable case names the file.

    Blank lines are skipped but still counted, so an error message points at the line a user sees in an editor.
    """
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise ManifestError(f"{path}: the file is empty; expected a header line with columns {list(REQUIRED)} "
                            "and one line per photo") from None
    except pd.errors.ParserError as err:  # pandas names the line: "Expected 3 fields in line 5, saw 4"
        raise ManifestError(f"{path}: malformed CSV: {str(err).strip()}; quote fields that contain commas") from None
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8 CSV") from None
    keep = df.notna().any(axis=1).to_numpy()  # blank lines read as all-NaN rows
    lines = np.flatnonzero(keep) + 2
    df = df[keep].reset_index(drop=True)
    df.attrs[CSV_LINES] = lines.tolist()  # a list: pandas compares attrs with ==, ambiguous for arrays
    return df


def read_manifest(path: Path, root: Path | None = None, check_files: bool = True) -> pd.DataFrame:
    if not path.exists():
        raise ManifestError(f"{path} not found; run `dvc repro prepare_data` (or check params.yaml:data)")
    return validate(read_table(path), str(path), root, check_files)
