"""Predict ages: python -m pipeline.predict --model <condition | path/to/model.pt> <image|folder>... [--out CSV]

The model file alone is enough: it records how its inputs were made (pipeline.faces settings: detector, template,
margin, image size; a model trained on label-landmark crops, `face: landmarks`, is given MTCNN's crop on the same
template) and the ages it was trained on, so predict reads neither the data cache nor params.yaml and
runs from any directory. Each photo goes through the same preprocessing as the training photos (EXIF applied,
then the recorded face settings). One output row per face found; every other outcome is a named row too:

  outcome    meaning
  face       a detected face, aligned like the training photos (box, detector score)
  crop       the photo taken as a face crop (--no-detect, or a model trained with data.face: none)
  no_face    the detector found none: predicted on the centre crop, flagged fallback=center_crop
  not_found, unreadable, truncated, too_small, too_large, blank   the file could not be used (error says why)

Files in a folder that are not photos (by suffix) are skipped and counted in the log; a photo path that is not a
regular file (a FIFO, a device) is `unreadable`, never opened. A file name that is not UTF-8 is written with its
odd bytes escaped (caf\xe9.jpg). --out is checked before any work and again before writing: a folder, a symbolic
link, a device or FIFO (whatever the flags), an unwritable place, or an existing file that is not a table predict
wrote (unless --overwrite) is refused.

Exit status: 0 all photos predicted; 1 some could not be used (see the error column); 2 nothing was predicted and
nothing written: the model file is missing, truncated or not a model file, there are no photos, or --out is
refused; 3 the disk is full; 130 interrupted (Ctrl-C). An unexpected error prints its traceback (exit 1).
"""
from __future__ import annotations

import argparse
import logging
import os
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline import artifacts, metrics, runtime
from pipeline.config import EvalConfig
from pipeline.data.adapters.common import IMAGE_SUFFIXES
from pipeline.data.paths import shown
from pipeline.faces import FaceSettings, PhotoError, PreparedFace, prepare_faces

log = logging.getLogger("pipeline.predict")
COLUMNS = ["path", "face_index", "n_faces", "box_x0", "box_y0", "box_x1", "box_y1", "score", "predicted_age",
           "outcome", "fallback", "warning", "error"]
