"""Decode every photo once into a uint8 array (N, H, W, 3) + index; training slices batches from a memmap."""
from __future__ import annotations

import logging
import os
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from pipeline import runtime
from pipeline.data.manifest import resolve

log = logging.getLogger(__name__)
Image.MAX_IMAGE_PIXELS = 20000 * 20000  # a huge photo is decoded (with draft), not refused as a "bomb"


class ImageError(ValueError):
    """An image that cannot be decoded; the message names the file."""


def load_rgb(path: Path, size: int) -> np.ndarray:
    """Decode any photo (grey, alpha, 16-bit, any size) to a (size, size, 3) uint8 centre-cropped square."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size * 2, size * 2))  # JPEG: decode at reduced scale, much faster for big photos
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)  # 16-bit grey: scale to 8 bits instead of clipping
                img = Image.fromarray(np.clip(arr / max(arr.max(), 1) * 255, 0, 255).astype(np.uint8))
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                background = Image.new("RGBA", img.size, (128, 128, 128, 255))
                img = Image.alpha_composite(background, img)  # transparent areas become neutral grey
            img = img.convert("RGB")
            w, h = img.size
            side = min(w, h)  # inputs are face crops: keep the centre square
            box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
            img = img.resize((size, size), Image.Resampling.BILINEAR if side < size else Image.Resampling.LANCZOS,
                             box=box, reducing_gap=3.0)
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path}: cannot decode image ({err})") from None


def _decode(job: tuple[str, int]) -> tuple[np.ndarray | None, str]:
    path, size = job
    try:
        return load_rgb(Path(path), size), ""
    except ImageError as err:
        return None, str(err)


def build_cache(manifest: pd.DataFrame, root: Path | None, out_dir: Path, size: int, workers: int = 2) -> dict:
    """Decode all rows; corrupt images are dropped and listed in dropped.csv (never silently), others cached.

    Writes images.npy, index.csv (the kept manifest rows; row i is image i), dropped.csv and meta.json,
    each through a temp file so an interrupted build never leaves a valid-looking half cache.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(str(resolve(p, root)), size) for p in manifest["path"]]
    images_tmp = out_dir / f".images.{os.getpid()}.npy"
    array = np.lib.format.open_memmap(images_tmp, mode="w+", dtype=np.uint8, shape=(len(jobs), size, size, 3))
    kept, dropped = [], []
    try:
        with get_context("fork").Pool(max(1, workers)) as pool:
            results = pool.imap(_decode, jobs, chunksize=32)
            for i, (pixels, error) in enumerate(tqdm(results, total=len(jobs), desc="decode", disable=None)):
                if pixels is None:
                    dropped.append({"path": manifest["path"].iloc[i], "error": error})
                    continue
                array[len(kept)] = pixels
                kept.append(i)
        if not kept:
            raise ImageError(f"none of the {len(jobs)} images could be decoded (first: {dropped[0]['error']})")
        array.flush()
        del array
        if len(kept) < len(jobs):  # shrink to the decodable rows (rare: only when something was dropped)
            with runtime.atomic_path(out_dir / "images.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.load(images_tmp, mmap_mode="r")[: len(kept)])
        else:
            os.replace(images_tmp, out_dir / "images.npy")  # the memmap was written in place: no copy
    finally:
        if images_tmp.exists():
            images_tmp.unlink()
    index = manifest.iloc[kept].reset_index(drop=True)
    runtime.write_csv(out_dir / "index.csv", index)
    runtime.write_csv(out_dir / "dropped.csv", pd.DataFrame(dropped, columns=["path", "error"]))
    if dropped:
        log.warning("dropped %d undecodable image(s), listed in %s (first: %s)", len(dropped),
                    out_dir / "dropped.csv", dropped[0]["error"])
    meta = {"n_images": len(kept), "n_dropped": len(dropped), "image_size": size}
    runtime.write_json(out_dir / "meta.json", meta)
    return meta


def open_images(cache_dir: Path) -> np.ndarray:
    """The cached images as a read-only memmap (N, H, W, 3) uint8."""
    path = cache_dir / "images.npy"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro prepare_data`")
    return np.load(path, mmap_mode="r")
