"""The bare-script reference for real photos: what the pipeline's real-data profile must not lose to.

A deliberately plain age regressor on All-Age-Faces' aligned crops: torchvision resnet18 from scratch, 64 px,
every photo of AAF's train list (no validation holdout, no selection), Adam, L1 loss, horizontal flips, the
last epoch's weights scored on AAF's val list (the list the pipeline's `aaf_aligned` source uses as its test
split). AAF has one photo per person, so only the general phase of the original script can be run on it.

    python benchmarks/bare_script.py "/work/aaf/All-Age-Faces Dataset" [--epochs 5] [--size 64]
"""
import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image


def load(root: Path, list_name: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    names = [line.split()[0] for line in (root / "image sets" / f"{list_name}.txt").read_text().splitlines() if line.strip()]
    images = np.stack([np.asarray(Image.open(root / "aglined faces" / n).convert("RGB").resize((size, size), Image.BILINEAR))
                       for n in names])
    ages = [int(re.fullmatch(r"\d{5}A(\d{2})\.jpg", n).group(1)) for n in names]
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.tensor(ages, dtype=torch.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    train_x, train_y = load(args.root, "train", args.size)
    test_x, test_y = load(args.root, "val", args.size)
    model = torchvision.models.resnet18(num_classes=1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)

    def prep(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - 0.5) / 0.25

    for epoch in range(args.epochs):
        model.train()
        order, losses = torch.randperm(len(train_x)), []
        for i in range(0, len(order), args.batch):
            idx = order[i:i + args.batch]
            x = prep(train_x[idx])
            x = torch.where(torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(3), x)
            loss = (model(x).squeeze(1) - train_y[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}/{args.epochs}: train L1 {np.mean(losses):.2f} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(prep(test_x[i:i + 256])).squeeze(1) for i in range(0, len(test_x), 256)])
    result = {"test_mae": round((pred - test_y).abs().mean().item(), 3), "n_train": len(train_x), "n_test": len(test_x),
              "epochs": args.epochs, "size": args.size, "seconds": round(time.perf_counter() - started)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
