"""Batches from the uint8 cache: single photos for age regression, shuffled tuples for VCOP, one code path."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from pipeline import runtime
from pipeline.data import intervals, photo_control
from pipeline.data.sequences import TupleDraw, no_tuples, permutations, tuple_rows
from pipeline.layout import SEQUENCES, tuples_path


class PhotoBatches(Dataset):
    """Single photos and their ages, indexed by a *list* of positions (batch_size=None loaders): one fancy-index
    read per batch. Returns uint8 images (B, C, H, W) and ages; normalisation and augmentation run later on the
    device, so loading stays a memcpy."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, ages: np.ndarray):
        self.images, self.rows, self.ages = images, rows, ages

    def set_epoch(self, epoch: int) -> None:
        """Nothing to redraw: a photo epoch's order is the sampler's."""

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        positions = np.asarray(positions)
        pixels = self.images[self.rows[positions]]  # (B, H, W, C)
        return torch.from_numpy(pixels).permute(0, 3, 1, 2), torch.from_numpy(self.ages[positions])


class TupleBatches(Dataset):
    """VCOP tuples of cache rows in temporal order, each shuffled by a permutation drawn per (seed, epoch); returns
    uint8 images (B, T, C, H, W) and the index of the applied permutation (the label). With `draw`, the tuples
    themselves are drawn afresh each epoch."""

    def __init__(self, images: np.ndarray, rows: np.ndarray, seed: int = 0,
                 draw: Callable[[int], np.ndarray] | None = None, control: str = "none"):
        self.images, self.rows, self.seed, self.draw = images, rows, seed, draw  # rows: (N, T)
        self.control = control  # pipeline.data.photo_control: what of the photograph the tuples still show
        self.tuple_len = rows.shape[1]
        self.perms = permutations(self.tuple_len)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """A fresh, reproducible shuffle of every tuple: label = index of the applied permutation (and, with
        `draw`, fresh tuples first)."""
        if self.draw is not None:
            self.rows = self.draw(epoch)
        rng = np.random.default_rng([self.seed, epoch, 17])
        self.labels = rng.integers(0, len(self.perms), size=len(self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        positions = np.asarray(positions)
        labels = self.labels[positions]
        ordered = self.rows[positions]  # (B, T) in temporal order
        shuffled = np.take_along_axis(ordered, self.perms[labels], axis=1)  # element k = ordered[perm[k]]
        flat = shuffled.reshape(-1)
        pixels = photo_control.apply(self.images[flat], self.control, flat)
        pixels = pixels.reshape(*shuffled.shape, *self.images.shape[1:])
        return torch.from_numpy(pixels).permute(0, 1, 4, 2, 3), torch.from_numpy(labels)


@dataclass
class EpochLoader:
    """A DataLoader whose order (and tuple shuffles) depend only on (seed, epoch): resuming replays exactly."""

    dataset: PhotoBatches | TupleBatches
    loader: DataLoader
    generator: torch.Generator
    seed: int

    def epoch(self, epoch: int) -> DataLoader:
        self.generator.manual_seed(self.seed * 1000003 + epoch)
        self.dataset.set_epoch(epoch)
        return self.loader

    def __len__(self) -> int:
        return len(self.loader)


class RankSlice:
    """This process's share of each global batch (the DistributedSampler idea, applied per batch).

    Every rank draws the same global batches (same seed and epoch) and keeps positions rank, rank + N, ...:
    N processes take the same optimizer steps on the same global batches as one process, so the label budget
    (steps x batch size) does not depend on the process count. A batch smaller than N (only ever the final
    one) is skipped, as no rank may get an empty share; `__len__` counts the batches yielded, so the LR schedule
    sized from it ends where the steps do.
    """

    def __init__(self, batches: BatchSampler, rank: int, world_size: int):
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            if len(batch) >= self.world_size:
                yield batch[self.rank::self.world_size]

    def __len__(self) -> int:
        # from the sizes, not by drawing the batches: that would advance the shuffle's generator
        n, size = len(self.batches.sampler), self.batches.batch_size
        full, rest = divmod(n, size)
        kept = full if size >= self.world_size else 0
        return kept + int(not self.batches.drop_last and self.world_size <= rest)


def _seed_worker(worker_id: int) -> None:
    np.random.seed((torch.initial_seed() + worker_id) % 2**32)


def make_loader(dataset: PhotoBatches | TupleBatches, batch_size: int, train: bool, seed: int, device: torch.device,
                num_workers: int = 0) -> EpochLoader:
    if len(dataset) == 0:
        raise ValueError("empty data set: the split has no photos or tuples; check the data stages' counts")
    generator = torch.Generator()
    base = RandomSampler(dataset, generator=generator) if train else SequentialSampler(dataset)
    # drop_last only when it loses < 1 batch of a big set: tiny sets must still give a step
    drop_last = train and len(dataset) >= 4 * batch_size
    sampler = BatchSampler(base, batch_size=min(batch_size, len(dataset)), drop_last=drop_last)
    rank, world_size = runtime.world()
    if world_size > 1:
        sampler = RankSlice(sampler, rank, world_size)
    loader = DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
                        pin_memory=device.type == "cuda", worker_init_fn=_seed_worker,
                        persistent_workers=num_workers > 0)
    return EpochLoader(dataset, loader, generator, seed)


def photo_dataset(images: np.ndarray, table: pd.DataFrame) -> PhotoBatches:
    """A split's photos with their labels: ages (N,), or [low, high] (N, 2) when the split carries age intervals
    (pipeline.steps.age_loss reads either)."""
    if table.empty:
        raise ValueError("empty split: no photos to train or evaluate on")
    if intervals.has_intervals(table):
        labels = np.stack(intervals.bounds(table), axis=1).astype(np.float32)
    else:
        labels = table["age"].to_numpy(np.float32)
    return PhotoBatches(images, table["cache_row"].to_numpy(np.int64), labels)


def tuple_dataset(images: np.ndarray, tuples: pd.DataFrame, seed: int, control: str = "none") -> TupleBatches:
    return TupleBatches(images, tuple_rows(tuples), seed=seed, control=control)


def resampled_tuple_dataset(images: np.ndarray, photos: pd.DataFrame, tuple_len: int, min_gap_years: float,
                            n_per_person: int, seed: list[int], control: str = "none") -> TupleBatches:
    """Tuples drawn afresh every epoch (set_epoch) from the persons of `photos` (build_sequences' train_photos.csv)."""
    draw = TupleDraw(photos, tuple_len, min_gap_years, n_per_person, seed)
    return TupleBatches(images, draw(0), seed=seed[-1], draw=draw, control=control)


def tuple_loader(images: np.ndarray, split: Literal["train", "val"], batch_size: int, seed: int,
                 device: torch.device, train_mode: bool, num_workers: int = 0,
                 control: str = "none") -> EpochLoader:
    """VCOP tuple batches of build_sequences' `split`; training tuples are drawn afresh each epoch when
    build_sequences.resample_each_epoch wrote the photos to draw from. `control`: pipeline.data.photo_control."""
    path = tuples_path(split)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro build_sequences`")
    tuples = pd.read_csv(path, dtype={"person_id": str})
    if tuples.empty:
        raise no_tuples(f"in {path}")
    sampling = SEQUENCES / "sampling.json"
    if split == "train" and sampling.exists() and (draw := json.loads(sampling.read_text()))["resample_each_epoch"]:
        # fresh tuples each epoch from every valid tuple of the training persons (build_sequences wrote them)
        photos = read_split(SEQUENCES / "train_photos.csv")
        dataset = resampled_tuple_dataset(images, photos, draw["tuple_len"], draw["min_gap_years"],
                                          draw["tuples_per_person"], [draw["seed"], seed], control)
    else:
        dataset = tuple_dataset(images, tuples, seed, control)
    return make_loader(dataset, batch_size, train_mode, seed, device, num_workers)


def read_split(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro split_korean`")
    return pd.read_csv(path, dtype={"person_id": str, "path": str}, keep_default_na=False)


@dataclass
class Loaders:
    """A training phase's batches; each has .epoch(e) -> iterable of batches (EpochLoader or JoinedLoader).
    `statistics`, when set, are the training batches BatchNorm statistics are recomputed from (pipeline.batchnorm)
    in the same order as `train`; None: `train` itself."""

    train: Any
    val: Any
    statistics: Any = None

    def statistics_batches(self) -> Any:
        return self.train if self.statistics is None else self.statistics


class JoinedLoader:
    """Each batch of `main` joined by `join` with the next batch of `partner`, whose epochs cycle as needed. An
    epoch is one pass over `main`. Without a partner (validation) `join` gets None. Made by mixed_loader and
    paired_loader."""

    def __init__(self, main: EpochLoader | JoinedLoader, partner: EpochLoader | None,
                 join: Callable[[Any, Any], Any]):
        self.main, self.partner, self.join = main, partner, join

    def epoch(self, epoch: int) -> Iterable:
        return _Joined(self, epoch)

    def __len__(self) -> int:
        return len(self.main)


class _Joined:
    def __init__(self, parent: JoinedLoader, epoch: int):
        self.parent, self.epoch_index = parent, epoch

    def __len__(self) -> int:
        return len(self.parent.main)

    def __iter__(self) -> Iterator:
        parent = self.parent
        next_partner = _cycling(parent.partner, self.epoch_index * 1000) if parent.partner is not None else None
        for batch in parent.main.epoch(self.epoch_index):
            yield parent.join(batch, next_partner() if next_partner is not None else None)


def _concat(batch: tuple[torch.Tensor, torch.Tensor], more: tuple[torch.Tensor, torch.Tensor]
            ) -> tuple[torch.Tensor, torch.Tensor]:
    labels = [batch[1], more[1]]
    if labels[0].dim() != labels[1].dim():  # exact ages beside intervals: an exact age is the interval [a, a]
        labels = [x if x.dim() == 2 else torch.stack([x, x], dim=1) for x in labels]
    return torch.cat([batch[0], more[0]]), torch.cat(labels)


def _pair(batch: Any, tuples: Any) -> tuple[Any, Any]:
    return batch, tuples


def mixed_loader(main: EpochLoader, extra: EpochLoader) -> JoinedLoader:
    """Each batch of the phase's photos plus a batch of other photos, one labelled batch (budget.korean.general_mix:
    general training photos against forgetting)."""
    return JoinedLoader(main, extra, _concat)


def paired_loader(age: EpochLoader | JoinedLoader, tuples: EpochLoader | None) -> JoinedLoader:
    """Each labelled age batch paired with the next tuple batch (multitrain); tuples None: (batch, None)."""
    return JoinedLoader(age, tuples, _pair)


def multitask_loaders(age: Loaders, tuples: EpochLoader) -> Loaders:
    """Multitrain's batches: each labelled training batch paired with a tuple batch; validation scores the age
    photos alone, and so does BatchNorm recalibration: the scored age encoder's statistics come from the photos it
    is scored like, not from the tuples its coupling also runs through it (benchmarks/README.md "The default on
    two machines": Korean test 4.49 ± 0.06 over 3 seeds instead of 4.71 ± 0.22)."""
    return Loaders(paired_loader(age.train, tuples), paired_loader(age.val, None),
                   statistics=paired_loader(age.train, None))


def _cycling(loader: EpochLoader, first_epoch: int) -> Callable[[], Any]:
    """next() over `loader`'s epochs first_epoch, first_epoch + 1, ... for as long as the caller needs.

    A joined loader numbers its partner's epochs from its own (epoch x 1000), so a resumed run replays the same
    batches. The first epoch's iterator is made at once, before the caller's own: iterating a DataLoader draws
    its base seed from the global RNG, and that order fixes every later augmentation.
    """
    epoch, batches = first_epoch, iter(loader.epoch(first_epoch))

    def next_batch() -> Any:
        nonlocal epoch, batches
        try:
            return next(batches)
        except StopIteration:
            epoch += 1
            batches = iter(loader.epoch(epoch))
            batch = next(batches, None)
            if batch is None:
                raise ValueError("a joined loader's partner (general photos or VCOP tuples) yields no batches; "
                                 "check the data stages' counts") from None
            return batch

    return next_batch
