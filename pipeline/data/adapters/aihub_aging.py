"""AIHub Korean face-aging photos (dataSetSn 71415): ~1,000 persons photographed from infancy on, one JSON label per
photo with the ages, a face box and 5 landmarks; AIHub's Training / Validation persons kept as train / test.

The extracted download (the ZIPs unpacked in place, one folder per ZIP):
    <root>/Training/01.원천데이터/TS_<id>/<id>_<birth>_<age_past>_<serial>_<device>.png     photos
    <root>/Training/02.라벨링데이터/TL_<id>/<same name>.json                               labels
    <root>/Validation/01.원천데이터/VS_<id>/...   <root>/Validation/02.라벨링데이터/VL_<id>/...
A label folder's photos are in the folder named with its `L` turned into `S`; photo and label pair up on the
case-folded file stem (the device code's case differs between the two in places). The labels are UTF-8 JSON with
a byte-order mark: filename, id, birth, age_now, age_past, gender, width, height, annotation[0].box {x, y, w, h}
and annotation[0].landmark (5 points: nose, left eye, right eye, left and right mouth corner).

The age of a photo is `age_past` (the file name's third field; `age_now` is the person's age at collection). Each
label is checked: its file-name fields equal its JSON fields, age_past <= age_now, and birth + age_past is not in
the future; a label that fails is left out with a named reason (SOURCE_REASONS), never guessed. There is no
capture date: a person's photos are listed by birth + age_past, then serial (same-year photos are never ordered
against each other: a VCOP tuple needs strictly increasing times).
"""
from __future__ import annotations

import datetime
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.adapters.common import (IMAGE_SUFFIXES, LayoutError, absolute, as_text, frame, require_dir,
                                           with_dropped)

PHOTOS, LABELS = "01.원천데이터", "02.라벨링데이터"
# AIHub split folder -> (photo folder prefix, label folder prefix, split hint): Validation persons are the test set
SPLITS = {"Training": ("TS_", "TL_", "train"), "Validation": ("VS_", "VL_", "test")}
LAYOUT = (f"<root>/Training/{PHOTOS}/TS_*/*.png with <root>/Training/{LABELS}/TL_*/*.json, and the same under "
          f"<root>/Validation with VS_ / VL_ (the downloaded ZIPs unpacked, one folder per ZIP)")
NAME = re.compile(r"(\d{4})_(\d{4})_(\d{2,3})_(\d{8})_([A-Za-z0-9]+)")
REQUIRED = ("filename", "id", "birth", "age_now", "age_past")
# AIHub's labels list (nose, left eye, right eye, left mouth corner, right mouth corner), as a public loader
# documents; this permutation puts them in the template's order (pipeline.faces.align). pipeline.faces.landmarks
# checks the result on every photo (eyes above the mouth, the nose between them: a wrong order fails there and is
# counted) and decides left and right geometrically, so "left" may mean the subject's or the viewer's.
TO_TEMPLATE = (1, 2, 0, 3, 4)


def _child(parent: Path, name: str) -> Path:
    """parent/name, matching Unicode-normalised names (a Mac unzip writes Korean names decomposed)."""
    for path in parent.iterdir() if parent.is_dir() else ():
        if path.is_dir() and unicodedata.normalize("NFC", path.name) == name:
            return path
    raise LayoutError(f"'{parent.name}/{name}/' not found under {parent.parent}; expected AIHub face-aging layout "
                      f"{LAYOUT}")


def _folders(parent: Path, prefix: str) -> dict[str, Path]:
    """The per-ZIP folders under parent starting with prefix, by the part after it (TS_0378 -> 0378)."""
    found = {p.name[len(prefix):]: p for p in parent.iterdir() if p.is_dir() and p.name.startswith(prefix)}
    if not found:
        zips = sorted(p.name for p in parent.glob(f"{prefix}*.zip"))
        hint = f"found {len(zips)} ZIP(s) such as {zips[0]}: unpack each into a folder of its name" if zips else \
            "none there"
        raise LayoutError(f"no {prefix}* folders in {parent} ({hint}); expected AIHub face-aging layout {LAYOUT}")
    return found


def _files(folder: Path | None, suffixes: set[str]) -> dict[str, Path]:
    """Files under folder by case-folded stem."""
    if folder is None:
        return {}
    return {p.stem.casefold(): p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix.lower() in suffixes}


def _int(value: object) -> int:
    """A label's whole number (id, birth, ages, size); ValueError for anything else, an overflow included."""
    shown = repr(value) if len(repr(value)) <= 40 else f"{repr(value)[:37]}..."  # a 400-digit number stays short
    if isinstance(value, bool) or not isinstance(value, (int, str, float)) or str(value).strip() == "":
        raise ValueError(f"{shown} is not a whole number")
    try:
        number = float(value)  # OverflowError for an int past 1e308; "inf" and "1e999" give inf
    except OverflowError:
        number = float("inf")
    if not abs(number) < 1e9 or number != int(number):  # no id, year, age or photo side comes near 1e9
        raise ValueError(f"{shown} is not a whole number below 1e9")
    return int(number)


