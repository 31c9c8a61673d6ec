"""Training-step throughput of candidate age encoders at the default resolution, measured side by side.

    python benchmarks/encoder_levers.py [--size 48] [--batch 64] [--rounds 5] [--steps 6]

Each round times `--steps` training steps (forward, L1 loss, backward, AdamW) of every candidate in turn, so a
busy machine slows all candidates alike; the table gives the median photos/s over rounds and the ratio to
resnet18. Candidates are registry encoders (pipeline/models/encoders.py), plus torch.compile variants on request
and, beside efficientnet_lite0 (the default), the same network with the package's own per-forward "same" padding
(`efficientnet_lite0_package_padding`: what native_same_padding replaced; same weights, same function).
Accuracy is not measured here: see benchmarks/README.md for the stage runs that compared the candidates on
validation.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from pipeline.models import AgeRegressor, build_encoder, list_encoders
from pipeline.train import to_channels_last


def train_step_rate(model: nn.Module, images: torch.Tensor, ages: torch.Tensor, steps: int,
                    opt: torch.optim.Optimizer) -> float:
    model.train()
    started = time.perf_counter()
    for _ in range(steps):
        loss = (model(images) - ages).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * len(images) / (time.perf_counter() - started)


def package_padding(model: AgeRegressor) -> AgeRegressor:
    """A copy of an efficientnet_lite0 regressor whose network is efficientnet-lite-pytorch's own (F.pad before
    every "same" conv), with the same weights."""
    from efficientnet_lite_pytorch import EfficientNet

    copy = AgeRegressor(build_encoder("efficientnet_lite0"))
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    net._fc = nn.Identity()
    net.load_state_dict(model.encoder.net.state_dict())
    copy.encoder.net = net
    copy.load_state_dict(model.state_dict())
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--encoders", nargs="+", default=[e for e in list_encoders() if e not in ("r21d_mini",)])
    parser.add_argument("--compile", nargs="*", default=[], help="encoders to also time under torch.compile")
    args = parser.parse_args()
    torch.manual_seed(0)
    # as fit() sees them: photos sliced from the (N, H, W, 3) cache and permuted (channels_last strides), and
    # channels_last conv weights (train.to_channels_last)
    images = torch.randint(0, 256, (args.batch, args.size, args.size, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
    ages = torch.rand(args.batch)
    candidates: dict[str, nn.Module] = {}
    for name in args.encoders:
        candidates[name] = AgeRegressor(build_encoder(name))
    if "efficientnet_lite0" in candidates:
        candidates["efficientnet_lite0_package_padding"] = package_padding(candidates["efficientnet_lite0"])
    for name in args.compile:
        started = time.perf_counter()
        compiled = torch.compile(AgeRegressor(build_encoder(name)))
        opt = torch.optim.AdamW(compiled.parameters(), lr=1e-3)
        train_step_rate(compiled, images, ages, 2, opt)  # compiles forward and backward
        print(f"torch.compile({name}): first two steps {time.perf_counter() - started:.1f} s (compile time)")
        candidates[f"{name}+compile"] = compiled
    for model in candidates.values():
        to_channels_last(model)
    opts = {n: torch.optim.AdamW(m.parameters(), lr=1e-3, foreach=True) for n, m in candidates.items()}
    for name, model in candidates.items():  # warm-up: allocator, oneDNN primitive caches
        train_step_rate(model, images, ages, 1, opts[name])
    rates: dict[str, list[float]] = {n: [] for n in candidates}
    for _ in range(args.rounds):
        for name, model in candidates.items():
            rates[name].append(train_step_rate(model, images, ages, args.steps, opts[name]))
    base = statistics.median(rates["resnet18"]) if "resnet18" in rates else None
    if "efficientnet_lite0_package_padding" in rates:
        ratio = (statistics.median(rates["efficientnet_lite0"])
                 / statistics.median(rates["efficientnet_lite0_package_padding"]))
        print(f"efficientnet_lite0, native vs the package's padding: {ratio:.2f}x")
    print(f"{args.size} px, batch {args.batch}, {torch.get_num_threads()} threads, median of {args.rounds} rounds")
    print(f"{'encoder':<24}{'params (M)':>11}{'photos/s':>10}{'vs resnet18':>13}")
    for name, model in candidates.items():
        rate = statistics.median(rates[name])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        ratio = f"{rate / base:.2f}x" if base else "-"
        print(f"{name:<24}{params:>11.2f}{rate:>10.0f}{ratio:>13}")


if __name__ == "__main__":
    main()
