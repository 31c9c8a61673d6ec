"""Our fit() (checkpoints, logging, progress, NaN checks, val pass) vs a bare PyTorch loop, same model, data, steps.

Run after `dvc repro split_korean`:  python benchmarks/train_overhead.py [--encoder resnet18] [--photos 640]
Both loops train the same model from the same init on the same batches (cached loader, InputTransform, AdamW, L1).
The bare loop also runs the val pass, so the difference is the loop's own machinery.
"""
import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from pipeline import steps, train
from pipeline.config import TrainConfig
from pipeline.data import loaders
from pipeline.data.cache import open_images
from pipeline.models import AgeRegressor, build_encoder
from pipeline.models.tasks import to_normalised


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--photos", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--grad-clip", type=float, default=0.0, help="fit() only; the bare loop never clips")
    args = parser.parse_args()
    cpu = torch.device("cpu")
    images = open_images(Path("data/cache"))
    table = pd.read_csv("data/splits/general_train.csv").iloc[: args.photos]
    val = pd.read_csv("data/splits/general_val.csv").iloc[: args.photos // 4]
    cfg = TrainConfig(seed=0, epochs=args.epochs, batch_size=64, lr=1.0e-3, grad_clip=args.grad_clip)

    def make():
        torch.manual_seed(0)
        model = train.to_channels_last(AgeRegressor(build_encoder(args.encoder)))
        return model, loaders.Loaders(
            loaders.make_loader(loaders.photo_dataset(images, table), cfg.batch_size, True, 0, cpu),
            loaders.make_loader(loaders.photo_dataset(images, val), cfg.batch_size, False, 0, cpu))

    model, data = make()
    start = time.perf_counter()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    for epoch in range(cfg.epochs):
        model.train()
        for x, y in data.train.epoch(epoch):
            loss = F.l1_loss(model(x), to_normalised(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            for x, y in data.val.epoch(0):
                F.l1_loss(model(x), to_normalised(y))
    bare = time.perf_counter() - start

    model, data = make()
    with tempfile.TemporaryDirectory() as ckpt:
        start = time.perf_counter()
        train.fit(model, data, steps.age_step, cfg, Path(ckpt), cpu)
        ours = time.perf_counter() - start
    print(f"{args.encoder}, {len(table)} photos x {cfg.epochs} epochs (+ val {len(val)}), {torch.get_num_threads()} threads")
    print(f"  bare loop {bare:7.2f} s   fit() {ours:7.2f} s   overhead {100 * (ours / bare - 1):+.1f}%")


if __name__ == "__main__":
    main()
