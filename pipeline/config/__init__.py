"""Typed params: one frozen dataclass per params.yaml section, loaded and validated by load_section().

The sections live by topic (config/data.py, config/training.py, EvalConfig here); config/loader.py is the one
loader they all go through. Every accepted key is in params.yaml with a comment (tests/test_config.py checks it).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from pipeline.config.data import DataConfig, SequenceConfig, SplitConfig, SyntheticConfig
from pipeline.config.loader import (ARCHITECTURES, PARAMS_PATH, REGISTERED_KEYS, REGISTRIES, WEIGHT_KEYS,
                                    WEIGHTS_CHECKS, ConfigError, build, check, flatten, load_from, read_params)
from pipeline.config.seeds import split_seed, train_seed_arg, train_seeds
from pipeline.config.training import (AgeLoss, AgeTrainingConfig, BudgetConfig, DownstreamConfig,
                                      FinetuneKoreanConfig, KoreanPhaseConfig, MultiTrainConfig, OptimConfig,
                                      TrainBaselineConfig, TrainConfig, VCOPConfig)

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Section `evaluate`: the paired bootstrap (a 95 % percentile CI, as report.md and the study print it)."""

    seed: int
    n_bootstrap: int
    batch_size: int = 256  # photos per inference batch
    # each test prediction is the mean of the photo's and its mirror image's (metrics.predict_years); chosen on
    # val (docs/recipe.md)
    mirror_average: bool = True

    def __post_init__(self) -> None:
        check(self.n_bootstrap >= 100, f"n_bootstrap must be >= 100, got {self.n_bootstrap}")


# section -> its dataclass; check_all() loads every one, so a profile or sweep fails before the first stage runs
SECTION_TYPES: dict[str, type] = {
    "data": DataConfig, "split_korean": SplitConfig, "build_sequences": SequenceConfig, "budget": BudgetConfig,
    "pretrain_vcop": VCOPConfig, "train_baseline": TrainBaselineConfig, "finetune_korean": FinetuneKoreanConfig,
    "downstream": DownstreamConfig, "multitrain": MultiTrainConfig, "evaluate": EvalConfig,
}
# every top-level key of params.yaml; a typo such as `trian_baseline` must fail, not be ignored
KNOWN_SECTIONS = ("seed", "train_seeds", *SECTION_TYPES)


def load_section(cls: type[T], section: str, path: Path = PARAMS_PATH) -> T:
    """Load params.yaml:<section> as `cls`; the top-level `seed` fills a `seed` field the section leaves out."""
    return load_from(read_params(path), cls, section, KNOWN_SECTIONS, path)


def load_training(cls: type[T], section: str, argv: list[str] | None = None,
                  path: Path = PARAMS_PATH) -> T:
    """load_section() for a training stage: its `seed` is this run's training seed (--train-seed), which varies
    initialisation, augmentation, batch and tuple order. Splits and data follow the top-level `seed`."""
    seed = train_seed_arg(argv, path)
    return replace(load_section(cls, section, path), seed=seed)


def check_all(path: Path = PARAMS_PATH) -> None:
    """Validate every section of a params file; nested ones (data.synthetic, budget.*) are built with their section,
    and source and encoder names are checked against the registries imported (pipeline.profiles imports both)."""
    train_seeds(path)
    params = read_params(path)
    loaded = {section: load_from(params, cls, section, KNOWN_SECTIONS, path) for section, cls in SECTION_TYPES.items()}
    starts = {"train_baseline.encoder_weights": loaded["train_baseline"].encoder_weights,
              "pretrain_vcop.encoder_weights": loaded["pretrain_vcop"].encoder_weights,
              "multitrain.age_encoder_weights": loaded["multitrain"].age_encoder_weights}
    if len(set(starts.values())) > 1:  # condition 3 = the same initialisation -> VCOP -> age
        raise ConfigError(f"{path}: the age path of every condition must start from the same weights; got "
                          f"{starts}: set them equal")


__all__ = [
    "ARCHITECTURES", "PARAMS_PATH", "REGISTERED_KEYS", "REGISTRIES", "WEIGHT_KEYS", "WEIGHTS_CHECKS", "ConfigError",
    "build", "flatten",
    "read_params", "load_section", "load_training", "check_all", "split_seed", "train_seeds", "train_seed_arg",
    "SECTION_TYPES", "KNOWN_SECTIONS", "EvalConfig",
    "DataConfig", "SequenceConfig", "SplitConfig", "SyntheticConfig",
    "AgeLoss", "AgeTrainingConfig", "BudgetConfig", "DownstreamConfig", "FinetuneKoreanConfig", "KoreanPhaseConfig",
    "MultiTrainConfig", "OptimConfig", "TrainBaselineConfig", "TrainConfig", "VCOPConfig",
]
