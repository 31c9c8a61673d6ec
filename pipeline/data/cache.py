"""The decoded photo cache: images.npy (N, H, W, 3) uint8 + index.csv (row i is image i); training slices batches
from a memmap. cache_build.py writes it (through pipeline.faces); this module only names and reads it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGES, INDEX, DROPPED, META = "images.npy", "index.csv", "dropped.csv", "meta.json"


def open_images(cache_dir: Path) -> np.ndarray:
    """The cached images as a read-only memmap (N, H, W, 3) uint8."""
    path = cache_dir / IMAGES
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro prepare_data`")
    return np.load(path, mmap_mode="r")
