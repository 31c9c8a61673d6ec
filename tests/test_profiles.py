"""Profiles: overrides of params.yaml that are checked like params.yaml and become dvc exp run -S options."""
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import profiles
from pipeline.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", ["study", "coupling_none", "full", "real", "korean_family"])
def test_shipped_profiles_are_valid_and_change_something(repo, name):
    flat = profiles.overrides(name)
    assert flat and all(isinstance(k, str) and "." in k or k == "seed" for k in flat)


def test_overrides_become_set_options_dvc_can_parse(repo):
    (repo / "profiles/mine.yaml").write_text(
        "data:\n  synthetic: {korean_photos: [3, 6]}\nmultitrain: {coupling: rank}\nbudget:\n  korean: {lr: 5.0e-4}\n")
    args = profiles.set_args("mine")
    pairs = dict(a.split("=", 1) for a in args[1::2])
    assert args[0::2] == ["-S"] * 3
    assert {k: yaml.safe_load(v) for k, v in pairs.items()} == {
        "data.synthetic.korean_photos": [3, 6], "multitrain.coupling": "rank", "budget.korean.lr": 5.0e-4}
    assert all(" " not in a for a in args)  # safe in `dvc exp run $(python -m pipeline.profiles mine)`


def test_default_profile_changes_nothing(repo):
    assert profiles.set_args("default") == []


@pytest.mark.parametrize("text, match", [
    ("multitrain: {couplng: rank}\n", r"couplng.*not a key"),
    ("multitrain: {coupling: telepathy}\n", r"multitrain\.coupling"),
    ("budget:\n  korean: {epochs: 0}\n", r"epochs must be >= 1"),
    ("data:\n  synthetic: {n_korean_persons: 3}\n", r"n_korean_persons must be >= 10"),
])
def test_bad_profile_names_the_key(repo, text, match):
    (repo / "profiles/bad.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        profiles.overrides("bad")


def test_unknown_profile_lists_the_available_ones(repo):
    with pytest.raises(ConfigError, match="available: default, coupling_none, full, korean_family, real, study"):
        profiles.overrides("nope")
    assert profiles.main(["nope"]) == 2


@pytest.mark.parametrize("name", ["study", "coupling_none", "full", "real", "korean_family"])
def test_shipped_profiles_name_only_what_they_change(repo, name):
    base = profiles.flatten(yaml.safe_load((repo / "params.yaml").read_text()))
    same = {k: v for k, v in profiles.overrides(name).items() if base.get(k) == v}
    assert not same, f"profiles/{name}.yaml re-sets params.yaml's values: {same}"
