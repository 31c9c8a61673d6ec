"""Named params profiles: overrides of params.yaml for one purpose, applied as `dvc exp run -S` options.

    dvc exp run $(python -m pipeline.profiles full)    # the GPU-sized run as a DVC experiment
    python -m pipeline.study run --profile study       # the label-budget sweep (study.py applies it itself)

A profile is profiles/<name>.yaml with the same nesting as params.yaml; only the keys it names change, and
the merged params are validated before anything runs. params.yaml itself is never edited.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

import pipeline.data.sources  # noqa: F401  (registers the source names check_all checks)
import pipeline.models  # noqa: F401  (registers the encoder names)
from pipeline import layout
from pipeline.config import PARAMS_PATH, ConfigError, check_all, flatten, read_params

PROFILES_DIR = layout.PROFILES
DEFAULT = "default"  # params.yaml as it is


def available() -> list[str]:
    return [DEFAULT, *sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))]


def _merge(base: dict, overrides: dict, where: str) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        if key not in base:
            raise ConfigError(f"{where}: '{key}' is not a key of params.yaml at this level; "
                              f"known: {sorted(base)}")
        if isinstance(value, dict) and isinstance(base[key], dict):
            merged[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def overrides(name: str, params_path: Path = PARAMS_PATH) -> dict[str, Any]:
    """The profile's flat `key.path -> value` overrides, checked against params.yaml and every section type."""
    if name == DEFAULT:
        return {}
    path = PROFILES_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"profile '{name}' not found ({path}); available: {', '.join(available())}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping like params.yaml")
    merged = _merge(read_params(params_path), tree, str(path))
    with tempfile.TemporaryDirectory() as tmp:  # the stages' own loaders are the validators
        checked = Path(tmp) / "params.yaml"
        checked.write_text(yaml.safe_dump(with_placeholder_roots(merged, tmp), sort_keys=False))
        try:
            check_all(checked)
        except ConfigError as err:
            raise ConfigError(f"profile {path}: {str(err).replace(str(checked), 'params.yaml')}") from None
    return flatten(tree)


def with_placeholder_roots(params: dict, folder: str) -> dict:
    """`params` with an existing placeholder folder as each real role's data root the profile leaves empty: a
    profile that names real sources (korean_family) is checked without the user's folders, which the user gives
    with -S data.<role>_root=... beside it (check_params then reads them)."""
    data = dict(params.get("data") or {})
    for role in ("general", "korean"):
        if data.get(role, "synthetic") != "synthetic" and not (data.get(f"{role}_root") or data.get("root")):
            data[f"{role}_root"] = folder
    return {**params, "data": data}


def set_args(name: str) -> list[str]:
    """`-S key=value` pairs for dvc exp run; values as compact JSON, which DVC reads as YAML."""
    args: list[str] = []
    for key, value in overrides(name).items():
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(f"usage: python -m pipeline.profiles NAME   (prints dvc exp run -S options; NAME: "
              f"{', '.join(available())})", file=sys.stderr)
        return 2
    try:
        print(" ".join(set_args(argv[0])))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
