"""Helpers shared by the adapters: layout errors, the photo suffixes, absolute paths and the manifest frame they all
return."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.data.manifest import with_optional_columns
from pipeline.data.paths import absolute

log = logging.getLogger(__name__)
# photo files the adapters and `pipeline.predict` pick up from a folder
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# why a source leaves a file out of its manifest (named and counted in data/cache/dropped.csv and metrics/data.json,
# with the photo reasons): a photo without its label, a label without its photo, a label that cannot be read,
# a label whose ages contradict each other or the file name
SOURCE_REASONS = ("no_label", "no_photo", "bad_label", "age_mismatch")
DROPPED = "dropped"  # DataFrame.attrs key: the files a source left out, [{path, reason, error}] (a list: see below)
# manifest columns a source may add for face: landmarks (pipeline.faces.landmarks: template order, photo pixels)
FACE_LABEL_COLUMNS = ("landmarks", "face_box", "label_size")
# columns a source with interval ages (pipeline.data.intervals) or families adds: splits keep a family on one side
LABEL_COLUMNS = ("age_low", "age_high", "family_id")


class LayoutError(FileNotFoundError):
    """A data root that does not have the layout its adapter expects; the message says what is missing."""


def require_dir(root: Path, name: str, layout: str) -> Path:
    if not root.is_dir():
        raise LayoutError(f"{root} is not a folder; set params.yaml:data.root (or <role>_root) to your {name} copy. "
                          f"Expected layout: {layout}")
    return root


def images_under(root: Path) -> list[Path]:
    """Photo files under `root`, sorted; links too (a symlink loop is no file, but pipeline.data.paths names it)."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_symlink() or p.is_file()))


def frame(rows: list[dict], domain: str, source: str, root: Path, layout: str) -> pd.DataFrame:
    if not rows:
        raise LayoutError(f"{source}: no photos found under {root}. Expected layout: {layout}")
    table = pd.DataFrame(rows)
    table["domain"] = domain
    columns = ["path", "person_id", "age", "domain", "split_hint", "date"]
    return with_optional_columns(table)[columns + [c for c in (*LABEL_COLUMNS, *FACE_LABEL_COLUMNS) if c in table]]


def with_dropped(table: pd.DataFrame, dropped: list[dict]) -> pd.DataFrame:
    """Attach the files a source left out (dicts with path, reason in SOURCE_REASONS, error); build_manifest
    takes them off before the manifest is validated. A list of dicts, not a frame: pandas compares attrs with ==."""
    assert all(d["reason"] in SOURCE_REASONS for d in dropped), dropped
    table.attrs[DROPPED] = [{"path": str(d["path"]), "reason": d["reason"], "error": d["error"]} for d in dropped]
    return table


def match_names(paths: list[Path], pattern: str, source: str, root: Path) -> list[tuple[Path, re.Match]]:
    """Files whose name matches `pattern`; the others are reported (count and examples), never silently lost."""
    regex = re.compile(pattern)
    matched, skipped = [], []
    for path in paths:
        m = regex.fullmatch(path.name)
        (matched if m else skipped).append((path, m))
    if skipped:
        log.warning("%s: %d file(s) under %s do not follow the naming scheme and are skipped, e.g. %s",
                    source, len(skipped), root, ", ".join(p.name for p, _ in skipped[:3]))
    return matched


def as_text(values: np.ndarray | tuple | None) -> str:
    """Face points or a box as a manifest's text column ("" for none), 2 decimals: see pipeline.faces.landmarks."""
    return "" if values is None else " ".join(f"{v:.2f}" for v in np.asarray(values, float).reshape(-1))
