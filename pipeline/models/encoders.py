"""Per-photo encoders: torchvision ResNet-18, a small R(2+1)D network, and a tiny CNN for smoke runs."""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from pipeline.models.registry import register


class ResNetEncoder(nn.Module):
    def __init__(self, weights_path: str = ""):
        super().__init__()
        net = torchvision.models.resnet18(weights=None)  # never download at run time
        if weights_path:
            path = Path(weights_path)
            if not path.is_file():
                raise FileNotFoundError(f"resnet18 weights_path {path} not found; give a local .pth or leave it empty")
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
        net.fc = nn.Identity()
        self.net, self.feature_dim = net, 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register
def resnet18(weights_path: str = "") -> nn.Module:
    return ResNetEncoder(weights_path)


class Conv2Plus1D(nn.Sequential):
    """R(2+1)D factorisation (Tran et al. 2018): spatial k×k conv, then temporal k×1×1 conv."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        mid = (c_in + c_out) // 2
        super().__init__(
            nn.Conv3d(c_in, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
            nn.Conv3d(mid, c_out, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(c_out), nn.ReLU(inplace=True),
        )


class R21DMini(nn.Module):
    """Small R(2+1)D network. Takes a clip (B, C, T, H, W) or a photo (B, C, H, W) as a clip of T=1."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        layers, c_in = [], 3
        for i, width in enumerate(widths):
            layers.append(Conv2Plus1D(c_in, width, stride=2 if i else 1))
            c_in = width
        self.stem = nn.Sequential(nn.Conv3d(3, 3, 1), nn.MaxPool3d((1, 2, 2)))
        self.body = nn.Sequential(*layers)
        self.feature_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.unsqueeze(2)  # (B, C, 1, H, W)
        return self.body(self.stem(x)).mean(dim=(2, 3, 4))


@register
def r21d_mini() -> nn.Module:
    return R21DMini()


class TinyCNN(nn.Module):
    """Four conv blocks: seconds per epoch on CPU, for the smoke profile and tests."""

    def __init__(self, width: int = 16):
        super().__init__()
        blocks, c_in = [], 3
        for c_out in (width, 2 * width, 4 * width, 4 * width):
            blocks += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = c_out
        self.body = nn.Sequential(*blocks)
        self.feature_dim = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))


@register
def tiny_cnn() -> nn.Module:
    return TinyCNN()
