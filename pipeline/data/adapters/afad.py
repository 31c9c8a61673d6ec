"""AFAD (AFAD-Full / AFAD-Lite): <root>/<age>/<gender 111|112>/<id>.jpg; no identity labels: a photo is a person."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.data.adapters.common import absolute, frame, images_under, require_dir

LAYOUT = "<root>/<age>/<111 (male) | 112 (female)>/<id>.jpg"


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "AFAD", LAYOUT)
    rows = []
    for path in images_under(root):
        parts = path.relative_to(root).parts
        if len(parts) == 3 and parts[0].isdigit() and parts[1] in ("111", "112"):
            rows.append({"path": str(absolute(path)), "person_id": f"afad_{parts[0]}_{parts[1]}_{path.stem}",
                         "age": int(parts[0])})
    return frame(rows, domain, "afad", root, LAYOUT)
