"""Hostile AIHub label JSONs (Infinity, 1e999, numbers of hundreds or thousands of digits, nesting 100,000 deep)
are bad_label rows naming the file, like every other broken label, never a raw OverflowError / RecursionError."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.adapters import aihub_aging
from pipeline.data.adapters.common import DROPPED

STEM = "0001_1990_10_00000001_S"
GOOD = {"filename": STEM, "id": 1, "birth": 1990, "age_now": 30, "age_past": 10, "width": 100, "height": 100}
BIG = "9" * 400  # past float's range: float() raises OverflowError
HUGE = "9" * 5000  # past Python's 4300-digit limit: json.loads raises ValueError, not JSONDecodeError
HOSTILE = {
    "infinity": json.dumps(GOOD).replace('"age_now": 30', '"age_now": Infinity'),
    "nan": json.dumps(GOOD).replace('"age_now": 30', '"age_now": NaN'),
    "1e999": json.dumps(GOOD).replace('"age_now": 30', '"age_now": 1e999'),
    "400_digits": json.dumps(GOOD).replace('"age_now": 30', f'"age_now": {BIG}'),
    "400_digit_string": json.dumps(GOOD).replace('"age_now": 30', f'"age_now": "{BIG}"'),
    "5000_digits": json.dumps(GOOD).replace('"age_now": 30', f'"age_now": {HUGE}'),
    "deep": '{"filename": "x", "a": ' + "[" * 100_000 + "]" * 100_000 + "}",
}


def write_label(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8-sig"))  # AIHub's labels start with a byte-order mark
    return path


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_label_is_a_bad_label(tmp_path, kind):
    label = write_label(tmp_path / f"{STEM}.json", HOSTILE[kind])
    with pytest.raises(aihub_aging.LabelProblem) as problem:
        aihub_aging.read_label(label, 2026)
    assert problem.value.reason == "bad_label" and len(str(problem.value)) < 300


def test_huge_numbers_in_optional_fields_do_not_crash(tmp_path):
    label = {**GOOD, "width": 0, "annotation": [{"box": {"x": 0, "y": 0, "w": 0, "h": 0}, "landmark": [0] * 10}]}
    text = json.dumps(label).replace('"width": 0', f'"width": {BIG}').replace('"w": 0', f'"w": {BIG}')
    text = text.replace("[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]", f"[{BIG}, 0, 0, 0, 0, 0, 0, 0, 0, 0]")
    fields = aihub_aging.read_label(write_label(tmp_path / f"{STEM}.json", text), 2026)
    assert fields["age"] == 10 and fields["label_size"] == "" and fields["face_box"] == "" and \
        fields["landmarks"] == ""


def test_the_source_drops_hostile_labels_naming_each_file(tmp_path):
    for split, (photo_prefix, label_prefix, _) in aihub_aging.SPLITS.items():
        photos = tmp_path / split / aihub_aging.PHOTOS / f"{photo_prefix}0001"
        labels = tmp_path / split / aihub_aging.LABELS / f"{label_prefix}0001"
        stems = [STEM] if split == "Validation" else [f"0001_1990_10_{i:08d}_S" for i in range(len(HOSTILE) + 1)]
        texts = [json.dumps(GOOD)] + [HOSTILE[k] for k in sorted(HOSTILE)]
        for stem, text in zip(stems, texts):
            (photos / f"{stem}.png").parent.mkdir(parents=True, exist_ok=True)
            (photos / f"{stem}.png").write_bytes(b"not decoded by the adapter")
            write_label(labels / f"{stem}.json", text.replace(STEM, stem))
    table = aihub_aging.read(tmp_path, "korean")
    assert len(table) == 2  # the good label of each split
    dropped = table.attrs[DROPPED]
    assert [d["reason"] for d in dropped] == ["bad_label"] * len(HOSTILE)
    assert all(f"0001_1990_10_{i:08d}_S.json: " in d["error"] for i, d in enumerate(dropped, start=1))
