"""predict needs only the model file: it records its face settings and trained age range; run from any directory,
one row per face, a flagged fallback when none is found, and a named outcome for every bad input."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline import artifacts, predict, runtime
from pipeline.config import EvalConfig
from pipeline.data import cache_build
from pipeline.faces import FaceSettings
from pipeline.models import AgeRegressor, build_encoder
from tests.helpers import ROOT, face_photos

pytest.importorskip("skimage.data")
SETTINGS = FaceSettings(face="mtcnn", image_size=32)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny age model saved by the training stages' save path, in a project of its own (cache built with mtcnn)."""
    project = tmp_path_factory.mktemp("project")
    photos = face_photos(project / "photos")
    table = pd.DataFrame([{"path": str(photos["upright"]), "person_id": "a", "age": 30.0, "domain": "general"}])
    cwd = Path.cwd()
    os.chdir(project)  # the save path reads data/cache and data/splits relative to the project, as a stage does
    try:
        cache_build.build_cache(table, None, Path("data/cache"), SETTINGS, workers=1)
        runtime.write_csv(Path("data/splits/general_train.csv"), pd.DataFrame({"age": [4.0, 71.0, 30.0]}))
        torch.manual_seed(0)
        artifacts.save_outputs("train_baseline", 0, AgeRegressor(build_encoder("tiny_cnn")), "age", "tiny_cnn",
                               {"general_mae": 1.0}, [{"train_loss": 1.0}], trained_on=["general"])
    finally:
        os.chdir(cwd)
    return project / "models" / "train_baseline" / "seed0" / "model.pt"


def test_model_file_records_its_inputs_as_plain_values(model_file):
    payload = torch.load(model_file, weights_only=True)  # no pickled code
    assert payload["face_settings"] == SETTINGS.to_dict() and "preprocess" not in payload
    assert payload["age_range"] == [4.0, 71.0] and payload["trained_on"] == ["general_train"]


def test_a_model_file_from_before_face_settings_had_their_name_still_predicts(model_file, tmp_path):
    payload = torch.load(model_file, weights_only=True)
    payload["preprocess"] = payload.pop("face_settings")  # how older model files record them
    older = tmp_path / "older.pt"
    torch.save(payload, older)
    model, loaded, _ = predict.load_model(str(older))
    table = predict.predict(model, loaded, [face_photos(tmp_path / "photos")["upright"]], device=torch.device("cpu"))
    assert table["outcome"].tolist() == ["face"]


def test_predict_from_another_directory_with_only_the_model_file(model_file, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # no params.yaml, no data/, no models/ here
    elsewhere.mkdir()
    model = elsewhere / "my_model.pt"
    model.write_bytes(model_file.read_bytes())
    photos = face_photos(elsewhere / "photos")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AGE_VCOP_DEVICE": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(model), "--out", "out.csv",
                           str(photos["upright"]), str(photos["exif"]), str(photos["no_face"])],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "dvc repro" not in proc.stderr + proc.stdout
    table = pd.read_csv(elsewhere / "out.csv", keep_default_na=False)
    assert table["outcome"].tolist() == ["face", "face", "no_face"]
    faces = table.iloc[:2]
    assert (faces["n_faces"] == 1).all() and (faces["score"].astype(float) > 0.9).all()
    assert (faces["box_x1"].astype(float) > faces["box_x0"].astype(float)).all()
    assert table["fallback"].tolist() == ["", "", "center_crop"] and "no face found" in proc.stderr
    assert all(np.isfinite(table["predicted_age"].astype(float)))
    # EXIF applied: the phone-rotated copy is the same face, so nearly the same prediction
    assert abs(table["predicted_age"][0] - table["predicted_age"][1]) < 2


