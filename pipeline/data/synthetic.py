"""Deterministic synthetic aging faces: persons with stable traits whose rendered apparent age drifts with time.

Generative model (per domain d, person p, photo k):
    true age        t_pk  drawn from the domain's age distribution (a series of ages for a Korean person)
    apparent age    a_pk = t_pk + shift_d + offset_p + (rate_p - 1) * (t_pk - 25) + noise_pk
    offset_p ~ N(0, person_offset_years), rate_p ~ N(1, RATE_STD), noise_pk ~ N(0, age_noise_years)
The face drawn from a_pk changes smoothly and monotonically with it (proportions up to adulthood, then
wrinkles, greying, hairline, sagging); everything else (pose, light, blur, noise, JPEG, background) is
nuisance. A single photo therefore cannot reveal t_pk better than the Bayes floor computed in floor.py.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.config import SyntheticConfig

RATE_STD = 0.08
DOMAIN_SHIFT_YEARS = {"general": 0.0, "korean": -3.0}  # Korean faces look younger: fine-tuning matters
AGE_LIMITS = (0.0, 80.0)
DOMAIN_CODE = {"general": 1, "korean": 2}


@dataclass(frozen=True)
class Person:
    domain: str
    index: int
    ages_years: tuple[float, ...]
    split_hint: str


def _smooth(x: float, lo: float, hi: float) -> float:
    """Smoothstep from 0 at lo to 1 at hi: every age cue is monotone and has no kinks."""
    u = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return u * u * (3 - 2 * u)


# ------------------------------------------------------------------------------------------- age distributions
def sample_general_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """MegaAge-Asian-like: most mass 15-45, tails to 0 and 70."""
    kind = rng.choice(3, size=n, p=[0.75, 0.13, 0.12])
    core = rng.normal(28.0, 9.0, size=n)
    young = rng.uniform(0.0, 15.0, size=n)
    old = rng.uniform(45.0, 75.0, size=n)
    ages = np.where(kind == 0, core, np.where(kind == 1, young, old))
    return np.clip(ages, *AGE_LIMITS)


def sample_series_ages(rng: np.random.Generator, n_photos: int, span: tuple[float, float]) -> np.ndarray:
    """One person's photos across the years: a start age and sorted capture ages within a span."""
    years = rng.uniform(*span)
    start = rng.uniform(0.0, max(AGE_LIMITS[1] - years, 1.0))
    return np.sort(np.clip(start + rng.uniform(0.0, years, size=n_photos), *AGE_LIMITS))


def plan_persons(cfg: SyntheticConfig, seed: int) -> list[Person]:
    """Who exists and at which true ages; depends only on (cfg, seed), never on worker count."""
    rng = np.random.default_rng([seed, 0])
    persons: list[Person] = []
    g_lo, g_hi = cfg.general_photos
    test_ids = set(rng.permutation(cfg.n_general_persons)[: round(cfg.general_test_frac * cfg.n_general_persons)])
    for i in range(cfg.n_general_persons):
        n = int(rng.integers(g_lo, g_hi + 1))
        base = float(sample_general_ages(rng, 1)[0])
        ages = np.clip(base + rng.uniform(0, 2.0, size=n) * np.arange(n), *AGE_LIMITS)  # 2nd photo: later
        persons.append(Person("general", i, tuple(np.round(ages, 1)), "test" if i in test_ids else "train"))
    k_lo, k_hi = cfg.korean_photos
    for i in range(cfg.n_korean_persons):
        n = int(rng.integers(k_lo, k_hi + 1))
        ages = sample_series_ages(rng, n, tuple(cfg.korean_years))
        persons.append(Person("korean", i, tuple(np.round(ages, 1)), ""))
    return persons


