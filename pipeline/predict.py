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
  not_found, unreadable, truncated, too_small   the file could not be used (error says why); no age

Exit status: 0 all photos predicted, 1 some could not be used, 2 nothing to do (bad model or no photos).
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline import artifacts, evaluate, runtime
from pipeline.data.adapters.common import IMAGE_SUFFIXES
from pipeline.faces import FaceSettings, PhotoError, PreparedFace, prepare_faces

log = logging.getLogger("pipeline.predict")
COLUMNS = ["path", "face_index", "n_faces", "box_x0", "box_y0", "box_x1", "box_y1", "score", "predicted_age",
           "outcome", "fallback", "warning", "error"]
BLANK = {"fallback": "", "warning": "", "error": ""}  # text columns are empty, not NaN, where nothing applies


def find_images(targets: list[Path]) -> list[Path]:
    """Image files under the folders, plus each file given (kept even when missing: it gets a not_found row)."""
    found = []
    for target in targets:
        if target.is_dir():
            found += sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(target)
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {[str(t) for t in targets]}")
    return found


def load_model(spec: str) -> tuple[torch.nn.Module, dict, Path]:
    """A condition name (its models/<stage>/model.pt, inside the project) or a model file path (from anywhere)."""
    if spec in artifacts.CONDITION_STAGES:
        stage = artifacts.CONDITION_STAGES[spec]
        path = artifacts.model_path(stage)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (condition '{spec}', relative to {Path.cwd()}): inside the "
                                    f"project run `dvc repro {stage}`; elsewhere give the file: --model "
                                    "path/to/model.pt")
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} not found; --model takes a condition "
                                    f"({', '.join(artifacts.CONDITIONS)}) inside the project, or a model.pt path")
    payload = artifacts.read_model_file(path)
    if "preprocess" not in payload:
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
            device: torch.device | None = None) -> pd.DataFrame:
    """One row per face (or per unusable photo, with its outcome), in input order; see the module docstring."""
    device = device or runtime.pick_device()
    settings = FaceSettings.from_dict(payload["preprocess"]).for_new_photos()  # landmarks -> mtcnn: no label here
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
        for path, result in zip(chunk, prepare_faces([str(p) for p in chunk], settings, detector)):
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
            ages = evaluate.predict_years(model, np.stack(pixels), np.arange(len(pixels)), device, len(pixels))
            for row, age in zip(face_rows, ages):
                row["predicted_age"] = round(float(age), 2)
                if not low <= age <= high:
                    row["warning"] = f"outside the trained age range {low:g}-{high:g}"
                    log.warning("%s: predicted %.1f years, %s; treat with care", row["path"], age, row["warning"])
    bar.close()
    return pd.DataFrame(rows, columns=COLUMNS).astype({"face_index": "Int64", "n_faces": "Int64"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, metavar="CONDITION|MODEL.pt",
                        help=f"a condition inside the project ({', '.join(artifacts.CONDITIONS)}) or a model file")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"))
    parser.add_argument("--no-detect", action="store_true", help="the photos already are face crops: no detector")
    parser.add_argument("--batch-size", type=int, default=32, help="photos per detector and model batch")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("targets", nargs="+", type=Path, help="image files or folders (searched recursively)")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here; use --device cpu or auto")
    device = runtime.pick_device() if args.device == "auto" else torch.device(args.device)
    try:
        model, payload, path = load_model(args.model)
        paths = find_images(args.targets)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    trained = FaceSettings.from_dict(payload["preprocess"])
    settings = trained.for_new_photos()
    log.info("model %s: %s, face %s%s, %d px%s, trained on ages %s", path, payload["encoder"], settings.face,
             f" (trained on {trained.face}: the same template and margin)" if trained != settings else "",
             settings.image_size, " (--no-detect)" if args.no_detect else "", payload.get("age_range", "unknown"))
    table = predict(model, payload, paths, args.no_detect, args.batch_size, device)
    runtime.write_csv(args.out, table)
    print(table.to_string(index=False))
    log.info("wrote %s (%d rows for %d photos)", args.out, len(table), len(paths))
    return 1 if table["error"].astype(bool).any() else 0


if __name__ == "__main__":
    sys.exit(main())
