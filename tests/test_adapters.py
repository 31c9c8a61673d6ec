"""Real-data adapters on fixtures in each published layout, including broken layouts."""
import logging
from pathlib import Path

import pandas as pd
import pytest

from pipeline.data.adapters import ADAPTERS, LayoutError
from pipeline.data.manifest import validate
from tests.helpers import megaage, photo


def test_megaage_keeps_the_official_split(tmp_path):
    table = validate(ADAPTERS["megaage_asian"](megaage(tmp_path), "general"), "fixture")
    assert (table["split_hint"] == "train").sum() == 6 and (table["split_hint"] == "test").sum() == 3
    assert table["person_id"].is_unique and set(table["domain"]) == {"general"}
    assert table.loc[0, "age"] == 10 and Path(table.loc[0, "path"]).is_file()


def test_megaage_reports_exactly_what_is_missing(tmp_path):
    root = megaage(tmp_path)
    (root / "list" / "train_age.txt").unlink()
    with pytest.raises(LayoutError, match=r"list/train_age.txt not found under .*expected MegaAge-Asian layout"):
        ADAPTERS["megaage_asian"](root, "general")


def test_megaage_lists_must_align(tmp_path):
    root = megaage(tmp_path)
    (root / "list" / "test_age.txt").write_text("10\n")
    with pytest.raises(LayoutError, match="test_name.txt has 3 lines but test_age.txt has 1"):
        ADAPTERS["megaage_asian"](root, "general")


def test_fgnet_person_and_age_from_the_name(tmp_path, caplog):
    for name in ("001A02.JPG", "001A43a.JPG", "002A05.JPG", "notes.JPG"):
        photo(tmp_path / "images" / name)
    with caplog.at_level(logging.WARNING):
        table = validate(ADAPTERS["fgnet"](tmp_path, "korean"), "fixture")
    assert sorted(zip(table["person_id"], table["age"])) == [("fgnet_001", 2), ("fgnet_001", 43), ("fgnet_002", 5)]
    assert "1 file(s)" in caplog.text and "notes.JPG" in caplog.text


def test_utkface_photos_are_their_own_persons_and_bad_names_are_reported(tmp_path, caplog):
    photo(tmp_path / "25_0_2_20170116174525125.jpg.chip.jpg")
    photo(tmp_path / "61_1_3_20170109142408075.jpg")
    photo(tmp_path / "61_1_20170109142408075.jpg.chip.jpg")  # a known malformed name: no race field
    with caplog.at_level(logging.WARNING):
        table = validate(ADAPTERS["utkface"](tmp_path, "general"), "fixture")
    assert sorted(table["age"]) == [25, 61] and table["person_id"].is_unique
    assert "do not follow the naming scheme" in caplog.text


def test_afad_age_and_gender_folders(tmp_path):
    photo(tmp_path / "25" / "111" / "a.jpg")
    photo(tmp_path / "30" / "112" / "b.jpg")
    photo(tmp_path / "readme" / "x.jpg")  # not part of the layout
    table = validate(ADAPTERS["afad"](tmp_path, "general"), "fixture")
    assert sorted(table["age"]) == [25, 30]


def test_cacd_person_is_the_name(tmp_path):
    for name in ("53_Robin_Williams_0001.jpg", "55_Robin_Williams_0002.jpg", "30_Ann_Lee_Curtis_0001.jpg"):
        photo(tmp_path / name)
    table = validate(ADAPTERS["cacd"](tmp_path, "korean"), "fixture")
    assert table.groupby("person_id").size().to_dict() == {"cacd_Ann_Lee_Curtis": 1, "cacd_Robin_Williams": 2}


def test_csv_relative_paths_dates_and_role(tmp_path):
    photo(tmp_path / "p1" / "a.jpg")
    photo(tmp_path / "p1" / "b.jpg")
    pd.DataFrame({"path": ["p1/a.jpg", "p1/b.jpg"], "person_id": ["p1", "p1"], "age": [3, 9],
                  "date": ["2001-05-01", "2007-05-01"], "domain": ["general", "general"]}
                 ).to_csv(tmp_path / "manifest.csv", index=False)
    table = validate(ADAPTERS["csv"](tmp_path, "korean"), "fixture")
    assert set(table["domain"]) == {"korean"} and table["date"].tolist() == ["2001-05-01", "2007-05-01"]
    assert all(Path(p).is_absolute() for p in table["path"])


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_missing_root_and_empty_root_are_explained(tmp_path, name):
    with pytest.raises(LayoutError, match="is not a folder"):
        ADAPTERS[name](tmp_path / "nowhere", "general")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match="not found|no photos found"):
        ADAPTERS[name](tmp_path / "empty", "general")


def aaf_layout(root: Path, train=("00000A02.jpg", "00001A25.jpg"), val=("00002A61.jpg",)) -> Path:
    """A tiny All-Age-Faces layout: both image folders, key points and the official lists."""
    for name in (*train, *val):
        photo(root / "original images" / name)
        photo(root / "aglined faces" / name)
        (root / "key points").mkdir(parents=True, exist_ok=True)
        (root / "key points" / name.replace(".jpg", ".txt")).write_text("1.0 2.0\n" * 49)
    (root / "image sets").mkdir(parents=True, exist_ok=True)
    (root / "image sets" / "train.txt").write_text("".join(f"{n} {i % 2}\n" for i, n in enumerate(train)))
    (root / "image sets" / "val.txt").write_text("".join(f"{n} 1\n" for n in val))
    return root


@pytest.mark.parametrize("source, folder", [("aaf", "original images"), ("aaf_aligned", "aglined faces")])
def test_aaf_ages_from_names_official_val_is_the_held_out_list(tmp_path, source, folder):
    table = validate(ADAPTERS[source](aaf_layout(tmp_path), "general"), "fixture")
    assert sorted(zip(table["person_id"], table["age"], table["split_hint"])) == [
        ("aaf_00000", 2, "train"), ("aaf_00001", 25, "train"), ("aaf_00002", 61, "test")]
    assert all(Path(p).parent.name == folder and Path(p).is_file() for p in table["path"])


def test_aaf_bad_lists_are_explained(tmp_path):
    root = aaf_layout(tmp_path)
    (root / "image sets" / "val.txt").write_text("00000A02.jpg 0\n")  # also in train.txt
    with pytest.raises(LayoutError, match="listed twice"):
        ADAPTERS["aaf"](root, "general")
    (root / "image sets" / "val.txt").write_text("readme.jpg 0\n")
    with pytest.raises(LayoutError, match=r"val.txt:1: 'readme.jpg' is not an AAF photo name"):
        ADAPTERS["aaf"](root, "general")
    (root / "image sets" / "val.txt").unlink()
    with pytest.raises(LayoutError, match="image sets/val.txt not found"):
        ADAPTERS["aaf"](root, "general")