# ------------------------------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class Traits:
    """Stable identity: the same person is recognisable at every age."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    eye_color: tuple[float, float, float]
    face_width: float
    face_length: float
    eye_gap: float
    eye_size: float
    nose_len: float
    mouth_width: float
    hair_style: int  # 0 short, 1 long, 2 fringe
    balding: float  # propensity for hairline recession
    brow: float
    background: tuple[float, float, float]
    offset_years: float
    rate: float


def draw_traits(rng: np.random.Generator, domain: str, cfg: SyntheticConfig) -> Traits:
    if domain == "korean":
        skin = np.array([226, 190, 160]) + rng.normal(0, 10, 3)
        hair = np.array([30, 25, 22]) + rng.normal(0, 8, 3)
        background = rng.uniform([150, 150, 140], [230, 225, 210])
    else:
        tone = rng.uniform(0, 1)
        skin = (1 - tone) * np.array([240, 200, 170]) + tone * np.array([150, 105, 80]) + rng.normal(0, 8, 3)
        hair = np.array([[30, 25, 20], [90, 60, 35], [150, 110, 60], [200, 170, 110]])[rng.integers(0, 4)]
        hair = hair + rng.normal(0, 10, 3)
        background = rng.uniform(40, 230, 3)
    return Traits(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(np.clip(hair, 0, 255)),
        eye_color=tuple(np.clip(rng.uniform(20, 90, 3), 0, 255)),
        face_width=float(rng.uniform(0.26, 0.32)),
        face_length=float(rng.uniform(0.95, 1.1)),
        eye_gap=float(rng.uniform(0.38, 0.48)),
        eye_size=float(rng.uniform(0.85, 1.15)),
        nose_len=float(rng.uniform(0.85, 1.2)),
        mouth_width=float(rng.uniform(0.8, 1.2)),
        hair_style=int(rng.integers(0, 3)),
        balding=float(rng.uniform(0, 1)),
        brow=float(rng.uniform(0.7, 1.3)),
        background=tuple(background),
        offset_years=float(rng.normal(0, cfg.person_offset_years)),
        rate=float(rng.normal(1.0, RATE_STD)),
    )


def apparent_age(true_age: float, traits: Traits, domain: str, noise: float) -> float:
    return true_age + DOMAIN_SHIFT_YEARS[domain] + traits.offset_years + (traits.rate - 1) * (true_age - 25) + noise


def _rgb(color: tuple[float, ...] | np.ndarray, alpha: float | None = None) -> tuple[int, ...]:
    rgb = tuple(int(round(min(max(c, 0), 255))) for c in color)
    return rgb if alpha is None else (*rgb, int(round(255 * min(max(alpha, 0), 1))))


def render_face(traits: Traits, age: float, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one photo of `traits` at apparent `age`; `rng` supplies only nuisance variation."""
    s = 2 * size  # supersample, then downscale: anti-aliased detail even at 32-64 px
    grow = _smooth(age, 0, 18)  # child -> adult proportions
    mid = _smooth(age, 18, 50)  # leaner face, thinner lips, narrower eyes
    old = _smooth(age, 35, 80)  # wrinkles, folds, greying
    late = _smooth(age, 50, 85)  # sagging, spots, eye bags

    img = Image.new("RGB", (s, s), _rgb(traits.background))
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(int(rng.integers(2, 6))):  # background clutter
        x0, y0 = rng.uniform(0, s, 2)
        w, h = rng.uniform(0.1, 0.5, 2) * s
        shape = draw.ellipse if rng.uniform() < 0.5 else draw.rectangle
        shape([x0 - w / 2, y0 - h / 2, x0 + w / 2, y0 + h / 2], fill=_rgb(rng.uniform(0, 255, 3), 0.35))

    cx, cy = s / 2, s * 0.52
    fw = traits.face_width * s * (1.04 - 0.06 * mid + 0.05 * late)
    upper = fw * (1.05 - 0.05 * grow)  # cranium to eye line: relatively big in children
    lower = fw * traits.face_length * (0.78 + 0.42 * grow + 0.06 * late)  # jaw grows, then sags
    eye_y = cy + fw * (0.12 - 0.2 * grow)  # eye line sits low in a child's face
    skin = np.array(traits.skin) * (1 - 0.06 * old)
    grey = _smooth(age, 35, 75)
    hair = np.array(traits.hair) * (1 - grey) + np.array([200, 200, 200]) * grey

    # hair behind the head, face, neck
    if traits.hair_style == 1:
        draw.ellipse([cx - fw * 1.25, eye_y - upper * 1.25, cx + fw * 1.25, eye_y + lower * 1.1], fill=_rgb(hair))
    draw.rectangle([cx - fw * 0.45, eye_y + lower * 0.6, cx + fw * 0.45, s], fill=_rgb(skin * 0.92))
    draw.ellipse([cx - fw, eye_y - upper, cx + fw, eye_y + lower], fill=_rgb(skin))
    if late > 0:  # jowls widen the lower face
        jw = fw * (0.85 + 0.2 * late)
        draw.ellipse([cx - jw, eye_y + lower * 0.2, cx + jw, eye_y + lower * 0.98], fill=_rgb(skin))

    # hair on top: the hairline recedes with age for persons prone to balding
    recede = _smooth(age, 35, 80) * traits.balding
    hair_bottom = eye_y - upper * (0.45 + 0.45 * recede)
    if hair_bottom > eye_y - upper:
        draw.chord([cx - fw * 1.05, eye_y - upper * 1.12, cx + fw * 1.05, eye_y - upper + 2 * (hair_bottom - eye_y + upper)],
                   180, 360, fill=_rgb(hair))
    if traits.hair_style == 2 and recede < 0.5:
        draw.rectangle([cx - fw * 0.8, eye_y - upper * 0.75, cx + fw * 0.8, eye_y - upper * 0.5], fill=_rgb(hair))

    # forehead lines appear and deepen from the late twenties
    lines = _smooth(age, 25, 75)
    for i in range(int(math.ceil(4 * lines))):
        y = eye_y - upper * (0.28 + 0.08 * i)
        draw.arc([cx - fw * 0.5, y - fw * 0.1, cx + fw * 0.5, y + fw * 0.1], 200, 340,
                 fill=_rgb(skin * 0.6, 0.25 + 0.6 * lines), width=max(1, s // 96))

    # eyes: relatively large in children, narrower with age, bags and crow's feet late
    gap = fw * traits.eye_gap * (1.0 + 0.15 * (1 - grow))
    er = fw * 0.17 * traits.eye_size * (1.35 - 0.35 * grow)
    eh = er * (0.75 - 0.25 * mid - 0.1 * late)
    for side in (-1, 1):
        ex = cx + side * gap
        draw.ellipse([ex - er, eye_y - eh, ex + er, eye_y + eh], fill=(245, 245, 245))
        pr = min(eh, er * 0.55)
        draw.ellipse([ex - pr, eye_y - pr, ex + pr, eye_y + pr], fill=_rgb(traits.eye_color))
        bw = max(1, int(s * 0.018 * traits.brow * (0.6 + 0.4 * grow)))
        brow_y = eye_y - er * (1.2 + 0.2 * grow) + er * 0.25 * late  # brows droop late
        draw.line([ex - er * 1.1, brow_y + side * 0.0, ex + er * 1.1, brow_y - er * 0.15], fill=_rgb(hair * 0.8),
                  width=bw)
        if late > 0:
            draw.arc([ex - er, eye_y + eh * 0.2, ex + er, eye_y + eh * 2.2], 20, 160,
                     fill=_rgb(skin * 0.55, 0.8 * late), width=max(1, s // 80))
        for k in range(int(math.ceil(3 * old))):  # crow's feet
            fx = ex + side * er * 1.2
            draw.line([fx, eye_y, fx + side * er * 0.6, eye_y + (k - 1) * er * 0.35],
                      fill=_rgb(skin * 0.55, 0.7 * old), width=max(1, s // 128))

    # nose grows until adulthood; nasolabial folds deepen from middle age
    nl = fw * 0.45 * traits.nose_len * (0.6 + 0.4 * grow)
    nose_y = eye_y + nl
    draw.line([cx, eye_y + er * 0.5, cx - fw * 0.05, nose_y], fill=_rgb(skin * 0.75), width=max(1, s // 64))
    draw.ellipse([cx - fw * 0.12, nose_y - fw * 0.05, cx + fw * 0.12, nose_y + fw * 0.05], fill=_rgb(skin * 0.85))
    folds = _smooth(age, 30, 75)
    for side in (-1, 1):
        draw.line([cx + side * fw * 0.18, nose_y, cx + side * fw * 0.38, nose_y + lower * 0.32],
                  fill=_rgb(skin * 0.55, folds * 0.9), width=max(1, s // 80))

    # mouth: lips thin with age
    mw = fw * 0.35 * traits.mouth_width * (0.8 + 0.2 * grow)
    my = nose_y + (eye_y + lower - nose_y) * 0.42
    lip = max(1.0, fw * 0.07 * (1.1 - 0.6 * mid))
    draw.ellipse([cx - mw, my - lip, cx + mw, my + lip], fill=_rgb(np.array([180, 80, 80]) * (1 - 0.2 * old)))

    spots = late * 8  # age spots
    for _ in range(int(spots)):
        px, py = cx + rng.uniform(-0.7, 0.7) * fw, eye_y + rng.uniform(-0.8, 0.6) * upper
        r = s * 0.008
        draw.ellipse([px - r, py - r, px + r, py + r], fill=_rgb(skin * 0.7, 0.7))
    return img


def photograph(face: Image.Image, size: int, rng: np.random.Generator) -> bytes:
    """Nuisance of a real photo: pose, scale, light, colour cast, blur, sensor noise, JPEG."""
    s = face.size[0]
    angle = math.radians(rng.uniform(-8, 8))
    scale = rng.uniform(0.94, 1.06)
    tx, ty = rng.uniform(-0.04, 0.04, 2) * s
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    c = s / 2
    coeffs = (cos, sin, c - cos * c - sin * c + tx, -sin, cos, c + sin * c - cos * c + ty)
    face = face.transform((s, s), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR,
                          fillcolor=face.getpixel((0, 0)))
    face = face.resize((size, size), Image.Resampling.LANCZOS)
    blur = rng.uniform(0, 0.8)
    if blur > 0.2:
        face = face.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(face, dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / size
    direction = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.25) * ((xx - 0.5) * math.cos(direction) + (yy - 0.5) * math.sin(direction)) * 2
    gain = rng.uniform(0.8, 1.15) * rng.uniform(0.92, 1.08, 3)
    pixels = pixels * light[..., None] * gain + rng.normal(0, rng.uniform(0, 6), pixels.shape)
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, format="JPEG", quality=int(rng.integers(60, 96)))
    return buf.getvalue()


@dataclass(frozen=True)
class Photo:
    path: str
    person_id: str
    age: float
    domain: str
    split_hint: str
    apparent_age: float
    jpeg: bytes


def person_apparent_ages(person: Person, cfg: SyntheticConfig, seed: int
                         ) -> tuple[Traits, list[float], np.random.Generator]:
    """Identity and apparent ages of one person, before any pixel: the floor's Monte-Carlo check uses this."""
    rng = np.random.default_rng([seed, DOMAIN_CODE[person.domain], person.index])
    traits = draw_traits(rng, person.domain, cfg)
    noise = rng.normal(0, cfg.age_noise_years, size=len(person.ages_years))
    apparent = [apparent_age(age, traits, person.domain, float(eps)) for age, eps in zip(person.ages_years, noise)]
    return traits, apparent, rng


def render_person(args: tuple[Person, SyntheticConfig, int, int, str]) -> list[Photo]:
    """All photos of one person; seeded by (seed, domain, index) so worker scheduling cannot change bytes."""
    person, cfg, seed, size, out_dir = args
    traits, apparent_years, rng = person_apparent_ages(person, cfg, seed)
    pid = f"{person.domain[0]}{person.index:05d}"
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
