"""The models' input transform: uint8 photos -> normalised floats, with training-time batch augmentation, on the
batch's device. Part of every model, so a saved model carries its own normalisation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class InputTransform(nn.Module):
    """uint8 (N, C, H, W) -> normalised float; in training mode also flip, small affine and colour jitter.

    Vectorised over the batch (one grid_sample), so it costs little next to the encoder on 2 CPU cores.
    Randomness comes from torch's global RNG, which checkpoints save and restore.
    """

    def __init__(self, augment: bool = True, max_rotate_deg: float = 8.0, max_shift: float = 0.06,
                 max_scale: float = 0.08, jitter: float = 0.15):
        super().__init__()
        self.augment, self.max_rotate, self.max_shift = augment, math.radians(max_rotate_deg), max_shift
        self.max_scale, self.jitter = max_scale, jitter

    def forward(self, images: torch.Tensor, mean: torch.Tensor | None = None,
                std: torch.Tensor | None = None) -> torch.Tensor:
        """`mean`, `std` (1, C, 1, 1): the statistics the encoder's weights expect (its input_mean / input_std
        buffers); None: (x - 0.5) / 0.25, what a randomly initialised encoder sees."""
        x = images.float().div_(255.0)
        if self.training and self.augment:
            x = self._augment(x)
        x = x.sub_(0.5).div_(0.25) if mean is None else x.sub_(mean).div_(std)
        return x.contiguous(memory_format=torch.channels_last)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        n, device = x.shape[0], x.device

        def uniform(scale: float, size: tuple[int, ...] = (n,)) -> torch.Tensor:
            return (torch.rand(size, device=device) * 2 - 1) * scale

        flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        angle, scale = uniform(self.max_rotate), 1 + uniform(self.max_scale)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos * flip, -sin, uniform(self.max_shift)], 1),
                             torch.stack([sin * flip, cos, uniform(self.max_shift)], 1)], 1)  # (N, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        brightness = 1 + uniform(self.jitter, (n, 1, 1, 1))
        contrast = 1 + uniform(self.jitter, (n, 1, 1, 1))
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * contrast + mean * brightness).clamp_(0, 1)
