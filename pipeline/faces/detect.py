"""MTCNN face detection (facenet-pytorch, weights inside its wheel): boxes, scores and 5 landmarks per face."""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Face:
    """One detected face, in the coordinates of the image given to detect() (pixels, x right, y down)."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    score: float  # MTCNN's output-net probability
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left and right mouth corner (as seen in the image)

    @property
    def area(self) -> float:
        return max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1])


class FaceDetector:
    """MTCNN that detects on a copy of each photo shrunk to `max_side`, batching photos of equal size.

    Faces in age data sets fill much of the photo, so detecting at <= 400 px finds the same faces as at full
    resolution for a fraction of the cost (benchmarks/faces_aaf.py measures both); boxes and landmarks are
    scaled back to the photo's pixels. `min_face_size` is in pixels of the shrunk copy.
    """

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 max_side: int = 400, device: str | torch.device | None = None, batch_size: int = 32,
                 threads: int | None = 1) -> None:
        from facenet_pytorch import MTCNN  # imported here: `face: none` never needs it (nor its torch import time)

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.max_side = max_side
        self.batch_size = batch_size
        # MTCNN runs many tiny convolutions: on 2 shared cores one torch thread is several times faster than two
        # (OpenMP threads wait on each other when another process holds a core); parallelism comes from
        # processes instead (workers.prepare_many). None keeps torch's setting.
        self.threads = threads if self.device.type == "cpu" else None
        self.mtcnn = MTCNN(min_face_size=min_face_size, thresholds=list(thresholds), keep_all=True,
                           select_largest=True, device=self.device)
        self.mtcnn.eval()

    def _shrink(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The image with its long side <= max_side (bilinear, box-filtered first), and the scale applied."""
        height, width = image.shape[:2]
        scale = min(1.0, self.max_side / max(height, width)) if self.max_side else 1.0
        if scale >= 1.0:
            return image, 1.0
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return np.asarray(small), size[0] / width

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces found in each (H, W, 3) uint8 RGB image, largest first (an empty list when none)."""
        shrunk = [self._shrink(image) for image in images]
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, (small, _) in enumerate(shrunk):
            by_shape[small.shape].append(i)
        found: list[list[Face]] = [[] for _ in images]
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                batch = np.stack([shrunk[i][0] for i in chunk])  # (B, h, w, 3): one MTCNN pass for equal sizes
                boxes, scores, points = self._run(batch)
                for i, box, score, point in zip(chunk, boxes, scores, points):
                    if box is None:
                        continue
                    scale = shrunk[i][1]
                    faces = [Face(tuple(float(v) / scale for v in b), float(s), np.asarray(p, np.float64) / scale)
                             for b, s, p in zip(box, score, point)]
                    found[i] = sorted(faces, key=lambda f: f.area, reverse=True)
        return found

    def _run(self, batch: np.ndarray) -> tuple:
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.mtcnn.detect(batch, landmarks=True)
        finally:
            if self.threads:
                torch.set_num_threads(previous)
