"""The cache through pipeline.faces: any readable photo becomes a square RGB crop, unusable ones are dropped with
their reason, and with `face: mtcnn` real photos are detected and aligned while rendered crops are kept as they are."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline import config
from pipeline.data import cache, cache_build, sources
from pipeline.faces import FaceSettings, PhotoError, prepare
from tests.helpers import face_photos, ramp, write_photos

pytest.importorskip("skimage.data")
CROPS = FaceSettings(face="none", image_size=16)


def odd_images(folder):
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.png" for name in ("grey", "alpha", "sixteen", "tiny", "huge", "wide")}
    Image.fromarray(ramp(20, 20, 100)[..., 0], "L").save(paths["grey"])
    alpha = np.concatenate([ramp(20, 20, 90), np.full((20, 20, 1), 128, np.uint8)], axis=2)  # half transparent
    Image.fromarray(alpha, "RGBA").save(paths["alpha"])
    Image.fromarray(np.linspace(60000, 65535, 400).reshape(20, 20).astype(np.uint16)).save(paths["sixteen"])
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(paths["tiny"])
    Image.fromarray(ramp(3000, 3000, 50)).save(paths["huge"])
    Image.fromarray(ramp(10, 40, 70)).save(paths["wide"])
    return paths


def test_any_usable_photo_decodes_to_a_square_rgb_and_a_tiny_one_is_named(tmp_path):
    settings = FaceSettings(face="none", image_size=24)
    for name, path in odd_images(tmp_path).items():
        if name in ("tiny", "wide"):  # 1x1 and 10 px high: no face fits; it used to pass silently
            with pytest.raises(PhotoError) as err:
                prepare(path, settings)
            assert err.value.reason == "too_small" and name in str(err.value)
            continue
        pixels = prepare(path, settings).pixels
        assert pixels.shape == (24, 24, 3) and pixels.dtype == np.uint8, name
    assert prepare(tmp_path / "sixteen.png", settings).pixels.max() == 255  # scaled, not clipped everywhere
    # half transparent over neutral grey: (90 + 128) / 2
    assert prepare(tmp_path / "alpha.png", settings).pixels.mean() == pytest.approx(109, abs=1)


def test_unusable_photos_are_dropped_with_their_reason(tmp_path):
    table = write_photos(tmp_path / "img", {"a": [10, 20, 30]}, size=128)
    (tmp_path / "img" / "a_1.jpg").write_bytes(b"not a jpeg at all")
    truncated = (tmp_path / "img" / "a_2.jpg").read_bytes()
    (tmp_path / "img" / "a_2.jpg").write_bytes(truncated[: len(truncated) // 3])
    (tmp_path / "img" / "zero.jpg").write_bytes(b"")
    table = pd.concat([table, pd.DataFrame([{"path": str(tmp_path / "img" / "zero.jpg"), "person_id": "z",
                                             "age": 5.0, "domain": "korean"}])], ignore_index=True)
    meta = cache_build.build_cache(table, None, tmp_path / "cache", CROPS, workers=1)
    dropped = pd.read_csv(tmp_path / "cache" / "dropped.csv")
    assert meta["n_dropped"] == 3 and meta["n_images"] == 1
    assert list(dropped.columns) == ["path", "reason", "error"]
    reasons = dict(zip(dropped["path"].str.rsplit("/", n=1).str[-1], dropped["reason"]))
    assert reasons == {"a_1.jpg": "unreadable", "a_2.jpg": "truncated", "zero.jpg": "unreadable"}
    assert meta["dropped_by_reason"] == {"bad_name": 0, "outside_root": 0, "link_loop": 0, "no_label": 0,
                                         "no_photo": 0, "bad_label": 0, "age_mismatch": 0, "no_face": 0,
                                         "bad_landmarks": 0, "not_found": 0, "unreadable": 2, "truncated": 1,
                                         "too_small": 0, "too_large": 0, "blank": 0}
    index = pd.read_csv(tmp_path / "cache" / "index.csv")
    assert len(index) == len(cache.open_images(tmp_path / "cache")) == meta["n_images"]
    assert "n_faces" not in index.columns  # no detector ran: the index is the manifest, unchanged


def test_cache_holds_exact_pixels_in_index_order(tmp_path):
    table = write_photos(tmp_path / "img", {"a": [0, 40], "b": [80]}, size=16)
    cache_build.build_cache(table, None, tmp_path / "cache", CROPS, workers=2)
    images = cache.open_images(tmp_path / "cache")
    means = images.reshape(len(images), -1).mean(1)
    assert images.dtype == np.uint8 and np.all(np.diff(means) > 0)  # brightness follows age, row order kept


def test_mtcnn_cache_on_real_photos_drops_no_face_and_records_the_face(tmp_path):
    photos = face_photos(tmp_path / "photos")
    rows = [{"path": str(path), "person_id": name, "age": 30 + i, "domain": "general"}
            for i, (name, path) in enumerate(photos.items())]
    # a rendered crop (like a synthetic photo): no face a detector could find at this size, kept as it is
    write_photos(tmp_path / "rendered", {"r": [12.0]}, domain="korean", size=32)
    rows.append({"path": str(tmp_path / "rendered" / "r_0.jpg"), "person_id": "r", "age": 12.0, "domain": "korean"})
    table = pd.DataFrame(rows)
    settings = FaceSettings(face="mtcnn", image_size=32)
    meta = cache_build.build_cache(table, None, tmp_path / "cache", settings, workers=1,
                                   crops=(table["domain"] == "korean").to_numpy())
    dropped = pd.read_csv(tmp_path / "cache" / "dropped.csv")
    names = dropped["path"].map(lambda path: path.rsplit("/", 1)[-1])
    assert dict(zip(names, dropped["reason"])) == {"no_face.jpg": "no_face", "truncated.jpg": "truncated"}
    assert "no face found" in dropped.loc[dropped["reason"] == "no_face", "error"].item()
    assert meta["dropped_by_reason"]["no_face"] == 1 and meta["dropped_by_reason"]["truncated"] == 1
    assert meta["face"] == {"general": settings.to_dict(), "korean": settings.to_dict()} and meta["n_as_crops"] == 1
    index = pd.read_csv(tmp_path / "cache" / "index.csv", dtype={"person_id": str})
    assert index["person_id"].tolist() == ["upright", "rotated", "exif", "r"]
    faces = index.set_index("person_id")
    assert (faces.loc[["upright", "rotated", "exif"], "n_faces"] == 1).all()
    assert (faces.loc[["upright", "rotated", "exif"], "face_score"] > 0.9).all()
    assert faces.loc["upright", "box_x1"] > faces.loc["upright", "box_x0"]
    assert pd.isna(faces.loc["r", "n_faces"])  # the rendered crop: no detector ran on it
    images = cache.open_images(tmp_path / "cache").astype(float)
    # rotation and EXIF undone: the three aligned crops show the same face (a 25 degree turn re-sampled twice)
    assert np.abs(images[1] - images[0]).mean() < 20 and np.abs(images[2] - images[0]).mean() < 20


def test_face_settings_come_from_params_and_synthetic_roles_are_crops(tmp_path):
    params = config.read_params()
    data = config.build(config.DataConfig, {**params["data"], "face": "mtcnn", "general": "aaf",
                                            "general_root": str(tmp_path)}, "params.yaml:data")
    settings = cache_build.face_settings(data)["general"]
    assert (settings.face, settings.image_size, settings.margin, settings.template) == ("mtcnn", 48, 0.25, "arcface")
    manifest = pd.DataFrame({"domain": ["general", "korean", "korean"]})
    assert sources.rendered_crops(data, manifest).tolist() == [False, True, True]


@pytest.mark.parametrize("key, value, message", [
    ("face", "dlib", "data.face: expected one of 'none', 'mtcnn', 'landmarks'"),
    ("face_template", "ffhq", "data.face_template: expected one of 'arcface'"),
    ("face_margin", 3.0, "face_margin must be in"),
    ("face_min_size", 8, "face_min_size must be >= 12"),
    ("face_max_side", 60, "face_max_side must be >= 4 x face_min_size"),
    ("face_marign", 0.3, "data.face_marign"),
])
def test_bad_face_params_are_named(key, value, message):
    params = config.read_params()
    with pytest.raises(config.ConfigError, match=message):
        config.build(config.DataConfig, {**params["data"], key: value}, "params.yaml:data")
