"""Build the uint8 cache: every manifest photo through pipeline.faces' one preprocessing, kept or dropped with its
reason, with memory bounded and every core used however many photos there are, resumable after a kill
(cache_resume).

Kept apart from cache.py (which training reads through open_images) so that the training stages do not depend on
the face detector's code: only prepare_data does.
"""
from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline import runtime
from pipeline.config import DataConfig
from pipeline.data.adapters.common import FACE_LABEL_COLUMNS, SOURCE_REASONS
from pipeline.data.cache import DROPPED, IMAGES, INDEX, META
from pipeline.data.cache_resume import PartialBuild, fingerprint
from pipeline.data.paths import REASONS as PATH_REASONS
from pipeline.data.manifest import DOMAINS, resolve
from pipeline.faces import FaceLabel, FaceSettings, PhotoError, prepare_many
from pipeline.faces.preprocess import DROP_REASONS

log = logging.getLogger(__name__)
# index.csv columns added when a face was placed (detector or label): how many faces the detector found (the
# largest is used; 1 for a label), the box and the detector's score (empty for a label)
FACE_COLUMNS = ("n_faces", "box_x0", "box_y0", "box_x1", "box_y1", "face_score")
FALLBACK_COLUMN = "face_fallback"  # index.csv with face: landmarks: "box" where the label's box placed the face
# every reason dropped.csv and meta.json's dropped_by_reason name: a file refused by its path, left out by its
# source, or dropped by decoding and face placing
REASONS = (*PATH_REASONS, *SOURCE_REASONS, *DROP_REASONS)
FLUSH_EVERY = 8  # photos between two durable journal writes: what a kill can cost again (an fsync: ~ms)
# photos per worker task: MTCNN batches equal-size photos; without a detector small tasks keep the results flowing
# (and the journal current) at no cost
CHUNK = {"none": 4, "landmarks": 4, "mtcnn": 16}


class CacheError(ValueError):
    """Nothing in the manifest could be used; the message names the first photo and why."""


def face_settings(cfg: DataConfig) -> dict[str, FaceSettings]:
    """params.yaml:data -> each role's preprocessing (the model file records them); only the face mode differs by
    role: the template, margin and size are shared, so every crop frames a face the same way."""
    return {role: FaceSettings(face=mode, image_size=cfg.image_size, margin=cfg.face_margin,
                               template=cfg.face_template, min_face_size=cfg.face_min_size,
                               max_side=cfg.face_max_side)
            for role, mode in cfg.role_faces().items()}


def _labels(manifest: pd.DataFrame) -> tuple[list[FaceLabel | None], list[str]]:
    """Each row's face label (FaceLabel or None) and its text, from the manifest's FACE_LABEL_COLUMNS."""
    columns = [manifest[c].fillna("").astype(str).tolist() if c in manifest else [""] * len(manifest)
               for c in FACE_LABEL_COLUMNS]
    texts = list(zip(*columns))
    return [FaceLabel.from_text(*t) for t in texts], ["|".join(t) for t in texts]


def _face_row(face) -> dict:
    x0, y0, x1, y1 = (round(v, 1) for v in face.box)
    return {"n_faces": face.n_faces, "box_x0": x0, "box_y0": y0, "box_x1": x1, "box_y1": y1,
            "face_score": round(face.score, 4)}


def _outcome(result, source: Path, settings: FaceSettings) -> tuple[dict, np.ndarray | None]:
    """A prepared photo -> its journal record (kept, with its face; or dropped, with reason and error)."""
    if isinstance(result, PhotoError):
        return {"reason": result.reason, "error": str(result)}, None
    if result.drop_reason == "no_face":  # the detector found no face: not a training photo
        return {"reason": "no_face", "error": f"{source}: no face found ({settings.face}, faces >= "
                f"{settings.min_face_size} px at <= {settings.max_side} px)"}, None
    if result.drop_reason:
        return {"reason": result.drop_reason, "error": f"{source}: {result.problem}"}, None
    outcome: dict = {"kept": 1}
    if result.face_found:
        outcome.update(_face_row(result))
    if result.fallback:
        outcome["fallback"] = result.fallback
    return outcome, result.pixels


