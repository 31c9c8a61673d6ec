"""AIHub "faces with known family relations" (dataSetSn 528): 128 px face crops of Korean family members, each
person photographed at several age bands of their life; the label of a photo is its band, an age interval.

Layout (as mirrored publicly, three family-disjoint folders):
    <root>/train_images/F0001_AGE_D_18_a1.jpg    <root>/val_images/...    <root>/test_images/...
The name holds the family (F0001), the role in it (D daughter, S son, M, F, GM, GF, D2, S2, ...), the person's
age when the set was collected (18), the age band of the photo (a) and an index (1; missing on a few files).
Person = family + role; the family id goes into the manifest, so every split stays family-disjoint (relatives
look alike). A folder whose name contains train / val / test is that split's hint, kept as published. AIHub's
own download is assumed to use the same file names; its folders (e.g. Training / Validation) give the hints by
the same rule, and photos under no such folder are split by family. `fixed_*` folders hold pairs copied from
the same photos and are skipped. The suffix's case (.jpg / .JPG) does not matter.

A photo's label is its band [low, high], cut at the stated age when that is lower (a person of 18 in band c is
13-18). Files this adapter leaves out, each with a named reason in data/cache/dropped.csv: a name outside the
pattern or a band letter outside a-h (`bad_label`), and a band starting above the stated age (`age_mismatch`).
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import absolute, frame, images_under, require_dir, with_dropped
from pipeline.data.intervals import LIFE_BANDS

log = logging.getLogger(__name__)
LAYOUT = ("<root>/{train,val,test}_images/F0001_AGE_D_18_a1.jpg (family, role, the person's stated age, the "
          "photo's age band a-h, an optional index)")
NAME = re.compile(r"(F\d{4})_AGE_([A-Za-z]+\d*)_(\d{1,3})_([A-Za-z])(\d*)")
HINTS = ("train", "val", "test")
SKIPPED_FOLDER = "fixed_"


def split_hint(path: Path, root: Path) -> str:
    """train / val / test from the nearest folder under `root` that names one ("" when none does)."""
    for part in reversed(path.relative_to(root).parts[:-1]):
        found = [h for h in HINTS if h in part.lower()]
        if len(found) == 1:
            return found[0]
    return ""


def parse(path: Path) -> dict:
    """The label fields of one file name; ValueError (the message names the problem) when it has none."""
    m = NAME.fullmatch(path.stem)
    if not m:
        raise ValueError(f"{path.name}: the name does not follow F0001_AGE_D_18_a1.jpg (family, role, age, band, "
                         "index)")
    family, role, stated, band, _ = m.groups()
    if band not in LIFE_BANDS:
        raise ValueError(f"{path.name}: band '{band}' is not one of {''.join(LIFE_BANDS)}")
    low, high = LIFE_BANDS[band]
    return {"family_id": family, "person_id": f"{family}_{role}", "stated_age": int(stated), "band": band,
            "age_low": float(low), "age_high": float(min(high, int(stated)))}


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "AIHub family-relations", LAYOUT)
    rows, dropped, skipped = [], [], 0
    for path in images_under(root):
        if any(part.startswith(SKIPPED_FOLDER) for part in path.relative_to(root).parts[:-1]):
            skipped += 1
            continue
        try:
            fields = parse(path)
        except ValueError as err:
            dropped.append({"path": str(absolute(path)), "reason": "bad_label", "error": str(err)})
            continue
        if fields["age_low"] > fields["stated_age"]:
            dropped.append({"path": str(absolute(path)), "reason": "age_mismatch",
                            "error": f"{path.name}: band {fields['band']} starts at {fields['age_low']:g} years, "
                                     f"above the person's stated age {fields['stated_age']}"})
            continue
        rows.append({"path": str(absolute(path)), "split_hint": split_hint(path, root), **fields})
    if skipped:
        log.info("korean_family: skipped %d photo(s) in %s* folders (pairs copied from the same photos)", skipped,
                 SKIPPED_FOLDER)
    rows = _consistent_persons(rows)
    for row in rows:
        row["age"] = (row["age_low"] + row["age_high"]) / 2
    table = frame(sorted(rows, key=lambda r: (r["person_id"], r["age_low"], r["path"])), domain, "korean_family",
                  root, LAYOUT)
    return with_dropped(table, dropped)


def _consistent_persons(rows: list[dict]) -> list[dict]:
    """Rows whose person key states one age as they are; a key whose photos state several ages (F0168_D: 18 and
    51, each with its own bands) holds two persons of one family and role, so each stated age becomes its own
    person (`F0168_D@18`). Both stay in the family, so the split stays family-disjoint either way."""
    stated: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        stated[row["person_id"]].add(row["stated_age"])
    shared = sorted(person for person, ages in stated.items() if len(ages) > 1)
    if shared:
        log.warning("korean_family: %d person key(s) state several ages across photos (%s); each stated age is "
                    "taken as its own person", len(shared), ", ".join(f"{p} {sorted(stated[p])}" for p in shared))
    for row in rows:
        if row["person_id"] in shared:
            row["person_id"] = f"{row['person_id']}@{row['stated_age']}"
    return rows
