"""Every finished model scored on its own photos and on the mean with their mirror images, val first.

    python benchmarks/mirror_average.py            # this project's last `dvc repro` (models/, data/)
    python benchmarks/mirror_average.py --seeds 0 1

Training flips photos left-right, so a photo's mirror image is a face the model knows; averaging the two
predictions (evaluate.mirror_average) costs one more forward pass per photo at test time and nothing in training.
Prints per condition the seed-mean MAE on Korean val and general val (where the choice is made) and on the
Korean test split (reported only), each plain -> averaged, and the seed std of the Korean test MAE both ways.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from pipeline import artifacts, config, metrics
from pipeline.artifacts import CONDITION_STAGES
from pipeline.data.cache import open_images
from pipeline.data.loaders import read_split
from pipeline.layout import CACHE, model_path, split_path

SPLITS = ("korean_val", "general_val", "korean_test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="training seeds (default train_seeds)")
    args = parser.parse_args()
    seeds = args.seeds or config.train_seeds()
    images, device = open_images(CACHE), torch.device("cpu")
    tables = {name: read_split(split_path(name)) for name in SPLITS}
    print(f"{'condition':16s} " + "   ".join(f"{name}: plain -> mirror-averaged" for name in SPLITS)
          + "   korean_test seed std")
    for condition, stage in CONDITION_STAGES.items():
        maes = np.zeros((len(seeds), len(SPLITS), 2))
        for i, seed in enumerate(seeds):
            model, _ = artifacts.load_age_model(model_path(stage, seed), needed_by="mirror_average")
            for j, name in enumerate(SPLITS):
                rows, ages = tables[name]["cache_row"].to_numpy(), tables[name]["age"].to_numpy()
                for k, mirror in enumerate((False, True)):
                    predicted = metrics.predict_years(model, images, rows, device, mirror_average=mirror)
                    maes[i, j, k] = np.abs(predicted - ages).mean()
        mean, std = maes.mean(0), maes[:, -1].std(0, ddof=1) if len(seeds) > 1 else np.zeros(2)
        print(f"{condition:16s} " + "   ".join(f"{mean[j, 0]:.3f} -> {mean[j, 1]:.3f}" for j in range(len(SPLITS)))
              + f"   {std[0]:.3f} -> {std[1]:.3f}")


if __name__ == "__main__":
    main()
