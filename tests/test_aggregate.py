"""Aggregation over seeds or leave-one-person-out folds (without running dvc)."""
import pandas as pd
import pytest

from pipeline import aggregate


def test_only_runs_that_differ_in_the_varied_param_are_collected():
    params = {"seed": 0, "multitrain.coupling": "rank", "data.synthetic.korean_years": [6.0, 30.0]}
    same = {"params.yaml:seed": 3, "params.yaml:multitrain.coupling": "rank", "data.synthetic.korean_years": ["6", "30"]}
    other = {**same, "params.yaml:multitrain.coupling": "none"}
    assert aggregate.matches_workspace(same, params, "seed")
    assert not aggregate.matches_workspace(other, params, "seed")
    assert aggregate.value_of(same, "seed") == 3


def test_one_experiment_filter_for_seeds_and_study_grids():
    params = {"seed": 0, "split_korean.label_frac": 1.0, "multitrain.coupling": "rank"}
    row = {"rev": "abc", "State": "Success", "params.yaml:multitrain.coupling": "rank"}
    exps = [{**row, "params.yaml:seed": 1, "params.yaml:split_korean.label_frac": 0.5},
            {**row, "rev": "def", "params.yaml:seed": 2, "params.yaml:split_korean.label_frac": 0.1,
             "params.yaml:multitrain.coupling": "none"},                    # another setting
            {**row, "rev": "ghi", "State": "Failed", "params.yaml:seed": 3},  # failed
            {**row, "rev": "workspace", "params.yaml:seed": 0},              # the workspace itself
            {**row, "rev": "jkl", "params.yaml:split_korean.label_frac": 0.5}]  # sets no seed
    assert [(e["rev"], v) for e, v in aggregate.runs(exps, params, ("split_korean.label_frac", "seed"))] == [
        ("abc", [0.5, 1])]
    assert [(e["rev"], v) for e, v in aggregate.runs(exps, params, ("seed",))] == []  # label_frac differs too


def test_summary_mean_std_and_pooled_mae():
    rows = pd.DataFrame([
        {"run": "a", "condition": "baseline", "korean_mae": 2.0, "korean_cs5": 0.5, "korean_bias": 0.0,
         "general_mae": 1.0, "n": 1},
        {"run": "b", "condition": "baseline", "korean_mae": 4.0, "korean_cs5": 0.7, "korean_bias": 1.0,
         "general_mae": 3.0, "n": 3},
        {"run": "b", "condition": "baseline", "korean_mae": 9.0, "korean_cs5": 0.1, "korean_bias": 1.0,
         "general_mae": 3.0, "n": 3},  # an older experiment of the same run: dropped
    ])
    table = aggregate.summarise(rows)
    row = table.loc["baseline"]
    assert row["n_runs"] == 2 and row["korean_mae_mean"] == pytest.approx(3.0)
    assert row["korean_mae_std"] == pytest.approx(2 ** 0.5)
    assert row["korean_mae_pooled"] == pytest.approx((2.0 * 1 + 4.0 * 3) / 4)
    assert "| baseline | 2 | 3.00 ± 1.41 |" in aggregate.markdown(table)
