"""FaceSettings: how a photo becomes model input (face mode, size, margin, template, detector limits); recorded in
every model file, so predict rebuilds the preprocessing its model was trained with."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from pipeline.config.faces import FACE_MODES, check_face_limits
from pipeline.faces.align import TEMPLATES
from pipeline.faces.detect import FaceDetector


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
