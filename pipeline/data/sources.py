"""Where photos come from: each source returns the common manifest (path, person_id, age, domain, ...)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline import runtime
from pipeline.config import ConfigError, DataConfig
from pipeline.data import floor, synthetic
from pipeline.data.adapters import ADAPTERS
from pipeline.data.manifest import validate

log = logging.getLogger(__name__)
SYNTHETIC_DIR = Path("data/raw/synthetic")
SOURCES = ("synthetic", *ADAPTERS)


def _synthetic(cfg: DataConfig, domains: list[str]) -> tuple[pd.DataFrame, dict]:
    syn = cfg.synthetic_config()
    photos = synthetic.write_photos(synthetic.generate(syn, syn.seed, cfg.image_size, str(SYNTHETIC_DIR)), Path("."))
    frame = pd.DataFrame([{"path": p.path, "person_id": p.person_id, "age": p.age, "domain": p.domain,
                           "split_hint": p.split_hint, "apparent_age": p.apparent_age} for p in photos])
    frame = frame[frame["domain"].isin(domains)].reset_index(drop=True)
    floors = floor.domain_floors(syn, syn.seed)
    return frame, {f"bayes_floor_mae_{d}": floors[d] for d in domains}


def build_manifest(cfg: DataConfig) -> tuple[pd.DataFrame, dict]:
    """The manifest of both roles (general, korean) and what is known about the data (e.g. its Bayes floor)."""
    roles = {"general": (cfg.general, cfg.general_root or cfg.root), "korean": (cfg.korean, cfg.korean_root or cfg.root)}
    for role, (source, root) in roles.items():
        if source not in SOURCES:
            raise ConfigError(f"params.yaml:data.{role}: unknown source '{source}'; available: {list(SOURCES)}")
        if source != "synthetic" and not root:
            raise ConfigError(f"params.yaml:data.{role}_root (or data.root): needed for source '{source}'")
    if SYNTHETIC_DIR.exists():
        shutil.rmtree(SYNTHETIC_DIR)  # stale photos of other params must not survive in the folder
    SYNTHETIC_DIR.mkdir(parents=True)  # a declared output, even when no role is synthetic
    synthetic_roles = [r for r, (s, _) in roles.items() if s == "synthetic"]
    frames, info = [], {}
    if synthetic_roles:
        frame, info = _synthetic(cfg, synthetic_roles)
        frames.append(frame)
    for role, (source, root) in roles.items():
        if source != "synthetic":
            frames.append(validate(ADAPTERS[source](Path(root).expanduser(), role), f"{source} data under {root}"))
            log.info("%s role: %d photos of %d persons from %s (%s)", role, len(frames[-1]),
                     frames[-1]["person_id"].nunique(), source, root)
    manifest = validate(pd.concat(frames, ignore_index=True), "data manifest", root=Path("."))
    out_of_range = (manifest["age"] < cfg.min_age) | (manifest["age"] > cfg.max_age)
    if out_of_range.any():
        log.warning("dropping %d photo(s) with ages outside data.min_age..max_age (%g..%g)", int(out_of_range.sum()),
                    cfg.min_age, cfg.max_age)
        manifest = manifest[~out_of_range].reset_index(drop=True)
    return manifest, info


def contact_sheet(index: pd.DataFrame, images: np.ndarray, path: Path, n_persons: int = 8, max_cols: int = 10) -> None:
    """Rows = Korean persons (the most photos first), columns = their photos by increasing age, from the cache."""
    korean = index[index["domain"] == "korean"]
    counts = korean.groupby("person_id").size().sort_values(ascending=False, kind="stable")
    persons = counts.index[:n_persons]
    size = images.shape[1]
    sheet = np.full((size * max(len(persons), 1), size * max_cols, 3), 255, np.uint8)
    for r, person in enumerate(persons):
        photos = korean[korean["person_id"] == person].sort_values("age", kind="stable")
        picks = np.linspace(0, len(photos) - 1, min(max_cols, len(photos))).round().astype(int)
        for c, row in enumerate(photos.index[picks]):
            sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = images[row]
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(sheet)
    with runtime.atomic_path(path) as tmp:
        image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST).save(tmp, format="PNG")


def data_summary(manifest: pd.DataFrame, info: dict, cache_meta: dict) -> dict:
    from pipeline.data.splits import BAND_NAMES, age_band
    summary = dict(info)
    summary.update({"n_images_cached": cache_meta["n_images"], "n_images_dropped": cache_meta["n_dropped"]})
    for domain, part in manifest.groupby("domain"):
        summary[f"{domain}_persons"] = int(part["person_id"].nunique())
        summary[f"{domain}_photos"] = len(part)
        bands = np.bincount(age_band(part["age"]), minlength=len(BAND_NAMES))
        summary[f"{domain}_age_bands"] = dict(zip(BAND_NAMES, bands.tolist()))
    return summary
