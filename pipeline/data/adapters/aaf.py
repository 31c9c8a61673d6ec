"""All-Age-Faces (AAF): 13,322 mostly East-Asian faces aged 2-80, one photo per person, official train/val lists.

Two sources read the same root: `aaf` takes `original images/` (whole photos: use a face detector,
data.face: mtcnn, or AAF's own landmarks from `key points/`, data.face: landmarks), `aaf_aligned` takes the data
set's own `aglined faces/` (sic; already cropped and aligned: data.face: none). The official
`image sets/val.txt` becomes the split hint "test" (the held-out list, kept untouched like MegaAge-Asian's test
list) and `train.txt` "train"; validation is carved from train by person.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.adapters.common import LayoutError, absolute, as_text, frame, require_dir

LAYOUT = ("<root>/original images/*.jpg, <root>/aglined faces/*.jpg (sic), <root>/key points/*.txt and "
          "<root>/image sets/{train,val}.txt with lines 'NNNNNAxx.jpg gender' (photo NNNNN at age xx)")
FOLDERS = {"original": "original images", "aligned": "aglined faces"}
LISTS = {"train": "train", "val": "test"}  # official list -> split hint (val is AAF's held-out list)
NAME = re.compile(r"(\d{5})A(\d{2})\.jpg")
KEY_POINTS = "key points"


def five_points(points: np.ndarray) -> np.ndarray:
    """AAF's 49 key points (IntraFace/SDM markup, original-image pixels: 0-9 brows, 10-18 nose with the tip at 13,
    19-24 the eye on the image's left, 25-30 the other, 31-48 mouth with corners 31 and 37) -> the template's 5:
    eye centres (mean of each eye's 6 points), nose tip, mouth corners (pipeline.faces.align's order)."""
    points = np.asarray(points, float)
    if points.shape != (49, 2):
        raise ValueError(f"expected 49 (x, y) points, got shape {points.shape}")
    return np.stack([points[19:25].mean(0), points[25:31].mean(0), points[13], points[31], points[37]])


def _landmarks(root: Path, name: str) -> str:
    """The photo's 5 points as manifest text, "" when its key point file is missing or malformed (face: landmarks
    then drops the photo as bad_landmarks)."""
    path = root / KEY_POINTS / name.replace(".jpg", ".txt")
    try:
        return as_text(five_points(np.loadtxt(path, ndmin=2)))
    except (OSError, ValueError):
        return ""


def _listed(root: Path, list_name: str) -> list[str]:
    path = root / "image sets" / f"{list_name}.txt"
    if not path.is_file():
        raise LayoutError(f"image sets/{list_name}.txt not found under {root}; expected AAF layout {LAYOUT}")
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        name = line.split()[0]
        if not NAME.fullmatch(name):
            raise LayoutError(f"{path}:{number}: '{name}' is not an AAF photo name (NNNNNAxx.jpg); "
                              f"expected AAF layout {LAYOUT}")
        names.append(name)
    return names


def read_folder(root: Path, domain: str, folder: str) -> pd.DataFrame:
    """The manifest of one AAF image folder ("original" or "aligned"), with the official split as hints."""
    require_dir(root, "All-Age-Faces", LAYOUT)
    images = root / FOLDERS[folder]
    if not images.is_dir():
        raise LayoutError(f"'{FOLDERS[folder]}/' not found under {root}; expected AAF layout {LAYOUT}")
    rows, seen = [], set()
    for list_name, hint in LISTS.items():
        for name in _listed(root, list_name):
            if name in seen:  # one photo per person: a photo in both lists would leak into the test split
                raise LayoutError(f"{root}/image sets: {name} is listed twice (train.txt and val.txt overlap)")
            seen.add(name)
            number, age = NAME.fullmatch(name).groups()
            row = {"path": str(absolute(images / name)), "person_id": f"aaf_{number}", "age": int(age),
                   "split_hint": hint}
            if folder == "original" and (root / KEY_POINTS).is_dir():  # the points are in the originals' pixels
                row["landmarks"] = _landmarks(root, name)
            rows.append(row)
    return frame(rows, domain, f"aaf ({FOLDERS[folder]})", root, LAYOUT)


def read(root: Path, domain: str) -> pd.DataFrame:
    """`original images/`: whole photos (pair with data.face: mtcnn, or landmarks for AAF's key points)."""
    return read_folder(root, domain, "original")


def read_aligned(root: Path, domain: str) -> pd.DataFrame:
    """`aglined faces/`: AAF's own aligned crops (pair with data.face: none)."""
    return read_folder(root, domain, "aligned")
