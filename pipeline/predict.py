"""Predict ages of photos with a trained condition: python -m pipeline.predict --model baseline <image|folder>..."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import artifacts, phases, runtime
from pipeline.data.adapters.common import IMAGE_SUFFIXES
from pipeline.data.cache import ImageError, load_rgb
from pipeline.models.tasks import to_years

log = logging.getLogger("pipeline.predict")


def find_images(targets: list[Path]) -> list[Path]:
    found = []
    for target in targets:
        if target.is_dir():
            found += sorted(p for p in target.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif target.exists():
            found.append(target)
        else:
            raise FileNotFoundError(f"{target} not found; give image files or folders of images")
    if not found:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {[str(t) for t in targets]}")
    return found


def trained_range() -> tuple[float, float]:
    ages = pd.read_csv(phases.CACHE / "index.csv", usecols=["age"])["age"]
    return float(ages.min()), float(ages.max())


@torch.inference_mode()
def predict(condition: str, targets: list[Path], out: Path) -> pd.DataFrame:
    if condition not in artifacts.CONDITION_STAGES:
        raise ValueError(f"unknown condition '{condition}'; one of {list(artifacts.CONDITION_STAGES)}")
    model, _ = artifacts.load_age_model(artifacts.model_path(artifacts.CONDITION_STAGES[condition]), "predict")
    size = int(runtime.read_json(phases.CACHE / "meta.json")["image_size"])  # the resolution it was trained at
    device = runtime.pick_device()
    model.to(device).eval()
    low, high = trained_range()
    rows = []
    for path in find_images(targets):
        try:
            pixels = load_rgb(path, size)
        except ImageError as err:
            log.error("%s: skipped", err)
            rows.append({"path": str(path), "predicted_age": np.nan, "error": str(err)})
            continue
        batch = torch.from_numpy(pixels).permute(2, 0, 1)[None].to(device)
        age = float(to_years(model(batch).float())[0])
        if not low <= age <= high:
            log.warning("%s: predicted %.1f years, outside the trained range %.0f-%.0f; treat with care",
                        path, age, low, high)
        rows.append({"path": str(path), "predicted_age": round(age, 2), "error": ""})
    table = pd.DataFrame(rows)
    runtime.write_csv(out, table)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, choices=list(artifacts.CONDITION_STAGES))
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"))
    parser.add_argument("targets", nargs="+", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    try:
        table = predict(args.model, args.targets, args.out)
    except (FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    print(table.to_string(index=False))
    log.info("wrote %s", args.out)
    return 1 if table["error"].astype(bool).any() else 0


if __name__ == "__main__":
    sys.exit(main())
