"""Shared fixtures: small synthetic data built in a temp dir, never the repo's data/."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.config import SyntheticConfig

ROOT = Path(__file__).resolve().parents[1]
TINY_PARAMS = ROOT / "tests" / "fixtures" / "params.tiny.yaml"


@pytest.fixture
def syn_cfg() -> SyntheticConfig:
    return SyntheticConfig(n_general_persons=12, general_photos=[1, 2], n_korean_persons=10, korean_photos=[4, 6],
                           korean_years=[6.0, 30.0], age_noise_years=1.5, person_offset_years=2.5,
                           general_test_frac=0.25, workers=1)


@pytest.fixture
def in_tmp(tmp_path: Path):
    """Run the test inside tmp_path (stages use relative paths, like dvc does)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)


def write_photos(folder: Path, persons: dict[str, list[float]], domain: str = "korean", size: int = 16) -> pd.DataFrame:
    """Tiny real JPEG files and their manifest rows; pixel brightness grows with age (learnable)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for person, ages in persons.items():
        for k, age in enumerate(ages):
            path = folder / f"{person}_{k}.jpg"
            value = int(min(255, 40 + 2.5 * age))
            Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
            rows.append({"path": str(path), "person_id": person, "age": age, "domain": domain})
    return pd.DataFrame(rows)
