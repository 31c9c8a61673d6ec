"""The one params loader: read params.yaml, build a section's frozen dataclass, name the key in every error."""
from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

PARAMS_PATH = Path("params.yaml")
T = TypeVar("T")
# every seed feeds numpy, whose seeding takes 0..2**32 - 1: -1 or 2**63 would fail deep inside a stage
SEED_MAX = 2**32 - 1


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


def check_seed(value: Any, where: str) -> None:
    """A ConfigError naming `where` (e.g. params.yaml:seed) unless value is a whole number in [0, SEED_MAX]."""
    if not _type_ok(value, int):
        raise ConfigError(f"{where}: expected int, got {value!r}")
    if not 0 <= value <= SEED_MAX:
        raise ConfigError(f"{where}: {value} is outside [0, 2**32 - 1] (0..{SEED_MAX}), the seeds numpy takes; "
                          "use e.g. 0")


def nested_class(hint: Any) -> type | None:
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
        nested = nested_class(hints[key])
        if nested is not None and isinstance(value, dict):  # a nested section: built and checked now, not later
            values[key] = build(nested, value, f"{where}.{key}")
        elif not _type_ok(value, hints[key]):
            raise ConfigError(f"{where}.{key}: expected {_hint_name(hints[key])}, got {value!r}")
        elif (key == "seed" or key.endswith("_seed")) and hints[key] is int:  # e.g. data.synthetic.seed
            check_seed(value, f"{where}.{key}")
            values[key] = value
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


def load_from(params: dict[str, Any], cls: type[T], section: str, known: typing.Iterable[str], path: Path) -> T:
    """params[<section>] as `cls`; the top-level `seed` fills a `seed` field the section leaves out."""
    if unknown := sorted(set(params) - set(known)):
        raise ConfigError(f"{path}: unknown section(s) {unknown}; known: {sorted(known)}")
    if section not in params:
        raise ConfigError(f"{path}: missing section '{section}'; known sections: {sorted(params)}")
    if "seed" in params:  # else it is reported as <section>.seed
        check_seed(params["seed"], f"{path}:seed")
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
# kind -> the architecture a registered name builds (a variant such as a partly frozen encoder is its base's)
ARCHITECTURES: dict[str, Callable[[str], str]] = {}
REGISTERED_KEYS = {"general": "source", "korean": "source", "encoder": "encoder", "age_encoder": "encoder",
                   "vcop_encoder": "encoder"}


def _check_registered_names(values: dict[str, Any], where: str) -> None:
    """A name missing from its registry fails at load time, naming the key (not later in a traceback).

    `values`: a section's keys as given (an absent weights key is reported as missing by build())."""
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


def check(ok: bool, message: str) -> None:
    """A __post_init__ range check: build() reports the message under the section's name."""
    if not ok:
        raise ValueError(message)


def check_unused(section: Any, keys: typing.Iterable[str], reason: str) -> None:
    """Keys that mean nothing in the chosen combination must keep their default (params.yaml's value): a
    changed one would be silently ignored, so it fails like a typo, naming the key and why it has no effect."""
    defaults = {f.name: f.default for f in fields(section) if f.default is not MISSING}
    for key in keys:
        if getattr(section, key) != defaults[key]:
            raise ValueError(f"{key}={getattr(section, key)!r} has no effect {reason}; leave it at "
                             f"{defaults[key]!r}")
