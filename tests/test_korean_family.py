"""The AIHub family-relations source: file names with age bands, interval ages everywhere an age is read, VCOP
tuples from distinct bands and family-disjoint splits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pipeline import metrics, steps
from pipeline.data import cache_build, intervals, manifest, photo_control, sequences, splits
from pipeline.data.adapters import ADAPTERS
from pipeline.data.adapters import korean_family
from pipeline.data.loaders import TupleBatches, _concat, photo_dataset
from pipeline.data.sources import kept_share
from pipeline.faces import FaceSettings


def _photo(path: Path, value: int = 120) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)


def family_tree(root: Path) -> Path:
    """A small copy of the published layout with every quirk of the real download."""
    names = {
        "train_images": ["F0001_AGE_D_18_a1.jpg", "F0001_AGE_D_18_b1.JPG", "F0001_AGE_D_18_c1.jpg",
                         "F0001_AGE_M_45_d1.jpg", "F0001_AGE_M_45_e.jpg",  # no index
                         "F0002_AGE_S_30_a1.jpg", "F0002_AGE_S_30_b1.jpg", "F0002_AGE_S_30_d1.jpg",
                         "F0003_AGE_D_21_e1.jpg",  # band starts above the stated age
                         "F0003_AGE_GM_70_z1.jpg",  # band letter outside a-h
                         "F0004_AGE_D_18_a1.jpg", "F0004_AGE_D_51_b1.jpg",  # one key, two stated ages
                         "holiday.jpg"],  # outside the pattern
        "val_images": ["F0801_AGE_S_12_a1.jpg", "F0801_AGE_S_12_b1.jpg"],
        "test_images": ["F0851_AGE_F_60_d1.jpg", "F0851_AGE_F_60_g1.jpg"],
        "fixed_val_dataset": ["F0801_AGE_S_12_a1.jpg"],  # copies: skipped
    }
    for folder, files in names.items():
        for i, name in enumerate(files):
            _photo(root / folder / name, i)
    return root


def test_adapter_reads_bands_as_intervals_and_names_every_quirk(tmp_path):
    table = ADAPTERS["korean_family"](family_tree(tmp_path / "kf"), "korean")
    dropped = {Path(d["path"]).name: d["reason"] for d in table.attrs["dropped"]}
    assert dropped == {"F0003_AGE_D_21_e1.jpg": "age_mismatch", "F0003_AGE_GM_70_z1.jpg": "bad_label",
                       "holiday.jpg": "bad_label"}
    rows = table.set_index(table["path"].map(lambda p: Path(p).name))
    # band c (13-19) cut at the stated age 18; an exact midpoint as `age`
    assert rows.loc["F0001_AGE_D_18_c1.jpg", ["age_low", "age_high", "age"]].tolist() == [13.0, 18.0, 15.5]
    assert rows.loc["F0001_AGE_D_18_b1.JPG", "person_id"] == "F0001_D"  # .JPG read like .jpg
    assert rows.loc["F0001_AGE_M_45_e.jpg", ["age_low", "age_high"]].tolist() == [31.0, 45.0]
    assert set(rows.loc[rows["family_id"] == "F0004", "person_id"]) == {"F0004_D@18", "F0004_D@51"}
    assert rows.loc["F0851_AGE_F_60_d1.jpg", "split_hint"] == "test"
    assert not any("fixed_" in p for p in table["path"])
    assert manifest.validate(table, "kf")["age_low"].dtype == float


def test_an_unreadable_jpeg_of_the_set_is_dropped_with_its_reason(tmp_path):
    root = family_tree(tmp_path / "kf")
    (root / "train_images" / "F0002_AGE_S_30_c2.jpg").write_bytes(b"this is not a photo")
    table = manifest.validate(ADAPTERS["korean_family"](root, "korean"), "kf")
    settings = {"general": FaceSettings(image_size=32), "korean": FaceSettings(image_size=32)}
    cache_build.build_cache(table, None, tmp_path / "cache", settings, workers=1)
    dropped = pd.read_csv(tmp_path / "cache" / "dropped.csv")
    assert dropped.set_index(dropped["path"].map(lambda p: Path(p).name))["reason"].to_dict() == \
        {"F0002_AGE_S_30_c2.jpg": "unreadable"}
    index = pd.read_csv(tmp_path / "cache" / "index.csv")
    assert {"age_low", "age_high", "family_id"} <= set(index.columns)  # the labels reach the splits


def test_manifest_refuses_an_impossible_interval():
    table = pd.DataFrame({"path": ["a.jpg"], "person_id": ["p"], "age": [10.0], "domain": ["korean"],
                          "age_low": [12.0], "age_high": [14.0]})
    with pytest.raises(manifest.ManifestError, match="impossible age interval"):
        manifest.validate(table, "t", check_files=False)
    with pytest.raises(manifest.ManifestError, match="without its partner"):
        manifest.validate(table.drop(columns="age_high"), "t", check_files=False)


def test_interval_metrics_are_zero_inside_and_exact_ages_unchanged():
    pred = np.array([3.0, 10.0, 40.0, 20.0])
    low, high = np.array([0.0, 13.0, 31.0, 20.0]), np.array([6.0, 19.0, 45.0, 20.0])
    m = metrics.age_metrics(pred, low, high)
    assert m["mae"] == pytest.approx((0 + 3 + 0 + 0) / 4)
    assert m["bias"] == pytest.approx(-3 / 4)
    assert m["band_acc"] == pytest.approx(3 / 4)  # 10 years is band b, the label band c
    assert m["mae_life_band"]["c:13-19"] == pytest.approx(3.0)
    exact_pred, exact = np.array([1.5, 7.25, 33.0], np.float32), np.array([2.0, 9.0, 30.0])
    plain = metrics.age_metrics(exact_pred, exact)
    assert plain["mae"] == float(np.abs(exact_pred - exact).mean())  # bit for bit
    assert plain["rmse"] == float(np.sqrt(((exact_pred - exact) ** 2).mean()))
    assert np.array_equal(metrics.cs_curve(exact_pred, exact), metrics.cs_curve(exact_pred, exact, exact))


def test_interval_loss_is_zero_inside_and_l1_on_exact_ages():
    pred = torch.tensor([0.1, 0.2, 0.3])
    exact = torch.tensor([5.0, 20.0, 40.0])
    as_interval = torch.stack([exact, exact], 1)
    assert torch.equal(steps.age_loss(pred, exact), steps.age_loss(pred, as_interval))
    assert torch.equal(steps.age_error(pred, exact), steps.age_error(pred, as_interval))
    inside = torch.tensor([[0.0, 80.0]] * 3)
    assert steps.age_loss(pred, inside).item() == 0.0
    assert steps.age_loss(pred, inside, "l1_midpoint").item() > 0


def test_photo_batches_carry_intervals_and_mix_with_exact_ages():
    images = np.zeros((4, 8, 8, 3), np.uint8)
    banded = pd.DataFrame({"cache_row": [0, 1], "age": [3.0, 15.5], "age_low": [0.0, 13.0], "age_high": [6.0, 18.0]})
    exact = pd.DataFrame({"cache_row": [2, 3], "age": [30.0, 50.0]})
    a, b = photo_dataset(images, banded)[[0, 1]], photo_dataset(images, exact)[[0, 1]]
    assert a[1].shape == (2, 2) and b[1].shape == (2,)
    _, labels = _concat(a, b)
    assert labels.tolist() == [[0.0, 6.0], [13.0, 18.0], [30.0, 30.0], [50.0, 50.0]]


def _person(person: str, bands: str, stated: int = 80) -> list[dict]:
    rows = []
    for i, band in enumerate(bands):
        low, high = intervals.LIFE_BANDS[band]
        rows.append({"person_id": person, "age_low": float(low), "age_high": float(min(high, stated)),
                     "age": (low + min(high, stated)) / 2, "date": "", "cache_row": len(rows) + 100 * len(person)})
    return rows


def test_tuples_take_distinct_bands_and_report_persons_with_too_few():
    df = pd.DataFrame(_person("p1", "aabbcd") + _person("p2", "aaaabbbb") + _person("p3", "ab") + _person("p4", "cccc"))
    df["cache_row"] = np.arange(len(df))
    tuples, counts = sequences.build_tuples(df, 3, 0.0, 50, seed=0)
    assert counts["n_persons_too_few_bands"] == 2 and counts["n_persons_too_few_photos"] == 1  # one band: p4
    assert set(tuples["person_id"]) == {"p1"}
    bands = df.set_index("cache_row")["age_low"]
    for _, t in tuples.iterrows():
        lows = [bands[t[f"row_{k}"]] for k in range(3)]
        assert lows == sorted(lows) and len(set(lows)) == 3  # strictly increasing bands
    # min_gap_years is the gap between intervals: neighbouring bands (a 0-6, b 7-12) are 1 year apart
    assert len(sequences.build_tuples(df, 3, 1.0, 50, seed=0)[0]) == len(tuples)
    wide, wide_counts = sequences.build_tuples(df, 3, 2.0, 50, seed=0)
    assert wide.empty and wide_counts["n_persons_no_gap"] == 1 and wide_counts["n_persons_too_few_bands"] == 2


def test_family_splits_keep_relatives_together_and_published_lists():
    rows = []
    for f in range(40):
        for role, age in (("M", 45.0), ("D", 15.0), ("S", 8.0)):
            rows.append({"person_id": f"F{f}_{role}", "family_id": f"F{f}", "age": age, "split_hint": ""})
    df = pd.DataFrame(rows)
    split = splits.split_by_identity(df, seed=3, val_frac=0.15, test_frac=0.25, where="korean")
    assert (df.assign(split=split).groupby("family_id")["split"].nunique() == 1).all()
    splits.check_disjoint(df.assign(split=split), "korean")
    leak = df.assign(split=np.where(df["person_id"] == "F0_D", "test", "train"))
    with pytest.raises(splits.EmptySplitError, match="family"):
        splits.check_disjoint(leak, "korean")
    published = df.assign(split_hint=np.select([df.index < 90, df.index < 105], ["train", "val"], "test"))
    assert splits.split_keeping_hints(published, 0, 0.15, 0.25, "korean").tolist() == \
        published["split_hint"].tolist()
    # the label budget counts persons, all from training families
    train_part = df.assign(split=split).query("split == 'train'")
    labelled = splits.labelled_subset(train_part, 0.1, 0)
    assert labelled["person_id"].nunique() == round(0.1 * train_part["person_id"].nunique())


def test_kept_share_keeps_whole_families_per_split(tmp_path):
    table = ADAPTERS["korean_family"](family_tree(tmp_path / "kf"), "korean")
    kept = kept_share(table, 0.5, 0, "korean role")
    for family in kept["family_id"].unique():  # a kept family keeps every photo
        assert (kept["family_id"] == family).sum() == (table["family_id"] == family).sum()
    assert set(kept["split_hint"]) == {"train", "val", "test"}  # at least one family per published split
    test = table["split_hint"] == "test"
    assert sorted(kept.loc[kept["split_hint"] == "test", "path"]) == sorted(table.loc[test, "path"])  # whole
    assert kept_share(table, 1.0, 0, "korean role") is table


def test_split_hint_follows_the_nearest_named_folder(tmp_path):
    assert korean_family.split_hint(tmp_path / "Training" / "x" / "a.jpg", tmp_path) == "train"
    assert korean_family.split_hint(tmp_path / "photos" / "a.jpg", tmp_path) == ""


def test_photo_controls_take_the_face_or_the_print_away():
    rng = np.random.default_rng(0)
    photos = rng.integers(0, 255, (2, 20, 20, 3), dtype=np.uint8)
    masked = photo_control.apply(photos, "mask_face", np.arange(2))
    assert np.array_equal(masked[:, :3], photos[:, :3])  # the border is kept
    centre = masked[:, 5:15, 5:15].reshape(2, -1, 3)
    assert (centre == centre[:, :1]).all()  # one colour where the face was: the photo's mean
    assert np.abs(centre[:, 0].astype(float) - photos.reshape(2, -1, 3).mean(1)).max() <= 0.5
    tinted = photos.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 60, 0, 255)  # a scan's red cast
    plain, cast = (photo_control.apply(p, "normalise", np.arange(2)) for p in (photos, tinted))
    assert (plain[..., 0] == plain[..., 1]).all() and (plain[..., 1] == plain[..., 2]).all()  # grey
    assert np.array_equal(plain, photo_control.apply(photos, "normalise", np.arange(2)))  # the same grain again
    assert abs(float(plain.mean()) - float(cast.mean())) < 8  # equalised: the cast no longer moves the levels
    assert photo_control.apply(photos, "none", np.arange(2)) is photos
    with pytest.raises(ValueError, match="unknown photo control"):
        photo_control.apply(photos, "sepia", np.arange(2))


def test_tuple_batches_show_the_controlled_photos():
    images = np.random.default_rng(1).integers(0, 255, (6, 20, 20, 3), dtype=np.uint8)
    rows = np.arange(6).reshape(2, 3)
    plain = TupleBatches(images, rows, seed=0)[[0, 1]][0]
    masked = TupleBatches(images, rows, seed=0, control="mask_face")[[0, 1]][0]
    assert plain.shape == masked.shape and not torch.equal(plain, masked)
    assert torch.equal(plain[..., :3, :], masked[..., :3, :])  # (B, T, C, H, W): the top rows are border
