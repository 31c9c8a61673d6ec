"""THE preprocessing from photo to model input, shared by cache building and predict: settings + prepare().

`face: none` keeps the historical behaviour (photos are face crops: centre square, resized); `face: mtcnn`
detects the largest face, aligns its eyes and mouth to a template and crops with a margin; `face: landmarks` aligns
the same way from the 5 points the photo's label carries (no detector), so its crops match MTCNN's. A model file
stores FaceSettings.to_dict() so predict rebuilds the preprocessing its model was trained with (landmarks: MTCNN,
since a new photo has no label).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, fields, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from pipeline.config.faces import FACE_MODES, check_face_limits
from pipeline.faces.align import TEMPLATES, align
from pipeline.faces import landmarks as L
from pipeline.faces.detect import Face, FaceDetector
from pipeline.faces.photo import REASONS, PhotoError, open_photo
from pipeline.runtime import available_cores

log = logging.getLogger(__name__)
# why a photo is not a training photo (data/cache/dropped.csv): the detector found no face, the label's points and
# box are both unusable (face: landmarks), or the file itself is unusable
DROP_REASONS = ("no_face", "bad_landmarks", *REASONS)
PROGRESS_LOG_S = 30.0  # a progress line (done, rate, ETA) this often: the bar is hidden outside a terminal
Source = str | Path | np.ndarray  # a photo file, or an upright (H, W, 3) uint8 RGB array


@dataclass(frozen=True, kw_only=True)
class FaceSettings:
    """How a photo becomes a (image_size, image_size, 3) model input; recorded in every model file."""

    face: str = "none"  # none: the photo is already a face crop; mtcnn: detect + align; landmarks: label + align
    image_size: int = 48
    margin: float = 0.25  # context around the template's face: 0.25 keeps forehead and chin
    template: str = "arcface"
    min_face_size: int = 20  # px in the detector's copy (long side <= max_side)
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)  # MTCNN's three stages (its defaults)
    max_side: int = 400  # the detector sees the photo shrunk to this long side

    def __post_init__(self) -> None:
        if self.face not in FACE_MODES:
            raise ValueError(f"face must be one of {FACE_MODES}, got '{self.face}'")
        if self.template not in TEMPLATES:
            raise ValueError(f"face template must be one of {sorted(TEMPLATES)}, got '{self.template}'")
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if len(self.thresholds) != 3 or not all(0.0 < t < 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds must be 3 probabilities in (0, 1), got {self.thresholds}")
        check_face_limits(self.margin, self.min_face_size, self.max_side)  # the same limits as params.yaml's
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))

    def to_dict(self) -> dict:
        """Plain JSON/YAML types (a list for thresholds), for a model file or metadata."""
        data = asdict(self)
        data["thresholds"] = list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FaceSettings:
        """Inverse of to_dict(); an unknown key raises (a typo must not fall back to a default)."""
        allowed = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - allowed):
            raise ValueError(f"unknown face setting(s) {unknown}; allowed: {sorted(allowed)}")
        values = dict(data)
        if "thresholds" in values:
            values["thresholds"] = tuple(values["thresholds"])
        return cls(**values)

    def for_new_photos(self) -> FaceSettings:
        """What a photo without a label goes through: `landmarks` becomes `mtcnn`, onto the same template, margin
        and size (predict; the crops match, tests/test_faces.py checks it)."""
        return replace(self, face="mtcnn") if self.face == "landmarks" else self

    def detector(self, device: str | torch.device | None = None) -> FaceDetector | None:
        """The detector these settings use (None for face: none and landmarks)."""
        if self.face != "mtcnn":
            return None
        return FaceDetector(min_face_size=self.min_face_size, thresholds=self.thresholds, max_side=self.max_side,
                            device=device)

    @property
    def draft_side(self) -> int | None:
        """Smallest side a JPEG may be decoded at (1/2..1/8 draft scale): enough for the detector and the crop.
        None (full size) for landmarks: a label's points are in the stored photo's pixels."""
        if self.face == "none":
            return self.image_size * 2  # as the cache has always decoded crops (same bytes as before pipeline.faces)
        if self.face == "landmarks":
            return None
        return max(2 * self.max_side, 4 * self.image_size)


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
    """The centre square resized to size x size: exactly what the cache's historical load_rgb produced."""
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


def _init_worker(threads: int) -> None:
    # a forked child must not reuse the parent's OpenMP pool; available_cores() // workers threads each keep the
    # processes from oversubscribing the cores
    torch.set_num_threads(threads)


def _prepare_chunk(job: tuple[list[Source], FaceSettings, list | None]) -> list[PreparedFace | PhotoError]:
    sources, settings, labels = job
    return prepare_batch(sources, settings, labels=labels)


class Progress:
    """A tqdm bar (hidden outside a terminal) plus a log line every PROGRESS_LOG_S: done, rate and ETA, so a
    long build run by `dvc repro` into a log file still says how far it is."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.bar = tqdm(total=total, desc=desc, unit="photo", disable=None)
        self.start = self.last_log = time.monotonic()

    def update(self, n: int) -> None:
        self.bar.update(n)
        self.done += n
        now = time.monotonic()
        if now - self.last_log >= PROGRESS_LOG_S and self.done < self.total:
            self.last_log = now
            rate = self.done / (now - self.start)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            log.info("%s: %d/%d photos (%.1f %%), %.1f photos/s, ETA %s", self.desc, self.done, self.total,
                     100 * self.done / self.total, rate, _duration(eta))

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "unknown"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def prepare_many(sources: Sequence[Source], settings: FaceSettings, workers: int = 2, chunk_size: int = 16,
                 device: str | None = None, desc: str = "faces",
                 labels: Sequence[L.FaceLabel | None] | None = None) -> Iterable[PreparedFace | PhotoError]:
    """prepare() for many photos, in input order, with a progress bar and ETA; errors are yielded, not raised.

    On the CPU, `workers` processes (available_cores() // workers torch threads each) share the photos in chunks,
    at most 2 chunks per worker in flight, so memory stays bounded however many photos there are; with workers <= 1
    or a CUDA device, one process detects in batches of equal-size photos. labels: as for prepare_faces (landmarks).
    """
    chunks = [(i, min(i + chunk_size, len(sources))) for i in range(0, len(sources), chunk_size)]
    part = (lambda seq, a, b: None if seq is None else list(seq[a:b]))
    progress = Progress(len(sources), desc)
    use_cuda = settings.face == "mtcnn" and (device == "cuda" or (device is None and torch.cuda.is_available()))
    try:
        if workers <= 1 or use_cuda or len(chunks) <= 1:
            detector = settings.detector(device)
            for a, b in chunks:
                results = prepare_batch(list(sources[a:b]), settings, detector, part(labels, a, b))
                progress.update(b - a)
                yield from results
            return
        threads = max(1, available_cores() // workers)
        with get_context("fork").Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
            pending: deque = deque()
            todo = iter(chunks)
            for a, b in todo:  # ordered results with a bounded queue (Pool.imap submits every chunk at once)
                pending.append(pool.apply_async(_prepare_chunk, ((list(sources[a:b]), settings, part(labels, a, b)),)))
                if len(pending) < 2 * workers:
                    continue
                results = pending.popleft().get()
                progress.update(len(results))
                yield from results
            while pending:
                results = pending.popleft().get()
                progress.update(len(results))
                yield from results
    finally:
        progress.close()
