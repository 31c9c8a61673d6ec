"""Decode any photo file to an upright 8-bit RGB image, or raise PhotoError naming why it cannot be used."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# A flat PNG of 20000x20000 px is about 1 MB on disk and 1.2 GB once decoded (more while converting), per worker
# process: a photo above MAX_PIXELS is refused from its header, undecoded. 100 Mpx is far above the photos of the
# face data sets read here and a 48 Mpx phone photo (8000x6000); a phone's 108/200 Mpx mode needs downscaling.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for every Image.open of the process: it raises at 2x
# a non-JPEG photo above this many pixels is shrunk (Image.reduce) to the size needed before it is converted; below
# it the conversions are cheap, and photos of ordinary size keep the exact cached pixels they always had
REDUCE_ABOVE = 16_000_000
MIN_SIDE = 16  # below this no detector and no crop makes sense (a 1x1 "photo" used to pass silently)
REASONS = ("not_found", "unreadable", "truncated", "too_small", "too_large", "blank")
REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F")  # reduce() averages values: no palettes


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


def _too_large(path: str | Path, width: int, height: int) -> PhotoError:
    return PhotoError(path, "too_large", f"image is {width}x{height} px ({width * height / 1e6:.0f} Mpx); photos "
                      f"above {MAX_PIXELS / 1e6:.0f} Mpx are refused undecoded (a decompression-bomb guard): "
                      "downscale it")


def _reduced(img: Image.Image, draft_side: int | None) -> Image.Image:
    """A big non-JPEG photo shrunk by a whole factor while both sides stay >= draft_side (what JPEG's draft does
    while decoding), so the RGB conversion and alpha compositing that follow copy a fraction of it."""
    if not draft_side or img.width * img.height <= REDUCE_ABOVE or img.mode not in REDUCIBLE_MODES:
        return img
    factor = min(img.size) // draft_side
    return img.reduce(factor) if factor >= 2 else img


def _is_blank(img: Image.Image) -> bool:
    """Every pixel the same colour: a fully transparent PNG (composited to flat grey), a black frame."""
    return all(low == high for low, high in img.getextrema())


def open_photo(path: str | Path, draft_side: int | None = None) -> Image.Image:
    """Decode, apply the EXIF orientation, convert to RGB; raise PhotoError (never a raw PIL error).

    draft_side: big photos may be decoded (JPEG: draft at 1/2..1/8 scale) or shrunk (others: reduce) while both
    sides stay >= draft_side; None decodes at full size. A photo above MAX_PIXELS is refused before decoding
    (too_large), one whose pixels are all one colour after decoding is refused as blank.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below, with the file named
            opened = Image.open(path)
        with opened as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise _too_large(path, width, height)
            if min(img.size) < MIN_SIDE:
                raise PhotoError(path, "too_small", f"image is {width}x{height} px; "
                                 f"at least {MIN_SIDE} px per side is needed")
            if draft_side:
                img.draft("RGB", (draft_side, draft_side))
            img.load()  # force the whole decode here: a truncated file fails now, not later
            # phones store the rotation in EXIF; applied before anything else, for every photo
            upright = _reduced(ImageOps.exif_transpose(img), draft_side)
            rgb = _to_rgb(upright)
        if _is_blank(rgb):
            raise PhotoError(path, "blank", "every pixel has the same colour (e.g. a fully transparent PNG): "
                             "there is no face to learn from; remove the file")
        return rgb
    except FileNotFoundError:
        raise PhotoError(path, "not_found", "file not found") from None
    except UnidentifiedImageError as err:
        raise PhotoError(path, "unreadable", f"cannot decode image ({err})") from None
    except Image.DecompressionBombError as err:  # above 2 x MAX_PIXELS Pillow refuses inside Image.open
        raise PhotoError(path, "too_large", f"refused undecoded ({err}): downscale it") from None
    except (OSError, SyntaxError, ValueError) as err:
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