BLANK = {"fallback": "", "warning": "", "error": ""}  # text columns are empty, not NaN, where nothing applies
# what a path that is not a regular file is, for the message that refuses it (as --out or as a photo)
SPECIAL_FILES = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                 (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                 (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class OutputPathError(ValueError):
    """--out cannot be written (a folder, an unwritable place, a file predict did not write); nothing was done."""


def _special(mode: int) -> str:
    """What a file of this st_mode is when it is not a regular file ("a FIFO (named pipe)", ...); "" for one."""
    return "" if stat.S_ISREG(mode) else next((kind for test, kind in SPECIAL_FILES if test(mode)), "a special file")


def check_out(path: Path, overwrite: bool = False) -> None:
    """Refuse an --out predict cannot or should not write, before any photo is read (and again before writing).

    --out is a regular file or a new name: a symbolic link, a device (/dev/null), a FIFO or a folder is refused
    whatever the flags (the atomic write would replace the link or the device node itself). An existing file is
    replaced only when it is a table predict wrote (its header is COLUMNS: a rerun replaces its own output) or with
    `overwrite`: a typo such as `--out params.yaml` must not destroy a file.
    """
    try:
        mode = os.lstat(path).st_mode  # lstat: a link is judged itself, never through its target
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise OutputPathError(f"--out {path}: cannot be checked ({err.strerror}); choose another --out") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise OutputPathError(f"--out {path} is a folder; choose another --out: a file name, e.g. --out "
                              f"{path / 'predictions.csv'}")
    if mode is not None and (kind := _special(mode)):
        raise OutputPathError(f"--out {path} is {kind}, not a regular file; predict writes only a regular file or a "
                              "new name (even with --overwrite): choose another --out")
    if mode is not None and not overwrite and not _written_by_predict(path):
        raise OutputPathError(f"--out {path} exists and is not a table predict wrote; choose another --out, or add "
                              "--overwrite to replace it")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # the folders predict would create
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"--out {path}: cannot write into {folder}; choose another --out")


def _written_by_predict(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.readline().rstrip(b"\r\n") == ",".join(COLUMNS).encode()
    except OSError:
        return False


def find_images(targets: list[Path]) -> tuple[list[Path], list[Path]]:
    """Image files under the folders, plus each file given (kept even when missing: it gets a not_found row); and
    the other files found in the folders (not photos by their suffix: skipped, counted)."""
    found, skipped = [], []
    for target in targets:
        if target.is_dir():
            for path in sorted(p for p in target.rglob("*") if not p.is_dir()):
                (found if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
        else:
            found.append(target)
    if skipped:
        log.warning("skipped %d file(s) that are not photos (suffix not one of %s), e.g. %s", len(skipped),
                    ", ".join(sorted(IMAGE_SUFFIXES)), ", ".join(p.name for p in skipped[:3]))
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {[str(t) for t in targets]}"
                                f"{f' ({len(skipped)} other file(s) skipped)' if skipped else ''}")
    return found, skipped


def load_model(spec: str) -> tuple[torch.nn.Module, dict, Path]:
    """A condition name (inside the project: its model of the lowest training seed trained,
    models/<stage>/seed<k>/model.pt) or a model file path (from anywhere)."""
    if spec in artifacts.CONDITION_STAGES:
        stage = artifacts.CONDITION_STAGES[spec]
        seeds = artifacts.trained_seeds(stage)
        path = artifacts.model_path(stage, min(seeds) if seeds else 0)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (condition '{spec}', relative to {Path.cwd()}): inside the "
                                    f"project run `dvc repro {stage}`; elsewhere give the file: --model "
                                    "path/to/model.pt")
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} not found; --model takes a condition "
                                    f"({', '.join(artifacts.CONDITIONS)}) inside the project, or a model.pt path")
    payload = artifacts.read_model_file(path)  # ModelFileError for a truncated, corrupt or foreign file
    if artifacts.face_settings_of(payload) is None:
        raise ValueError(f"{path} does not record how its inputs were made (saved before model files did); "
                         "retrain it with `dvc repro`")
    return artifacts.age_model_from(payload, path), payload, path


def _face_fields(face: PreparedFace, index: int) -> dict:
    row = {**BLANK, "face_index": index, "n_faces": face.n_faces, "fallback": face.fallback}
    if face.face_found:
        row.update(zip(["box_x0", "box_y0", "box_x1", "box_y1"], (round(v, 1) for v in face.box)))
        row.update(score=round(face.score, 4), outcome="face")
    else:
        row["outcome"] = "no_face" if face.fallback else "crop"
    return row


