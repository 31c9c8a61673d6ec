"""MegaAge-Asian: train/ and test/ image folders with list/{train,test}_{name,age}.txt (official split kept).

The data set has no identity labels, so each photo is its own person (splits stay identity-disjoint trivially).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import LayoutError, absolute, frame, require_dir

LAYOUT = "<root>/train/*.jpg, <root>/test/*.jpg, <root>/list/{train,test}_name.txt and {train,test}_age.txt"


def _lines(path: Path, root: Path) -> list[str]:
    if not path.is_file():
        raise LayoutError(f"{path.relative_to(root)} not found under {root}; expected MegaAge-Asian layout {LAYOUT}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "MegaAge-Asian", LAYOUT)
    rows = []
    for split in ("train", "test"):
        names = _lines(root / "list" / f"{split}_name.txt", root)
        ages = _lines(root / "list" / f"{split}_age.txt", root)
        if len(names) != len(ages):
            raise LayoutError(f"{root}/list/{split}_name.txt has {len(names)} lines but {split}_age.txt has "
                              f"{len(ages)}; the two lists must align line by line")
        folder = root / split
        if not folder.is_dir():
            raise LayoutError(f"{split}/ not found under {root}; expected MegaAge-Asian layout {LAYOUT}")
        for name, age in zip(names, ages):
            rows.append({"path": str(absolute(folder / name)), "person_id": f"megaage_{split}_{Path(name).stem}",
                         "age": age, "split_hint": split})
    return frame(rows, domain, "megaage_asian", root, LAYOUT)
