"""Narrow and shallow ResNets for small face crops (32-64 px): the default's compute budget, not ImageNet's.

torchvision's resnet18 (11 M parameters, 64-512 channels) was built for 224 px; at 48 px its stride-4 stem
leaves a 12x12 map and the last two stages see 3x3 and 2x2. These keep the BasicBlock design and change
only what matters at this size: channel width, blocks per stage and the stem (benchmarks/encoder_levers.py
times them; benchmarks/README.md has the accuracy runs that chose the default).
"""
from __future__ import annotations

import torch
from torch import nn

from pipeline.models.registry import register


class SmallResNet(nn.Module):
    """ResNet with BasicBlocks: `widths` channels per stage, `blocks` per stage; stem = 3x3 conv of `stem_stride`
    (no max-pool: at 48 px a stride-2 stem already gives 24x24, like resnet18's 56x56 at 224 px, relatively)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: tuple[int, ...] = (1, 1, 1, 1),
                 stem_stride: int = 2):
        super().__init__()
        from torchvision.models.resnet import BasicBlock  # here, not at import: see encoders.RESNET18_IMAGENET_URL

        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=stem_stride, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, c_in = [], widths[0]
        for i, (width, n_blocks) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or c_in != width:
                down = nn.Sequential(nn.Conv2d(c_in, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
            layers = [BasicBlock(c_in, width, stride, down)] + [BasicBlock(width, width) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = width
        self.stages = nn.Sequential(*stages)
        self.feature_dim = c_in
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for module in self.modules():  # zero-init the last BN of each block: every block starts as identity
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x)).mean(dim=(2, 3))


@register
def resnet10_w32() -> nn.Module:
    """1 block per stage, 32-256 channels (~1.2 M parameters)."""
    return SmallResNet((32, 64, 128, 256), (1, 1, 1, 1))


@register
def resnet10_w48() -> nn.Module:
    """1 block per stage, 48-384 channels."""
    return SmallResNet((48, 96, 192, 384), (1, 1, 1, 1))


@register
def resnet18_w32() -> nn.Module:
    """2 blocks per stage, 32-256 channels (resnet18's depth at half its width)."""
    return SmallResNet((32, 64, 128, 256), (2, 2, 2, 2))
