"""Build the uint8 cache: every manifest photo through pipeline.faces' one preprocessing, kept or dropped with its
reason.

Kept apart from cache.py (which training reads through open_images) so that the training stages do not depend on
the face detector's code: only prepare_data does.
"""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline import runtime
from pipeline.config import DataConfig
from pipeline.data import paths
from pipeline.data.cache import DROPPED, IMAGES, INDEX, META
from pipeline.data.manifest import resolve
from pipeline.faces import FaceSettings, PhotoError, prepare_many
from pipeline.faces.preprocess import DROP_REASONS as PHOTO_DROP_REASONS

log = logging.getLogger(__name__)
# index.csv columns added when a detector ran: how many faces it found (the largest is used), the box and score
FACE_COLUMNS = ("n_faces", "box_x0", "box_y0", "box_x1", "box_y1", "face_score")
# every reason a listed file is not in the cache: refused before decoding (its path), or by decoding and detection
DROP_REASONS = (*paths.REASONS, *PHOTO_DROP_REASONS)


class CacheError(ValueError):
    """Nothing in the manifest could be used; the message names the first photo and why."""


def face_settings(cfg: DataConfig) -> FaceSettings:
    """params.yaml:data -> the preprocessing every real photo goes through (and the model file records)."""
    return FaceSettings(face=cfg.face, image_size=cfg.image_size, margin=cfg.face_margin, template=cfg.face_template,
                        min_face_size=cfg.face_min_size, max_side=cfg.face_max_side)


def _face_row(face) -> dict:
    x0, y0, x1, y1 = (round(v, 1) for v in face.box)
    return {"n_faces": face.n_faces, "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1,
            "face_score": round(face.score, 4)}


def build_cache(manifest: pd.DataFrame, root: Path | None, out_dir: Path, settings: FaceSettings, workers: int = 2,
                crops: np.ndarray | None = None, refused: Sequence[dict] = ()) -> dict:
    """Prepare all rows; unusable photos are dropped and listed with their reason in dropped.csv, never silently.

    crops: one bool per row, True where the photo already is an aligned face crop (synthetic renders): those rows
    take `face: none` whatever `settings` say. refused: files kept out of the manifest by their path
    ({path, reason, error}, pipeline.data.paths.screen), listed and counted first. Writes images.npy, index.csv
    (the kept manifest rows, row i is image i, plus FACE_COLUMNS when a detector ran), dropped.csv (path, reason,
    error) and meta.json, each through a temp file so an interrupted build never leaves a valid-looking half cache.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    n, size = len(manifest), settings.image_size
    crops = np.zeros(n, bool) if crops is None else np.asarray(crops, bool)
    detecting = settings.face != "none"
    groups = [(settings, np.arange(n))] if not detecting else \
        [(settings, np.flatnonzero(~crops)), (replace(settings, face="none"), np.flatnonzero(crops))]
    images_tmp = out_dir / f".images.{os.getpid()}.npy"
    array = np.lib.format.open_memmap(images_tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    kept = np.zeros(n, bool)
    faces: dict[int, dict] = {}
    dropped: list[dict] = []
    try:
        for group_settings, rows in groups:
            sources = [str(resolve(manifest["path"].iloc[i], root)) for i in rows]
            desc = "faces" if group_settings.face != "none" else "decode"
            results = prepare_many(sources, group_settings, workers, desc=desc)
            for i, source, result in zip(rows, sources, results):
                if isinstance(result, PhotoError):
                    dropped.append({"row": i, "reason": result.reason, "error": str(result)})
                elif result.drop_reason:  # the detector found no face: not a training photo
                    dropped.append({"row": i, "reason": result.drop_reason, "error": f"{source}: no face found "
                                    f"({settings.face}, faces >= {settings.min_face_size} px at <= "
                                    f"{settings.max_side} px)"})
                else:
                    array[i] = result.pixels
                    kept[i] = True
                    if result.face_found:
                        faces[i] = _face_row(result)
        if not kept.any():
            first = min(dropped, key=lambda d: d["row"])
            raise CacheError(f"none of the {n} photos could be used (first: {first['error']})")
        kept_rows = np.flatnonzero(kept)
        if len(kept_rows) < n:  # shrink to the usable rows, in place (row j <= i), then copy (rare)
            for j, i in enumerate(kept_rows):
                if i != j:
                    array[j] = array[i]
            array.flush()
            del array
            with runtime.atomic_path(out_dir / IMAGES) as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.load(images_tmp, mmap_mode="r")[: len(kept_rows)])
        else:
            array.flush()
            del array
            os.replace(images_tmp, out_dir / IMAGES)  # the memmap was written in place: no copy
    finally:
        if images_tmp.exists():
            images_tmp.unlink()
    index = manifest.iloc[kept_rows].reset_index(drop=True)
    if detecting:  # rows prepared as crops (synthetic) have no detector columns: empty cells
        columns = pd.DataFrame([faces.get(i, {}) for i in kept_rows], columns=list(FACE_COLUMNS))
        index = pd.concat([index, columns.astype({"n_faces": "Int64"})], axis=1)
    runtime.write_csv(out_dir / INDEX, index)
    dropped.sort(key=lambda d: d["row"])
    rows = [{"path": manifest["path"].iloc[d["row"]], "reason": d["reason"], "error": d["error"]} for d in dropped]
    table = pd.DataFrame([*refused, *rows], columns=["path", "reason", "error"])
    runtime.write_csv(out_dir / DROPPED, table)
    by_reason = {reason: int((table["reason"] == reason).sum()) for reason in DROP_REASONS}
    if len(table):
        log.warning("dropped %d of %d photo(s) (%s), listed with their reason in %s (first: %s)", len(table),
                    n + len(refused), ", ".join(f"{r}: {c}" for r, c in by_reason.items() if c), out_dir / DROPPED,
                    table["error"].iloc[0])
    meta = {"n_images": len(kept_rows), "n_dropped": len(table), "image_size": size, "face": settings.to_dict(),
            "dropped_by_reason": by_reason, "n_several_faces": sum(f["n_faces"] > 1 for f in faces.values()),
            "n_as_crops": int(kept[crops].sum()) if detecting else len(kept_rows)}  # prepared without detection
    runtime.write_json(out_dir / META, meta)
    return meta
