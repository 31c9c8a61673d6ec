"""Manifests, identity-disjoint splits and VCOP tuples (the cache: tests/test_cache.py)."""

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.data import loaders, manifest, sequences, splits
from tests.helpers import write_photos


# ------------------------------------------------------------------------------------------------ manifests
@pytest.fixture
def good(tmp_path) -> pd.DataFrame:
    return write_photos(tmp_path / "img", {"a": [10, 20], "b": [30, 40]})


def test_valid_manifest_round_trips(good, tmp_path):
    path = tmp_path / "m.csv"
    good.to_csv(path, index=False)
    table = manifest.read_manifest(path)
    assert list(table.columns[:4]) == ["path", "person_id", "age", "domain"] and len(table) == 4


@pytest.mark.parametrize("change,message", [
    (lambda df: df.drop(columns="age"), r"missing column\(s\) \['age'\]"),
    (lambda df: df.assign(age=["ten", 20, 30, 40]), r"non-numeric or missing age at line\(s\) 2"),
    (lambda df: df.assign(age=[np.nan, 20, 30, 40]), "non-numeric or missing age"),
    (lambda df: df.assign(age=[10, -1, 30, 40]), r"impossible age at line\(s\) 3"),
    (lambda df: df.assign(age=[10, 20, 130, 40]), r"impossible age at line\(s\) 4.*\[0, 120\]"),
    (lambda df: df.assign(person_id=["a", "", "b", "b"]), "empty person_id"),
    (lambda df: df.assign(path=[df.path[0]] * 2 + list(df.path[2:])), "duplicate path at line"),
    (lambda df: df.assign(domain=["general", "mars", "korean", "korean"]), "unknown domain"),
    (lambda df: df.assign(path=["missing.jpg"] + list(df.path[1:])), r"file not found at line\(s\) 2"),
    (lambda df: df.iloc[:0], "no rows"),
])
def test_bad_manifests_are_rejected_naming_file_and_row(good, tmp_path, change, message):
    path = tmp_path / "bad.csv"
    change(good).to_csv(path, index=False)
    with pytest.raises(manifest.ManifestError, match=message) as err:
        manifest.read_manifest(path)
    assert str(path) in str(err.value)


def test_float_ages_are_accepted(good, tmp_path):
    path = tmp_path / "m.csv"
    good.assign(age=[10.5, 20.25, 30, 40]).to_csv(path, index=False)
    assert manifest.read_manifest(path)["age"].tolist() == [10.5, 20.25, 30.0, 40.0]


def test_line_numbers_count_blank_lines(good, tmp_path):
    path = tmp_path / "m.csv"
    header, *rows = good.assign(age=[10, 20, 30, 140]).to_csv(index=False).splitlines()
    path.write_text("\n".join([header, rows[0], "", "", rows[1], rows[2], rows[3]]) + "\n")
    with pytest.raises(manifest.ManifestError, match=r"impossible age at line\(s\) 7 "):
        manifest.read_manifest(path)


@pytest.mark.parametrize("text,message", [
    ("", "the file is empty"),
    ("path,person_id,age,domain\na.jpg,a,10,korean\nb.jpg,b,20,korean,extra,fields\n", r"malformed CSV.*line 3"),
])
def test_empty_or_malformed_manifest_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(manifest.ManifestError, match=message) as err:
        manifest.read_manifest(path)
    assert str(path) in str(err.value)


def test_missing_manifest_names_the_stage(tmp_path):
    with pytest.raises(manifest.ManifestError, match="dvc repro prepare_data"):
        manifest.read_manifest(tmp_path / "nope.csv")


# --------------------------------------------------------------------------------------------------- splits
def many_persons(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"path": f"p{i}_{k}.jpg", "person_id": f"p{i}", "age": float(rng.uniform(0, 80)), "domain": "korean"}
            for i in range(n) for k in range(int(rng.integers(1, 6)))]
    return pd.DataFrame(rows)


def test_splits_are_identity_disjoint_deterministic_and_sized():
    df = many_persons()
    split = splits.split_by_identity(df, 0, 0.15, 0.25, "korean")
    assert (split == splits.split_by_identity(df, 0, 0.15, 0.25, "korean")).all()
    assert not (split == splits.split_by_identity(df, 1, 0.15, 0.25, "korean")).all()
    persons = {name: set(df.loc[split == name, "person_id"]) for name in ("train", "val", "test")}
    assert not (persons["train"] & persons["val"] or persons["train"] & persons["test"] or
                persons["val"] & persons["test"])
    assert len(persons["test"]) == pytest.approx(15, abs=2) and len(persons["val"]) == pytest.approx(9, abs=2)
    paths = {name: set(df.loc[split == name, "path"]) for name in persons}
    assert sum(map(len, paths.values())) == len(df)


