"""Typed params: one frozen dataclass per params.yaml section, loaded and validated by load_section()."""
from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

PARAMS_PATH = Path("params.yaml")
# every top-level key of params.yaml; a typo such as `trian_baseline` must fail, not be ignored
KNOWN_SECTIONS = ("seed", "data", "split_korean", "build_sequences", "budget", "pretrain_vcop",
                  "train_baseline", "finetune_korean", "downstream", "multitrain", "evaluate")
T = TypeVar("T")


class ConfigError(ValueError):
    """A params.yaml problem; the message names the full key path and how to fix it."""


def _type_ok(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Literal:
        return value in get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in get_args(hint))
    if origin in (list, tuple):
        (item,) = get_args(hint)[:1] or (Any,)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is float:  # an int is fine for a float; a bool is not a number
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _nested_class(hint: Any) -> type | None:
    """The dataclass a nested section is built as (`SyntheticConfig | None` -> SyntheticConfig), else None."""
    for candidate in (hint, *get_args(hint)):
        if isinstance(candidate, type) and is_dataclass(candidate):
            return candidate
    return None


def _hint_name(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(hint))
    return getattr(hint, "__name__", str(hint))


def build(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping, naming `where` (e.g. params.yaml:multitrain) in every error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints, allowed = get_type_hints(cls), {f.name for f in fields(cls)}
    if unknown := sorted(set(data) - allowed):
        prefix = where.split(":", 1)[-1]
        raise ConfigError(
            f"{where}: unknown key(s) {[f'{prefix}.{k}' for k in unknown]}; allowed: {sorted(allowed)}"
        )
    values = {}
    for key, value in data.items():
        nested = _nested_class(hints[key])
        if nested is not None and isinstance(value, dict):  # a nested section: built and checked now, not later
            values[key] = build(nested, value, f"{where}.{key}")
        elif not _type_ok(value, hints[key]):
            raise ConfigError(f"{where}.{key}: expected {_hint_name(hints[key])}, got {value!r}")
        else:
            values[key] = value
    _check_registered_names(values, where)  # before __post_init__: an unknown name is the first thing to report
    try:
        return cls(**values)
    except TypeError as err:  # a required key is missing
        raise ConfigError(f"{where}: {err}; add the key to params.yaml") from None
    except ValueError as err:  # __post_init__ range checks
        raise ConfigError(f"{where}: {err}") from None


def read_params(path: Path = PARAMS_PATH) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path} not found; run from the repository root (where params.yaml lives)")
    with open(path) as fh:
        params = yaml.safe_load(fh) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return params


def load_section(cls: type[T], section: str, path: Path = PARAMS_PATH) -> T:
    """Load params.yaml:<section> as `cls`; the top-level `seed` fills a `seed` field the section leaves out."""
    params = read_params(path)
    if unknown := sorted(set(params) - set(KNOWN_SECTIONS)):
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {sorted(KNOWN_SECTIONS)}")
    if section not in params:
        raise ConfigError(f"{path}: missing section '{section}'; known sections: {sorted(params)}")
    if "seed" in params and not _type_ok(params["seed"], int):  # else it is reported as <section>.seed
        raise ConfigError(f"{path}:seed: expected int, got {params['seed']!r}")
    data = dict(params[section] or {})
    if "seed" in {f.name for f in fields(cls)} and "seed" not in data and "seed" in params:
        data["seed"] = params["seed"]  # one knob for `dvc exp run -S seed=N`
    return build(cls, data, f"{path}:{section}")


# kind -> the names a key of that kind may take. Each registry adds itself when imported (pipeline.models:
# encoders, pipeline.data.sources: data sources), so config imports neither and a stage checks what it builds.
REGISTRIES: dict[str, Callable[[], list[str]]] = {}
# encoder key -> the key of the weights it starts from; pipeline.models registers the check (file present, known)
WEIGHT_KEYS = {"encoder": "encoder_weights", "age_encoder": "age_encoder_weights",
               "vcop_encoder": "vcop_encoder_weights"}
