"""The label-budget study's summary (without running dvc): split seeds apart from training seeds, Korean MAE per
run, CIs over (training seed, person) within each split, and the general domain beside it."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import study
from pipeline.artifacts import CONDITION_STAGES


def runs(general: dict[int, dict[str, float]], train_seeds=(0, 1), split_seeds=(0, 1)) -> pd.DataFrame:
    """split seeds x training seeds x four persons at one label fraction; condition c predicts age + offset[c]
    (+ 1 in split seed 1, + 0.5 in training seed 1)."""
    offset = {c: i + 1.0 for i, c in enumerate(CONDITION_STAGES)}
    rows = []
    for split in split_seeds:
        for seed in train_seeds:
            for person in range(4):
                row = {"label_frac": 0.5, "split_seed": split, "train_seed": seed, "photo": person,
                       "person_id": f"s{split}p{person}", "age": 30.0 + person}
                row.update({c: row["age"] + offset[c] + split + 0.5 * seed for c in CONDITION_STAGES})
                row.update({f"general_{c}": general[split][c] for c in CONDITION_STAGES})
                rows.append(row)
    return pd.DataFrame(rows)


GENERAL = {0: {c: 5.0 + i for i, c in enumerate(CONDITION_STAGES)},
           1: {c: 7.0 + i for i, c in enumerate(CONDITION_STAGES)}}


def test_study_rows_separate_split_seeds_from_training_seeds():
    rows = {r["condition"]: r for r in study.summarise(runs(GENERAL), n_boot=50)}
    for i, condition in enumerate(CONDITION_STAGES):
        row = rows[condition]
        assert (row["n_splits"], row["n_train_seeds"], row["n_runs"]) == (2, 2, 4)
        assert row["mae_mean"] == pytest.approx(i + 1 + 0.5 + 0.25)  # mean of split (0, 1) and seed (0, 0.5) shifts
        assert row["mae_train_std"] == pytest.approx(np.std([0, 0.5], ddof=1))  # within a split, over seeds
        assert row["mae_split_std"] == pytest.approx(np.std([0.25, 1.25], ddof=1))  # over split means
        assert row["general_mae_mean"] == pytest.approx(6.0 + i)
    assert rows["downstream"]["vs_finetune_korean_ci_over"] == "seeds+persons"
    table = study.markdown(list(rows.values()))
    assert "splits x training seeds" in table.splitlines()[0] and "CI over" in table.splitlines()[0]
    assert table.splitlines()[2].startswith("| baseline | 0.5 | - | 2 x 2 | 1.75 ± ") and \
        table.splitlines()[2].endswith("| 6.00 |")
    counted = study.summarise(runs(GENERAL).assign(labelled_persons=12.0), n_boot=50)
    assert counted[0]["labelled_persons"] == 12.0
    assert study.markdown(counted).splitlines()[2].startswith("| baseline | 0.5 | 12 | 2 x 2 |")


def test_one_training_seed_per_split_is_a_persons_only_ci():
    rows = {r["condition"]: r for r in study.summarise(runs(GENERAL, train_seeds=(0,)), n_boot=50)}
    assert rows["downstream"]["vs_finetune_korean_ci_over"] == "persons"
    assert rows["downstream"]["mae_train_std"] is None


def test_training_seeds_of_one_split_are_paired_photo_by_photo():
    frame = runs(GENERAL)
    blocks = study.error_blocks(frame, frame["downstream"] - frame["age"])
    assert len(blocks) == 2
    diff, persons = blocks[1]  # split seed 1: rows = training seeds 0 and 1, columns = its 4 photos
    assert diff.shape == (2, 4) and list(persons) == [f"s1p{p}" for p in range(4)]
    assert diff[1] - diff[0] == pytest.approx([0.5] * 4)
    with pytest.raises(ValueError, match="different photos"):
        study.error_blocks(frame.drop(index=0), (frame["downstream"] - frame["age"]).drop(index=0))


def test_a_split_without_a_general_mae_leaves_the_mean_empty_not_biased():
    general = {0: {c: 5.0 for c in CONDITION_STAGES}, 1: {c: math.nan for c in CONDITION_STAGES}}
    rows = study.summarise(runs(general), n_boot=50)
    assert all(r["general_mae_mean"] is None for r in rows)
    assert all(line.endswith("| - |") for line in study.markdown(rows).splitlines()[2:])


def test_a_control_profile_collects_beside_the_study_not_over_it():
    assert study.output_name("study") == "study"
    assert study.output_name("coupling_none") == "study_coupling_none"


def test_collect_keeps_every_photo_and_counts_a_run_listed_twice_once(monkeypatch, caplog):
    # person p0 photographed twice at the same age: both photos are test photos and must both count
    preds = pd.DataFrame({"seed": [0, 0, 0, 1, 1, 1], "photo": [0, 1, 2] * 2, "age": [30.0, 30.0, 41.0] * 2,
                          "person_id": ["p0", "p0", "p1"] * 2,
                          **{c: [31.0, 33.0, 40.0, 32.0, 34.0, 41.0] for c in CONDITION_STAGES}})
    before = preds.drop(columns=["seed", "photo"]).iloc[:3]  # a predictions.csv from before per-seed training
    run = {"rev": "abc", "State": "Success", "seed": 0, study.FRACTION_KEY: 1.0}
    old = {"rev": "old", "State": "Success", "seed": 1, study.FRACTION_KEY: 1.0}
    monkeypatch.setattr(study.aggregate, "experiments", lambda rev=None: ([run, dict(run, rev="def"), old], {}))
    monkeypatch.setattr(study.aggregate, "git_csv", lambda rev, path: before if rev == "old" else preds)
    monkeypatch.setattr(study, "general_maes", lambda rev: {})
    monkeypatch.setattr(study.aggregate, "git_show", lambda rev, path: None)
    runs_, floor = study.collect_runs({})
    assert len(runs_) == 6 and floor is None and set(runs_["split_seed"]) == {0}
    assert list(runs_["train_seed"]) == [0, 0, 0, 1, 1, 1] and "skipped 1 experiment" in caplog.text
    rows = {r["condition"]: r for r in study.summarise(runs_, n_boot=20)}
    assert rows["baseline"]["mae_mean"] == pytest.approx(((1 + 3 + 1) / 3 + (2 + 4 + 0) / 3) / 2)


META = {"profile": "study", "overrides": {}, "split_seeds": [0, 1], "train_seeds": [0, 1], "bayes_floor_korean": 2.5}


def collection(rows: list[dict], **meta) -> dict:
    """An earlier collection's json: META (with `meta` changed) and `rows`."""
    return {**META, **meta, "rows": rows}


