"""THE preprocessing from photo to model input, shared by cache building and predict: prepare() under FaceSettings
(pipeline.faces.settings); prepare_many (pipeline.faces.workers) runs it over many photos.

`face: none` keeps the historical behaviour (photos are face crops: centre square, resized); `face: mtcnn`
detects the largest face, aligns its eyes and mouth to a template and crops with a margin; `face: landmarks` aligns
the same way from the 5 points the photo's label carries (no detector), so its crops match MTCNN's. A model file
stores FaceSettings.to_dict() so predict rebuilds the preprocessing its model was trained with (landmarks: MTCNN,
since a new photo has no label).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from pipeline.faces.align import align
from pipeline.faces import landmarks as L
from pipeline.faces.detect import Face, FaceDetector
from pipeline.faces.photo import REASONS, PhotoError, open_photo
from pipeline.faces.settings import FaceSettings

# why a photo is not a training photo (data/cache/dropped.csv): the detector found no face, the label's points and
# box are both unusable (face: landmarks), or the file itself is unusable
DROP_REASONS = ("no_face", "bad_landmarks", *REASONS)
Source = str | Path | np.ndarray  # a photo file, or an upright (H, W, 3) uint8 RGB array


@dataclass(frozen=True)
class PreparedFace:
    """A model input and how it was made. Coordinates are in the upright (EXIF-applied, decoded) photo."""

    pixels: np.ndarray  # (image_size, image_size, 3) uint8
    face_found: bool  # False for face: none and when the detector found nothing
    n_faces: int  # faces the detector found (the largest is used); 0 for face: none
    box: tuple[float, float, float, float] | None = None  # x1, y1, x2, y2 of the face used
    score: float | None = None
    landmarks: np.ndarray | None = None  # (5, 2)
    # "center_crop": face: mtcnn found no face, or face: landmarks had no usable label points nor box, and the
    # centre square was used instead; "box": face: landmarks placed the face from the label's box (its points
    # were missing or impossible)
    fallback: str = ""
    drop_reason: str = ""  # no_face / bad_landmarks with a center_crop fallback: cache building drops the photo
    problem: str = ""  # what was wrong with the label's points or box (face: landmarks), for dropped.csv


def center_crop(photo: Image.Image, size: int) -> np.ndarray:
    """The centre square resized to size x size: the bytes the cache held before pipeline.faces (its decoder is
    gone; tests/test_faces.py pins the digest of its output)."""
    width, height = photo.size
    side = min(width, height)
    box = ((width - side) // 2, (height - side) // 2, (width - side) // 2 + side, (height - side) // 2 + side)
    resample = Image.Resampling.BILINEAR if side < size else Image.Resampling.LANCZOS
    return np.asarray(photo.resize((size, size), resample, box=box, reducing_gap=3.0), dtype=np.uint8)


def _decode(source: Source, settings: FaceSettings) -> Image.Image:
    if isinstance(source, np.ndarray):
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ValueError(f"an array source must be (H, W, 3) uint8 RGB, got {source.shape} {source.dtype}")
        return Image.fromarray(source)
    return open_photo(source, settings.draft_side)


def label_face(label: L.FaceLabel | None, width: int, height: int) -> tuple[Face | None, str, str]:
    """The face a label places in a width x height photo: from its 5 points, else from its box ("box"
    fallback), else none; also the fallback and what was wrong with the points (or box)."""
    if label is None:
        return None, "", "the label has no face points and no box"
    label = label.scaled_to(width, height)
    why = "the label has no face points" if label.landmarks is None else \
        L.problem(points := L.canonical(label.landmarks), width, height)
    if label.landmarks is not None and not why:
        return Face(label.box or L.box_of(points), float("nan"), points), "", ""
    if label.box is not None and not (box_why := L.box_problem(label.box, width, height)):
        return Face(label.box, float("nan"), L.from_box(label.box)), "box", why
    return None, "", why if label.box is None else f"{why}; {box_why}"


def _finish(photo: Image.Image, faces: list[Face], settings: FaceSettings, every_face: bool,
            fallback: str = "", problem: str = "") -> list[PreparedFace]:
    """Align the largest face (or every face, largest first), or fall back to the centre crop (flagged)."""
    if settings.face == "none":
        return [PreparedFace(center_crop(photo, settings.image_size), face_found=False, n_faces=0)]
    if not faces:
        reason = "bad_landmarks" if settings.face == "landmarks" else "no_face"
        return [PreparedFace(center_crop(photo, settings.image_size), face_found=False, n_faces=0,
                             fallback="center_crop", drop_reason=reason, problem=problem)]
    image = np.asarray(photo)
    prepared = []
    # largest first: in a photo of one person the others are background faces or false positives
    for face in faces if every_face else faces[:1]:
        pixels, _ = align(image, face.landmarks, settings.image_size, settings.margin, settings.template)
        prepared.append(PreparedFace(pixels, face_found=True, n_faces=len(faces), box=face.box, score=face.score,
                                     landmarks=face.landmarks, fallback=fallback, problem=problem))
    return prepared


def prepare_faces(sources: Sequence[Source], settings: FaceSettings, detector: FaceDetector | None = None,
                  every_face: bool = True, labels: Sequence[L.FaceLabel | None] | None = None
                  ) -> list[list[PreparedFace] | PhotoError]:
    """Each photo's faces (every one found, largest first; one flagged centre crop when none is found) with one
    batched detector call; an unusable photo comes back as its PhotoError. What predict uses.

    labels: with face: landmarks, each photo's label (FaceLabel or None), in the order of `sources`."""
    if settings.face == "landmarks" and (labels is None or len(labels) != len(sources)):
        raise ValueError("face: landmarks needs one label (or None) per photo; a photo without a label takes "
                         "FaceSettings.for_new_photos() (mtcnn)")
    photos: list[Image.Image | PhotoError] = []
    for source in sources:
        try:
            photos.append(_decode(source, settings))
        except PhotoError as err:
            photos.append(err)
    decoded = [i for i, p in enumerate(photos) if not isinstance(p, PhotoError)]
    faces: list[list[Face]] = [[] for _ in photos]
    notes = [("", "")] * len(photos)  # (fallback, problem) of each label face
    if settings.face == "mtcnn" and decoded:
        detector = detector or _worker_detector(settings)
        for i, found in zip(decoded, detector.detect([np.asarray(photos[i]) for i in decoded])):
            faces[i] = found
    elif settings.face == "landmarks":
        for i in decoded:
            face, fallback, problem = label_face(labels[i], *photos[i].size)
            faces[i], notes[i] = [face] if face else [], (fallback, problem)
    return [p if isinstance(p, PhotoError) else _finish(p, faces[i], settings, every_face, *notes[i])
            for i, p in enumerate(photos)]