def test_no_detect_takes_each_photo_as_a_crop(model_file, tmp_path):
    photos = face_photos(tmp_path)
    model, payload, _ = predict.load_model(str(model_file))
    table = predict.predict(model, payload, [photos["upright"], photos["no_face"]], no_detect=True,
                            device=torch.device("cpu"))
    assert table["outcome"].tolist() == ["crop", "crop"] and table["fallback"].tolist() == ["", ""]
    assert table["box_x0"].isna().all() and table["predicted_age"].notna().all()


def test_predict_averages_the_mirror_image_unless_told_not_to(model_file, tmp_path):
    photos = face_photos(tmp_path)
    model, payload, _ = predict.load_model(str(model_file))
    table = {mirror: predict.predict(model, payload, [photos["upright"]], no_detect=True, device=torch.device("cpu"),
                                     mirror_average=mirror) for mirror in (True, False)}
    assert table[True]["predicted_age"].iloc[0] != table[False]["predicted_age"].iloc[0]
    default = predict.predict(model, payload, [photos["upright"]], no_detect=True, device=torch.device("cpu"))
    assert EvalConfig.mirror_average  # the default evaluate scores with, so predict's default is the same
    assert default["predicted_age"].iloc[0] == table[True]["predicted_age"].iloc[0]
    out = tmp_path / "plain.csv"
    assert predict.main(["--model", str(model_file), "--no-detect", "--no-mirror", "--device", "cpu", "--out",
                         str(out), str(photos["upright"])]) == 0
    assert pd.read_csv(out)["predicted_age"].iloc[0] == table[False]["predicted_age"].iloc[0]


def test_every_bad_input_gets_a_named_outcome(model_file, tmp_path, caplog):
    photos = face_photos(tmp_path)
    face = Image.open(photos["upright"])
    face.convert("L").save(tmp_path / "grey.png")
    face.convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.asarray(face.convert("L")).astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16 bit
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    names = ["grey.png", "cmyk.jpg", "deep.png", "dot.png", "junk.jpg", "truncated.jpg", "gone.jpg"]
    model, payload, _ = predict.load_model(str(model_file))
    table = predict.predict(model, payload, [tmp_path / n for n in names], batch_size=3, device=torch.device("cpu"))
    assert table["path"].map(lambda p: Path(p).name).tolist() == names  # input order, one row each, none skipped
    assert table["outcome"].tolist() == ["face", "face", "face", "too_small", "unreadable", "truncated", "not_found"]
    bad = table.iloc[3:]
    assert bad["predicted_age"].isna().all() and bad["error"].str.len().gt(0).all()
    for name, reason in zip(names[3:], ["too_small", "unreadable", "truncated", "not_found"]):
        assert any(name in r.message and reason in r.message for r in caplog.records), name


def test_a_prediction_outside_the_trained_range_is_flagged(model_file, tmp_path, caplog):
    photos = face_photos(tmp_path)
    model, payload, _ = predict.load_model(str(model_file))
    payload = {**payload, "age_range": [90.0, 95.0]}  # whatever the tiny model says lies outside
    table = predict.predict(model, payload, [photos["upright"]], device=torch.device("cpu"))
    assert table["warning"].item() == "outside the trained age range 90-95"
    assert "outside the trained age range" in caplog.text


def test_model_argument_messages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"dvc repro train_baseline.*--model path/to/model.pt"):
        predict.load_model("baseline")  # a condition: inside a project, the stage to run is the fix
    with pytest.raises(FileNotFoundError) as err:
        predict.load_model("nowhere/model.pt")
    assert "dvc repro" not in str(err.value) and "model file nowhere/model.pt not found" in str(err.value)


def test_a_condition_name_takes_the_lowest_training_seed_trained(model_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for seed in (3, 1):
        path = artifacts.model_path("train_baseline", seed)
        path.parent.mkdir(parents=True)
        path.write_bytes(model_file.read_bytes())
    assert artifacts.trained_seeds("train_baseline") == [1, 3]
    _, _, path = predict.load_model("baseline")
    assert path == Path("models/train_baseline/seed1/model.pt")
