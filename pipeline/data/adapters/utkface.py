"""UTKFace: files named age_gender_race_datetime.jpg[.chip.jpg]; no identity labels, so each photo is a person."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import absolute, frame, images_under, match_names, require_dir

LAYOUT = "<root>/**/age_gender_race_datetime.jpg (e.g. 25_0_2_20170116174525125.jpg.chip.jpg)"


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "UTKFace", LAYOUT)
    matched = match_names(images_under(root), r"(\d{1,3})_([01])_(\d)_(\d{17})\.jpg(\.chip\.jpg)?", "utkface", root)
    rows = [{"path": str(absolute(p)), "person_id": f"utk_{m.group(4)}_{m.group(1)}_{m.group(2)}_{m.group(3)}",
             "age": int(m.group(1)),
             "date": f"{m.group(4)[:4]}-{m.group(4)[4:6]}-{m.group(4)[6:8]}"} for p, m in matched]
    return frame(rows, domain, "utkface", root, LAYOUT)
