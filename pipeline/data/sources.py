"""Where photos come from: each source returns the common manifest (path, person_id, age, domain, ...)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from pipeline.config import ConfigError, DataConfig
from pipeline.data import floor, synthetic
from pipeline.data.manifest import validate

log = logging.getLogger(__name__)
SYNTHETIC_DIR = Path("data/raw/synthetic")
SOURCES = ("synthetic", "csv")


def _synthetic(cfg: DataConfig, domains: list[str]) -> tuple[pd.DataFrame, dict]:
    syn = cfg.synthetic_config()
    if SYNTHETIC_DIR.exists():
        shutil.rmtree(SYNTHETIC_DIR)  # stale photos of other params must not survive in the folder
    photos = synthetic.write_photos(synthetic.generate(syn, cfg.seed, cfg.image_size, str(SYNTHETIC_DIR)), Path("."))
    frame = pd.DataFrame([{"path": p.path, "person_id": p.person_id, "age": p.age, "domain": p.domain,
                           "split_hint": p.split_hint, "apparent_age": p.apparent_age} for p in photos])
    frame = frame[frame["domain"].isin(domains)].reset_index(drop=True)
    floors = floor.domain_floors(syn, cfg.seed)
    return frame, {f"bayes_floor_mae_{d}": floors[d] for d in domains}


def _csv(root: str, domain: str) -> pd.DataFrame:
    """Generic CSV source: <root>/manifest.csv with path,person_id,age[,date]; paths relative to root."""
    base = Path(root)
    path = base / "manifest.csv"
    if not path.exists():
        raise ConfigError(f"{path} not found; the csv source needs a manifest.csv with columns "
                          "path,person_id,age[,date] under data.root")
    raw = pd.read_csv(path, dtype={"person_id": str, "path": str, "date": str}, keep_default_na=False,
                      na_values=[""])
    raw["domain"] = domain  # the role decides the domain, whatever the file says
    frame = validate(raw, str(path), root=base)
    frame["path"] = [str(p if Path(p).is_absolute() else (base / p).resolve()) for p in frame["path"]]
    return frame


def build_manifest(cfg: DataConfig) -> tuple[pd.DataFrame, dict]:
    """The manifest of both roles (general, korean) and what is known about the data (e.g. its Bayes floor)."""
    roles = {"general": (cfg.general, cfg.general_root or cfg.root), "korean": (cfg.korean, cfg.korean_root or cfg.root)}
    for role, (source, root) in roles.items():
        if source not in SOURCES:
            raise ConfigError(f"params.yaml:data.{role}: unknown source '{source}'; available: {list(SOURCES)}")
        if source != "synthetic" and not root:
            raise ConfigError(f"params.yaml:data.{role}_root (or data.root): needed for source '{source}'")
    synthetic_roles = [r for r, (s, _) in roles.items() if s == "synthetic"]
    frames, info = [], {}
    if synthetic_roles:
        frame, info = _synthetic(cfg, synthetic_roles)
        frames.append(frame)
    for role, (source, root) in roles.items():
        if source == "csv":
            frames.append(_csv(root, role))
    manifest = pd.concat(frames, ignore_index=True)
    for column in ("date", "split_hint"):
        manifest[column] = manifest.get(column, pd.Series("", index=manifest.index)).fillna("")
    return validate(manifest, "data manifest", root=Path(".")), info


def contact_sheet(manifest: pd.DataFrame, path: Path, n_persons: int = 8, max_cols: int = 10) -> None:
    """Rows = Korean persons, columns = their photos by increasing age: a person can see the aging."""
    korean = manifest[manifest["domain"] == "korean"]
    persons = sorted(korean["person_id"].unique())[:n_persons]
    if not persons:
        return
    sample = Image.open(manifest["path"].iloc[0])
    size = sample.size[0]
    sheet = Image.new("RGB", (size * max_cols, size * len(persons)), (255, 255, 255))
    for r, person in enumerate(persons):
        photos = korean[korean["person_id"] == person].sort_values("age")
        idx = np.linspace(0, len(photos) - 1, min(max_cols, len(photos))).round().astype(int)
        for c, row in enumerate(photos.iloc[idx].itertuples()):
            with Image.open(row.path) as img:
                sheet.paste(img.convert("RGB").resize((size, size)), (c * size, r * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST).save(path)


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
