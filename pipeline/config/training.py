"""The training stages' sections: the shared `budget`, `pretrain_vcop`, and the four age conditions' stages."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Literal

from pipeline.config.loader import ARCHITECTURES, check, check_unused

# the age loss of every age-training stage (pipeline.steps.age_step); on interval ages (age bands) l1 and smooth_l1 take
# the distance to the interval, l1_midpoint the L1 to its midpoint (on exact ages the same as l1)
AgeLoss = Literal["l1", "smooth_l1", "l1_midpoint"]


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    """Section `runtime`: how every training phase uses the machine (one switch each, never per phase)."""

    amp: bool = True  # only takes effect on CUDA
    num_workers: int = 0  # batches are sliced from a memmap: workers rarely pay on 2 cores
    # resumable state (model + AdamW, ~3x the model) is written at most this often and after the last epoch:
    # writing it every epoch cost ~19% of a short epoch on 2 cores (benchmarks/train_overhead.py)
    checkpoint_every_s: float = 120.0

    def __post_init__(self) -> None:
        check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        check(self.checkpoint_every_s >= 0, f"checkpoint_every_s must be >= 0 (0 = every epoch), got "
              f"{self.checkpoint_every_s}")


@dataclass(frozen=True, kw_only=True)
class OptimDefaults:
    """Section `optim`: the optimisation every training phase runs unless its own section sets a key (a phase
    always sets its `epochs`: they are its budget)."""

    batch_size: int
    lr: float
    weight_decay: float = 1.0e-4
    warmup_epochs: float = 0.5
    grad_clip: float = 5.0
    patience: int = 0  # stop after this many epochs without a better val metric; 0 = never
    ema_decay: float = 0.0  # > 0: validate, select and return an EMA of the weights with this decay per step
    # > 0: before each val pass, BatchNorm statistics are recomputed over this many training batches
    # (pipeline.batchnorm), so val scores, and selection keeps, the weights as trained
    bn_recalibration: int = 20
    # > 0: the phase returns the epoch average, the average of the weights after each of its last swa_epochs epochs
    # (all of them in a shorter phase; BatchNorm recomputed over one training pass), instead of its best epoch on
    # val (pipeline.averaging.EpochAverage)
    swa_epochs: int = 3
    # with swa_epochs > 0 a single epoch's val pass is only recorded (the epoch average is scored and returned), so
    # val_every n records every n-th epoch's (1: all) and 0 none: each skipped pass saves its BatchNorm
    # recalibration and val batches, and the trained weights are the same bytes. Without swa_epochs every epoch
    # is scored whatever this says (best-epoch selection and early stopping read it), so a phase loaded from
    # params.yaml refuses val_every > 0 there (check_phase).
    val_every: int = 0

    def __post_init__(self) -> None:
        check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        check(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        check(self.patience >= 0, f"patience must be >= 0, got {self.patience}")
        check(self.ema_decay == 0 or 0.5 <= self.ema_decay < 1, f"ema_decay must be 0 (off) or in [0.5, 1), got "
              f"{self.ema_decay}")
        check(self.bn_recalibration >= 0, f"bn_recalibration must be >= 0 (0 = off), got {self.bn_recalibration}")
        check(self.swa_epochs >= 0, f"swa_epochs must be >= 0 (0 = off), got {self.swa_epochs}")
        check(self.val_every >= 0, f"val_every must be >= 0 (0 = only the scored passes), got {self.val_every}")
        check(not (self.swa_epochs and self.ema_decay), "swa_epochs and ema_decay are two ways to average the "
              "weights: set one of them to 0")
        check(not (self.swa_epochs and self.patience), "swa_epochs averages the last epochs, which early stopping "
              "(patience) would skip: set one of them to 0")


@dataclass(frozen=True, kw_only=True)
class OptimConfig(OptimDefaults, RuntimeConfig):
    """Optimisation of one training phase (a `budget` phase, or pretrain_vcop's own): `optim` with the phase's own
    keys over it, plus `runtime`."""

    epochs: int

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        OptimDefaults.__post_init__(self)
        RuntimeConfig.__post_init__(self)


def check_phase(phase: OptimDefaults, prefix: str = "") -> None:
    """What a phase loaded from params.yaml must satisfy beyond its ranges (fit() accepts the combination: with
    swa_epochs 0 it scores every epoch anyway, and the training tests rely on that)."""
    check(not (phase.val_every and not phase.swa_epochs), f"{prefix}val_every={phase.val_every} has no effect "
          "with swa_epochs 0 (every epoch is then scored); set val_every: 0 or swa_epochs > 0")


# a training phase's section -> the class it loads as; its keys absent there come from `optim`, and `runtime` is
# added (config.resolve_phases)
PHASE_SECTIONS = ("budget.general", "budget.korean", "pretrain_vcop")
RUNTIME_KEYS = tuple(f.name for f in fields(RuntimeConfig))


@dataclass(frozen=True, kw_only=True)
class TrainConfig(OptimConfig):
    """What fit() runs: one phase's optimisation plus the seed of its shuffles and initialisation."""

    seed: int


@dataclass(frozen=True, kw_only=True)
class KoreanPhaseConfig(OptimConfig):
    """`budget.korean`: the Korean phase's optimisation, plus what keeps the general domain in it."""

    # share of each Korean training batch drawn from general *training* photos (against forgetting); an epoch
    # is still one pass over the Korean labelled photos, so a share m takes 1/(1-m) times the steps. Tuned
    # (chosen on validation, docs/recipe.md), so params.yaml must say it: no code default
    general_mix: float

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0 <= self.general_mix < 0.9, f"general_mix must be in [0, 0.9), got {self.general_mix}")


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """Section `budget`: the labelled-training budget shared by every age condition (fair comparison)."""

    general: OptimConfig
    korean: KoreanPhaseConfig
    # a phase that starts from trained weights (fine-tuning) scores them on val as epoch 0 and keeps them when no
    # epoch beats them, so it never returns weights worse on val than it started with
    select_start: bool = True

    def __post_init__(self) -> None:
        check_phase(self.general, "general.")
        check_phase(self.korean, "korean.")

    def phase(self, name: Literal["general", "korean"], seed: int) -> TrainConfig:
        optim = {f.name for f in fields(OptimConfig)}
        return TrainConfig(seed=seed, **{k: v for k, v in asdict(getattr(self, name)).items() if k in optim})


