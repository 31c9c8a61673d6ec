"""PIL drawing of one synthetic face at an apparent age (render_face), and the nuisance of a photo (photograph)."""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipeline.data.synthetic import Traits


def _smooth(x: float, lo: float, hi: float) -> float:
    """Smoothstep from 0 at lo to 1 at hi: every age cue is monotone and has no kinks."""
    u = min(max((x - lo) / (hi - lo), 0.0), 1.0)
    return u * u * (3 - 2 * u)


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
