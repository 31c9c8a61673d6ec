"""Helpers shared by test modules (imported, never collected): subprocess runs, project copies, photo fixtures."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TINY_PARAMS = ROOT / "tests" / "fixtures" / "params.tiny.yaml"
SOURCES = ("pipeline", "stages", "profiles", "dvc.yaml", ".dvcignore")  # what a project copy needs; no data


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """A command in `cwd` with this venv first on PATH and the copy's own pipeline importable, on the CPU."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(cwd), "AGE_VCOP_DEVICE": "cpu"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def make_project(work: Path, params: Path | str = TINY_PARAMS, git: bool = True) -> Path:
    """A fresh project at `work`: the source files, `params` as params.yaml, `dvc init` (in a git repo when `git`).

    `params` is a file path or the YAML text itself.
    """
    work.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    params_path = work / "params.yaml"
    if isinstance(params, Path):
        shutil.copy(params, params_path)
    else:
        params_path.write_text(params)
    if git:
        run(["git", "init", "-q"], work)
        dvc("init", "-q", cwd=work)
    else:
        dvc("init", "--no-scm", "-q", cwd=work)
    dvc("config", "core.analytics", "false", cwd=work)
    return work


def commit_all(work: Path, message: str = "tiny") -> None:
    """Experiments (dvc exp run) start from a commit."""
    run(["git", "add", "-A"], work)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message], work)


def ramp(height: int, width: int, value: int, channels: int = 3) -> np.ndarray:
    """A (height, width, channels) uint8 image of mean ~`value` with a left-to-right ramp of +-10: a photo of one
    colour is dropped as blank, so fixtures that only need "some photo of this brightness" use this."""
    row = np.clip(value + np.linspace(-10, 10, width), 0, 255)
    return np.repeat(np.broadcast_to(row[None, :, None], (height, width, 1)), channels, 2).round().astype(np.uint8)


def write_photos(folder: Path, persons: dict[str, list[float]], domain: str = "korean", size: int = 16) -> pd.DataFrame:
    """Tiny real JPEG files and their manifest rows; pixel brightness grows with age (learnable)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for person, ages in persons.items():
        for k, age in enumerate(ages):
            path = folder / f"{person}_{k}.jpg"
            value = int(min(245, 40 + 2.5 * age))
            Image.fromarray(ramp(size, size, value)).save(path)
            rows.append({"path": str(path), "person_id": person, "age": age, "domain": domain})
    return pd.DataFrame(rows)


def photo(path: Path, value: int = 120) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(ramp(20, 20, value)).save(path)


def megaage(root: Path, n_train: int = 6, n_test: int = 3) -> Path:
    """A MegaAge-Asian layout: train/ and test/ photos with their name and age lists."""
    for split, n in (("train", n_train), ("test", n_test)):
        names = [f"{i + 1}.jpg" for i in range(n)]
        for name in names:
            photo(root / split / name)
        (root / "list").mkdir(parents=True, exist_ok=True)
        (root / "list" / f"{split}_name.txt").write_text("\n".join(names) + "\n")
        (root / "list" / f"{split}_age.txt").write_text("\n".join(str(10 + (3 * i) % 60) for i in range(n)) + "\n")
    return root


def face_photos(folder: Path) -> dict[str, Path]:
    """Real-photo fixtures from skimage's public-domain astronaut (shipped in its wheel, no download): upright,
    rotated 25 degrees, stored sideways with an EXIF orientation (as phones do), a photo with no face, and a
    JPEG cut in half."""
    from skimage.data import astronaut

    folder.mkdir(parents=True, exist_ok=True)
    face = Image.fromarray(astronaut())
    paths = {name: folder / f"{name}.jpg" for name in ("upright", "rotated", "exif", "no_face", "truncated")}
    face.save(paths["upright"], quality=92)
    face.rotate(25, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(128, 128, 128)).save(paths["rotated"])
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the pixels are stored sideways
    face.transpose(Image.Transpose.ROTATE_90).save(paths["exif"], quality=92, exif=exif)
    sky = np.linspace(60, 200, 240 * 320 * 3).reshape(240, 320, 3).astype(np.uint8)  # a smooth gradient
    Image.fromarray(sky).save(paths["no_face"], quality=92)
    data = paths["upright"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    return paths
