"""The limits of a face setting, checked in one place for params.yaml's `data` section (DataConfig) and for the
settings a model file records (pipeline.faces.FaceSettings), so the two can never disagree. Torch-free: every
stage loads the config, only the photo stages load pipeline.faces."""
from __future__ import annotations

from pipeline.config.loader import check

FACE_MODES = ("none", "mtcnn", "landmarks")  # none: a face crop; mtcnn: detect + align; landmarks: label + align
MTCNN_MIN_WINDOW = 12  # px: MTCNN's smallest window; a detector copy under 4 faces across finds nothing useful


def check_face_limits(margin: float, min_face_size: int, max_side: int) -> None:
    """Raise ValueError naming the params.yaml key when a margin or detector limit is out of range."""
    check(0.0 <= margin <= 2.0, f"face_margin must be in [0, 2], got {margin}")
    check(min_face_size >= MTCNN_MIN_WINDOW,
          f"face_min_size must be >= {MTCNN_MIN_WINDOW} px (MTCNN's smallest window), got {min_face_size}")
    check(max_side >= 4 * min_face_size,
          f"face_max_side must be >= 4 x face_min_size ({4 * min_face_size}), got {max_side}")