WEIGHTS_CHECKS: dict[str, Callable[[str, str], str | None]] = {}
REGISTERED_KEYS = {"general": "source", "korean": "source", "encoder": "encoder", "age_encoder": "encoder",
                   "vcop_encoder": "encoder"}


def _check_registered_names(values: dict[str, Any], where: str) -> None:
    """A name missing from its registry fails at load time, naming the key (not later in a traceback).

    `values`: a section's keys as given (an absent weights key means its default, `none`, which needs no file)."""
    for key, kind in REGISTERED_KEYS.items():
        value = values.get(key, "")
        if kind in REGISTRIES and isinstance(value, str) and value and value not in (known := REGISTRIES[kind]()):
            raise ConfigError(f"{where}.{key}: unknown {kind} '{value}'; available: {known}")
    for key, weights_key in WEIGHT_KEYS.items():  # `imagenet` or a file must exist before any stage runs
        if "encoder" in WEIGHTS_CHECKS and weights_key in values:
            if problem := WEIGHTS_CHECKS["encoder"](values.get(key, ""), values[weights_key]):
                raise ConfigError(f"{where}.{weights_key}: {problem}")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the key paths `dvc exp run -S` and `dvc exp show` use."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


# ----------------------------------------------------------------------------------------------- data stages
@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """How the embedded synthetic aging-face data set is drawn (used when a role's source is `synthetic`)."""

    n_general_persons: int
    general_photos: tuple[int, int] | list[int]  # photos per general person, inclusive range
    n_korean_persons: int
    korean_photos: tuple[int, int] | list[int]
    korean_years: tuple[float, float] | list[float]  # span of one Korean person's photo series
    age_noise_years: float  # per-photo apparent-age noise (std): sets the Bayes floor
    person_offset_years: float  # per-person apparent-age offset (std)
    general_test_frac: float
    workers: int = 2
    # the data set's own seed: like a real collection, the photos stay fixed while the top-level `seed` varies
    # splits and training (dvc tracks this key with the `data` section, so a change regenerates the data)
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.n_general_persons >= 10, f"n_general_persons must be >= 10, got {self.n_general_persons}")
        _check(self.n_korean_persons >= 10, f"n_korean_persons must be >= 10, got {self.n_korean_persons}")
        for name in ("general_photos", "korean_photos", "korean_years"):
            lo, hi = getattr(self, name)
            _check(0 < lo <= hi, f"{name} must be [low, high] with 0 < low <= high, got {[lo, hi]}")
        _check(self.korean_photos[0] >= 2, "korean_photos low must be >= 2: a series needs two photos")
        _check(self.age_noise_years >= 0, f"age_noise_years must be >= 0, got {self.age_noise_years}")
        _check(self.person_offset_years >= 0, "person_offset_years must be >= 0")
        _check(0.05 <= self.general_test_frac <= 0.5, "general_test_frac must be in [0.05, 0.5]")
        _check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Section `data`: where photos come from and the resolution every model sees."""

    general: str  # source of the general role: one of pipeline.data.sources.SOURCES (checked at load)
    korean: str  # source of the Korean (longitudinal) role
    root: str = ""  # the user's copy of a real data set; unused for synthetic
    general_root: str = ""
    korean_root: str = ""
    image_size: int
    min_age: float = 0.0
    max_age: float = 80.0
    # how a real photo becomes model input (pipeline/faces): none = it is a face crop (centre square, resized);
    # mtcnn = detect the largest face, align eyes and mouth to `face_template`, crop with `face_margin` context;
    # landmarks = the same alignment from the 5 points the photo's label carries (no detector). `general_face` /
    # `korean_face` override `face` for one role (e.g. MegaAge's crops + AIHub's whole photos). Synthetic photos
    # are rendered as aligned crops and always take `none`. The model file records these.
    face: Literal["none", "mtcnn", "landmarks"] = "none"
    general_face: Literal["", "none", "mtcnn", "landmarks"] = ""
    korean_face: Literal["", "none", "mtcnn", "landmarks"] = ""
    face_margin: float = 0.25  # context around the template's face: 0.25 keeps forehead and chin
    face_template: Literal["arcface"] = "arcface"
    face_min_size: int = 20  # smallest face the detector finds, px in its copy of the photo
    face_max_side: int = 400  # the detector sees the photo shrunk to this long side
    workers: int = 0  # processes that prepare the photos; 0 = every core this process may use
    synthetic: SyntheticConfig | None = None  # required when a role's source is synthetic

    def __post_init__(self) -> None:
        _check(self.image_size >= 24, f"image_size must be >= 24 px to draw a face, got {self.image_size}")
        _check(0.0 <= self.face_margin <= 2.0, f"face_margin must be in [0, 2], got {self.face_margin}")
        # MTCNN's smallest window is 12 px; a detector copy smaller than 4 faces across finds nothing useful
        _check(self.face_min_size >= 12, f"face_min_size must be >= 12 px, got {self.face_min_size}")
        _check(self.face_max_side >= 4 * self.face_min_size, f"face_max_side must be >= 4 x face_min_size "
               f"({4 * self.face_min_size}), got {self.face_max_side}")
        _check(0 <= self.min_age < self.max_age <= 120, f"need 0 <= min_age < max_age <= 120, got "
               f"{self.min_age}..{self.max_age}")
        _check(self.synthetic is not None or "synthetic" not in (self.general, self.korean),
               "synthetic: required when data.general or data.korean is 'synthetic'")
        _check(self.workers >= 0, f"workers must be >= 0 (0 = every core), got {self.workers}")
        labelled = REGISTRIES["landmark_source"]() if "landmark_source" in REGISTRIES else None
        for role, (source, root) in self.roles().items():
            _check(source == "synthetic" or bool(root), f"{role}_root (or root): needed for source '{source}'")
            face = self.role_faces()[role]
            _check(face != "landmarks" or source == "synthetic" or labelled is None or source in labelled,
                   f"{role}_face (or face): landmarks needs a source whose labels carry face points "
                   f"({', '.join(labelled or [])}); '{source}' has none: use mtcnn (whole photos) or none (crops)")

    def roles(self) -> dict[str, tuple[str, str]]:
        """role -> (source, root): a role's own root, else the shared `root` (empty for synthetic)."""
        return {"general": (self.general, self.general_root or self.root),
                "korean": (self.korean, self.korean_root or self.root)}

    def role_faces(self) -> dict[str, str]:
        """role -> its face mode: a role's own `<role>_face`, else the shared `face`."""
        return {"general": self.general_face or self.face, "korean": self.korean_face or self.face}

    @property
    def uses_synthetic(self) -> bool:
        return "synthetic" in (self.general, self.korean)


