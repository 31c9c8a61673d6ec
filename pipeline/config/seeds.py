"""The two top-level seed keys: `seed` (splits, tuples, bootstrap) and `train_seeds` (one run per training seed)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config.loader import PARAMS_PATH, SEED_MAX, ConfigError, _type_ok, check_seed, read_params


def split_seed(path: Path = PARAMS_PATH) -> int:
    """The top-level `seed`: splits, VCOP tuples and the val tuples' shuffles, the bootstrap; never training."""
    seed = read_params(path).get("seed")
    check_seed(seed, f"{path}:seed")
    return seed


def train_seeds(path: Path = PARAMS_PATH) -> list[int]:
    """`train_seeds`: every training stage runs once per seed (dvc.yaml `foreach`), on the same split."""
    seeds = read_params(path).get("train_seeds")
    if not (isinstance(seeds, list) and seeds and all(_type_ok(s, int) and 0 <= s <= SEED_MAX for s in seeds)):
        raise ConfigError(f"{path}:train_seeds: expected a non-empty list of integers >= 0 and <= 2**32 - 1 (the "
                          f"seeds numpy takes), e.g. [0, 1, 2]; got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{path}:train_seeds: {seeds} lists a seed twice; list each training seed once")
    return list(seeds)


def train_seed_arg(argv: list[str] | None = None, path: Path = PARAMS_PATH) -> int:
    """The `--train-seed K` a training stage's dvc.yaml cmd passes (its one argument), checked against
    train_seeds: a run outside that list would never be evaluated."""
    parser = argparse.ArgumentParser(description="a training stage: one run per params.yaml:train_seeds entry")
    parser.add_argument("--train-seed", type=int, required=True,
                        help="this run's training seed, one of params.yaml:train_seeds (dvc repro passes it)")
    seed = parser.parse_args(argv).train_seed
    if seed not in (known := train_seeds(path)):
        raise ConfigError(f"--train-seed {seed} is not in {path}:train_seeds {known}; add it there (dvc repro "
                          "then trains it) or pass one of those")
    return seed
