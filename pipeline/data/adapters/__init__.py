"""Real-data adapters: each reads one published layout under a root folder and returns the common manifest.

Every adapter returns at least path (absolute), person_id, age, domain, split_hint, date (the csv adapter
passes any further columns of the user's file through; the manifest check validates them) and raises
LayoutError naming exactly what is missing. Whether a photo is a face crop or a whole photo is data.face's
choice (pipeline/faces), not the adapter's. A source that reads labels may add each photo's face points
(common.FACE_LABEL_COLUMNS) and list the files it left out with their reason (common.with_dropped).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline.data.adapters import (aaf, afad, aihub_aging, cacd, csv_manifest, fgnet, korean_family, megaage_asian,
                                   utkface)
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
    "aihub_aging": aihub_aging.read,
    "korean_family": korean_family.read,
}
# sources whose manifest can carry each photo's 5 face points (`landmarks` column): data.<role>_face: landmarks
# needs one (csv: when the user's manifest.csv has the column)
LANDMARK_SOURCES = ("aaf", "aihub_aging", "csv")

__all__ = ["ADAPTERS", "LANDMARK_SOURCES", "LayoutError"]