@dataclass(frozen=True, kw_only=True)
class SplitConfig:
    """Section `split_korean`: identity-disjoint fractions (test is the rest)."""

    seed: int
    korean_val_frac: float
    korean_test_frac: float
    general_val_frac: float
    general_test_frac: float  # general test share when a source has no official test list
    label_frac: float = 1.0  # share of Korean training persons whose ages are used as labels (by person)
    korean_test_person: str = ""  # leave-one-person-out fold: this person alone is the Korean test split

    def __post_init__(self) -> None:
        _check(0 < self.label_frac <= 1, f"label_frac must be in (0, 1], got {self.label_frac}")
        for name in ("korean_val_frac", "korean_test_frac", "general_val_frac", "general_test_frac"):
            value = getattr(self, name)
            _check(0 < value < 0.5, f"{name} must be in (0, 0.5), got {value}")
        _check(self.korean_val_frac + self.korean_test_frac < 0.8,
               "korean_val_frac + korean_test_frac must leave >= 20% of persons for training")


@dataclass(frozen=True, kw_only=True)
class SequenceConfig:
    """Section `build_sequences`: VCOP tuples of one person's photos in age order."""

    seed: int
    tuple_len: int
    min_gap_years: float
    tuples_per_person: int  # per person: the fixed list, or with resample_each_epoch the draw of every epoch
    # False: one fixed list of tuples (train.csv); True: training tuples drawn afresh each epoch (seeded by epoch)
    # from all valid tuples of the training persons, as VCOP draws clips (val tuples stay fixed)
    resample_each_epoch: bool = False

    def __post_init__(self) -> None:
        _check(3 <= self.tuple_len <= 5, f"tuple_len must be 3, 4 or 5, got {self.tuple_len}")
        _check(self.min_gap_years >= 0, f"min_gap_years must be >= 0, got {self.min_gap_years}")
        _check(self.tuples_per_person >= 1, f"tuples_per_person must be >= 1, got {self.tuples_per_person}")


