"""Every photo a real source lists is screened against its data root before it enters the manifest.

A file name that is not UTF-8 text cannot be written to manifest.csv or dropped.csv; a path that leaves the root
(`../..` rows, absolute paths, symlinks pointing elsewhere) reads files nobody meant as training data and that
check_params does not fingerprint; a symlink loop cannot be opened at all. Each becomes a named, counted outcome
in data/cache/dropped.csv and metrics/data.json instead of a crash that blocks every run or a silent read.
"""
from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)
REASONS = ("bad_name", "outside_root", "link_loop")


def shown(path: str | Path) -> str:
    """Any path as printable UTF-8: bytes that are not UTF-8 appear as \\xff escapes (the name on disk, readable)."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def absolute(path: str | Path) -> Path:
    """The absolute path without following links (Path.resolve raises on a symlink loop; screen() names it)."""
    return Path(os.path.abspath(path))


def problem(path: str | Path, root: Path) -> tuple[str, str] | None:
    """(reason, message) when `path` must not be read as a photo of `root`, else None.

    A missing file is not a problem here: the manifest check names it (a typo the user must fix).
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode keeps undecodable bytes as lone surrogates
        return "bad_name", (f"{shown(path)}: the file name is not UTF-8 text; rename it (e.g. `convmv -f latin1 "
                            "-t utf-8 --notest`) to include it")
    real_root = Path(os.path.realpath(root))
    inside = absolute(path)
    if not inside.is_relative_to(absolute(root)) and not inside.is_relative_to(real_root):
        return "outside_root", (f"{text}: outside the data root {root}; copy the photo into the root and list it "
                                "relative to it")
    try:
        real = inside.resolve(strict=True)
    except FileNotFoundError:
        return None
    except (RuntimeError, OSError) as err:  # Python 3.11 raises RuntimeError for a loop, newer ones OSError
        if isinstance(err, OSError) and err.errno != errno.ELOOP:
            return None  # unreadable for another reason: decoding names it
        return "link_loop", f"{text}: a symbolic link loop; remove or fix the link"
    if not real.is_relative_to(real_root):
        return "outside_root", (f"{text}: a link to {real}, outside the data root {root}; copy the photo into the "
                                "root instead of linking to it")
    return None


def screen(table: pd.DataFrame, root: Path, source: str) -> tuple[pd.DataFrame, list[dict]]:
    """The rows of `table` whose `path` is safe to read, and one {path, reason, error} per refused row."""
    if "path" not in table:
        return table, []  # the manifest check names the missing column
    keep, refused = [], []
    for path in table["path"]:
        found = problem(path, root) if isinstance(path, str) else None  # an empty cell: the manifest check
        keep.append(found is None)
        if found is not None:
            refused.append({"path": shown(path), "reason": found[0], "error": found[1]})
    if refused:
        counts = pd.Series([r["reason"] for r in refused]).value_counts().to_dict()
        log.warning("%s: %d file(s) under %s refused (%s), listed in data/cache/dropped.csv (first: %s)", source,
                    len(refused), root, ", ".join(f"{r}: {n}" for r, n in counts.items()), refused[0]["error"])
    return table[keep].reset_index(drop=True), refused
