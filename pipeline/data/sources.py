"""Where photos come from: each source returns the common manifest (path, person_id, age, domain, ...)."""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import layout
from pipeline.config import REGISTRIES, DataConfig
from pipeline.data import floor, paths, splits, synthetic_photos
from pipeline.data.adapters import ADAPTERS, LANDMARK_SOURCES
from pipeline.data.adapters.common import DROPPED
from pipeline.data.manifest import validate
from pipeline.data.synthetic import plan_persons

log = logging.getLogger(__name__)
SYNTHETIC_DIR = layout.SYNTHETIC_RAW
SOURCES = ("synthetic", *ADAPTERS)
REGISTRIES["source"] = lambda: list(SOURCES)  # data.general / data.korean are checked when they load
REGISTRIES["landmark_source"] = lambda: list(LANDMARK_SOURCES)  # data.<role>_face: landmarks needs one


def _synthetic(cfg: DataConfig, domains: list[str]) -> tuple[pd.DataFrame, dict]:
    syn = cfg.synthetic
    photos = synthetic_photos.write_photos(synthetic_photos.generate(syn, syn.seed, cfg.image_size,
                                                                  str(SYNTHETIC_DIR)), Path("."))
    frame = pd.DataFrame([{"path": p.path, "person_id": p.person_id, "age": p.age, "domain": p.domain,
                           "split_hint": p.split_hint, "apparent_age": p.apparent_age} for p in photos])
    frame = frame[frame["domain"].isin(domains)].reset_index(drop=True)
    floors = floor.domain_floors(syn, syn.seed)
    return frame, {f"bayes_floor_mae_{d}": floors[d] for d in domains}


def kept_share(table: pd.DataFrame, share: float, seed: int, where: str) -> pd.DataFrame:
    """A seeded share of the table's persons (whole families when it names them), drawn within each split hint;
    a published test list is kept whole (scoring is cheap, and a CI over persons needs them); every row when
    share is 1."""
    if share >= 1:
        return table
    units = splits.split_units(table)
    hints = table["split_hint"].fillna("").astype(str) if "split_hint" in table else pd.Series("", index=table.index)
    rng = np.random.default_rng([seed, 11])
    kept: set[str] = set()
    for hint in sorted(hints.unique()):
        pool = np.sort(units[hints == hint].unique())
        if hint == "test":
            kept.update(pool.tolist())
            continue
        kept.update(rng.permutation(pool)[:max(1, int(round(share * len(pool))))].tolist())
    mask = units.isin(kept)
    log.info("%s: keeping %d of %d persons (%d of %d photos; %s_keep %g)", where,
             table.loc[mask, "person_id"].nunique(), table["person_id"].nunique(), int(mask.sum()), len(table),
             where.split()[0], share)
    return table[mask].reset_index(drop=True)


def rendered_crops(cfg: DataConfig, manifest: pd.DataFrame) -> pd.Series:
    """True for the photos of a synthetic role: rendered as aligned face crops at the cache resolution, so
    `data.face` (a detector) does not apply to them; it applies to the real sources' photos."""
    synthetic_roles = [role for role in ("general", "korean") if getattr(cfg, role) == "synthetic"]
    return manifest["domain"].isin(synthetic_roles)  # a photo's domain is its role


def real_manifests(cfg: DataConfig) -> tuple[list[pd.DataFrame], list[dict]]:
    """Each real role's photos, screened against its root (pipeline.data.paths) and validated; and the refused
    files ({path, reason, error}): refused by the screen (bad_name, outside_root, link_loop) or left out by the
    source's adapter (a photo without its label, a contradictory label, ...). Reads names, lists and labels only:
    check_params runs it before anything is deleted."""
    frames, refused = [], []
    for role, (source, root) in cfg.roles().items():  # source names and roots were checked when params loaded
        if source == "synthetic":
            continue
        root_path = Path(root).expanduser()
        table = ADAPTERS[source](root_path, role)
        refused += table.attrs.pop(DROPPED, [])
        table = kept_share(table, getattr(cfg, f"{role}_keep"), cfg.keep_seed, f"{role} role ({source})")
        table, out = paths.screen(table, root_path, f"{source} data under {root}")
        refused += out
        frames.append(validate(table, f"{source} data under {root}"))
        log.info("%s role: %d photos of %d persons from %s (%s)", role, len(frames[-1]),
                 frames[-1]["person_id"].nunique(), source, root)
    return frames, refused


def in_age_range(manifest: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    out_of_range = (manifest["age"] < cfg.min_age) | (manifest["age"] > cfg.max_age)
    if out_of_range.any():
        log.warning("dropping %d photo(s) with ages outside data.min_age..max_age (%g..%g)", int(out_of_range.sum()),
                    cfg.min_age, cfg.max_age)
    return manifest[~out_of_range].reset_index(drop=True)


def check_manifest(cfg: DataConfig) -> set[str]:
    """Raise every manifest problem prepare_data would (a duplicate row, a missing file, a bad age, ...) now, from
    names and lists alone (no photo written or decoded): check_params runs it before DVC deletes data/cache.

    Returns the Korean role's person ids within data.min_age..max_age, to test split_korean.korean_test_person.
    """
    frames, _ = real_manifests(cfg)
    korean: set[str] = set()
    if frames:  # the same photo in both roles is a duplicate too
        manifest = in_age_range(validate(pd.concat(frames, ignore_index=True), "data manifest", root=Path(".")), cfg)
        korean = set(manifest.loc[manifest["domain"] == "korean", "person_id"])
    if cfg.korean == "synthetic":
        syn = cfg.synthetic
        korean = {person.person_id for person in plan_persons(syn, syn.seed) if person.domain == "korean"
                  and any(cfg.min_age <= age <= cfg.max_age for age in person.ages_years)}
    return korean


def build_manifest(cfg: DataConfig) -> tuple[pd.DataFrame, dict, list[dict]]:
    """The manifest of both roles (general, korean), what is known about the data (e.g. its Bayes floor) and the
    files left out before decoding (real_manifests: refused by the screen or by the source's adapter)."""
    roles = cfg.roles()
    if SYNTHETIC_DIR.exists():
        shutil.rmtree(SYNTHETIC_DIR)  # stale photos of other params must not survive in the folder
    SYNTHETIC_DIR.mkdir(parents=True)  # a declared output, even when no role is synthetic
    synthetic_roles = [r for r, (s, _) in roles.items() if s == "synthetic"]
    frames, info = [], {}
    if synthetic_roles:
        frame, info = _synthetic(cfg, synthetic_roles)
        frames.append(frame)
    else:  # DVC warns on every run about an empty output folder; say why it is empty instead
        (SYNTHETIC_DIR / "NO_SYNTHETIC_ROLE.txt").write_text("no role of this run uses the synthetic source\n")
    real, refused = real_manifests(cfg)  # build_cache lists and counts them in dropped.csv, with its warning
    manifest = validate(pd.concat(frames + real, ignore_index=True), "data manifest", root=Path("."))
    return in_age_range(manifest, cfg), info, refused