# ------------------------------------------------------------------------------------------- training stages
@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """Optimisation of one training phase: a `budget` phase, or pretrain_vcop's own."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1.0e-4
    warmup_epochs: float = 0.5
    grad_clip: float = 5.0
    patience: int = 0  # stop after this many epochs without a better val metric; 0 = never
    amp: bool = True  # only takes effect on CUDA
    num_workers: int = 0  # batches are sliced from a memmap: workers rarely pay on 2 cores
    # resumable state (model + AdamW, ~3x the model) is written at most this often and after the last epoch:
    # writing it every epoch cost ~19% of a short epoch on 2 cores (benchmarks/train_overhead.py)
    checkpoint_every_s: float = 120.0

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}")
        _check(self.lr > 0 and math.isfinite(self.lr), f"lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        _check(self.patience >= 0, f"patience must be >= 0, got {self.patience}")
        _check(self.num_workers >= 0, f"num_workers must be >= 0, got {self.num_workers}")
        _check(self.checkpoint_every_s >= 0, f"checkpoint_every_s must be >= 0 (0 = every epoch), got "
               f"{self.checkpoint_every_s}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig(OptimConfig):
    """What fit() runs: one phase's optimisation plus the seed of its shuffles and initialisation."""

    seed: int


@dataclass(frozen=True, kw_only=True)
class KoreanPhaseConfig(OptimConfig):
    """`budget.korean`: the Korean phase's optimisation, plus what keeps the general domain in it."""

    # share of each Korean training batch drawn from general *training* photos (against forgetting); an epoch
    # is still one pass over the Korean labelled photos, so a share m takes 1/(1-m) times the steps. Tuned
    # (chosen on validation, README), so params.yaml must say it: no code default
    general_mix: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(0 <= self.general_mix < 0.9, f"general_mix must be in [0, 0.9), got {self.general_mix}")


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """Section `budget`: the labelled-training budget shared by every age condition (fair comparison)."""

    general: OptimConfig
    korean: KoreanPhaseConfig
    # a phase that starts from trained weights (fine-tuning) scores them on val as epoch 0 and keeps them when no
    # epoch beats them, so it never returns weights worse on val than it started with
    select_start: bool = True

    def phase(self, name: Literal["general", "korean"], seed: int) -> TrainConfig:
        optim = {f.name for f in fields(OptimConfig)}
        return TrainConfig(seed=seed, **{k: v for k, v in asdict(getattr(self, name)).items() if k in optim})


@dataclass(frozen=True, kw_only=True)
class VCOPConfig(TrainConfig):
    """Section `pretrain_vcop`: the pretext task."""

    encoder: str
    encoder_weights: str = "none"  # none | imagenet | path to a state dict: the same as train_baseline's
    head_hidden: int = 512
    dropout: float = 0.5


@dataclass(frozen=True, kw_only=True)
class AgeTrainingConfig:
    """What every age-training stage shares: its seed, its loss and a scale on the budget's lr."""

    seed: int
    loss: Literal["l1", "smooth_l1"] = "l1"
    lr_scale: float = 1.0  # multiplies the budget's lr (e.g. gentler fine-tuning)

    def __post_init__(self) -> None:
        _check(self.lr_scale > 0, f"lr_scale must be > 0, got {self.lr_scale}")


