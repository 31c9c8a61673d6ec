"""A label's own face points: a data set's markup reduced to the template's 5 points, checked, or placed from a box.

Every point set here is in the template's order (left eye, right eye, nose tip, left and right mouth corner, "left"
as seen in the image; pipeline.faces.align) and in the decoded photo's pixels. A manifest carries them as text
(`landmarks`: "x0 y0 ... x4 y4", `face_box`: "x0 y0 x1 y1", `label_size`: "w h"; adapters.common.as_text writes
them), so any source, the csv one included, can supply them; the adapters reduce their own markup to these 5.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Where MTCNN puts the 5 points inside its own box, as fractions of the box (x, y), measured on skimage's
# astronaut and made left-right symmetric: a label with only a box is aligned as if MTCNN had found that box.
# One face's proportions: a box drawn tighter or looser than MTCNN's shifts the crop's scale accordingly.
BOX_POINTS = np.array([[0.27, 0.37], [0.73, 0.37], [0.50, 0.61], [0.26, 0.71], [0.74, 0.71]])
MIN_EYE_DISTANCE_PX = 6.0  # closer eyes leave a face too small to crop (and make the fit's scale unstable)
INSIDE_TOLERANCE = 0.02  # points may sit this share of the photo's size past its edge (a face cut by the frame)
MIN_BOX_PX = 16


@dataclass(frozen=True)
class FaceLabel:
    """What a label says about the face: 5 points (template order) and/or a box (x0, y0, x1, y1), in the pixels of
    a photo of `size` (width, height) when the label states it (points are rescaled to the decoded photo)."""

    landmarks: np.ndarray | None = None  # (5, 2)
    box: tuple[float, float, float, float] | None = None
    size: tuple[int, int] | None = None

    @classmethod
    def from_text(cls, landmarks: str = "", box: str = "", size: str = "") -> FaceLabel | None:
        """The manifest's text columns -> a label; None when it has neither points nor a box. Unparseable text
        counts as absent (the preparation then names the outcome: box fallback or bad_landmarks)."""
        points, frame, dims = _floats(landmarks, 10), _floats(box, 4), _floats(size, 2)
        if points is None and frame is None:
            return None
        return cls(None if points is None else points.reshape(5, 2),
                   None if frame is None else tuple(frame.tolist()),
                   None if dims is None else (int(dims[0]), int(dims[1])))

    def scaled_to(self, width: int, height: int) -> FaceLabel:
        """The label in the pixels of the decoded photo (a label written for a resized copy is rescaled)."""
        if self.size is None or self.size == (width, height) or min(self.size) <= 0:
            return self
        sx, sy = width / self.size[0], height / self.size[1]
        points = None if self.landmarks is None else self.landmarks * [sx, sy]
        box = None if self.box is None else (self.box[0] * sx, self.box[1] * sy, self.box[2] * sx, self.box[3] * sy)
        return FaceLabel(points, box, (width, height))


def _floats(text: object, count: int) -> np.ndarray | None:
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        values = np.array([float(v) for v in text.replace(",", " ").split()])
    except ValueError:
        return None
    return values if len(values) == count and np.isfinite(values).all() else None


def canonical(points: np.ndarray) -> np.ndarray:
    """The same 5 points with each eye and mouth pair ordered left-right in the face's own frame (its "down" runs
    from the eyes' midpoint to the mouth's): a data set that names the subject's left eye gives the same result."""
    points = np.array(points, float)
    down = points[3:5].mean(0) - points[0:2].mean(0)
    right = np.array([down[1], -down[0]])  # image x right, y down: "down" turned a quarter to the viewer's right
    for a, b in ((0, 1), (3, 4)):
        if (points[b] - points[a]) @ right < 0:
            points[[a, b]] = points[[b, a]]
    return points


def problem(points: np.ndarray, width: int, height: int) -> str:
    """Why these template-order points cannot place a face in a width x height photo ("" when they can)."""
    points = np.asarray(points, float)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        return "not 5 finite (x, y) points"
    slack_x, slack_y = INSIDE_TOLERANCE * width, INSIDE_TOLERANCE * height
    if ((points[:, 0] < -slack_x) | (points[:, 0] > width + slack_x) | (points[:, 1] < -slack_y)
            | (points[:, 1] > height + slack_y)).any():
        return f"points outside the {width}x{height} photo"
    across = points[1] - points[0]
    eye_distance = float(np.hypot(*across))
    if eye_distance < MIN_EYE_DISTANCE_PX:
        return f"eyes {eye_distance:.1f} px apart (< {MIN_EYE_DISTANCE_PX:g})"
    eyes, mouth = points[0:2].mean(0), points[3:5].mean(0)
    down = mouth - eyes
    drop = float(np.hypot(*down))
    # an upright or tilted face: eyes to mouth 0.5-2 eye distances, at a right angle (+-45 degrees) to the eye line
    if not 0.4 * eye_distance <= drop <= 2.5 * eye_distance or abs(across @ down) > 0.7 * eye_distance * drop:
        return "eyes and mouth do not form a face (check the points' order)"
    mouth_across = points[4] - points[3]
    if mouth_across @ across <= 0:
        return "the mouth corners run against the eyes"
    along = (points[2] - eyes) @ down / drop ** 2  # 0 at the eye line, 1 at the mouth
    sideways = (points[2] - eyes) @ across / eye_distance ** 2  # 0 at the eyes' midpoint, +-0.5 at an eye
    if not 0.05 <= along <= 1.1 or abs(sideways) > 1.0:
        return "the nose is not between the eyes and the mouth (check the points' order)"
    return ""


def box_problem(box: tuple[float, float, float, float], width: int, height: int) -> str:
    """Why a face box cannot place a face in the photo ("" when it can)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if not np.isfinite(box).all() or min(w, h) < MIN_BOX_PX or not 0.5 <= w / h <= 2.0:
        return f"box {w:.0f}x{h:.0f} px is not a face"
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height or (min(x1, width) - max(x0, 0)) < 0.5 * w \
            or (min(y1, height) - max(y0, 0)) < 0.5 * h:
        return f"box lies mostly outside the {width}x{height} photo"
    return ""


def from_box(box: tuple[float, float, float, float]) -> np.ndarray:
    """The 5 points MTCNN would place in this box (BOX_POINTS)."""
    x0, y0, x1, y1 = box
    return np.array([x0, y0]) + BOX_POINTS * [x1 - x0, y1 - y0]


def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
    """The box BOX_POINTS' fit would put around these points (a box for index.csv when the label has none)."""
    design = np.vstack([BOX_POINTS[:, 0], np.ones(5)]).T
    (w, x0), *_ = np.linalg.lstsq(design, points[:, 0], rcond=None)
    design = np.vstack([BOX_POINTS[:, 1], np.ones(5)]).T
    (h, y0), *_ = np.linalg.lstsq(design, points[:, 1], rcond=None)
    return float(x0), float(y0), float(x0 + w), float(y0 + h)
