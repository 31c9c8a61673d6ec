"""Encoders by name: the function name is the string in params.yaml (timm-style registry)."""
from __future__ import annotations

from typing import Callable

from torch import nn

from pipeline.config import REGISTRIES, ConfigError

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}


def register(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    assert factory.__name__ not in _ENCODERS, f"encoder '{factory.__name__}' registered twice"
    _ENCODERS[factory.__name__] = factory
    return factory


def build_encoder(name: str, **kwargs) -> nn.Module:
    """An encoder mapping (N, 3, H, W) floats to (N, feature_dim); it exposes `.feature_dim`."""
    if name not in _ENCODERS:
        raise ConfigError(f"unknown encoder '{name}'; available: {', '.join(list_encoders())}")
    return _ENCODERS[name](**kwargs)


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


REGISTRIES["encoder"] = list_encoders  # params naming an encoder are checked when they load
