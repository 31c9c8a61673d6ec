"""A small tree in the AIHub face-aging layout (adapters/aihub_aging.py), every known quirk included, for tests and
benchmarks: real faces (skimage's public-domain astronaut, pasted turned and scaled) with the labels' box and 5
landmarks written from where the face was drawn.

    python -m tests.aihub_fixture OUT [--train 8] [--val 3] [--photos 5] [--side 1000] [--seed 0]

Quirks (with quirks=True), each on its own photo: every label starts with a UTF-8 byte-order mark; a device code
whose case differs between photo and label; labels whose `filename` field ends in `.png`; a label without a photo
(no_photo); a photo without a label (no_label); malformed JSON (bad_label); age_past above age_now and a file name
whose age disagrees with its label (age_mismatch); landmarks outside the photo with a usable box (placed from the
box) and with the box outside too (bad_landmarks). Needs scikit-image (the project's `test` extra), so it lives
with the tests, not in the library.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.data.adapters.aihub_aging import LABELS, PHOTOS, TO_TEMPLATE

# skimage.data.astronaut() (512 x 512): the face MTCNN finds at full resolution, in the template's point order
ASTRONAUT_POINTS = np.array([[205.0, 101.7], [246.8, 103.7], [224.7, 129.0], [201.7, 139.2], [245.3, 141.9]])
ASTRONAUT_BOX = (181.1, 62.2, 267.7, 172.1)  # x0, y0, x1, y1
HEAD = (145, 25, 305, 205)  # the part of the astronaut pasted: her head and a little background
COLLECTED = 2022  # the year age_now refers to
TO_AIHUB = np.argsort(TO_TEMPLATE)  # template order -> the labels' (nose, left eye, right eye, mouth L, R)


@dataclass
class Fixture:
    """What was written: the photos the adapter should keep (with their true points, template order) and the files
    each named outcome should catch."""

    root: Path
    kept: dict[Path, np.ndarray] = field(default_factory=dict)  # photo -> its drawn 5 points (template order)
    expected: dict[str, list[Path]] = field(default_factory=dict)  # outcome -> the photo (or label) files
    box_fallback: list[Path] = field(default_factory=list)  # kept photos whose label's points are unusable

    def add(self, outcome: str, path: Path) -> None:
        self.expected.setdefault(outcome, []).append(path)


def _head() -> Image.Image:
    from skimage.data import astronaut  # the test extra: this module is never imported by a stage

    return Image.fromarray(astronaut()).crop(HEAD)


def _matrix(scale: float, angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """Astronaut pixels -> photo pixels: shift the head crop to its centre, scale, turn, move to `centre`."""
    angle = np.radians(angle_deg)
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    head_centre = np.array([(HEAD[0] + HEAD[2]) / 2, (HEAD[1] + HEAD[3]) / 2])
    return np.column_stack([rot, np.asarray(centre) - rot @ head_centre])


def draw_photo(head: Image.Image, width: int, height: int, rng: np.random.Generator
               ) -> tuple[Image.Image, np.ndarray, tuple[float, float, float, float]]:
    """One photo: a noisy gradient background and the head pasted turned and scaled; its 5 points and face box."""
    ramp = np.linspace(0, 1, height)[:, None, None]
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    background = top + (bottom - top) * ramp + rng.normal(0, 4, (height, width, 3))  # sensor-like noise: a
    photo = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))  # realistic PNG size, not a flat fill
    face_width = rng.uniform(0.18, 0.3) * width
    scale = face_width / (ASTRONAUT_BOX[2] - ASTRONAUT_BOX[0])
    reach = scale * max(HEAD[2] - HEAD[0], HEAD[3] - HEAD[1]) * 0.6  # keep the pasted head (turned) inside
    centre = (rng.uniform(reach, width - reach), rng.uniform(reach, height - reach))
    matrix = _matrix(scale, rng.uniform(-12, 12), centre)
    full = np.vstack([matrix, [0, 0, 1]])
    # crop pixel -> photo pixel is matrix with the crop's origin at HEAD's corner; PIL wants photo -> crop
    to_crop = np.linalg.inv(full @ np.array([[1, 0, HEAD[0]], [0, 1, HEAD[1]], [0, 0, 1]]))[:2].reshape(-1)
    layer = head.transform((width, height), Image.Transform.AFFINE, to_crop.tolist(), Image.Resampling.BILINEAR)
    mask = Image.new("L", head.size, 255).transform((width, height), Image.Transform.AFFINE, to_crop.tolist(),
                                                    Image.Resampling.BILINEAR)
    photo.paste(layer, (0, 0), mask)
    points = ASTRONAUT_POINTS @ matrix[:, :2].T + matrix[:, 2]
    x0, y0, x1, y1 = ASTRONAUT_BOX
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) @ matrix[:, :2].T + matrix[:, 2]
    box = (*corners.min(0).tolist(), *corners.max(0).tolist())
    return photo, points, box


def _label(stem: str, person: int, birth: int, age_past: int, points: np.ndarray, box: tuple, size: tuple[int, int],
           gender: str) -> dict:
    x0, y0, x1, y1 = box
    return {"filename": stem, "id": person, "birth": birth, "age_now": COLLECTED - birth, "age_past": age_past,
            "gender": gender, "width": size[0], "height": size[1], "device": stem.rsplit("_", 1)[-1],
            "annotation": [{"box": {"x": round(x0, 1), "y": round(y0, 1), "w": round(x1 - x0, 1),
                                    "h": round(y1 - y0, 1)},
                            "landmark": np.round(points[TO_AIHUB], 1).tolist()}]}


def _write_label(path: Path, label: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(label, ensure_ascii=False).encode("utf-8-sig"))  # with the byte-order mark


def write_tree(root: Path, n_train: int = 8, n_val: int = 3, photos_per_person: int = 5, side: int = 1000,
               seed: int = 0, quirks: bool = True) -> Fixture:
    """Write the tree under root (Training/ and Validation/) and say what each file should become."""
    rng = np.random.default_rng(seed)
    head = _head()
    fixture = Fixture(root)
    width, height = side, int(round(side * 1.2))  # portrait, as phone and scanner photos mostly are
    persons = [("Training", "TS_", "TL_", k) for k in range(n_train)] + \
              [("Validation", "VS_", "VL_", n_train + k) for k in range(n_val)]
    for split, photo_prefix, label_prefix, k in persons:
        person, birth = 100 + k, int(rng.integers(1950, 2005))
        folder = f"{person:04d}"
        photo_dir, label_dir = root / split / PHOTOS / f"{photo_prefix}{folder}", root / split / LABELS / \
            f"{label_prefix}{folder}"
        photo_dir.mkdir(parents=True, exist_ok=True)
        ages = np.sort(rng.choice(np.arange(1, COLLECTED - birth + 1), photos_per_person, replace=False))
        for j, age in enumerate(ages):
            device = str(rng.choice(["F", "S", "P"]))
            stem = f"{person:04d}_{birth}_{int(age):02d}_{j + 1:08d}_{device}"
            photo, points, box = draw_photo(head, width, height, rng)
            label = _label(stem, person, birth, int(age), points, box, (width, height), str(rng.choice(["male",
                                                                                                          "female"])))
            photo_path, label_path = photo_dir / f"{stem}.png", label_dir / f"{stem}.json"
            outcome, label_path = _quirk(k, j, label, label_path, width, height) if quirks else ("kept", label_path)
            if outcome != "no_photo":
                photo.save(photo_path, compress_level=1)  # zlib level 1: quick to write, decoded like any PNG
            if outcome != "no_label":
                if outcome == "bad_label":
                    label_path.parent.mkdir(parents=True, exist_ok=True)
                    label_path.write_bytes(json.dumps(label).encode("utf-8-sig")[:-7])  # cut off mid-object
                else:
                    _write_label(label_path, label)
            if outcome in ("kept", "box"):
                fixture.kept[photo_path] = points
                if outcome == "box":
                    fixture.box_fallback.append(photo_path)
            else:
                fixture.add(outcome, label_path if outcome == "no_photo" else photo_path)
    return fixture


def _quirk(person: int, photo: int, label: dict, label_path: Path, width: int, height: int) -> tuple[str, Path]:
    """Give photo `photo` of person `person` its quirk (editing `label` in place): the expected outcome and the
    label's file.

    Each quirk sits on the first persons' photos, so a tree of >= 4 persons x 3 photos holds all of them."""
    quirk = {(0, 0): "case", (0, 1): "png_name", (1, 0): "no_photo", (1, 1): "no_label", (2, 0): "bad_label",
             (2, 1): "age_above_now", (3, 0): "name_age", (3, 1): "points_outside", (3, 2): "all_outside"}.get(
        (person, photo), "")
    if quirk == "case":  # the device code in lower case on the label's file name only: a match on the folded stem
        stem = label_path.stem[:-1] + label_path.stem[-1].lower()
        label["filename"] = stem
        return "kept", label_path.with_name(f"{stem}.json")
    if quirk == "png_name":
        label["filename"] += ".png"
    elif quirk == "age_above_now":
        label["age_now"] = label["age_past"] - 1
    elif quirk == "name_age":
        label["age_past"] += 1
    elif quirk == "points_outside":  # the box still places the face
        label["annotation"][0]["landmark"] = [[width + 50.0, height + 80.0]] * 5
    elif quirk == "all_outside":
        label["annotation"][0]["landmark"] = [[-500.0, -500.0]] * 5
        label["annotation"][0]["box"] = {"x": width + 100.0, "y": 0.0, "w": 200.0, "h": 240.0}
    outcomes = {"age_above_now": "age_mismatch", "name_age": "age_mismatch", "points_outside": "box",
                "all_outside": "bad_landmarks", "no_photo": "no_photo", "no_label": "no_label",
                "bad_label": "bad_label"}
    return outcomes.get(quirk, "kept"), label_path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=8, help="Training persons")
    parser.add_argument("--val", type=int, default=3, help="Validation persons (the test split)")
    parser.add_argument("--photos", type=int, default=5, help="photos per person")
    parser.add_argument("--side", type=int, default=1000, help="photo width in px (height 1.2x)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-quirks", action="store_true")
    args = parser.parse_args(argv)
    fixture = write_tree(args.out, args.train, args.val, args.photos, args.side, args.seed, not args.no_quirks)
    print(f"{args.out}: {len(fixture.kept)} usable photos; expected outcomes "
          f"{ {k: len(v) for k, v in sorted(fixture.expected.items())} }, box fallback {len(fixture.box_fallback)}")


if __name__ == "__main__":
    main()
