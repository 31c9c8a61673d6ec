"""Real-data adapters: each reads one published layout under a root folder and returns the common manifest.

Every adapter returns at least path (absolute), person_id, age, domain, split_hint, date (the csv adapter
passes any further columns of the user's file through; the manifest check validates them) and raises
LayoutError naming exactly what is missing. Whether a photo is a face crop or a whole photo is data.face's
choice (pipeline/faces), not the adapter's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline.data.adapters import aaf, afad, cacd, csv_manifest, fgnet, megaage_asian, utkface
from pipeline.data.adapters.common import LayoutError

ADAPTERS: dict[str, Callable[[Path, str], pd.DataFrame]] = {
    "megaage_asian": megaage_asian.read,
    "fgnet": fgnet.read,
    "utkface": utkface.read,
    "afad": afad.read,
    "cacd": cacd.read,
    "csv": csv_manifest.read,
    "aaf": aaf.read,
    "aaf_aligned": aaf.read_aligned,
}

__all__ = ["ADAPTERS", "LayoutError"]