def prepare_batch(sources: Sequence[Source], settings: FaceSettings, detector: FaceDetector | None = None,
                  labels: Sequence[L.FaceLabel | None] | None = None) -> list[PreparedFace | PhotoError]:
    """prepare() for several photos with one batched detector call; unusable photos come back as PhotoError."""
    return [r if isinstance(r, PhotoError) else r[0]
            for r in prepare_faces(sources, settings, detector, False, labels)]


def prepare(source: Source, settings: FaceSettings, detector: FaceDetector | None = None,
            label: L.FaceLabel | None = None) -> PreparedFace:
    """One photo -> model input. Raises PhotoError (a reason of pipeline.faces.photo.REASONS, e.g. too_large, blank).

    With face: mtcnn and no face found, returns the centre crop with fallback="center_crop" (drop_reason
    "no_face"): predict keeps it flagged, cache building drops it. Pass a detector to reuse its weights.
    With face: landmarks, `label` places the face (its points, else its box: fallback "box"; neither:
    drop_reason "bad_landmarks").
    """
    result = prepare_batch([source], settings, detector, [label] if settings.face == "landmarks" else None)[0]
    if isinstance(result, PhotoError):
        raise result
    return result


_DETECTORS: dict[FaceSettings, FaceDetector] = {}  # one per process and settings (weights load once)


def _worker_detector(settings: FaceSettings) -> FaceDetector:
    if settings not in _DETECTORS:
        _DETECTORS[settings] = settings.detector()
    return _DETECTORS[settings]
