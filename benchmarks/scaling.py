"""How one training epoch's time grows with the data: photos (1x/2x/4x) for age, tuple_len 3/4/5 for VCOP.

Run after `dvc repro split_korean`:  python benchmarks/scaling.py [--photos 256] [--tuples 64]
Each point is one epoch of the real step functions (age_step / vcop_step, AdamW, the model's own augmentation)
after a warm-up batch; the ratios are to the smallest setting. Linear growth in photos means no per-epoch
fixed cost hides in the loop; VCOP grows with the photos per tuple (T) and the pairwise head (T(T-1)/2 pairs,
T! classes).
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import steps, train
from pipeline.data import loaders
from pipeline.data.cache import open_images
from pipeline.models import AgeRegressor, VCOPModel, build_encoder

CPU = torch.device("cpu")


def epoch_seconds(model: torch.nn.Module, loader: loaders.EpochLoader, step: steps.Step) -> float:
    train.to_channels_last(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0e-4)
    warm = next(iter(loader.epoch(0)))
    step(model, warm)[0].backward()  # first-call allocations stay out of the timing
    opt.zero_grad()
    start = time.perf_counter()
    for batch in loader.epoch(1):
        loss, _ = step(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--photos", type=int, default=256, help="the 1x size of the age epoch")
    parser.add_argument("--tuples", type=int, default=64, help="tuples per VCOP epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    images = open_images(Path("data/cache"))
    table = pd.read_csv("data/splits/general_train.csv", dtype={"person_id": str})
    print(f"{args.encoder}, {images.shape[1]} px, batch {args.batch_size}, {torch.get_num_threads()} threads")

    print("age regression: one epoch vs photos")
    base = None
    for factor in (1, 2, 4):
        n = args.photos * factor
        if n > len(table):
            print(f"  {factor}x ({n} photos): only {len(table)} general train photos; skipped")
            continue
        torch.manual_seed(0)
        loader = loaders.make_loader(loaders.photo_dataset(images, table.iloc[:n]), args.batch_size, True, 0, CPU)
        seconds = epoch_seconds(AgeRegressor(build_encoder(args.encoder)), loader, steps.age_step)
        base = base or seconds / factor
        print(f"  {factor}x {n:5d} photos  {seconds:6.2f} s  {n / seconds:6.0f} photos/s  "
              f"time ratio {seconds / base:4.2f} (linear: {factor})")

    print("VCOP pretext: one epoch vs tuple length")
    rng = np.random.default_rng(0)
    base = None
    for tuple_len in (3, 4, 5):
        rows = np.sort(rng.choice(len(images), size=(args.tuples, tuple_len)), axis=1)  # timing only
        dataset = loaders.TupleBatches(images, rows)
        loader = loaders.make_loader(dataset, args.batch_size, True, 0, CPU)
        torch.manual_seed(0)
        seconds = epoch_seconds(VCOPModel(build_encoder(args.encoder), tuple_len, 512), loader, steps.vcop_step)
        base = base or seconds / tuple_len * 3
        print(f"  T={tuple_len} ({math.factorial(tuple_len):3d} classes, {tuple_len * (tuple_len - 1) // 2:2d} pairs)"
              f"  {seconds:6.2f} s  {args.tuples * tuple_len / seconds:6.0f} photos/s  time ratio "
              f"{seconds / base:4.2f} (photos ratio {tuple_len / 3:4.2f})")


if __name__ == "__main__":
    main()
