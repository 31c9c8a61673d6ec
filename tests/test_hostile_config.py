"""Hostile params: seeds numpy cannot take, sizes that would draw for days or fill the disk, and infinite or NaN
loss weights fail at load time with one ConfigError naming the key, not later in a numpy or torch traceback."""
from __future__ import annotations

import runpy
from pathlib import Path

import pytest
import yaml

from pipeline import config, runtime
from pipeline.config import ConfigError
from tests.helpers import ROOT


def params_file(tmp_path: Path, **changes) -> Path:
    """The project's params with `changes` ({"data.synthetic.seed": -1}: a dotted key path) written to tmp_path."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        section = params
        for name in parents:
            section = section.setdefault(name, {})
        section[key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize("key, value, match", [
    ("seed", -1, r"params\.yaml:seed: -1 is outside \[0, 2\*\*32 - 1\]"),
    ("seed", 2**63, r"params\.yaml:seed: 9223372036854775808 is outside \[0, 2\*\*32 - 1\]"),
    ("train_seeds", [0, 2**63], r"params\.yaml:train_seeds: .*2\*\*32 - 1"),
    ("train_seeds", [2**32], r"params\.yaml:train_seeds: "),
    ("data.synthetic.seed", -1, r"params\.yaml:data\.synthetic\.seed: -1 is outside"),
    ("evaluate.seed", 2**32, r"params\.yaml:evaluate\.seed: 4294967296 is outside"),
])
def test_a_seed_numpy_cannot_take_names_its_key(tmp_path, key, value, match):
    path = params_file(tmp_path, **{key: value})
    with pytest.raises(ConfigError, match=match):
        config.check_all(path)


def test_the_largest_seed_numpy_takes_loads(tmp_path):
    path = params_file(tmp_path, seed=2**32 - 1, train_seeds=[0, 2**32 - 1])
    config.check_all(path)
    assert config.split_seed(path) == 2**32 - 1 and config.train_seeds(path) == [0, 2**32 - 1]


@pytest.mark.parametrize("key, value, match", [
    ("data.image_size", 4096, r"params\.yaml:data: image_size must be <= 512 px"),
    ("data.synthetic.n_general_persons", 10**9, r"data\.synthetic: n_general_persons must be <= 100000"),
    ("data.synthetic.n_korean_persons", 100_001, r"data\.synthetic: n_korean_persons must be <= 100000"),
    ("data.synthetic.general_photos", [1, 10**6], r"data\.synthetic: general_photos high must be <= 200"),
    ("data.synthetic.korean_photos", [4, 201], r"data\.synthetic: korean_photos high must be <= 200"),
    ("multitrain.vcop_weight", float("inf"), r"params\.yaml:multitrain: vcop_weight must be a finite number"),
    ("multitrain.vcop_weight", float("nan"), r"params\.yaml:multitrain: vcop_weight must be a finite number"),
    ("multitrain.coupling_weight", float("inf"), r"multitrain: coupling_weight must be a finite number"),
])
def test_a_size_or_weight_out_of_bounds_names_its_key(tmp_path, key, value, match):
    with pytest.raises(ConfigError, match=match):
        config.check_all(params_file(tmp_path, **{key: value}))


@pytest.mark.parametrize("key, value", [("seed", -1), ("multitrain.vcop_weight", float("inf"))])
def test_check_params_reports_it_in_one_line(in_tmp, capsys, key, value):
    params_file(in_tmp, **{key: value})
    with pytest.raises(SystemExit) as stop:
        runtime.entry_point(runpy.run_path(str(ROOT / "stages" / "check_params.py"))["main"], "check_params")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"params.yaml:{key.split('.')[0]}" in err