def _points(value: object) -> np.ndarray | None:
    """annotation[0].landmark as (5, 2) in AIHub's order: [[x, y] x 5], [x0, y0, ..., x4, y4] or [{x, y} x 5]."""
    try:
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            value = [[v["x"], v["y"]] for v in value]
        points = np.asarray(value, dtype=float).reshape(5, 2)
    except (TypeError, ValueError, KeyError, OverflowError):  # OverflowError: an integer past float's range
        return None
    return points if np.isfinite(points).all() else None


def _box(value: object) -> tuple[float, float, float, float] | None:
    try:
        x, y, w, h = (float(value[k]) for k in ("x", "y", "w", "h"))
    except (TypeError, ValueError, KeyError, OverflowError):
        return None
    return (x, y, x + w, y + h) if np.isfinite([x, y, w, h]).all() else None


class LabelProblem(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")  # json.loads accepts Infinity, -Infinity and NaN by default


def read_label(path: Path, this_year: int) -> dict:
    """One label -> its manifest fields (without the photo path); raises LabelProblem (bad_label, age_mismatch)."""
    try:  # -sig: the labels start with a byte-order mark
        label = json.loads(path.read_bytes().decode("utf-8-sig"), parse_constant=_refuse_constant)
    except RecursionError:
        raise LabelProblem("bad_label", "not a label: JSON nested too deeply to read") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, Infinity / NaN, an integer over 4300 digits
        raise LabelProblem("bad_label", f"not UTF-8 JSON ({str(err)[:200]})") from None
    if not isinstance(label, dict) or (missing := [k for k in REQUIRED if k not in label]):
        raise LabelProblem("bad_label", f"missing field(s) {missing if isinstance(label, dict) else list(REQUIRED)}")
    name = NAME.fullmatch(path.stem)
    if not name:
        raise LabelProblem("bad_label", "the file name is not <id>_<birth>_<age_past>_<serial>_<device>")
    stated = re.sub(r"\.(png|jpe?g)$", "", str(label["filename"]).strip(), flags=re.IGNORECASE)  # some carry .png
    if stated.casefold() != path.stem.casefold():
        raise LabelProblem("bad_label", f"its filename field '{label['filename']}' names another photo")
    try:
        person, birth, age_past, age_now = (_int(label[k]) for k in ("id", "birth", "age_past", "age_now"))
    except ValueError as err:
        raise LabelProblem("bad_label", f"id / birth / age_past / age_now: {err}") from None
    if (person, birth) != (int(name.group(1)), int(name.group(2))):
        raise LabelProblem("bad_label", f"id {person} / birth {birth} disagree with the file name")
    if age_past != int(name.group(3)):
        raise LabelProblem("age_mismatch", f"age_past {age_past} but the file name says {int(name.group(3))}")
    if not 0 <= age_past <= age_now:
        raise LabelProblem("age_mismatch", f"age_past {age_past} is not within 0..age_now {age_now}")
    if birth + age_past > this_year:
        raise LabelProblem("age_mismatch", f"birth {birth} + age_past {age_past} is after {this_year}")
    face = (label.get("annotation") or [{}])[0] if isinstance(label.get("annotation"), list) else {}
    points = _points(face.get("landmark")) if isinstance(face, dict) else None
    box = _box(face.get("box")) if isinstance(face, dict) else None
    size = ""
    try:
        size = f"{_int(label['width'])} {_int(label['height'])}"
    except (KeyError, ValueError):
        pass  # the decoded photo's own size is used
    return {"person_id": f"aihub_{person:04d}", "age": age_past, "year": birth + age_past,
            "serial": int(name.group(4)), "landmarks": as_text(None if points is None else points[list(TO_TEMPLATE)]),
            "face_box": as_text(box), "label_size": size}


def read(root: Path, domain: str) -> pd.DataFrame:
    require_dir(root, "AIHub face-aging", LAYOUT)
    this_year = datetime.date.today().year
    rows, dropped = [], []
    for split_name, (photo_prefix, label_prefix, hint) in SPLITS.items():
        split = root / split_name
        if not split.is_dir():
            raise LayoutError(f"'{split_name}/' not found under {root}; expected AIHub face-aging layout {LAYOUT}")
        photo_dirs = _folders(_child(split, PHOTOS), photo_prefix)
        label_dirs = _folders(_child(split, LABELS), label_prefix)
        for key in sorted(set(photo_dirs) | set(label_dirs)):
            photos = _files(photo_dirs.get(key), IMAGE_SUFFIXES)
            labels = _files(label_dirs.get(key), {".json"})
            for stem in sorted(set(photos) - set(labels)):
                dropped.append({"path": photos[stem], "reason": "no_label",
                                "error": f"{photos[stem]}: no {label_prefix}{key}/{photos[stem].stem}.json label"})
            for stem, label_path in sorted(labels.items()):
                if stem not in photos:
                    dropped.append({"path": label_path, "reason": "no_photo",
                                    "error": f"{label_path}: no photo {photo_prefix}{key}/{label_path.stem}.*"})
                    continue
                try:
                    fields = read_label(label_path, this_year)
                except LabelProblem as err:
                    dropped.append({"path": photos[stem], "reason": err.reason, "error": f"{label_path}: {err}"})
                    continue
                rows.append({"path": str(absolute(photos[stem])), "split_hint": hint, **fields})
    table = frame(sorted(rows, key=lambda r: (r["person_id"], r["year"], r["serial"])), domain, "aihub_aging", root,
                  LAYOUT)
    return with_dropped(table, dropped)
