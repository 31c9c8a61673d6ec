"""Decode any photo file to an upright 8-bit RGB image, or raise PhotoError naming why it cannot be used."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 20000 * 20000  # a huge photo is decoded (with draft), not refused as a "bomb"
MIN_SIDE = 16  # below this no detector and no crop makes sense (a 1x1 "photo" used to pass silently)
REASONS = ("not_found", "unreadable", "truncated", "too_small")


class PhotoError(ValueError):
    """A photo that cannot be used; `reason` is one of REASONS and the message names the file.

    The message reads "<path>: <what>"; data/cache/dropped.csv and predict's CSV show `reason` and the message.
    Pickles (its fields travel back from worker processes).
    """

    def __init__(self, path: str | Path, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{path}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail

    def __reduce__(self):
        return PhotoError, (self.path, self.reason, self.detail)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: 16/32-bit grey rescaled (not clipped), alpha over neutral grey, CMYK converted."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = values.max(initial=0.0)
        # 16-bit data maps 65535 -> 255; data that only fills 8 bits (or less) keeps its values
        scale = 1.0 if top <= 255 else 255.0 / 65535 if top <= 65535 else 255.0 / top
        img = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "P", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (128, 128, 128, 255))
        img = Image.alpha_composite(background, img)  # transparent areas become neutral grey
    return img.convert("RGB")  # L, 1, CMYK (Adobe-inverted handled by Pillow), YCbCr, ...


def open_photo(path: str | Path, draft_side: int | None = None) -> Image.Image:
    """Decode fully, apply the EXIF orientation, convert to RGB; raise PhotoError (never a raw PIL error).

    draft_side: JPEGs may be decoded at 1/2..1/8 scale while both sides stay >= draft_side (much faster for
    big photos); None decodes at full size.
    """
    try:
        with Image.open(path) as img:
            if min(img.size) < MIN_SIDE:
                raise PhotoError(path, "too_small", f"image is {img.size[0]}x{img.size[1]} px; "
                                 f"at least {MIN_SIDE} px per side is needed")
            if draft_side:
                img.draft("RGB", (draft_side, draft_side))
            img.load()  # force the whole decode here: a truncated file fails now, not later
            # phones store the rotation in EXIF; applied before anything else, for every photo
            upright = ImageOps.exif_transpose(img)
            return _to_rgb(upright)
    except FileNotFoundError:
        raise PhotoError(path, "not_found", "file not found") from None
    except UnidentifiedImageError as err:
        raise PhotoError(path, "unreadable", f"cannot decode image ({err})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        if isinstance(err, PhotoError):
            raise
        # Pillow reports a cut-off JPEG/PNG as "image file is truncated", "Truncated File Read" (cut inside the
        # headers) or "broken data stream"
        text = str(err)
        reason = "truncated" if "truncated" in text.lower() or "broken data stream" in text else "unreadable"
        raise PhotoError(path, reason, f"cannot decode image ({text})") from None


def load_photo(path: str | Path, draft_side: int | None = None) -> np.ndarray:
    """The photo as an upright (H, W, 3) uint8 RGB array; see open_photo for draft_side and the errors."""
    return np.asarray(open_photo(path, draft_side), dtype=np.uint8)
