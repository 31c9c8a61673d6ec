"""Shared fixtures: small synthetic data built in a temp dir, never the repo's data/."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.config import SyntheticConfig


@pytest.fixture
def syn_cfg() -> SyntheticConfig:
    return SyntheticConfig(n_general_persons=12, general_photos=[1, 2], n_korean_persons=10, korean_photos=[4, 6],
                           korean_years=[6.0, 30.0], age_noise_years=1.5, person_offset_years=2.5,
                           official_test_frac=0.25, workers=1)


@pytest.fixture
def in_tmp(tmp_path: Path):
    """Run the test inside tmp_path (stages use relative paths, like dvc does)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(old)
