"""The one manifest schema every source produces (`path, person_id, age, domain` [+ date, split_hint]), validated."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


REQUIRED = ("path", "person_id", "age", "domain")
OPTIONAL = ("date", "split_hint")
DOMAINS = ("general", "korean")
MAX_AGE = 120.0


class ManifestError(ValueError):
    """A manifest problem; the message names the file, the rows and the fix."""


def _rows(mask: pd.Series | np.ndarray, df: pd.DataFrame, limit: int = 5) -> str:
    """CSV line numbers (header is line 1) of the offending rows, a few of them."""
    lines = (np.flatnonzero(np.asarray(mask)) + 2).tolist()
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
    if (bad := ~df["domain"].isin(DOMAINS)).any():
        raise ManifestError(f"{source}: unknown domain at {_rows(bad, df)} (e.g. {df.loc[bad, 'domain'].iloc[0]!r});"
                            f" allowed: {list(DOMAINS)}")
    df["path"] = df["path"].astype(str)
    if (bad := df["path"].duplicated(keep="first")).any():
        raise ManifestError(f"{source}: duplicate path at {_rows(bad, df)} "
                            f"(e.g. {df.loc[bad, 'path'].iloc[0]}); list each photo once")
    for column in OPTIONAL:
        if column not in df.columns:
            df[column] = ""
        df[column] = df[column].fillna("").astype(str)
    if check_files:
        resolved = df["path"].map(lambda p: resolve(p, root))
        if (bad := ~resolved.map(lambda p: p.is_file())).any():
            raise ManifestError(f"{source}: file not found at {_rows(bad, df)} (e.g. {resolved[bad].iloc[0]}); "
                                "fix the path or remove the row")
    extra = [c for c in df.columns if c not in REQUIRED + OPTIONAL]  # e.g. apparent_age of synthetic photos
    return df[list(REQUIRED) + list(OPTIONAL) + extra].reset_index(drop=True)


def resolve(path: str, root: Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or root is None else root / p


def read_manifest(path: Path, root: Path | None = None, check_files: bool = True) -> pd.DataFrame:
    if not path.exists():
        raise ManifestError(f"{path} not found; run `dvc repro prepare_data` (or check params.yaml:data)")
    try:
        df = pd.read_csv(path, dtype={"person_id": str, "path": str, "date": str, "split_hint": str},
                         keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: not a readable CSV ({err}); expected columns {list(REQUIRED)}") from None
    return validate(df, str(path), root, check_files)
