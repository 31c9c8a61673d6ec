"""Typed params: one frozen dataclass per params.yaml section, loaded and validated by load_section().

The sections live by topic (config/data.py, config/training.py, EvalConfig here); config/loader.py is the one
loader they all go through. Every accepted key is in params.yaml, every key line there has a comment
(tests/test_config.py checks both). A training phase's section (budget.general, budget.korean, pretrain_vcop)
names only what differs from `optim`; resolve_phases() fills in the rest and `runtime`'s machine settings.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pipeline.config.data import DataConfig, SequenceConfig, SplitConfig, SyntheticConfig
from pipeline.config.loader import (ARCHITECTURES, PARAMS_PATH, REGISTERED_KEYS, REGISTRIES, WEIGHT_KEYS,
                                    WEIGHTS_CHECKS, ConfigError, build, check, flatten, load_from, read_params)
from pipeline.config.seeds import split_seed, train_seed_arg, train_seeds
from pipeline.config.training import (PHASE_SECTIONS, RUNTIME_KEYS, AgeLoss, AgeTrainingConfig, BudgetConfig,
                                      DownstreamConfig, FinetuneKoreanConfig, KoreanPhaseConfig, MultiTrainConfig,
                                      OptimConfig, OptimDefaults, RuntimeConfig, TrainBaselineConfig, TrainConfig,
                                      VCOPConfig, check_phase)

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
    "data": DataConfig, "split_korean": SplitConfig, "build_sequences": SequenceConfig, "runtime": RuntimeConfig,
    "optim": OptimDefaults, "budget": BudgetConfig,
    "pretrain_vcop": VCOPConfig, "train_baseline": TrainBaselineConfig, "finetune_korean": FinetuneKoreanConfig,
    "downstream": DownstreamConfig, "multitrain": MultiTrainConfig, "evaluate": EvalConfig,
}
# every top-level key of params.yaml; a typo such as `trian_baseline` must fail, not be ignored
KNOWN_SECTIONS = ("seed", "train_seeds", *SECTION_TYPES)


def resolve_phases(params: dict[str, Any], path: Path = PARAMS_PATH) -> dict[str, Any]:
    """`params` as the stages see them: each training phase (PHASE_SECTIONS) with the keys it leaves out taken from
    `optim`, and `runtime`'s machine settings added. `optim` and `runtime` are checked first, so a mistake there is
    named there. No YAML anchors: `dvc exp run -S optim.lr=1e-3` changes every phase that does not set its own lr
    (`-S +budget.general.lr=1e-3` gives one phase its own)."""
    defaults = load_from(params, OptimDefaults, "optim", KNOWN_SECTIONS, path)
    try:
        check_phase(defaults)
    except ValueError as err:
        raise ConfigError(f"{path}:optim: {err}") from None
    optim, machine = asdict(defaults), asdict(load_from(params, RuntimeConfig, "runtime", KNOWN_SECTIONS, path))
    resolved = copy.deepcopy(params)
    for phase in PHASE_SECTIONS:
        *parents, name = phase.split(".")
        holder = resolved
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        own = holder.get(name) if isinstance(holder, dict) else None
        if not isinstance(own, dict):
            continue  # absent or not a mapping: build() names the problem when the section loads
        if per_phase := sorted(set(own) & set(RUNTIME_KEYS)):
            raise ConfigError(f"{path}:{phase}.{per_phase[0]}: a machine setting is one for every phase: set "
                              f"runtime.{per_phase[0]} instead")
        holder[name] = {**optim, **machine, **own}
    return resolved


def load_section(cls: type[T], section: str, path: Path = PARAMS_PATH) -> T:
    """Load params.yaml:<section> as `cls`; the top-level `seed` fills a `seed` field the section leaves out, and
    a training phase takes what it leaves out from `optim` and `runtime` (resolve_phases)."""
    return load_from(resolve_phases(read_params(path), path), cls, section, KNOWN_SECTIONS, path)


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
    params = resolve_phases(read_params(path), path)
    loaded = {section: load_from(params, cls, section, KNOWN_SECTIONS, path) for section, cls in SECTION_TYPES.items()}
    starts = {"train_baseline.encoder_weights": loaded["train_baseline"].encoder_weights,
              "pretrain_vcop.encoder_weights": loaded["pretrain_vcop"].encoder_weights,
              "multitrain.age_encoder_weights": loaded["multitrain"].age_encoder_weights}
    if len(set(starts.values())) > 1:  # condition 3 = the same initialisation -> VCOP -> age
        raise ConfigError(f"{path}: the age path of every condition must start from the same weights; got "
                          f"{starts}: set them equal")
    check_test_fracs(loaded["data"], loaded["split_korean"], path)


# sources whose every manifest carries an official test list (split_hint "test"), which split_korean keeps, so the
# role's test share is unused; the synthetic set has one for its general persons only. csv and korean_family carry
# one only when the user's files do, which params alone cannot tell: they are not refused here
OFFICIAL_TEST_SOURCES = {"general": ("synthetic", "megaage_asian", "aaf", "aaf_aligned", "aihub_aging"),
                         "korean": ("megaage_asian", "aaf", "aaf_aligned", "aihub_aging")}
# the value an unused test share keeps (params.yaml's, SplitConfig's korean_test_frac default), as check_unused asks
TEST_FRAC_DEFAULT = 0.25


def check_test_fracs(data: DataConfig, split: SplitConfig, path: Path = PARAMS_PATH) -> None:
    """A test share changed for a role whose source brings its own test list would be silently ignored: refuse it,
    as a key that means nothing in the combination (config.loader.check_unused)."""
    for role in ("general", "korean"):
        key, source = f"{role}_test_frac", getattr(data, role)
        # the Korean role keeps a published list unless split_korean asks to split it by person instead
        kept = role == "general" or getattr(split, "korean_published_split", True)
        if source in OFFICIAL_TEST_SOURCES[role] and kept and getattr(split, key) != TEST_FRAC_DEFAULT:
            raise ConfigError(f"{path}:split_korean.{key}={getattr(split, key)!r} has no effect: data.{role} "
                              f"'{source}' brings its own test list, which is kept; leave it at {TEST_FRAC_DEFAULT}")


__all__ = [
    "ARCHITECTURES", "PARAMS_PATH", "REGISTERED_KEYS", "REGISTRIES", "WEIGHT_KEYS", "WEIGHTS_CHECKS", "ConfigError",
    "build", "flatten", "resolve_phases", "PHASE_SECTIONS", "RUNTIME_KEYS",
    "read_params", "load_section", "load_training", "check_all", "split_seed", "train_seeds", "train_seed_arg",
    "SECTION_TYPES", "KNOWN_SECTIONS", "EvalConfig", "OFFICIAL_TEST_SOURCES", "TEST_FRAC_DEFAULT", "check_test_fracs",
    "DataConfig", "SequenceConfig", "SplitConfig", "SyntheticConfig",
    "AgeLoss", "AgeTrainingConfig", "BudgetConfig", "DownstreamConfig", "FinetuneKoreanConfig", "KoreanPhaseConfig",
    "MultiTrainConfig", "OptimConfig", "OptimDefaults", "RuntimeConfig", "TrainBaselineConfig", "TrainConfig",
    "VCOPConfig",
]
