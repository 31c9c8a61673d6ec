"""The label-budget study's summary (without running dvc): Korean MAE per seed and the general domain beside it."""
import math

import pandas as pd
import pytest

from pipeline import study
from pipeline.artifacts import CONDITION_STAGES


def runs(general: dict[int, dict[str, float]]) -> pd.DataFrame:
    """Two seeds x four persons at one label fraction; condition c predicts age + offset[c] (+ 1 in seed 1)."""
    offset = {c: i + 1.0 for i, c in enumerate(CONDITION_STAGES)}
    rows = []
    for seed in (0, 1):
        for person in range(4):
            row = {"label_frac": 0.5, "seed": seed, "person_id": f"p{person}", "age": 30.0 + person}
            row.update({c: row["age"] + offset[c] + seed for c in CONDITION_STAGES})
            row.update({f"general_{c}": general[seed][c] for c in CONDITION_STAGES})
            rows.append(row)
    return pd.DataFrame(rows)


def test_study_rows_carry_each_conditions_general_mae_mean_over_seeds():
    general = {0: {c: 5.0 + i for i, c in enumerate(CONDITION_STAGES)},
               1: {c: 7.0 + i for i, c in enumerate(CONDITION_STAGES)}}
    rows = {r["condition"]: r for r in study.summarise(runs(general), n_boot=50)}
    for i, condition in enumerate(CONDITION_STAGES):
        assert rows[condition]["mae_mean"] == pytest.approx(i + 1.5)  # offsets i+1 and i+2 over the two seeds
        assert rows[condition]["general_mae_mean"] == pytest.approx(6.0 + i)
    table = study.markdown(list(rows.values()))
    assert "general MAE (mean)" in table.splitlines()[0]
    assert table.splitlines()[2].startswith("| baseline | 0.5 | 2 | 1.50 ± 0.71 | ") and table.splitlines()[2].endswith(
        "| 6.00 |")


def test_a_seed_without_a_general_mae_leaves_the_mean_empty_not_biased():
    general = {0: {c: 5.0 for c in CONDITION_STAGES}, 1: {c: math.nan for c in CONDITION_STAGES}}
    rows = study.summarise(runs(general), n_boot=50)
    assert all(r["general_mae_mean"] is None for r in rows)
    assert all(line.endswith("| - |") for line in study.markdown(rows).splitlines()[2:])


def test_a_control_profile_collects_beside_the_study_not_over_it():
    assert study.output_name("study") == "study"
    assert study.output_name("coupling_none") == "study_coupling_none"


def test_collect_keeps_every_photo_and_counts_a_run_listed_twice_once(monkeypatch):
    # person p0 photographed twice at the same age: both photos are test photos and must both count
    preds = pd.DataFrame({"age": [30.0, 30.0, 41.0], "person_id": ["p0", "p0", "p1"],
                          **{c: [31.0, 33.0, 40.0] for c in CONDITION_STAGES}})
    run = {"rev": "abc", "State": "Success", "seed": 0, study.FRACTION_KEY: 1.0}
    monkeypatch.setattr(study.aggregate, "experiments", lambda rev=None: ([run, dict(run, rev="def")], {}))
    monkeypatch.setattr(study, "_git_csv", lambda rev, path: preds)
    monkeypatch.setattr(study, "general_maes", lambda rev: {})
    monkeypatch.setattr(study.aggregate, "git_show", lambda rev, path: None)
    runs, floor = study.collect_runs({})
    assert len(runs) == 3 and list(runs["photo"]) == [0, 1, 2] and floor is None
    rows = {r["condition"]: r for r in study.summarise(runs, n_boot=20)}
    assert rows["baseline"]["mae_mean"] == pytest.approx((1 + 3 + 1) / 3)
