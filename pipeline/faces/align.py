"""Warp a face to a fixed 5-point template with a similarity transform (rotation, one scale, shift)."""
from __future__ import annotations

import numpy as np
from PIL import Image

# 5 points (left eye, right eye, nose tip, left mouth corner, right mouth corner) in a 112x112 crop, as seen in the
# image ("left eye" = the one on the image's left). ArcFace/InsightFace's template: a tight crop from the brows
# to the chin, so the margin below widens it around its centre to keep forehead and chin.
TEMPLATES: dict[str, np.ndarray] = {
    "arcface": np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64),
}
TEMPLATE_SIZE = 112.0
EYES = (0, 1)
# The nose tip moves a lot with yaw and pitch; the eyes and mouth corners (4 points) define the face's frame
FIT_POINTS = (0, 1, 3, 4)


def template_points(name: str, image_size: int, margin: float) -> np.ndarray:
    """The template's 5 points (5, 2) in an image_size crop; margin 0.25 shrinks the face to 1/1.25 about the
    crop centre, adding 12.5 % of context on every side."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown face template '{name}'; available: {sorted(TEMPLATES)}")
    if margin < 0:
        raise ValueError(f"face margin must be >= 0, got {margin}")
    centre = TEMPLATE_SIZE / 2
    points = centre + (TEMPLATES[name] - centre) / (1.0 + margin)
    return points * (image_size / TEMPLATE_SIZE)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (4 DOF) mapping src (N, 2) onto dst (N, 2), as a 2x3 matrix [[a, -b, tx], [b, a, ty]].

    Umeyama's solution without reflection; linear in (a, b, tx, ty), so a plain lstsq solves it exactly.
    """
    n = len(src)
    design = np.zeros((2 * n, 4))
    design[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    design[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(design, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points (N, 2) through a 2x3 affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp(image: np.ndarray, matrix: np.ndarray, image_size: int) -> np.ndarray:
    """The (image_size, image_size, 3) uint8 crop whose pixel p shows image pixel matrix^-1(p).

    Outside the photo is filled by repeating the border's mean colour (neutral, no hard black frame). A big face
    shrunk to a small crop is first reduced by an integer factor (box filter), so bilinear sampling does not alias.
    """
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))  # crop pixels per photo pixel
    photo = Image.fromarray(image)
    factor = int(1.0 / scale / 1.5) if scale > 0 else 1
    if factor >= 2:
        photo = photo.reduce(factor)
        matrix = matrix.copy()
        # reduced pixel j covers photo pixels [j*factor, (j+1)*factor): in PIL's continuous coordinates (pixel
        # centres at +0.5 in both images) a reduced point is the photo point / factor, with no offset
        matrix[:, :2] *= factor
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:2]  # PIL wants crop -> photo coordinates
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).mean(axis=0)
    fill = tuple(int(round(c)) for c in border)
    crop = photo.transform((image_size, image_size), Image.Transform.AFFINE, inverse.reshape(-1).tolist(),
                           resample=Image.Resampling.BILINEAR, fillcolor=fill)
    return np.asarray(crop, dtype=np.uint8)


def align(image: np.ndarray, landmarks: np.ndarray, image_size: int, margin: float,
          template: str = "arcface") -> tuple[np.ndarray, np.ndarray]:
    """Crop (image_size, image_size, 3) uint8 with the face's eyes and mouth on the template; also the 2x3 matrix.

    landmarks: (5, 2) in the photo's pixel coordinates, in the template's point order. In-plane rotation is undone.
    """
    target = template_points(template, image_size, margin)
    matrix = similarity(landmarks[list(FIT_POINTS)], target[list(FIT_POINTS)])
    return warp(image, matrix, image_size), matrix
