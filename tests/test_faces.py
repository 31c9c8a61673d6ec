"""Face preprocessing on a real photo that a pip package ships (skimage's public-domain astronaut): detection,
alignment to the template, rotation and EXIF undone, bad files named, and `face: none` = the historical cache."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from pipeline.faces import FaceSettings, PhotoError, load_photo, prepare, prepare_many
from pipeline.faces.align import template_points

skimage_data = pytest.importorskip("skimage.data")

SETTINGS = FaceSettings(face="mtcnn", image_size=112)


@pytest.fixture(scope="module")
def detector():
    return SETTINGS.detector("cpu")  # weights load once for the module


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()  # (512, 512, 3) uint8, shipped inside the scikit-image wheel


def eyes_in_crop(crop: np.ndarray, detector) -> np.ndarray:
    """Detect again on the aligned crop: where its eyes really are (2, 2)."""
    faces = detector.detect([crop])[0]
    assert faces, "no face found again in the aligned crop"
    return faces[0].landmarks[:2]


def test_face_found_and_eyes_land_on_the_template(astronaut, detector):
    result = prepare(astronaut, SETTINGS, detector)
    assert result.face_found and result.n_faces == 1 and result.fallback == "" and result.score > 0.99
    assert result.pixels.shape == (112, 112, 3) and result.pixels.dtype == np.uint8
    target = template_points("arcface", 112, SETTINGS.margin)[:2]
    # 4 px of 112: the least-squares fit to eyes + mouth corners leaves ~3 px on the eyes of this wide smile
    assert np.abs(eyes_in_crop(result.pixels, detector) - target).max() < 4.0


def test_in_plane_rotation_is_undone(astronaut, detector):
    rotated = np.asarray(Image.fromarray(astronaut).rotate(30, resample=Image.Resampling.BILINEAR, expand=True,
                                                           fillcolor=(128, 128, 128)))
    upright, turned = prepare(astronaut, SETTINGS, detector), prepare(rotated, SETTINGS, detector)
    assert turned.face_found
    target = template_points("arcface", 112, SETTINGS.margin)[:2]
    assert np.abs(eyes_in_crop(turned.pixels, detector) - target).max() < 4.0
    assert np.abs(turned.pixels.astype(float) - upright.pixels).mean() < 12  # the same face, same framing


@pytest.mark.parametrize("orientation, stored_as", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270),
                                                    (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_photo_gives_the_upright_crop(tmp_path, astronaut, detector, orientation, stored_as):
    upright_path, phone_path = tmp_path / "upright.jpg", tmp_path / "phone.jpg"
    Image.fromarray(astronaut).save(upright_path, quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation  # what a phone writes instead of rotating the pixels
    Image.fromarray(astronaut).transpose(stored_as).save(phone_path, quality=95, exif=exif)
    assert np.abs(load_photo(phone_path).astype(float) - load_photo(upright_path)).mean() < 2  # decoded upright
    upright, phone = prepare(upright_path, SETTINGS, detector), prepare(phone_path, SETTINGS, detector)
    assert phone.face_found
    # JPEG blocks fall differently, so landmarks move by ~1 px (a 1 px shift alone gives ~11 on this detailed
    # crop); a crop of the sideways pixels (EXIF ignored) differs by 65-80
    assert np.abs(phone.pixels.astype(float) - upright.pixels).mean() < 20


@pytest.mark.parametrize("kind", ["grey", "noise"])
def test_no_face_falls_back_to_the_centre_crop_flagged(detector, kind):
    rng = np.random.default_rng(0)
    image = (np.full((200, 260, 3), 128, np.uint8) if kind == "grey"
             else rng.integers(0, 256, (200, 260, 3), dtype=np.uint8))
    result = prepare(image, SETTINGS, detector)
    assert not result.face_found and result.n_faces == 0
    assert result.fallback == "center_crop" and result.drop_reason == "no_face"
    assert result.pixels.shape == (112, 112, 3)


def test_bad_files_get_named_reasons(tmp_path, astronaut):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    Image.fromarray(astronaut).save(tmp_path / "full.jpg", quality=90)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all" * 10)
    expected = {"dot.png": "too_small", "cut.jpg": "truncated", "junk.jpg": "unreadable", "gone.jpg": "not_found"}
    for name, reason in expected.items():
        with pytest.raises(PhotoError) as err:
            prepare(tmp_path / name, FaceSettings(face="none"))
        assert err.value.reason == reason and name in str(err.value)
    results = list(prepare_many([tmp_path / n for n in expected], FaceSettings(face="none"), workers=1))
    assert [r.reason for r in results] == list(expected.values())  # errors come back in order, never raised


def test_grey_cmyk_and_16_bit_photos_are_converted(tmp_path, astronaut, detector):
    grey = np.asarray(Image.fromarray(astronaut).convert("L"))
    Image.fromarray(grey).save(tmp_path / "grey.jpg", quality=95)
    Image.fromarray(astronaut).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")  # 16-bit grey PNG
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    for name, like in [("grey.jpg", np.repeat(grey[..., None], 3, 2)), ("cmyk.jpg", astronaut),
                       ("deep.png", np.repeat(grey[..., None], 3, 2))]:
        pixels = load_photo(tmp_path / name)
        assert pixels.shape == astronaut.shape and pixels.dtype == np.uint8
        assert np.abs(pixels.astype(float) - like).mean() < 4, name
        assert prepare(tmp_path / name, SETTINGS, detector).face_found, name


def test_face_none_reproduces_the_cache_bytes(tmp_path, astronaut):
    """The synthetic default's cache must not change: the same pixels as the cache's own decoder before
    pipeline.faces replaced it (load_rgb, deleted; its output on these photos is the digest below)."""
    rng = np.random.default_rng(1)
    photo = Image.fromarray(astronaut)
    photo.resize((700, 530)).save(tmp_path / "big.jpg", quality=90)  # JPEG draft path, non-square
    photo.resize((40, 64)).save(tmp_path / "small.png")  # smaller than the size: bilinear upscaling
    photo.convert("L").save(tmp_path / "grey.png")
    Image.fromarray(rng.integers(0, 256, (90, 77, 4), dtype=np.uint8), "RGBA").save(tmp_path / "alpha.png")
    photo.convert("P").save(tmp_path / "palette.png")
    digest = hashlib.md5()
    for size in (32, 48, 112):
        for name in ("big.jpg", "small.png", "grey.png", "alpha.png", "palette.png"):
            ours = prepare(tmp_path / name, FaceSettings(face="none", image_size=size))
            assert not ours.face_found and ours.fallback == ""
            digest.update(ours.pixels.tobytes())
    assert digest.hexdigest() == "30f696f444a01b5e340ad3015f35c07b"  # load_rgb's, with the pinned Pillow


def test_settings_round_trip_and_reject_typos():
    settings = FaceSettings(face="mtcnn", image_size=64, margin=0.3, thresholds=(0.5, 0.6, 0.7))
    assert FaceSettings.from_dict(settings.to_dict()) == settings
    assert isinstance(settings.to_dict()["thresholds"], list)
    with pytest.raises(ValueError, match="unknown face setting"):
        FaceSettings.from_dict({"face": "mtcnn", "marign": 0.3})
    with pytest.raises(ValueError, match="face must be one of"):
        FaceSettings(face="dlib")


def test_prepare_many_in_processes_matches_prepare(tmp_path, astronaut, detector):
    paths = []
    for i, angle in enumerate((0, 10, -10)):
        path = tmp_path / f"p{i}.png"
        Image.fromarray(astronaut).rotate(angle, fillcolor=(90, 90, 90)).save(path)
        paths.append(path)
    paths.append(tmp_path / "missing.jpg")
    together = list(prepare_many(paths, SETTINGS, workers=2, chunk_size=1))
    assert isinstance(together[-1], PhotoError) and together[-1].reason == "not_found"
    for path, result in zip(paths[:-1], together):
        np.testing.assert_array_equal(result.pixels, prepare(path, SETTINGS, detector).pixels)
