"""Failures leave earlier outputs intact and say what to do."""
import json
from pathlib import Path

import pytest
import torch

from pipeline import conditions, runtime
from pipeline.config import ConfigError
from pipeline.models import AgeRegressor, VCOPModel, build_encoder


def test_missing_upstream_model_names_the_stage_to_run(in_tmp):
    with pytest.raises(FileNotFoundError, match=r"needs the output of stage 'train_baseline'.*dvc repro train_baseline"):
        conditions.load_age_model(conditions.model_path("train_baseline"), needed_by="finetune_korean")


def test_wrong_model_kind_is_refused(in_tmp):
    path = Path("models/pretrain_vcop/model.pt")
    conditions.save_model(path, VCOPModel(build_encoder("tiny_cnn"), 3, 16), "vcop", "tiny_cnn", tuple_len=3,
                          head_hidden=16)
    with pytest.raises(ValueError, match="holds a 'vcop' model, evaluate needs 'age'"):
        conditions.load_age_model(path, needed_by="evaluate")


def test_vcop_encoder_mismatch_is_a_config_error(in_tmp):
    path = Path("models/pretrain_vcop/model.pt")
    conditions.save_model(path, VCOPModel(build_encoder("tiny_cnn"), 3, 16), "vcop", "tiny_cnn", tuple_len=3,
                          head_hidden=16)
    with pytest.raises(ConfigError, match="pretrained with 'tiny_cnn'"):
        conditions.load_vcop_encoder(path, "resnet18", needed_by="downstream")
    name, encoder = conditions.load_vcop_encoder(path, "", needed_by="downstream")
    assert name == "tiny_cnn" and encoder.feature_dim == 64


def test_saved_age_model_round_trips(in_tmp):
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn")).eval()
    conditions.save_model(Path("m.pt"), model, "age", "tiny_cnn")
    loaded, name = conditions.load_age_model(Path("m.pt"))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert name == "tiny_cnn" and torch.equal(model(images), loaded.eval()(images))


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "metrics.json"
    runtime.write_json(target, {"mae": 1.0})
    with pytest.raises(RuntimeError):
        with runtime.atomic_path(target) as tmp:
            tmp.write_text('{"mae": ')  # killed half way
            raise RuntimeError("killed")
    assert runtime.read_json(target) == {"mae": 1.0}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left behind


def test_non_finite_metrics_are_written_as_null(tmp_path):
    runtime.write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, float("inf")]})
    assert runtime.read_json(tmp_path / "m.json") == {"a": None, "b": [1.0, None]}


def test_only_rank_zero_may_write(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    runtime.write_json(target, {"mae": 1.0})
    monkeypatch.setattr(runtime, "world", lambda: (1, 2))  # as rank 1 of 2 under torchrun
    with pytest.raises(RuntimeError, match="rank 1 tried to write .*metrics.json"):
        runtime.write_json(target, {"mae": 2.0})
    assert json.loads(target.read_text()) == {"mae": 1.0}
