"""Images/second of three loaders over the same general-train photos, measured side by side in one run.

  naive   : PIL decode + torchvision transforms per photo, every epoch (what a bare script does)
  cached  : our loader: batch slices of the uint8 memmap + on-device tensor augmentation (InputTransform)
  loader  : our loader alone (DataLoader, sampler, one fancy-index read per batch), no augmentation
  raw     : the same shuffled fancy-index reads in a bare Python loop: the limit for any loader of this cache

Augmentation runs on the training device as part of the model's forward (on CUDA it is GPU work), so the
data path proper is `loader`, compared with `raw`; `cached` shows what augmentation adds on the CPU.

Run after `dvc repro split_korean`:  python benchmarks/data_loading.py [--epochs 2]
"""
import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from pipeline.data import loaders
from pipeline.models.input_transform import InputTransform
from pipeline.data.cache import open_images


class NaiveDataset(Dataset):
    def __init__(self, paths: list[str], ages: list[float], size: int):
        self.paths, self.ages = paths, ages
        self.transform = v2.Compose([v2.ToImage(), v2.Resize((size, size), antialias=True),
                                     v2.RandomHorizontalFlip(), v2.RandomAffine(8, (0.06, 0.06), (0.92, 1.08)),
                                     v2.ColorJitter(0.15, 0.15), v2.ToDtype(torch.float32, scale=True),
                                     v2.Normalize([0.5] * 3, [0.25] * 3)])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB")), torch.tensor(self.ages[i])


def rate(batches, epochs: int, n: int, after=lambda x: x) -> float:
    start = time.perf_counter()
    for _ in range(epochs):
        for images, _ in batches():
            after(images)
    return epochs * n / (time.perf_counter() - start)


def raw_batches(images, table: pd.DataFrame, batch_size: int):
    rows = table["cache_row"].to_numpy()[np.random.default_rng(0).permutation(len(table))]
    ages = table["age"].to_numpy(np.float32)
    for i in range(0, len(rows), batch_size):
        part = rows[i:i + batch_size]
        yield torch.from_numpy(images[part]).permute(0, 3, 1, 2), torch.from_numpy(ages[:len(part)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    table = pd.read_csv("data/splits/general_train.csv", dtype={"person_id": str})
    images = open_images(Path("data/cache"))
    cpu = torch.device("cpu")
    n = len(table)
    naive = DataLoader(NaiveDataset(table["path"].tolist(), table["age"].tolist(), images.shape[1]),
                       batch_size=args.batch_size, shuffle=True, num_workers=0)
    cached = loaders.make_loader(loaders.photo_dataset(images, table), args.batch_size, True, 0, cpu)
    transform = InputTransform(augment=True).train()
    results = {
        "naive (PIL decode + v2 transforms)": rate(lambda: naive, args.epochs, n),
        "cached (memmap + tensor augmentation)": rate(lambda: cached.epoch(0), args.epochs, n, transform),
        "loader without augmentation": rate(lambda: cached.epoch(0), args.epochs, n),
        "raw fancy-index reads (no loader)": rate(lambda: raw_batches(images, table, args.batch_size),
                                                  args.epochs, n),
    }
    print(f"{n} photos x {args.epochs} epochs, batch {args.batch_size}, {torch.get_num_threads()} threads")
    for name, value in results.items():
        print(f"  {name:40s} {value:9.0f} images/s")
    cached_rate = results["cached (memmap + tensor augmentation)"]
    print(f"cached / naive = {cached_rate / results['naive (PIL decode + v2 transforms)']:.1f}x   "
          f"raw / loader = {results['raw fancy-index reads (no loader)'] / results['loader without augmentation']:.2f}x"
          f"   loader / cached = {results['loader without augmentation'] / cached_rate:.1f}x")


if __name__ == "__main__":
    main()
