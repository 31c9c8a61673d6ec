"""CACD (Cross-Age Celebrity Dataset): files named <age>_<First>_<Last..>_<nnnn>.jpg; the name is the person."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import absolute, frame, images_under, match_names, require_dir

LAYOUT = "<root>/**/<age>_<Name_Parts>_<nnnn>.jpg, e.g. 53_Robin_Williams_0001.jpg"


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "CACD", LAYOUT)
    matched = match_names(images_under(root), r"(\d{1,3})_(.+)_(\d{4})\.(?i:jpg|jpeg|png)", "cacd", root)
    rows = [{"path": str(absolute(p)), "person_id": f"cacd_{m.group(2)}", "age": int(m.group(1))} for p, m in matched]
    return frame(rows, domain, "cacd", root, LAYOUT)
