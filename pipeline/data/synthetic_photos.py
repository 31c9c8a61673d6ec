"""Synthetic photos on disk: every planned person rendered on a process pool, in a fixed order (same bytes for any
worker count), then written as JPEG files."""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from pipeline.config import SyntheticConfig
from pipeline.data.render import photograph, render_face
from pipeline.data.synthetic import Person, person_apparent_ages, plan_persons


@dataclass(frozen=True)
class Photo:
    path: str
    person_id: str
    age: float
    domain: str
    split_hint: str
    apparent_age: float
    jpeg: bytes


def render_person(args: tuple[Person, SyntheticConfig, int, int, str]) -> list[Photo]:
    """All photos of one person; seeded by (seed, domain, index) so worker scheduling cannot change bytes."""
    person, cfg, seed, size, out_dir = args
    traits, apparent_years, rng = person_apparent_ages(person, cfg, seed)
    pid = person.person_id
    photos = []
    for k, (age, apparent) in enumerate(zip(person.ages_years, apparent_years)):
        jpeg = photograph(render_face(traits, apparent, size, rng), size, rng)
        photos.append(Photo(f"{out_dir}/{person.domain}/{pid}_{k:02d}.jpg", pid, age, person.domain,
                            person.split_hint, round(apparent, 2), jpeg))
    return photos


def generate(cfg: SyntheticConfig, seed: int, size: int, out_dir: str) -> Iterator[Photo]:
    """Yield every photo in a fixed order, rendering persons on `cfg.workers` processes."""
    jobs = [(p, cfg, seed, size, out_dir) for p in plan_persons(cfg, seed)]
    if cfg.workers == 1:
        for job in jobs:
            yield from render_person(job)
        return
    with get_context("fork").Pool(cfg.workers) as pool:  # imap keeps order: same bytes for any worker count
        for photos in pool.imap(render_person, jobs, chunksize=16):
            yield from photos


def write_photos(photos: Iterator[Photo], root: Path) -> list[Photo]:
    written = []
    for photo in photos:
        path = root / photo.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(photo.jpeg)
        written.append(photo)
    return written
