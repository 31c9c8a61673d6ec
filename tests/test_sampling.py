"""Data options of the training recipe: VCOP tuples drawn afresh each epoch, and general photos mixed into Korean batches."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline import layout, phases, steps, train
from pipeline.data import loaders as L
from pipeline.config import TrainConfig
from pipeline.data import sequences
from pipeline.models.tasks import to_normalised

CPU = torch.device("cpu")


def photos(persons: dict[str, list[float]], first_row: int = 0) -> pd.DataFrame:
    rows = [(p, a) for p, ages in persons.items() for a in ages]
    return pd.DataFrame({"person_id": [p for p, _ in rows], "age": [a for _, a in rows],
                         "cache_row": np.arange(first_row, first_row + len(rows))})


def cache_images(n: int) -> np.ndarray:
    """Pixel (0, 0, 0) of photo r holds r: a batch names the cache rows it came from."""
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    return images


# --------------------------------------------------------------------------------- tuples drawn each epoch
TRAIN = photos({f"p{i}": list(np.linspace(10, 40, 8)) for i in range(6)})  # 6 persons x 8 photos, rows 0-47
VAL = photos({"v0": [10, 20, 30, 40]}, first_row=48)


@pytest.fixture
def sequence_files(in_tmp):
    def write(resample: bool) -> None:
        out = layout.SEQUENCES
        out.mkdir(parents=True, exist_ok=True)
        for split, df in (("train", TRAIN), ("val", VAL)):
            sequences.build_tuples(df, 3, 2.0, 4, seed=0)[0].to_csv(out / f"{split}.csv", index=False)
        TRAIN.to_csv(out / "train_photos.csv", index=False)
        (out / "sampling.json").write_text(json.dumps({"resample_each_epoch": resample, "seed": 0, "tuple_len": 3,
                                                       "min_gap_years": 2.0, "tuples_per_person": 4}))
    return write


def drawn(loader, epoch: int) -> set[tuple[int, ...]]:
    """The tuples (as sorted cache rows: the order is the permutation's) of one epoch."""
    return {tuple(sorted(t[:, 0, 0, 0].tolist())) for batch, _ in loader.epoch(epoch) for t in batch}


def test_training_tuples_are_drawn_afresh_each_epoch_reproducibly(sequence_files):
    sequence_files(resample=True)
    images = cache_images(60)
    loader = L.tuple_loader(images, "train", 8, 0, CPU, True)
    first, second = drawn(loader, 0), drawn(loader, 1)
    assert first != second and len(first) == len(second) == 6 * 4  # tuples_per_person per person per epoch
    assert drawn(L.tuple_loader(images, "train", 8, 0, CPU, True), 1) == second  # same seed, same draw
    assert drawn(L.tuple_loader(images, "train", 8, 1, CPU, True), 1) != second  # another training seed
    # over epochs the pool is every valid tuple of the training persons, not the fixed 4 per person
    assert len(set().union(*(drawn(loader, e) for e in range(6)))) > 2 * len(first)
    assert all(max(t) < 48 for e in range(3) for t in drawn(loader, e))  # training persons' photos only


def test_a_resumed_run_draws_what_an_uninterrupted_one_did(sequence_files):
    sequence_files(resample=True)
    images = cache_images(60)
    uninterrupted = L.tuple_loader(images, "train", 8, 0, CPU, True)
    epochs = [[(b.clone(), y.clone()) for b, y in uninterrupted.epoch(e)] for e in range(3)]
    resumed = L.tuple_loader(images, "train", 8, 0, CPU, True)  # a new process starting at epoch 2
    for (a, la), (b, lb) in zip(epochs[2], resumed.epoch(2)):
        assert torch.equal(a, b) and torch.equal(la, lb)


def test_drawn_tuples_are_one_person_in_time_order_with_the_gap():
    df = photos({"a": [10, 11, 14, 20, 30], "b": [5, 6, 7]})  # b has no two photos 2 years apart
    draw = sequences.TupleDraw(df, 3, 2.0, 3, [0, 0])
    age_of = df.set_index("cache_row")["age"]
    for epoch in range(5):
        rows = draw(epoch)
        assert rows.shape == (3, 3) and rows.max() <= 4  # person a's photos only
        assert (np.diff(age_of[rows.ravel()].to_numpy().reshape(rows.shape), axis=1) >= 2.0).all()


def test_fixed_tuples_stay_the_default(sequence_files):
    sequence_files(resample=False)
    loader = L.tuple_loader(cache_images(60), "train", 8, 0, CPU, True)
    fixed = {tuple(r) for r in sequences.tuple_rows(pd.read_csv(layout.SEQUENCES / "train.csv"))}
    assert drawn(loader, 0) == drawn(loader, 1) == fixed
    val = L.tuple_loader(cache_images(60), "val", 8, 0, CPU, False)  # val tuples are never redrawn
    sequence_files(resample=True)
    assert drawn(val, 0) == drawn(L.tuple_loader(cache_images(60), "val", 8, 0, CPU, False), 3)


# ----------------------------------------------------------------------------- general photos in Korean batches
@pytest.fixture
def split_files(in_tmp):
    """Korean train rows 0-39 (ages < 50), Korean val 40-49, general train 50-89, general val/test 90-119."""
    layout.SPLITS.mkdir(parents=True)
    tables = {"korean_train_labelled": photos({f"k{i}": [20.0 + i] * 4 for i in range(10)}),
              "korean_val": photos({"kv": [30.0] * 10}, 40),
              "general_train": photos({f"g{i}": [60.0 + i] * 2 for i in range(20)}, 50),
              "general_val": photos({f"gv{i}": [70.0] * 2 for i in range(15)}, 90)}
    for name, table in tables.items():
        table.to_csv(layout.split_path(name), index=False)
    return cache_images(120)


def test_general_mix_puts_that_share_of_general_training_photos_in_each_korean_batch(split_files):
    cfg = TrainConfig(seed=0, epochs=1, batch_size=16, lr=1.0e-3)
    loaders = phases.age_loaders(split_files, "korean", cfg, CPU, general_mix=0.25)
    korean_seen = []
    for epoch in range(2):
        batches = list(loaders.train.epoch(epoch))
        assert len(batches) == len(loaders.train) == 4  # one pass over the 40 Korean photos, 12 per batch
        for images, ages in batches:
            rows = images[:, 0, 0, 0].long()
            general = rows >= 50
            assert int(general.sum()) == 4  # round(0.25 x 16) general photos in every batch
            assert ((rows < 40) | ((rows >= 50) & (rows < 90))).all()  # training photos only: no val, no test
            assert torch.equal(general, ages >= 60)  # each photo keeps its own label
            korean_seen += rows[~general].tolist()
    assert sorted(korean_seen) == sorted(list(range(40)) * 2)  # every Korean photo once per epoch
    assert all(((images[:, 0, 0, 0] >= 40) & (images[:, 0, 0, 0] < 50)).all() for images, _ in loaders.val.epoch(0))


def test_general_mix_zero_is_the_plain_loader(split_files):
    cfg = TrainConfig(seed=0, epochs=1, batch_size=8, lr=1.0e-3)
    plain = [b[1].tolist() for b in phases.age_loaders(split_files, "korean", cfg, CPU).train.epoch(0)]
    assert all(max(ages) < 50 for ages in plain) and len(plain) == 5


class ConstantAge(torch.nn.Module):
    """Predicts one age for every photo (in the head's normalised units)."""

    def __init__(self, years: float):
        super().__init__()
        self.value = float(to_normalised(torch.tensor(years)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.full((images.shape[0],), self.value)


@pytest.mark.parametrize("years,expected", [(70.0, 0.0), (64.5, 5.5)])
def test_forgetting_is_scored_on_the_general_validation_photos(split_files, years, expected):
    cfg = TrainConfig(seed=0, epochs=1, batch_size=8, lr=1.0e-3)
    state = torch.random.get_rng_state()
    # general val is all 70: the general *training* photos (60-79) would give another number
    assert phases.general_val_mae(ConstantAge(years), split_files, cfg, CPU) == pytest.approx(expected, abs=1e-4)
    assert torch.equal(torch.random.get_rng_state(), state)  # measuring draws nothing from training's stream


# ----------------------------------------------------------------------------------------- joined loaders
def rows_of(batch) -> list[int]:
    return batch[:, 0, 0, 0].tolist()


def joined_rows(loader, epoch: int) -> list[tuple[list[int], list[int]]]:
    """Per batch of a paired(mixed(...)) loader: (rows of the mixed age batch, rows of the tuple batch)."""
    return [(rows_of(age[0]), rows_of(tuples[0].flatten(0, 1))) for age, tuples in loader.epoch(epoch)]


def test_a_shorter_partner_cycles_through_whole_epochs_of_its_own(split_files):
    # 40 Korean photos in batches of 4 (10 batches) against 40 general photos in batches of 16 (3 batches, last short)
    korean = L.make_loader(L.photo_dataset(split_files, L.read_split(layout.split_path("korean_train_labelled"))),
                           4, True, 0, CPU)
    general = L.make_loader(L.photo_dataset(split_files, L.read_split(layout.split_path("general_train"))),
                            16, True, 0, CPU)
    extra = [rows_of(images)[4:] for images, _ in L.mixed_loader(korean, general).epoch(0)]
    assert len(extra) == 10
    # partner epochs 0, 1, 2 (3 batches each) then 3: each full cycle shows every general training photo once
    for cycle in range(3):
        assert sorted(r for batch in extra[3 * cycle: 3 * cycle + 3] for r in batch) == list(range(50, 90))
    assert extra[:3] != extra[3:6]  # each cycle is a new partner epoch, not a replay


def test_paired_mixed_batches_of_an_epoch_do_not_depend_on_earlier_epochs(split_files, sequence_files):
    """What a resumed run relies on: epoch e's batches come from e alone (multitrain with general_mix)."""
    sequence_files(resample=False)

    def loader():
        cfg = TrainConfig(seed=0, epochs=3, batch_size=8, lr=1.0e-3)
        age = phases.age_loaders(split_files, "korean", cfg, CPU, general_mix=0.25)
        return L.paired_loader(age.train, L.tuple_loader(split_files, "train", 4, 0, CPU, True))

    full = loader()
    for epoch in range(2):
        joined_rows(full, epoch)
    assert joined_rows(full, 2) == joined_rows(loader(), 2)


# ------------------------------------------------------------------------------- forgetting in run_age_phases
@pytest.mark.parametrize("separate_age_model", [False, True])
def test_the_korean_phase_scores_forgetting_of_the_age_model_it_returns(split_files, monkeypatch,
                                                                          separate_age_model):
    from pipeline.config import BudgetConfig, KoreanPhaseConfig, OptimConfig, TrainBaselineConfig

    trained, scored = [], []

    def fake_fit(model, loaders, step, cfg, ckpt_dir, device, **kwargs):  # the loop itself is tested elsewhere
        trained.append(kwargs["tag"])
        return train.FitResult(best={"val_mae": 1.0, "best_epoch": 1}, history=[])

    monkeypatch.setattr(phases, "open_images", lambda _: split_files)
    monkeypatch.setattr(phases.train, "fit", fake_fit)
    monkeypatch.setattr(phases, "general_val_mae", lambda model, *a: scored.append(model) or 9.5)
    budget = BudgetConfig(general=OptimConfig(epochs=1, batch_size=8, lr=1e-3),
                          korean=KoreanPhaseConfig(epochs=1, batch_size=8, lr=1e-3, general_mix=0.25))
    model, age = ConstantAge(30.0), ConstantAge(40.0)
    metrics, _ = phases.run_age_phases(model, "stage", ["general", "korean"], budget,
                                       TrainBaselineConfig(seed=0, encoder="tiny_cnn", encoder_weights="none"), CPU, steps.age_step,
                                       age_model=age if separate_age_model else None)
    assert trained == ["stage/general", "stage/korean"]
    assert scored == [age if separate_age_model else model]  # once, after the Korean phase, the age regressor
    assert metrics["korean_general_val_mae"] == 9.5 and "general_general_val_mae" not in metrics
