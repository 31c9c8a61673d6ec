"""The data stages' sections: `data` (and `data.synthetic`), `split_korean`, `build_sequences`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.config.faces import check_face_limits
from pipeline.config.loader import REGISTRIES, check, check_unused


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
    # share of general persons in the synthetic set's own official test list (split_korean keeps it, as it keeps
    # MegaAge-Asian's); not split_korean.general_test_frac, which only a source without such a list uses
    official_test_frac: float
    workers: int = 2
    # the data set's own seed: like a real collection, the photos stay fixed while the top-level `seed` varies
    # splits and training (dvc tracks this key with the `data` section, so a change regenerates the data)
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.n_general_persons >= 10, f"n_general_persons must be >= 10, got {self.n_general_persons}")
        check(self.n_korean_persons >= 10, f"n_korean_persons must be >= 10, got {self.n_korean_persons}")
        # upper bounds: a typo such as 1e9 persons or photos would draw for days and fill the disk, not fail
        for name in ("n_general_persons", "n_korean_persons"):
            check(getattr(self, name) <= 100_000, f"{name} must be <= 100000, got {getattr(self, name)}")
        for name in ("general_photos", "korean_photos", "korean_years"):
            lo, hi = getattr(self, name)
            check(0 < lo <= hi, f"{name} must be [low, high] with 0 < low <= high, got {[lo, hi]}")
        for name in ("general_photos", "korean_photos"):
            check(getattr(self, name)[1] <= 200, f"{name} high must be <= 200 photos per person, got "
                  f"{getattr(self, name)[1]}")
        check(self.korean_photos[0] >= 2, "korean_photos low must be >= 2: a series needs two photos")
        check(self.age_noise_years >= 0, f"age_noise_years must be >= 0, got {self.age_noise_years}")
        check(self.person_offset_years >= 0, "person_offset_years must be >= 0")
        check(0.05 <= self.official_test_frac <= 0.5, "official_test_frac must be in [0.05, 0.5]")
        check(self.workers >= 1, f"workers must be >= 1, got {self.workers}")


DETECTOR_KEYS = ("face_min_size", "face_max_side")  # what only `mtcnn` reads
FACE_KEYS = ("face_margin", "face_template", *DETECTOR_KEYS)  # what `mtcnn` and `landmarks` read


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Section `data`: where photos come from and the resolution every model sees."""

    general: str  # source of the general role: one of pipeline.data.sources.SOURCES (checked at load)
    korean: str  # source of the Korean (longitudinal) role
    root: str = ""  # the user's copy of a real data set; unused for synthetic
    general_root: str = ""
    korean_root: str = ""
    image_size: int
    min_age: float = 0.0  # photos with ages outside min_age..max_age are dropped with a warning
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
    workers: int = 0  # processes that prepare the real photos; 0 = every core this process may use
    # share of a real role's persons kept (whole families, when the source names them), drawn with `keep_seed`
    # within each published split, whose test list is kept whole: a CPU run of a large set in less time;
    # 1.0 = every person
    general_keep: float = 1.0
    korean_keep: float = 1.0
    keep_seed: int = 0
    synthetic: SyntheticConfig | None = None  # required when a role's source is synthetic

    def __post_init__(self) -> None:
        check(self.image_size >= 24, f"image_size must be >= 24 px to draw a face, got {self.image_size}")
        check(self.image_size <= 512, f"image_size must be <= 512 px (the uint8 cache grows with its square), got "
              f"{self.image_size}")
        check_face_limits(self.face_margin, self.face_min_size, self.face_max_side)
        modes = set(self.role_faces().values())
        if modes == {"none"}:
            check_unused(self, FACE_KEYS, "with face 'none' (photos are taken as crops; set face: mtcnn to detect)")
        elif "mtcnn" not in modes:
            check_unused(self, DETECTOR_KEYS, f"with face {sorted(modes)} (no detector runs; they apply to mtcnn)")
        check(0 <= self.min_age < self.max_age <= 120, f"need 0 <= min_age < max_age <= 120, got "
              f"{self.min_age}..{self.max_age}")
        check(self.synthetic is not None or "synthetic" not in (self.general, self.korean),
              "synthetic: required when data.general or data.korean is 'synthetic'")
        check(self.workers >= 0, f"workers must be >= 0 (0 = every core), got {self.workers}")
        for role, (source, _) in self.roles().items():
            keep = getattr(self, f"{role}_keep")
            check(0 < keep <= 1, f"{role}_keep must be in (0, 1], got {keep}")
            check(keep == 1 or source != "synthetic", f"{role}_keep: applies to real sources; the synthetic "
                  "source's size is data.synthetic's person counts")
        labelled = REGISTRIES["landmark_source"]() if "landmark_source" in REGISTRIES else None
        for role, (source, root) in self.roles().items():
            check(source == "synthetic" or bool(root), f"{role}_root (or root): needed for source '{source}'")
            face = self.role_faces()[role]
            check(face != "landmarks" or source == "synthetic" or labelled is None or source in labelled,
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
    """Section `split_korean`, which splits both domains, general and Korean (the name is the stage's): identity-
    disjoint val and test fractions of each (train is the rest), and the Korean label budget."""

    seed: int
    korean_val_frac: float
    # a default only so that check_unused can tell when it is changed beside korean_test_person (params.yaml's)
    korean_test_frac: float = 0.25
    general_val_frac: float
    # the general test share for a general source without an official test list (the synthetic set, MegaAge-Asian
    # and AAF have one, which is kept, and this key is not used)
    general_test_frac: float
    label_frac: float = 1.0  # share of Korean training persons whose ages are used as labels (by person)
    korean_test_person: str = ""  # leave-one-person-out fold: this person alone is the Korean test split
    # True: a Korean source's published train/(val/)test lists are kept; False: the Korean role is split by person
    # (by family, when the source names them) with the split seed, so a study can average over several splits
    korean_published_split: bool = True

    def __post_init__(self) -> None:
        check(0 < self.label_frac <= 1, f"label_frac must be in (0, 1], got {self.label_frac}")
        for name in ("korean_val_frac", "korean_test_frac", "general_val_frac", "general_test_frac"):
            value = getattr(self, name)
            check(0 < value < 0.5, f"{name} must be in (0, 0.5), got {value}")
        check(self.korean_val_frac + self.korean_test_frac < 0.8,
              "korean_val_frac + korean_test_frac must leave >= 20% of persons for training")
        if self.korean_test_person:
            check_unused(self, ["korean_test_frac"], f"with korean_test_person '{self.korean_test_person}' (that "
                         "person alone is the test split)")


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
        check(3 <= self.tuple_len <= 5, f"tuple_len must be 3, 4 or 5, got {self.tuple_len}")
        check(self.min_gap_years >= 0, f"min_gap_years must be >= 0, got {self.min_gap_years}")
        check(self.tuples_per_person >= 1, f"tuples_per_person must be >= 1, got {self.tuples_per_person}")
