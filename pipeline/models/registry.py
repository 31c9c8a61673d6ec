"""Encoders by name: the function name is the string in params.yaml (timm-style registry), and the weights an
encoder starts from (`encoder_weights`: none, imagenet, or a local state dict file)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from pipeline.config import ARCHITECTURES, REGISTRIES, WEIGHTS_CHECKS, ConfigError

_ENCODERS: dict[str, Callable[..., nn.Module]] = {}
_IMAGENET: dict[str, "ImageNetWeights"] = {}
_FROZEN: set[str] = set()  # encoders whose first layers never train: they must start from published weights
_VARIANT_OF: dict[str, str] = {}  # a variant's name -> the encoder whose architecture it builds
# what randomly initialised encoders see (x in [0, 1] -> (x - 0.5) / 0.25); pretrained ones get their own statistics
DEFAULT_MEAN, DEFAULT_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLASSIFIER_PREFIXES = ("fc.", "_fc.", "classifier.")  # an ImageNet classifier is never part of an encoder


@dataclass(frozen=True)
class ImageNetWeights:
    """Where an encoder's ImageNet weights live on this machine (never downloaded) and the input statistics
    they were trained with."""

    path: Callable[[], Path]  # called at build time: the file may be installed after import
    how_to_get: str  # the fix named by the error when the file is absent
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def register(factory: Callable[..., nn.Module] | None = None, *, imagenet: ImageNetWeights | None = None,
             frozen: bool = False, variant_of: str | None = None):
    """`@register` or `@register(imagenet=ImageNetWeights(...))` for an encoder with published weights;
    `frozen=True` for one that keeps some layers as loaded (config refuses it with `encoder_weights: none`);
    `variant_of` names the registered encoder whose architecture it builds (multitrain needs two architectures)."""

    def add(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        assert fn.__name__ not in _ENCODERS, f"encoder '{fn.__name__}' registered twice"
        _ENCODERS[fn.__name__] = fn
        if imagenet is not None:
            _IMAGENET[fn.__name__] = imagenet
        if frozen:
            _FROZEN.add(fn.__name__)
        if variant_of is not None:
            assert variant_of in _ENCODERS, f"'{fn.__name__}' is a variant of unregistered '{variant_of}'"
            _VARIANT_OF[fn.__name__] = variant_of
        return fn

    return add(factory) if factory is not None else add


def build_encoder(name: str, weights: str = "none") -> nn.Module:
    """An encoder mapping (N, 3, H, W) floats to (N, feature_dim); it exposes `.feature_dim` and carries the
    input statistics its weights expect as buffers (`input_mean`, `input_std`, saved with every model).

    `weights`: "none" (random init), "imagenet" (the registered local file) or a path to a state dict (of the
    encoder, or of the published network it wraps; classifier keys are ignored). Raises ConfigError for an
    unknown name, FileNotFoundError (naming the file and the fix) when a weights file is absent.
    """
    if name not in _ENCODERS:
        raise ConfigError(f"unknown encoder '{name}'; available: {', '.join(list_encoders())}")
    encoder = _ENCODERS[name]()
    mean, std = DEFAULT_MEAN, DEFAULT_STD
    if weights != "none":
        path, mean, std = _weights_file(name, weights)
        state = torch.load(path, map_location="cpu", weights_only=True)
        mean, std = load_encoder_state(encoder, state, path, mean, std)
    encoder.register_buffer("input_mean", torch.tensor(mean).view(1, 3, 1, 1))
    encoder.register_buffer("input_std", torch.tensor(std).view(1, 3, 1, 1))
    return encoder


def _weights_file(name: str, weights: str) -> tuple[Path, tuple, tuple]:
    """The local file behind `weights` and the input statistics of a published network's weights.

    Existence is checked before anything could download: a missing file is an error, never a hang."""
    if weights == "imagenet":
        if name not in _IMAGENET:
            raise ConfigError(f"encoder '{name}' has no ImageNet weights; encoders with them: "
                              f"{sorted(_IMAGENET)} (or give a path to a state dict)")
        source = _IMAGENET[name]
        path = source.path()
        if not path.is_file():
            raise FileNotFoundError(f"ImageNet weights for '{name}' not found at {path}; {source.how_to_get}")
        return path, source.mean, source.std
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file {path} not found; give a local state dict (.pth), "
                                "'imagenet' or 'none'")
    source = _IMAGENET.get(name)  # a published network's file (no statistics of its own): its ImageNet statistics
    return path, (source.mean if source else DEFAULT_MEAN), (source.std if source else DEFAULT_STD)


def load_encoder_state(encoder: nn.Module, state: dict, path: Path, mean: tuple, std: tuple) -> tuple[tuple, tuple]:
    """Load `state` strictly (every encoder weight must be in the file); returns the input statistics to use:
    the file's own when it is an encoder state dict saved by this project, else `mean`, `std`."""
    if isinstance(state.get("state"), dict):  # a model file of this project (models/<stage>/model.pt): its encoder
        state = {k[len("encoder."):]: v for k, v in state["state"].items() if k.startswith("encoder.")}
    state = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
    if "input_mean" in state:
        mean, std = tuple(state.pop("input_mean").flatten().tolist()), tuple(state.pop("input_std").flatten().tolist())
    own = set(encoder.state_dict())
    if hasattr(encoder, "net") and not own & set(state):  # the published network's keys: they load into .net
        state = {f"net.{k}": v for k, v in state.items()}
    missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
    if missing or unexpected:
        raise ConfigError(f"{path} does not fit this encoder: missing {missing[:5]}{'...' if len(missing) > 5 else ''}"
                          f", unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    encoder.load_state_dict(state)
    return mean, std


def check_weights(name: str, weights: str) -> str | None:
    """What is wrong with `weights` for encoder `name` (None when it would load): checked when params load."""
    if name not in _ENCODERS:
        return None
    if weights == "none":
        return (f"encoder '{name}' keeps its first layers as loaded, so it needs weights (imagenet or a state dict); "
                "for a randomly initialised encoder use one that trains every layer") if name in _FROZEN else None
    try:
        _weights_file(name, weights)
    except (ConfigError, FileNotFoundError) as err:
        return str(err)
    return None


def list_encoders() -> list[str]:
    return sorted(_ENCODERS)


def architecture(name: str) -> str:
    """The registered encoder whose architecture `name` builds: itself, or what it is a variant of."""
    return _VARIANT_OF.get(name, name)


REGISTRIES["encoder"] = list_encoders  # params naming an encoder are checked when they load
WEIGHTS_CHECKS["encoder"] = check_weights
ARCHITECTURES["encoder"] = architecture
