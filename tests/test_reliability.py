"""Failures leave earlier outputs intact and say what to do; hostile or unlucky input gets a named outcome."""
import errno
import io
import json
import os
import runpy
import stat
import struct
import subprocess
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from pipeline import artifacts, predict, runtime, steps, train
from pipeline.config import ConfigError, DataConfig
from pipeline.data import cache_build, roots, sources, summary
from pipeline.data.splits import EmptySplitError
from pipeline.faces import FaceSettings, PhotoError, open_photo, prepare
from pipeline.models import AgeRegressor, VCOPModel, build_encoder
from tests.helpers import ROOT, TINY_PARAMS, photo, ramp
from tests.test_train import CPU, cfg, fresh_model, toy_images, toy_loaders

CROPS = FaceSettings(face="none", image_size=16)


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


# ------------------------------------------------------------------------------ hostile and unlucky input
def csv_root(folder: Path, paths: list[str]) -> Path:
    """A `csv` source root: two photos of its own plus the manifest rows `paths` (one person each)."""
    photo(folder / "p0" / "0.jpg", 90)
    photo(folder / "p0" / "1.jpg", 120)
    rows = [{"path": p, "person_id": f"fam{i}", "age": 20 + i} for i, p in enumerate(["p0/0.jpg", "p0/1.jpg", *paths])]
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


def two_csv_roles(general: Path, korean: Path) -> DataConfig:
    return DataConfig(general="csv", korean="csv", general_root=str(general), korean_root=str(korean), image_size=24)


def test_a_file_name_that_is_not_utf8_is_named_and_skipped_not_a_crash(in_tmp):
    root = in_tmp / "afad"
    photo(root / "25" / "111" / "a.jpg")
    photo(root / "30" / "112" / "b.jpg")
    bad = root / "25" / "111" / os.fsdecode(b"bad\xff\xfe.jpg")
    photo(bad)
    photo(in_tmp / "elsewhere.jpg")
    os.symlink(in_tmp / "elsewhere.jpg", root / "30" / "112" / "linked.jpg")  # a folder source follows no link out
    roots.fingerprint(root)  # check_params: used to raise a UnicodeEncodeError naming no file
    cfg = DataConfig(general="afad", korean="csv", general_root=str(root), image_size=24,
                     korean_root=str(csv_root(in_tmp / "family", [])))
    manifest, _, refused = sources.build_manifest(cfg)
    assert len(manifest) == 4 and not manifest["path"].str.contains("bad|linked").any()
    assert [(r["reason"], Path(r["path"]).name) for r in refused] == [("bad_name", "bad\\xff\\xfe.jpg"),
                                                                      ("outside_root", "linked.jpg")]
    assert "rename it" in refused[0]["error"]
    meta = cache_build.build_cache(manifest, None, in_tmp / "cache", CROPS, workers=1, dropped=refused)
    dropped = pd.read_csv(in_tmp / "cache" / "dropped.csv", encoding="utf-8")  # writable and readable as text
    assert dropped["reason"].tolist() == ["bad_name", "outside_root"] and meta["dropped_by_reason"]["bad_name"] == 1


def test_paths_that_leave_the_data_root_are_refused_as_outside_root(in_tmp):
    outside = in_tmp / "elsewhere" / "secret.jpg"
    photo(outside)
    korean = in_tmp / "family"
    korean.mkdir()
    os.symlink(outside, korean / "link.jpg")  # a photo linked in from outside the root
    os.symlink("loop.jpg", korean / "loop.jpg")  # a link to itself
    csv_root(korean, ["../elsewhere/secret.jpg", str(outside), "link.jpg", "loop.jpg"])
    general = csv_root(in_tmp / "general", [])
    roots.fingerprint(korean)  # a symlink loop used to raise a raw OSError here
    manifest, info, refused = sources.build_manifest(two_csv_roles(general, korean))
    reasons = {Path(r["path"]).name: r["reason"] for r in refused}
    assert reasons == {"secret.jpg": "outside_root", "link.jpg": "outside_root", "loop.jpg": "link_loop"}
    assert sum(r["reason"] == "outside_root" for r in refused) == 3  # `../..` row, absolute path, link
    assert not manifest["path"].str.contains("secret|link|loop").any() and len(manifest) == 4
    meta = cache_build.build_cache(manifest, None, in_tmp / "cache", CROPS, workers=1, dropped=refused)
    data = summary.data_summary(manifest, info, meta)  # metrics/data.json
    assert data["dropped_by_reason"]["outside_root"] == 3 and data["dropped_by_reason"]["link_loop"] == 1
    assert data["n_images_dropped"] == 4
    dropped = pd.read_csv(in_tmp / "cache" / "dropped.csv")
    assert sorted(dropped["reason"]) == ["link_loop", "outside_root", "outside_root", "outside_root"]