@dataclass(frozen=True, kw_only=True)
class VCOPConfig(TrainConfig):
    """Section `pretrain_vcop`: the pretext task."""

    encoder: str
    encoder_weights: str  # none | imagenet | path to a state dict: the same as train_baseline's
    head_hidden: int = 512  # the pairwise head's hidden width
    dropout: float = 0.5  # in the pairwise head
    # what of the photograph the tuples show (pipeline.data.photo_control): none, or a control that takes the
    # face (mask_face) or the print's colour, exposure and grain (normalise) away
    photo_control: Literal["none", "mask_face", "normalise"] = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_phase(self)


@dataclass(frozen=True, kw_only=True)
class AgeTrainingConfig:
    """What every age-training stage shares: its seed, its loss and a scale on the budget's lr."""

    seed: int
    loss: AgeLoss = "l1"
    lr_scale: float = 1.0  # multiplies the budget's lr (e.g. gentler fine-tuning)

    def __post_init__(self) -> None:
        check(self.lr_scale > 0, f"lr_scale must be > 0, got {self.lr_scale}")


@dataclass(frozen=True, kw_only=True)
class TrainBaselineConfig(AgeTrainingConfig):
    """Section `train_baseline`: an age regressor on the general set, from `encoder_weights`."""

    encoder: str
    encoder_weights: str  # none | imagenet | path to a local state dict (docs/recipe.md)


@dataclass(frozen=True, kw_only=True)
class FinetuneKoreanConfig(AgeTrainingConfig):
    """Section `finetune_korean`: train_baseline's model (its encoder included) fine-tuned on Korean labels."""


@dataclass(frozen=True, kw_only=True)
class DownstreamConfig(AgeTrainingConfig):
    """Section `downstream`: the VCOP-pretrained encoder trained for age under `protocol`."""

    encoder: str = ""  # empty: pretrain_vcop's encoder; set, it must match it
    protocol: Literal["general_then_korean", "korean_only", "linear_probe"] = "general_then_korean"


@dataclass(frozen=True, kw_only=True)
class MultiTrainConfig(AgeTrainingConfig):
    """Section `multitrain`: a VCOP encoder and an age encoder of different architectures, coupled."""

    age_encoder: str
    vcop_encoder: str
    age_encoder_weights: str  # the same as train_baseline's and pretrain_vcop's encoder_weights
    vcop_encoder_weights: str = "none"
    coupling: Literal["shared_head", "distill", "rank", "none"]
    vcop_weight: float
    # a default only so that check_unused can tell when it is changed beside coupling `none` (params.yaml's)
    coupling_weight: float = 0.25
    tuple_batch_size: int  # VCOP tuples paired with every labelled age batch
    rank_margin_years: float = 1.0  # the `rank` coupling's margin between ages of a tuple's neighbours
    head_hidden: int = 512  # VCOP head, as in pretrain_vcop
    dropout: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("vcop_weight", "coupling_weight"):  # .inf or .nan would make every training loss non-finite
            check(math.isfinite(getattr(self, name)) and getattr(self, name) >= 0, f"{name} must be a finite number "
                  f">= 0, got {getattr(self, name)}")
        check(self.tuple_batch_size >= 2, f"tuple_batch_size must be >= 2, got {self.tuple_batch_size}")
        architecture = ARCHITECTURES.get("encoder", str)  # pipeline.models registers it; else names are compared
        check(architecture(self.age_encoder) != architecture(self.vcop_encoder), "age_encoder and vcop_encoder must "
              f"be different architectures ('{self.age_encoder}' and '{self.vcop_encoder}' are both "
              f"{architecture(self.age_encoder)}); the same-architecture case is `downstream`")
        if self.coupling == "none":
            check_unused(self, ["coupling_weight"], "with coupling 'none' (there is no coupling loss)")
        if self.coupling != "rank":
            check_unused(self, ["rank_margin_years"], f"with coupling '{self.coupling}' (it is the rank "
                         "coupling's margin)")