@dataclass(frozen=True, kw_only=True)
class TrainBaselineConfig(AgeTrainingConfig):
    """Section `train_baseline`: an age regressor on the general set, from `encoder_weights`."""

    encoder: str
    encoder_weights: str = "none"  # none | imagenet | path to a local state dict (README: Initialisation)


@dataclass(frozen=True, kw_only=True)
class FinetuneKoreanConfig(AgeTrainingConfig):
    """Section `finetune_korean`: train_baseline's model (its encoder included) fine-tuned on Korean labels."""


@dataclass(frozen=True, kw_only=True)
class DownstreamConfig(AgeTrainingConfig):
    """Section `downstream`: the VCOP-pretrained encoder trained for age under `protocol`."""

    encoder: str = ""  # empty: pretrain_vcop's encoder; set, it must match it
    protocol: Literal["general_then_korean", "korean_only", "linear_probe"] = "general_then_korean"


@dataclass(frozen=True, kw_only=True)
class MultiTrainConfig:
    """Section `multitrain`: a VCOP encoder and an age encoder of different architectures, coupled."""

    seed: int
    age_encoder: str
    vcop_encoder: str
    age_encoder_weights: str = "none"  # the same as train_baseline's and pretrain_vcop's encoder_weights
    vcop_encoder_weights: str = "none"
    coupling: Literal["shared_head", "distill", "rank", "none"]
    vcop_weight: float
    coupling_weight: float
    tuple_batch_size: int  # VCOP tuples paired with every labelled age batch
    rank_margin_years: float = 1.0
    head_hidden: int = 512  # VCOP head, as in pretrain_vcop
    dropout: float = 0.5
    loss: Literal["l1", "smooth_l1"] = "l1"

    def __post_init__(self) -> None:
        _check(self.vcop_weight >= 0, f"vcop_weight must be >= 0, got {self.vcop_weight}")
        _check(self.coupling_weight >= 0, f"coupling_weight must be >= 0, got {self.coupling_weight}")
        _check(self.tuple_batch_size >= 2, f"tuple_batch_size must be >= 2, got {self.tuple_batch_size}")
        _check(self.age_encoder != self.vcop_encoder, "age_encoder and vcop_encoder must be different "
               f"architectures (both are '{self.age_encoder}'); the same-architecture case is `downstream`")


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """Section `evaluate`."""

    seed: int
    n_bootstrap: int
    ci: float = 0.95
    batch_size: int = 256

    def __post_init__(self) -> None:
        _check(self.n_bootstrap >= 100, f"n_bootstrap must be >= 100, got {self.n_bootstrap}")
        _check(0.5 < self.ci < 1, f"ci must be in (0.5, 1), got {self.ci}")


# section -> its dataclass; check_all() loads every one, so a profile or sweep fails before the first stage runs
SECTION_TYPES: dict[str, type] = {
    "data": DataConfig, "split_korean": SplitConfig, "build_sequences": SequenceConfig, "budget": BudgetConfig,
    "pretrain_vcop": VCOPConfig, "train_baseline": TrainBaselineConfig, "finetune_korean": FinetuneKoreanConfig,
    "downstream": DownstreamConfig, "multitrain": MultiTrainConfig, "evaluate": EvalConfig,
}


def check_all(path: Path = PARAMS_PATH) -> None:
    """Validate every section of a params file; nested ones (data.synthetic, budget.*) are built with their section,
    and source and encoder names are checked against the registries imported (pipeline.profiles imports both)."""
    loaded = {section: load_section(cls, section, path) for section, cls in SECTION_TYPES.items()}
    starts = {"train_baseline.encoder_weights": loaded["train_baseline"].encoder_weights,
              "pretrain_vcop.encoder_weights": loaded["pretrain_vcop"].encoder_weights,
              "multitrain.age_encoder_weights": loaded["multitrain"].age_encoder_weights}
    if len(set(starts.values())) > 1:  # condition 3 = the same initialisation -> VCOP -> age
        raise ConfigError(f"{path}: the age path of every condition must start from the same weights; got "
                          f"{starts}: set them equal")