def test_adversarial_person_with_many_photos_stays_on_one_side():
    df = pd.concat([many_persons(20), pd.DataFrame([{"path": f"big_{k}.jpg", "person_id": "big", "age": float(k),
                                                     "domain": "korean"} for k in range(80)])], ignore_index=True)
    split = splits.split_by_identity(df, 3, 0.2, 0.2, "korean")
    assert split[df["person_id"] == "big"].nunique() == 1


def test_leave_one_person_out_fold():
    df = many_persons(30)
    split = splits.split_leave_one_out(df, "p7", 0, 0.2)
    assert set(df.loc[split == "test", "person_id"]) == {"p7"}
    assert (split[df["person_id"] == "p7"] == "test").all() and set(split) == {"train", "val", "test"}
    with pytest.raises(splits.EmptySplitError, match="korean_test_person: no Korean person 'nobody'"):
        splits.split_leave_one_out(df, "nobody", 0, 0.2)


def test_too_few_persons_gives_an_empty_split_error():
    df = many_persons(2)
    with pytest.raises(splits.EmptySplitError, match="split is empty"):
        splits.split_by_identity(df, 0, 0.15, 0.25, "korean")


def test_a_test_split_too_small_for_a_ci_fails_naming_the_keys():
    df = many_persons(8)
    df["split"] = splits.split_by_identity(df, 0, 0.25, 0.25, "korean")
    assert df.loc[df["split"] == "test", "person_id"].nunique() == 2
    with pytest.raises(splits.EmptySplitError, match="split_korean.korean_test_frac.*korean_test_person"):
        splits.check_evaluable(df, leave_one_out=False)
    splits.check_evaluable(df, leave_one_out=True)  # one test person is the protocol there


def test_general_keeps_official_test_list_and_carves_val_by_person():
    df = many_persons(40).assign(domain="general")
    df["split_hint"] = np.where(df["person_id"].str[1:].astype(int) < 10, "test", "train")
    split = splits.split_general(df, 0, 0.2, 0.25)
    assert (split[df["split_hint"] == "test"] == "test").all()
    assert set(split[df["split_hint"] == "train"]) == {"train", "val"}


def test_official_lists_that_share_a_person_are_refused():
    df = many_persons(10).assign(domain="general", split_hint="train")
    df.loc[0, "split_hint"] = "test"
    df.loc[1, "person_id"] = df.loc[0, "person_id"]
    with pytest.raises(splits.EmptySplitError, match="in train and test"):
        splits.split_general(df, 0, 0.2, 0.25)


def test_label_budget_is_a_subset_of_persons():
    train = many_persons(40)
    subset = splits.labelled_subset(train, 0.25, 0)
    assert subset["person_id"].nunique() == 10
    assert set(subset["path"]) <= set(train["path"])
    assert (train[train["person_id"].isin(subset["person_id"])].index == subset.index).all()  # whole persons


# ---------------------------------------------------------------------------------------------- sequences
def korean_with_rows(ages_by_person: dict[str, list[float]]) -> pd.DataFrame:
    rows, r = [], 0
    for person, ages in ages_by_person.items():
        for age in ages:
            rows.append({"person_id": person, "age": age, "cache_row": r, "date": ""})
            r += 1
    return pd.DataFrame(rows)


def test_tuples_are_same_person_ordered_with_gap_and_unique():
    df = korean_with_rows({"a": [30, 10, 20, 21, 40, 50], "b": [1, 2, 3], "c": [5, 5, 5, 5], "d": [10]})
    tuples, counts = sequences.build_tuples(df, 3, 2.0, 50, seed=0)
    rows = sequences.tuple_rows(tuples)
    ages = tuples[["age_0", "age_1", "age_2"]].to_numpy()
    assert (np.diff(ages, axis=1) >= 2.0).all()
    assert set(tuples["person_id"]) == {"a"}
    person_of_row = df.set_index("cache_row")["person_id"]
    assert all(len({person_of_row[r] for r in row}) == 1 for row in rows)
    assert len({tuple(r) for r in rows}) == len(rows)
    assert counts["n_persons_too_few_photos"] == 1 and counts["n_persons_no_gap"] == 2


