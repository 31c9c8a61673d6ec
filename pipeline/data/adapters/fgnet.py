"""FG-NET: files named NNNAxx[a-z].JPG (person NNN at age xx), in one folder or below it."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import absolute, frame, images_under, match_names, require_dir

LAYOUT = "<root>/**/NNNAxx[a-z].JPG, e.g. 001A02.JPG, 001A43a.JPG (person 001 at 2 and 43 years)"


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "FG-NET", LAYOUT)
    matched = match_names(images_under(root), r"(\d{3})[aA](\d{2})[a-z]?\.(?i:jpg|jpeg|png)", "fgnet", root)
    rows = [{"path": str(absolute(p)), "person_id": f"fgnet_{m.group(1)}", "age": int(m.group(2))}
            for p, m in matched]
    return frame(rows, domain, "fgnet", root, LAYOUT)