@torch.inference_mode()
def predict(model: torch.nn.Module, payload: dict, paths: list[Path], no_detect: bool = False, batch_size: int = 32,
            device: torch.device | None = None,
            mirror_average: bool = EvalConfig.mirror_average) -> pd.DataFrame:
    """One row per face (or per unusable photo, with its outcome), in input order; see the module docstring.
    `mirror_average`: the mean with the mirror image's prediction, by default as evaluate scores (EvalConfig)."""
    device = device or runtime.pick_device()
    # landmarks -> mtcnn: a new photo has no label
    settings = FaceSettings.from_dict(artifacts.face_settings_of(payload)).for_new_photos()
    if no_detect:
        settings = replace(settings, face="none")  # the inputs already are crops: centre square, resized
    low, high = payload.get("age_range", (-np.inf, np.inf))
    detector = settings.detector(device)
    model.to(device).eval()
    rows: list[dict] = []
    bar = tqdm(total=len(paths), desc="predict", unit="photo", disable=None)  # hidden outside a terminal
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        bar.update(len(chunk))
        pixels, face_rows = [], []
        refused = [_not_a_photo_file(path) for path in chunk]  # a FIFO would block the decoder forever
        prepared = iter(prepare_faces([str(p) for p, r in zip(chunk, refused) if r is None], settings, detector))
        for path, result in zip(chunk, (r or next(prepared) for r in refused)):
            if isinstance(result, PhotoError):
                log.error("%s [%s]", result, result.reason)
                rows.append({**BLANK, "path": str(path), "outcome": result.reason, "error": str(result)})
                continue
            for index, face in enumerate(result):
                if face.fallback:
                    log.warning("%s: no face found; predicted on the centre crop (fallback=%s)", path, face.fallback)
                rows.append({"path": str(path), **_face_fields(face, index)})
                face_rows.append(rows[-1])
                pixels.append(face.pixels)
        if pixels:
            ages = metrics.predict_years(model, np.stack(pixels), np.arange(len(pixels)), device, len(pixels),
                                         mirror_average)
            for row, age in zip(face_rows, ages):
                row["predicted_age"] = round(float(age), 2)
                if not low <= age <= high:
                    row["warning"] = f"outside the trained age range {low:g}-{high:g}"
                    log.warning("%s: predicted %.1f years, %s; treat with care", row["path"], age, row["warning"])
    bar.close()
    table = pd.DataFrame(rows, columns=COLUMNS).astype({"face_index": "Int64", "n_faces": "Int64"})
    for column in ("path", "warning", "error"):  # a name that is not UTF-8 (b"caf\xe9.jpg") shows as caf\xe9.jpg
        table[column] = table[column].map(shown)
    return table


def _not_a_photo_file(path: Path) -> PhotoError | None:
    """A path that exists but is not a regular file (a FIFO, a device, a socket): refused before anything opens it.
    A missing or unreadable file is left to the decoder, which names it."""
    try:
        kind = _special(os.stat(path).st_mode)  # stat follows a link to its target: a link to a photo is fine
    except OSError:
        return None
    return PhotoError(path, "unreadable", f"{kind}, not a regular file; skipped: give photo files") if kind else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="CONDITION|MODEL.pt",
                        help=f"a condition inside the project ({', '.join(artifacts.CONDITIONS)}) or a model file")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"),
                        help="the CSV to write; an existing file predict did not write needs --overwrite")
    parser.add_argument("--overwrite", action="store_true", help="replace --out whatever it holds")
    parser.add_argument("--no-detect", action="store_true", help="the photos already are face crops: no detector")
    parser.add_argument("--batch-size", type=int, default=32, help="photos per detector and model batch")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--no-mirror", action="store_true",
                        help="predict on the photo alone, not the mean with its mirror image (evaluate's "
                             "evaluate.mirror_average)")
    parser.add_argument("targets", nargs="+", type=Path, help="image files or folders (searched recursively)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu or auto")
    device = runtime.pick_device() if args.device == "auto" else torch.device(args.device)
    try:
        check_out(args.out, args.overwrite)
        model, payload, path = load_model(args.model)
        paths, skipped = find_images(args.targets)
    except (FileNotFoundError, ValueError) as err:  # OutputPathError, ModelFileError: named, nothing done
        log.error("%s", err)
        return runtime.EXIT_INPUT
    trained = FaceSettings.from_dict(artifacts.face_settings_of(payload))
    settings = trained.for_new_photos()
    log.info("model %s: %s, face %s%s, %d px%s, trained on ages %s", path, payload["encoder"], settings.face,
             f" (trained on {trained.face}: the same template and margin)" if trained != settings else "",
             settings.image_size, " (--no-detect)" if args.no_detect else "", payload.get("age_range", "unknown"))
    table = predict(model, payload, paths, args.no_detect, args.batch_size, device,
                    EvalConfig.mirror_average and not args.no_mirror)
    check_out(args.out, args.overwrite)  # again: --out may have become a link or a device while photos were read
    runtime.write_csv(args.out, table)  # atomic: a failed write leaves the previous file, never half of one
    print(table.to_string(index=False))
    log.info("wrote %s (%d rows for %d photos; %d file(s) that are not photos skipped)", args.out, len(table),
             len(paths), len(skipped))
    return 1 if table["error"].astype(bool).any() else 0


if __name__ == "__main__":
    runtime.entry_point(main, "predict")