def test_dates_order_tuples_when_present():
    df = korean_with_rows({"a": [30, 30, 30]})
    df["date"] = ["2010-01-01", "2001-01-01", "2005-06-01"]
    tuples, _ = sequences.build_tuples(df, 3, 1.0, 5, seed=0)
    assert sequences.tuple_rows(tuples).tolist() == [[1, 2, 0]]


def test_many_photos_are_sampled_not_enumerated():
    df = korean_with_rows({"a": list(np.linspace(0, 80, 60))})
    tuples, _ = sequences.build_tuples(df, 5, 1.0, 30, seed=0)
    assert len(tuples) == 30


def test_tuple_dataset_applies_the_labelled_permutation_reproducibly():
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    tuples = pd.DataFrame({"person_id": ["a", "b"], "row_0": [0, 5], "row_1": [1, 6], "row_2": [2, 7]})
    data = loaders.tuple_dataset(images, tuples, seed=0)
    perms = sequences.permutations(3)
    seen = []
    for epoch in range(4):
        data.set_epoch(epoch)
        pixels, labels = data[[0, 1]]
        assert pixels.shape == (2, 3, 3, 4, 4)
        got = pixels[:, :, 0, 0, 0]  # element k shows ordered row perm[label][k]
        want = torch.tensor([[0, 1, 2], [5, 6, 7]])[torch.arange(2)[:, None], torch.from_numpy(perms[labels])]
        assert torch.equal(got, want.to(torch.uint8))
        seen.append(labels.tolist())
        data.set_epoch(epoch)
        assert data[[0, 1]][1].tolist() == labels.tolist()
    assert len({tuple(s) for s in seen}) > 1  # a fresh shuffle each epoch


def test_loader_order_depends_only_on_seed_and_epoch():
    images = np.zeros((20, 4, 4, 3), np.uint8)
    table = pd.DataFrame({"cache_row": np.arange(20), "age": np.arange(20, dtype=float)})
    make = lambda: loaders.make_loader(loaders.photo_dataset(images, table), 5, True, 3, torch.device("cpu"))  # noqa
    first = [b[1].tolist() for b in make().epoch(2)]
    assert first == [b[1].tolist() for b in make().epoch(2)]
    assert first != [b[1].tolist() for b in make().epoch(3)]
    with pytest.raises(ValueError, match="empty split"):
        loaders.photo_dataset(images, table.iloc[:0])


def test_rank_slices_split_every_global_batch_disjointly():
    from torch.utils.data import BatchSampler, SequentialSampler

    batches = BatchSampler(SequentialSampler(range(10)), batch_size=4, drop_last=False)
    shares = [list(loaders.RankSlice(batches, rank, 3)) for rank in range(3)]
    # global batches [0-3], [4-7], [8, 9]: the last is smaller than the 3 processes, so every rank skips it
    assert shares == [[[0, 3], [4, 7]], [[1], [5]], [[2], [6]]]


@pytest.mark.parametrize("n,batch_size,drop_last,world_size", [(10, 4, False, 3), (12, 4, False, 3), (10, 4, True, 3),
                                                                (9, 4, False, 2), (3, 2, False, 4)])
def test_rank_slice_length_counts_the_batches_it_yields(n, batch_size, drop_last, world_size):
    """The LR schedule is sized from len(): it must match the steps taken, small final batch skipped or not."""
    from torch.utils.data import BatchSampler, SequentialSampler

    batches = BatchSampler(SequentialSampler(range(n)), batch_size=batch_size, drop_last=drop_last)
    for rank in range(world_size):
        shares = loaders.RankSlice(batches, rank, world_size)
        assert len(shares) == len(list(shares))


def test_split_korean_and_evaluate_agree_on_the_persons_a_ci_needs():
    from pipeline import metrics
    df = many_persons(16)
    df["split"] = splits.split_by_identity(df, 0, 0.25, 0.25, "korean")
    n_test = df.loc[df["split"] == "test", "person_id"].nunique()
    assert 3 <= n_test < metrics.MIN_BOOTSTRAP_PERSONS  # enough for the old check, too few for the bootstrap
    with pytest.raises(splits.EmptySplitError, match=f"need >= {metrics.MIN_BOOTSTRAP_PERSONS}"):
        splits.check_evaluable(df, leave_one_out=False)
