"""Helpers shared by the adapters: layout errors, the photo suffixes, absolute paths and the manifest frame they all
return."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from pipeline.data.manifest import with_optional_columns
from pipeline.data.paths import absolute

log = logging.getLogger(__name__)
# photo files the adapters and `pipeline.predict` pick up from a folder
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


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
    return with_optional_columns(table)[["path", "person_id", "age", "domain", "split_hint", "date"]]


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
