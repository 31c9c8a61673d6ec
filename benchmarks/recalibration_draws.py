"""How much the BatchNorm statistics a recalibration draws move a finished model's Korean val and test MAE.

    python benchmarks/recalibration_draws.py                       # every condition and seed of the last run
    python benchmarks/recalibration_draws.py --stages finetune_korean --seeds 0 1 --draws 5 --batches 20 45

Each finished model (models/<stage>/seed<K>/model.pt) is recalibrated `--draws` times over one pass of its Korean
phase's training batches and over each `--batches` count, drawn in other epochs' orders (as
pipeline.batchnorm.batches_from draws them), and scored on the Korean val and test splits. A std over draws that
is large next to the seed std means the statistics, not the weights, decide a model's score: with 16 labelled
persons (`split_korean.label_frac: 0.1`) one pass is 4 batches. The draws pass age batches only, as every
condition's own recalibration does (multitrain's too, since its VCOP tuples were dropped from it).
"""
from __future__ import annotations

import argparse
import copy

import numpy as np
import torch

from pipeline import artifacts, batchnorm, config, metrics, steps
from pipeline.artifacts import CONDITION_STAGES
from pipeline.data.cache import open_images
from pipeline.data.loaders import read_split
from pipeline.layout import CACHE, model_path, split_path
from pipeline.phases import age_loaders

FIRST_EPOCH = 9  # draws start at the default Korean phase's last epoch, then step by DRAW_STRIDE epochs
DRAW_STRIDE = 50
SPLITS = ("korean_val", "korean_test")


def korean_maes(model: torch.nn.Module, images: np.ndarray, splits: dict) -> list[float]:
    device = torch.device("cpu")
    return [metrics.age_metrics(metrics.predict_years(model, images, t["cache_row"].to_numpy(), device),
                                t["age"].to_numpy())["mae"] for t in splits.values()]


def draws(model: torch.nn.Module, loaders, n_batches: int, n_draws: int, images: np.ndarray,
          splits: dict) -> np.ndarray:
    """(n_draws, 2): val and test MAE after each recalibration of a copy of `model` over `n_batches`."""
    rows = []
    for draw in range(n_draws):
        torch.manual_seed(draw)  # the model's augmentation draws from the global RNG: seeded, a rerun repeats it
        probe = copy.deepcopy(model)
        source = batchnorm.batches_from(loaders.train.epoch, FIRST_EPOCH + DRAW_STRIDE * draw)
        batchnorm.recalibrate(probe, source, steps.age_step, n_batches)
        rows.append(korean_maes(probe, images, splits))
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", default=[s for c, s in CONDITION_STAGES.items() if c != "baseline"])
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default: params.yaml:train_seeds")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[20, 45], help="batch counts beside one pass")
    args = parser.parse_args()
    torch.set_num_threads(2)
    budget = config.load_section(config.BudgetConfig, "budget")
    seeds = args.seeds if args.seeds is not None else config.train_seeds()
    images = open_images(CACHE)
    splits = {name: read_split(split_path(name)) for name in SPLITS}
    for stage in args.stages:
        for seed in seeds:
            path = model_path(stage, seed)
            if not path.exists():
                raise SystemExit(f"{path} is missing: run `dvc repro` (or the stage) first")
            model, _ = artifacts.load_age_model(path)
            cfg = budget.phase("korean", seed)
            loaders = age_loaders(images, "korean", cfg, torch.device("cpu"), budget.korean.general_mix)
            saved = korean_maes(model, images, splits)
            parts = [f"{stage} seed {seed}: saved val {saved[0]:.2f} test {saved[1]:.2f}"]
            for n in [len(loaders.train), *args.batches]:
                rows = draws(model, loaders, n, args.draws, images, splits)
                parts.append(f"{n} batches: val {rows[:, 0].mean():.2f} ± {rows[:, 0].std(ddof=1):.2f}, "
                             f"test {rows[:, 1].mean():.2f} ± {rows[:, 1].std(ddof=1):.2f}")
            print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
