"""Batches from the uint8 cache: single photos for age regression, shuffled tuples for VCOP, one code path."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from pipeline import runtime
from pipeline.data.sequences import TupleDraw, permutations, tuple_rows


class CacheBatches(Dataset):
    """Indexed by a *list* of positions (batch_size=None loaders): one fancy-index read per batch.

    Returns uint8 images (B, C, H, W) — or (B, T, C, H, W) for tuples — and the targets. Normalisation and
    augmentation run later on the device, so loading stays a memcpy.
    """

    def __init__(self, images: np.ndarray, rows: np.ndarray, targets: np.ndarray, tuple_len: int = 0,
                 seed: int = 0, draw: Callable[[int], np.ndarray] | None = None):
        self.images, self.rows, self.targets = images, rows, targets
        self.tuple_len, self.seed, self.draw = tuple_len, seed, draw
        self.perms = permutations(tuple_len) if tuple_len else None
        self.labels = np.zeros(len(rows), dtype=np.int64)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """A fresh, reproducible shuffle of every tuple: label = index of the applied permutation (and, with
        `draw`, fresh tuples first)."""
        if self.draw is not None:
            self.rows = self.draw(epoch)
            self.targets = np.zeros(len(self.rows), np.float32)
        if self.perms is not None:
            rng = np.random.default_rng([self.seed, epoch, 17])
            self.labels = rng.integers(0, len(self.perms), size=len(self.rows))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        positions = np.asarray(positions)
        if self.perms is None:
            pixels = self.images[self.rows[positions]]  # (B, H, W, C)
            return torch.from_numpy(pixels).permute(0, 3, 1, 2), torch.from_numpy(self.targets[positions])
        labels = self.labels[positions]
        ordered = self.rows[positions]  # (B, T) in temporal order
        shuffled = np.take_along_axis(ordered, self.perms[labels], axis=1)  # element k = ordered[perm[k]]
        pixels = self.images[shuffled.reshape(-1)].reshape(*shuffled.shape, *self.images.shape[1:])
        return torch.from_numpy(pixels).permute(0, 1, 4, 2, 3), torch.from_numpy(labels)


@dataclass
class EpochLoader:
    """A DataLoader whose order (and tuple shuffles) depend only on (seed, epoch): resuming replays exactly."""

    dataset: CacheBatches
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


def make_loader(dataset: CacheBatches, batch_size: int, train: bool, seed: int, device: torch.device,
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


def photo_dataset(images: np.ndarray, table: pd.DataFrame) -> CacheBatches:
    if table.empty:
        raise ValueError("empty split: no photos to train or evaluate on")
    return CacheBatches(images, table["cache_row"].to_numpy(np.int64), table["age"].to_numpy(np.float32))


def tuple_dataset(images: np.ndarray, tuples: pd.DataFrame, seed: int) -> CacheBatches:
    rows = tuple_rows(tuples)
    return CacheBatches(images, rows, np.zeros(len(rows), np.float32), tuple_len=rows.shape[1], seed=seed)


def resampled_tuple_dataset(images: np.ndarray, photos: pd.DataFrame, tuple_len: int, min_gap_years: float,
                            n_per_person: int, seed: list[int]) -> CacheBatches:
    """Tuples drawn afresh every epoch (set_epoch) from the persons of `photos` (build_sequences' train_photos.csv)."""
    draw = TupleDraw(photos, tuple_len, min_gap_years, n_per_person, seed)
    rows = draw(0)
    return CacheBatches(images, rows, np.zeros(len(rows), np.float32), tuple_len=tuple_len, seed=seed[-1], draw=draw)


def read_split(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `dvc repro split_korean`")
    return pd.read_csv(path, dtype={"person_id": str, "path": str}, keep_default_na=False)


@dataclass
class Loaders:
    """A training phase's batches; each has .epoch(e) -> iterable of batches (EpochLoader or PairedLoader)."""

    train: Any
    val: Any


class MixedLoader:
    """Each batch of the phase's photos joined by a batch of other photos (budget.korean.general_mix: general
    training photos against forgetting). An epoch is one pass over `main`; `extra`'s epochs cycle as needed,
    numbered from main's epoch, so a resumed run replays the same batches."""

    def __init__(self, main: EpochLoader, extra: EpochLoader):
        self.main, self.extra = main, extra

    def epoch(self, epoch: int) -> Iterable:
        return _Mixed(self, epoch)

    def __len__(self) -> int:
        return len(self.main)


class _Mixed:
    def __init__(self, parent: MixedLoader, epoch: int):
        self.parent, self.epoch_index = parent, epoch

    def __len__(self) -> int:
        return len(self.parent.main)

    def __iter__(self) -> Iterator:
        extra_epoch = self.epoch_index * 1000
        extra_iter = iter(self.parent.extra.epoch(extra_epoch))
        for images, ages in self.parent.main.epoch(self.epoch_index):
            try:
                more_images, more_ages = next(extra_iter)
            except StopIteration:
                extra_epoch += 1
                extra_iter = iter(self.parent.extra.epoch(extra_epoch))
                more_images, more_ages = next(extra_iter)
            yield torch.cat([images, more_images]), torch.cat([ages, more_ages])


class PairedLoader:
    """Each labelled age batch paired with the next tuple batch (tuple epochs cycle as needed): multitrain."""

    def __init__(self, age: EpochLoader, tuples: EpochLoader | None):
        self.age, self.tuples = age, tuples

    def epoch(self, epoch: int) -> Iterable:
        return _Paired(self, epoch)

    def __len__(self) -> int:
        return len(self.age)


class _Paired:
    def __init__(self, parent: PairedLoader, epoch: int):
        self.parent, self.epoch_index = parent, epoch

    def __len__(self) -> int:
        return len(self.parent.age)

    def __iter__(self) -> Iterator:
        parent = self.parent
        if parent.tuples is None:  # validation: age batches alone
            for batch in parent.age.epoch(self.epoch_index):
                yield batch, None
            return
        # tuple epochs are numbered from the age epoch, so a resumed run replays the same pairs
        tuple_epoch = self.epoch_index * 1000
        tuple_iter = iter(parent.tuples.epoch(tuple_epoch))
        for batch in parent.age.epoch(self.epoch_index):
            try:
                tuple_batch = next(tuple_iter)
            except StopIteration:
                tuple_epoch += 1
                tuple_iter = iter(parent.tuples.epoch(tuple_epoch))
                tuple_batch = next(tuple_iter)
            yield batch, tuple_batch
