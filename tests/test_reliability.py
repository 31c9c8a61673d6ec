"""Failures leave earlier outputs intact and say what to do."""
import json
import os
import stat
from pathlib import Path

import pytest
import torch

from pipeline import artifacts, runtime
from pipeline.config import ConfigError
from pipeline.models import AgeRegressor, VCOPModel, build_encoder


def test_missing_upstream_model_names_the_stage_to_run(in_tmp):
    with pytest.raises(FileNotFoundError, match=r"needs the output of stage 'train_baseline@1'.*dvc repro train_baseline@1"):
        artifacts.load_age_model(artifacts.model_path("train_baseline", 1), needed_by="finetune_korean")


def test_wrong_model_kind_is_refused(in_tmp):
    path = Path("models/pretrain_vcop/model.pt")
    artifacts.save_model(path, VCOPModel(build_encoder("tiny_cnn"), 3, 16), "vcop", "tiny_cnn", tuple_len=3,
                          head_hidden=16)
    with pytest.raises(ValueError, match="holds a 'vcop' model, evaluate needs 'age'"):
        artifacts.load_age_model(path, needed_by="evaluate")


def test_vcop_encoder_mismatch_is_a_config_error(in_tmp):
    path = Path("models/pretrain_vcop/model.pt")
    artifacts.save_model(path, VCOPModel(build_encoder("tiny_cnn"), 3, 16), "vcop", "tiny_cnn", tuple_len=3,
                          head_hidden=16)
    with pytest.raises(ConfigError, match="pretrained with 'tiny_cnn'"):
        artifacts.load_vcop_encoder(path, "resnet18", needed_by="downstream")
    name, encoder = artifacts.load_vcop_encoder(path, "", needed_by="downstream")
    assert name == "tiny_cnn" and encoder.feature_dim == 64


def test_saved_age_model_round_trips(in_tmp):
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn")).eval()
    artifacts.save_model(Path("m.pt"), model, "age", "tiny_cnn")
    loaded, name = artifacts.load_age_model(Path("m.pt"))
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


def test_two_saves_of_the_same_model_are_byte_identical(in_tmp):
    """torch.save names its zip archive after the file it writes; artifacts save through a buffer instead."""
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn"))
    artifacts.save_model(Path("a/model.pt"), model, "age", "tiny_cnn")
    artifacts.save_model(Path("b/model.pt"), model, "age", "tiny_cnn")
    assert Path("a/model.pt").read_bytes() == Path("b/model.pt").read_bytes()


def test_written_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        runtime.write_json(tmp_path / "m.json", {"mae": 1.0})
        runtime.save_torch(tmp_path / "m.pt", {"w": torch.zeros(2)})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o644


def test_model_files_load_with_weights_only(in_tmp):
    """No pickled code in our files: torch.load(weights_only=True) reads them."""
    artifacts.save_model(Path("v.pt"), VCOPModel(build_encoder("tiny_cnn"), 3, 16), "vcop", "tiny_cnn", tuple_len=3,
                         head_hidden=16)
    assert torch.load("v.pt", weights_only=True)["tuple_len"] == 3


def test_thread_count_can_be_forced_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("AGE_VCOP_THREADS", "1")
    assert runtime.cpu_threads(world_size=2) == 1
    monkeypatch.setenv("AGE_VCOP_THREADS", "two")
    with pytest.raises(ValueError, match="AGE_VCOP_THREADS='two'"):
        runtime.cpu_threads()
    monkeypatch.delenv("AGE_VCOP_THREADS")
    assert runtime.cpu_threads() == max(1, (os.cpu_count() or 1))


def test_each_training_run_writes_under_its_own_seed(in_tmp):
    assert artifacts.model_path("finetune_korean", 2) == Path("models/finetune_korean/seed2/model.pt")
    assert artifacts.train_metrics_path("finetune_korean", 2) == Path("metrics/train/finetune_korean/seed2.json")
    assert artifacts.history_path("finetune_korean", 2) == Path("metrics/history/finetune_korean/seed2.csv")
