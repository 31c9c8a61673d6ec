"""Generic CSV: <root>/manifest.csv with path,person_id,age[,date]; paths relative to root (e.g. a Korean family set)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import LayoutError, absolute, require_dir
from pipeline.data.manifest import read_table, with_optional_columns

LAYOUT = "<root>/manifest.csv with columns path,person_id,age[,date] (date as YYYY-MM-DD)"


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "CSV", LAYOUT)
    path = root / "manifest.csv"
    if not path.is_file():
        raise LayoutError(f"manifest.csv not found under {root}; expected {LAYOUT}")
    table = read_table(path)
    if "path" in table:
        # not resolved: a row may leave the root (`../..`, an absolute path, a link); pipeline.data.paths refuses it
        table["path"] = [str(absolute(root / p)) if isinstance(p, str) else p for p in table["path"]]
    table["domain"] = domain  # the role decides the domain, whatever the file says
    return with_optional_columns(table)