def test_merge_keeps_the_fractions_not_collected_and_replaces_the_rest():
    new = study.summarise(runs(GENERAL), n_boot=20)  # label fraction 0.5
    old = [dict(r, label_frac=f, mae_mean=99.0) for f in (0.05, 0.5) for r in new]
    merged, kept = study.merge_rows(new, META, collection(old))
    assert kept == [0.05] and len(merged) == 2 * len(CONDITION_STAGES)
    assert [r["label_frac"] for r in merged] == [0.05] * 4 + [0.5] * 4
    assert [r["condition"] for r in merged[:4]] == list(CONDITION_STAGES)
    assert all(r["mae_mean"] == 99.0 for r in merged[:4]) and all(r["mae_mean"] < 99 for r in merged[4:])


@pytest.mark.parametrize("key, value", [("train_seeds", [0, 1, 2]), ("bayes_floor_korean", 2.6),
                                        ("overrides", {"data.synthetic.n_korean_persons": 340})])
def test_merge_refuses_a_collection_of_other_seeds_or_data(key, value):
    with pytest.raises(ValueError, match=key):
        study.merge_rows([], META, collection([], **{key: value}))


def test_collect_merge_writes_one_table_and_names_the_kept_fractions(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    data = runs(GENERAL)
    monkeypatch.setattr(study.profiles, "overrides", lambda profile: {})
    monkeypatch.setattr(study, "collect_runs", lambda overrides, rev: (data, 2.5))
    assert study.collect("study", None, merge=True) == 2  # nothing to merge with yet
    assert study.collect("study", None, merge=False) == 0
    first = json.loads((tmp_path / "metrics/study.json").read_text())
    assert first["merged_fractions"] == [] and {r["label_frac"] for r in first["rows"]} == {0.5}
    monkeypatch.setattr(study, "collect_runs", lambda overrides, rev: (data.assign(label_frac=0.1), 2.5))
    assert study.collect("study", None, merge=True) == 0
    merged = json.loads((tmp_path / "metrics/study.json").read_text())
    assert merged["merged_fractions"] == [0.5] and [r["label_frac"] for r in merged["rows"]] == [0.1] * 4 + [0.5] * 4
    assert "fraction(s) 0.5 kept from the previous collection" in (tmp_path / "metrics/study.md").read_text()
    assert (tmp_path / "metrics/plots/study.png").stat().st_size > 0
    monkeypatch.setattr(study, "collect_runs", lambda overrides, rev: (data.assign(train_seed=data["train_seed"] + 5),
                                                                       2.5))
    assert study.collect("study", None, merge=True) == 2  # other training seeds: refused, the file kept
    assert json.loads((tmp_path / "metrics/study.json").read_text()) == merged
