"""Controls for the photograph's own age: VCOP inputs from which the face, or the print, has been taken away.

A person's childhood photos in a family album are scanned prints (colour casts, grain, borders) and the recent
ones digital, so a tuple's order can be read from the photograph without looking at the face (Wei et al., CVPR
2018, found the same for video's arrow of time). Training the pretext on these inputs measures how much of its
accuracy such cues carry:

- `mask_face`: the face region (the central 70 % of a face crop) filled with the photo's mean colour; only the
  border, the colour cast and the mean brightness are left. Order read from this is not read from a face.
- `normalise`: every photo grey, histogram-equalised and given the same synthetic grain, so colour casts,
  exposure and film grain no longer tell a scan from a digital photo; the face's shape and texture stay.
- `none`: the photos as they are.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

PhotoControl = Literal["none", "mask_face", "normalise"]
CONTROLS: tuple[str, ...] = ("none", "mask_face", "normalise")
FACE_SHARE = 0.7  # the masked centre: a loose face crop's face, forehead to chin
GRAIN_STD = 6.0  # grey levels of the grain every normalised photo gets (a digital photo's is ~1-3)


def mask_face(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 -> the same photos with the central FACE_SHARE square filled with each one's mean
    colour (the border keeps what it had)."""
    out = pixels.copy()
    h, w = pixels.shape[1:3]
    top, left = round(h * (1 - FACE_SHARE) / 2), round(w * (1 - FACE_SHARE) / 2)
    mean = pixels.reshape(len(pixels), -1, pixels.shape[-1]).mean(axis=1).round().astype(np.uint8)
    out[:, top:h - top, left:w - left] = mean[:, None, None, :]
    return out


def _equalised(grey: np.ndarray) -> np.ndarray:
    """One photo's grey levels (H, W) uint8 spread over 0..255 by their cumulative histogram."""
    hist = np.bincount(grey.reshape(-1), minlength=256)
    cdf = np.cumsum(hist).astype(np.float64)
    span = cdf[-1] - cdf[cdf > 0][0]
    if span <= 0:  # one grey level: nothing to spread
        return grey
    lut = np.clip(np.round((cdf - cdf[cdf > 0][0]) / span * 255), 0, 255).astype(np.uint8)
    return lut[grey]


def normalise(pixels: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 -> grey, equalised, re-grained photos (C copies of the grey). `keys` (N,) seed each
    photo's grain, so a photo gets the same grain wherever it appears (cache rows)."""
    luma = pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    out = np.empty(pixels.shape[:3], np.uint8)
    for i, (grey, key) in enumerate(zip(np.clip(np.round(luma), 0, 255).astype(np.uint8), keys)):
        grain = np.random.default_rng([int(key), 31]).normal(0, GRAIN_STD, grey.shape)
        out[i] = np.clip(np.round(_equalised(grey) + grain), 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], pixels.shape[-1], axis=-1)


def apply(pixels: np.ndarray, control: str, keys: np.ndarray) -> np.ndarray:
    """The control's version of cached photos (N, H, W, C) uint8; `keys` are their cache rows."""
    if control == "none":
        return pixels
    if control == "mask_face":
        return mask_face(pixels)
    if control == "normalise":
        return normalise(pixels, keys)
    raise ValueError(f"unknown photo control {control!r}; one of {list(CONTROLS)}")
