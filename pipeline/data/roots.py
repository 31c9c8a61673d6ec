"""What DVC cannot see on its own: a cheap fingerprint of each real data root the params point at.

`dvc repro` decides what to rerun from the md5s of declared deps; a data set outside the repository (a
`data.*_root` folder) is not one. Stage check_params writes these fingerprints to data/inputs.json, which
prepare_data depends on, so adding, removing, replacing or editing a file under a root reruns prepare_data,
while an unchanged root leaves the file byte-identical and nothing reruns.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from pipeline.config import DataConfig


def fingerprint(root: Path) -> dict:
    """Files, bytes and a digest of (relative path, size, mtime) of every non-hidden file under `root`.

    Size and modification time rather than content: hashing a 40,000-photo set on every `dvc repro` would cost
    minutes; a file rewritten in place changes its mtime. A copy of the same data elsewhere (new mtimes) reruns
    prepare_data once, which is the safe direction. A link counts as itself (lstat), so a symlink loop or a dangling
    link cannot fail the walk: a link inside the root points at a file fingerprinted on its own, and one leaving the
    root is refused (pipeline.data.paths). Names that are not UTF-8 are hashed as their bytes on disk.
    """
    if not root.is_dir():
        raise FileNotFoundError(f"data root {root} is not a folder; set data.root / data.<role>_root to your copy")
    digest, n_files, n_bytes = hashlib.sha256(), 0, 0
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(folder) / name
            stat = path.lstat()
            line = f"{path.relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))  # a non-UTF-8 name must not crash check_params
            n_files, n_bytes = n_files + 1, n_bytes + stat.st_size
    return {"files": n_files, "bytes": n_bytes, "digest": digest.hexdigest()[:32]}


def describe_inputs(cfg: DataConfig) -> dict:
    """Per role: its source, and for a real source the root as written in params.yaml plus its fingerprint."""
    inputs: dict[str, dict] = {}
    for role, (source, root) in cfg.roles().items():
        entry: dict = {"source": source}
        if source != "synthetic":
            entry.update(root=root, **fingerprint(Path(root).expanduser()))
        inputs[role] = entry
    return inputs
