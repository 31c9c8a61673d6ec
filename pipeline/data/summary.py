"""What prepare_data shows of the data: the contact sheet of Korean series and the counts in metrics/data.json."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline import runtime
from pipeline.data.splits import BAND_NAMES, age_band


def contact_sheet(index: pd.DataFrame, images: np.ndarray, path: Path, n_persons: int = 8, max_cols: int = 10) -> None:
    """Rows = Korean persons (the most photos first), columns = their photos by increasing age, from the cache."""
    korean = index[index["domain"] == "korean"]
    counts = korean.groupby("person_id").size().sort_values(ascending=False, kind="stable")
    persons = counts.index[:n_persons]
    size = images.shape[1]
    sheet = np.full((size * max(len(persons), 1), size * max_cols, 3), 255, np.uint8)
    for r, person in enumerate(persons):
        photos = korean[korean["person_id"] == person].sort_values("age", kind="stable")
        picks = np.linspace(0, len(photos) - 1, min(max_cols, len(photos))).round().astype(int)
        for c, row in enumerate(photos.index[picks]):
            sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = images[row]
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(sheet)
    with runtime.atomic_path(path) as tmp:
        image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST).save(tmp, format="PNG")


def data_summary(manifest: pd.DataFrame, info: dict, cache_meta: dict) -> dict:
    """metrics/data.json: what the sources told (e.g. the Bayes floor), cache counts, persons, photos, age bands."""
    summary = dict(info)
    summary.update({"n_images_cached": cache_meta["n_images"], "n_images_dropped": cache_meta["n_dropped"],
                    "dropped_by_reason": cache_meta["dropped_by_reason"],  # no_label, bad_label, no_face, ...
                    "n_box_fallback": cache_meta["n_box_fallback"]})  # face: landmarks placed from the label's box
    for domain, part in manifest.groupby("domain"):
        summary[f"{domain}_persons"] = int(part["person_id"].nunique())
        summary[f"{domain}_photos"] = len(part)
        bands = np.bincount(age_band(part["age"]), minlength=len(BAND_NAMES))
        summary[f"{domain}_age_bands"] = dict(zip(BAND_NAMES, bands.tolist()))
    return summary