def build_cache(manifest: pd.DataFrame, root: Path | None, out_dir: Path,
                settings: FaceSettings | Mapping[str, FaceSettings], workers: int | None = None,
                crops: np.ndarray | None = None, dropped: Sequence[dict] = (),
                resume_dir: Path | None = None) -> dict:
    """Prepare all rows; unusable photos are dropped and listed with their reason in dropped.csv, never silently.

    settings: one FaceSettings for every row, or one per role (a row's role is its `domain`). crops: one bool per
    row, True where the photo already is an aligned face crop (synthetic renders): those rows take `face: none`
    whatever `settings` say. dropped: files left out of the manifest ({path, reason, error}: refused by their
    path, pipeline.data.paths.screen, or by their source), listed and counted first in dropped.csv. workers:
    processes (None: every core). Writes images.npy, index.csv (the kept manifest rows, row i is image i, plus
    FACE_COLUMNS when a face was placed), dropped.csv (path, reason, error) and meta.json,
    each through a temp file so an interrupted build never leaves a valid-looking half cache; the work done so far
    stays in `resume_dir` (default: .<out_dir name>.partial beside it; prepare_data: layout.CACHE_RESUME) and a rerun
    on the same photos and settings continues from it.
    """
    n = len(manifest)
    by_role = dict(settings) if isinstance(settings, Mapping) else {domain: settings for domain in DOMAINS}
    size = next(iter(by_role.values())).image_size
    assert all(s.image_size == size for s in by_role.values()), "every role's photos share one cache resolution"
    crops = np.zeros(n, bool) if crops is None else np.asarray(crops, bool)
    plans = [replace(by_role[domain], face="none") if crop else by_role[domain]
             for domain, crop in zip(manifest["domain"], crops)]
    labels, label_texts = _labels(manifest)
    paths = [resolve(p, root) for p in manifest["path"]]
    plan_texts = {plan: json.dumps(plan.to_dict(), sort_keys=True) for plan in set(plans)}
    key = fingerprint(paths, [f"{plan_texts[plan]}|{text}" for plan, text in zip(plans, label_texts)])
    workers = workers or runtime.available_cores()
    partial = PartialBuild(resume_dir or out_dir.with_name(f".{out_dir.name}.partial"), key, n, size)
    try:
        for plan in dict.fromkeys(plans):  # each distinct preparation, in first-seen order
            rows = [i for i in range(n) if plans[i] == plan and i not in partial.done]
            if not rows:
                continue
            desc = {"none": "decode", "mtcnn": "faces", "landmarks": "landmarks"}[plan.face]
            log.info("%s: %d photos on %d process(es)", desc, len(rows), workers)
            results = prepare_many([str(paths[i]) for i in rows], plan, workers, CHUNK[plan.face], desc=desc,
                                   labels=[labels[i] for i in rows] if plan.face == "landmarks" else None)
            for k, (i, result) in enumerate(zip(rows, results), start=1):
                partial.record(i, *_outcome(result, paths[i], plan))
                if k % FLUSH_EVERY == 0:
                    partial.flush()
            partial.flush()
    finally:
        partial.close()
    outcomes = partial.done
    kept_rows = np.array([i for i in range(n) if outcomes[i].get("kept")], dtype=np.int64)
    cache_drops = [{"path": manifest["path"].iloc[i], "reason": outcomes[i]["reason"], "error": outcomes[i]["error"]}
                   for i in range(n) if not outcomes[i].get("kept")]
    table = pd.DataFrame([*dropped, *cache_drops], columns=["path", "reason", "error"])
    if not len(kept_rows):
        first = table.iloc[len(dropped)]["error"] if cache_drops else "no photos"
        raise CacheError(f"none of the {n} photos could be used (first: {first})")
    out_dir.mkdir(parents=True, exist_ok=True)
    with runtime.atomic_path(out_dir / IMAGES) as tmp:
        partial.copy_rows(kept_rows, tmp)
    index = manifest.iloc[kept_rows].reset_index(drop=True)
    # the columns follow the settings asked for, not the rows: with face: mtcnn on synthetic renders (crops
    # already) index.csv still has them, empty on every row prepared as a crop
    placing = {s.face for s in by_role.values()} - {"none"}
    if placing:
        columns = pd.DataFrame([{c: outcomes[i].get(c) for c in FACE_COLUMNS} for i in kept_rows],
                               columns=list(FACE_COLUMNS))
        index = pd.concat([index, columns.astype({"n_faces": "Int64"})], axis=1)
    if "landmarks" in placing:
        index[FALLBACK_COLUMN] = [outcomes[i].get("fallback", "") for i in kept_rows]
    runtime.write_csv(out_dir / INDEX, index)
    runtime.write_csv(out_dir / DROPPED, table)
    by_reason = {reason: int((table["reason"] == reason).sum()) for reason in REASONS}
    if len(table):
        log.warning("dropped %d of %d file(s) (%s), listed with their reason in %s (first: %s)", len(table),
                    n + len(dropped), ", ".join(f"{r}: {c}" for r, c in by_reason.items() if c), out_dir / DROPPED,
                    table["error"].iloc[0])
    kept_outcomes = [outcomes[i] for i in kept_rows]
    n_box = sum(o.get("fallback") == "box" for o in kept_outcomes)
    if n_box:
        log.warning("%d photo(s) placed from their label's box: their face points were missing or impossible "
                    "(index.csv: %s)", n_box, FALLBACK_COLUMN)
    meta = {"n_images": len(kept_rows), "n_dropped": len(table), "image_size": size,
            "face": {role: s.to_dict() for role, s in by_role.items()}, "dropped_by_reason": by_reason,
            "n_several_faces": sum((o.get("n_faces") or 0) > 1 for o in kept_outcomes),
            "n_box_fallback": n_box,
            "n_as_crops": sum(plans[i].face == "none" for i in kept_rows)}  # prepared without placing a face
    runtime.write_json(out_dir / META, meta)
    partial.discard()
    return meta