def png_with_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but whose pixel data is a 16x16 image: decoding it would fail
    (truncated), so only a check of the header can name it."""
    buffer = io.BytesIO()
    Image.fromarray(ramp(16, 16, 100)[..., 0], "L").save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts after signature, length and type
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def test_a_decompression_bomb_is_refused_from_its_header_as_too_large(tmp_path):
    bomb = png_with_header(tmp_path / "bomb.png", 12000, 12000)  # 144 Mpx: 432 MB once decoded as RGB
    with pytest.raises(PhotoError) as err:
        open_photo(bomb)
    assert err.value.reason == "too_large" and "bomb.png" in str(err.value) and "12000x12000" in str(err.value)
    assert Image.MAX_IMAGE_PIXELS <= 100_000_000  # Pillow's own guard was raised to 400 Mpx


def test_a_big_png_is_shrunk_to_the_size_needed_before_conversion(tmp_path):
    Image.fromarray(ramp(4000, 5000, 120)[..., 0], "L").save(tmp_path / "big.png")  # 20 Mpx
    decoded = open_photo(tmp_path / "big.png", draft_side=224)
    assert decoded.mode == "RGB" and 224 <= min(decoded.size) < 448  # reduced 17x, not converted at full size
    assert prepare(tmp_path / "big.png", FaceSettings(face="none", image_size=112)).pixels.shape == (112, 112, 3)


def test_a_transparent_or_one_colour_photo_is_dropped_as_blank(tmp_path):
    Image.fromarray(np.zeros((40, 40, 4), np.uint8), "RGBA").save(tmp_path / "clear.png")
    Image.fromarray(np.full((40, 40, 3), 77, np.uint8)).save(tmp_path / "flat.png")
    photo(tmp_path / "real.jpg")
    rows = [{"path": str(tmp_path / n), "person_id": n, "age": 30.0, "domain": "korean"}
            for n in ("clear.png", "flat.png", "real.jpg")]
    meta = cache_build.build_cache(pd.DataFrame(rows), None, tmp_path / "cache", CROPS, workers=1)
    dropped = pd.read_csv(tmp_path / "cache" / "dropped.csv")
    assert dropped["reason"].tolist() == ["blank", "blank"] and meta["dropped_by_reason"]["blank"] == 2
    assert "same colour" in dropped["error"][0] and meta["n_images"] == 1


def test_edited_code_retrains_instead_of_resuming_a_finished_checkpoint(tmp_path, monkeypatch):
    """A stage reruns when a module it imports changes (DVC deps); the checkpoint key must change with it."""
    loss_file = tmp_path / "loss.py"
    loss_file.write_text("WEIGHT = 1.0\n")
    module = types.ModuleType("pipeline.user_loss")
    module.__file__ = str(loss_file)
    monkeypatch.setitem(sys.modules, "pipeline.user_loss", module)  # as if the stage imported it
    epochs = []
    run_epoch = train.run_epoch
    monkeypatch.setattr(train, "run_epoch", lambda *a, **k: (epochs.append(k.get("desc")), run_epoch(*a, **k))[1])
    images, table = toy_images()
    c = cfg(epochs=2)

    def fit() -> int:
        epochs.clear()
        train.fit(fresh_model(), toy_loaders(images, table, c), steps.age_step, c, tmp_path / "ckpt", CPU)
        return len(epochs)

    assert fit() == 4  # 2 epochs of training + validation
    assert fit() == 0  # same code: the finished checkpoint returns at once (resume is unchanged)
    loss_file.write_text("WEIGHT = 2.0\n")  # the user edits the loss
    assert fit() == 4  # retrained, not the old weights returned


def stage_main(name: str):
    return runpy.run_path(str(ROOT / "stages" / f"{name}.py"))["main"]


def write_params(path: Path, **data_overrides) -> dict:
    params = yaml.safe_load(TINY_PARAMS.read_text())
    for key, value in data_overrides.items():
        section, field = key.split("__")
        params[section][field] = value
    path.write_text(yaml.safe_dump(params))
    return params


def test_check_params_refuses_a_korean_test_person_not_in_the_data(in_tmp):
    write_params(in_tmp / "params.yaml", split_korean__korean_test_person="nobody")
    with pytest.raises(EmptySplitError, match="korean_test_person: no Korean person 'nobody'.*k000"):
        stage_main("check_params")()  # before split_korean deletes data/splits and metrics/splits.json
    write_params(in_tmp / "params.yaml", split_korean__korean_test_person="k00003")
    stage_main("check_params")()


def test_check_params_refuses_duplicate_manifest_rows(in_tmp):
    korean = csv_root(in_tmp / "family", ["./p0/1.jpg"])  # the same photo listed twice
    write_params(in_tmp / "params.yaml", data__korean="csv", data__korean_root=str(korean))
    with pytest.raises(ValueError, match="duplicate path at line"):
        stage_main("check_params")()  # before prepare_data deletes data/cache


def tiny_model_file(path: Path) -> Path:
    torch.manual_seed(0)
    artifacts.save_model(path, AgeRegressor(build_encoder("tiny_cnn")), "age", "tiny_cnn",
                         preprocess=FaceSettings(face="none", image_size=32).to_dict(), age_range=[0.0, 80.0])
    return path


@pytest.mark.parametrize("kind", ["truncated", "foreign"])
def test_predict_names_a_broken_or_foreign_model_file(tmp_path, kind, caplog):
    model = tiny_model_file(tmp_path / "model.pt")
    if kind == "truncated":
        model.write_bytes(model.read_bytes()[:2000])
    else:
        torch.save({"a": 1}, model)
    photo(tmp_path / "face.jpg")
    with pytest.raises(ValueError, match="truncated or corrupt" if kind == "truncated" else
                       r"not a model file of this project \(it holds keys \['a'\]") as err:
        predict.load_model(str(model))  # a raw PytorchStreamReader error, or blamed on an old file format
    assert type(err.value).__name__ == "ModelFileError"
    status = predict.main(["--model", str(model), "--out", str(tmp_path / "out.csv"), str(tmp_path / "face.jpg")])
    assert status == 2 and not (tmp_path / "out.csv").exists() and "saved before model files" not in caplog.text


def test_predict_checks_out_before_any_work_and_counts_skipped_files(tmp_path, monkeypatch, caplog):
    model = str(tiny_model_file(tmp_path / "model.pt"))
    photos = tmp_path / "photos"
    photo(photos / "a.jpg")
    (photos / "notes.txt").write_text("not a photo")
    (photos / "meta.json").write_text("{}")
    (tmp_path / "folder").mkdir()
    (tmp_path / "mine.txt").write_text("keep me")
    real_predict = predict.predict
    monkeypatch.setattr(predict, "predict", lambda *a, **k: pytest.fail("predicted before --out was checked"))
    assert predict.main(["--model", model, "--out", str(tmp_path / "folder"), str(photos)]) == 2
    assert predict.main(["--model", model, "--out", str(tmp_path / "mine.txt"), str(photos)]) == 2
    assert (tmp_path / "mine.txt").read_text() == "keep me" and "--overwrite" in caplog.text
    monkeypatch.setattr(predict, "predict", real_predict)
    out = tmp_path / "pred.csv"
    assert predict.main(["--model", model, "--out", str(out), str(photos)]) == 0
    assert "skipped 2 file(s) that are not photos" in caplog.text
    assert predict.main(["--model", model, "--out", str(out), str(photos)]) == 0  # its own output is replaced
    assert predict.main(["--model", model, "--out", str(tmp_path / "mine.txt"), "--overwrite", str(photos)]) == 0
    assert pd.read_csv(tmp_path / "mine.txt")["outcome"].tolist() == ["crop"]


def expected_failure(capsys, raise_it, name: str = "stage") -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        runtime.entry_point(raise_it, name)
    return stop.value.code, capsys.readouterr().err


def test_ctrl_c_and_a_full_disk_print_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt

    code, err = expected_failure(capsys, interrupted)
    assert code == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err and len(err.splitlines()) == 1

    write_text = Path.write_text

    def disk_full(self, *args, **kwargs):  # the metrics' temp file, in tmp_path, hits a full disk
        if self.parent == tmp_path:
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    code, err = expected_failure(capsys, lambda: runtime.write_json(tmp_path / "metrics.json", {"mae": 1.0}))
    monkeypatch.undo()
    assert code == 3 and f"disk full writing {tmp_path / 'metrics.json'}" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 and not list(tmp_path.glob("*.tmp"))
    log_file = Path(err.split("traceback in ")[1].split(";")[0])
    assert "OSError" in log_file.read_text()  # the traceback went to the log file


def test_a_bug_keeps_its_traceback_and_debug_shows_it_for_expected_failures(in_tmp, capsys, monkeypatch):
    def bug():
        return {}["missing"]

    with pytest.raises(KeyError):  # not an expected failure: Python prints the traceback
        runtime.entry_point(bug, "stage")
    write_params(in_tmp / "params.yaml", data__image_size="big")
    code, err = expected_failure(capsys, stage_main("check_params"), "check_params")
    assert code == 2 and "params.yaml:data.image_size: expected int, got 'big'" in err
    monkeypatch.setenv(runtime.DEBUG_ENV, "1")
    with pytest.raises(ConfigError):  # the debug switch: the traceback as usual
        runtime.entry_point(stage_main("check_params"), "check_params")


def test_a_params_type_error_fails_a_stage_in_one_line(tmp_path):
    params = write_params(tmp_path / "params.yaml")
    params["train_baseline"]["encoder"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGE_VCOP_DEVICE": "cpu"}
    env.pop("AGE_VCOP_DEBUG", None)
    proc = subprocess.run([sys.executable, str(ROOT / "stages" / "check_params.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("check_params: ConfigError: ")
    assert "train_baseline.encoder" in proc.stderr
