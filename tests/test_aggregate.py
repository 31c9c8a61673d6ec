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
         "general_mae": 1.0, "n": 1, "korean_mae_seed_std": 0.3, "n_seeds": 3},
        {"run": "b", "condition": "baseline", "korean_mae": 4.0, "korean_cs5": 0.7, "korean_bias": 1.0,
         "general_mae": 3.0, "n": 3, "korean_mae_seed_std": 0.4, "n_seeds": 3},
        {"run": "b", "condition": "baseline", "korean_mae": 9.0, "korean_cs5": 0.1, "korean_bias": 1.0,
         "general_mae": 3.0, "n": 3, "korean_mae_seed_std": 9.0, "n_seeds": 3},  # an older experiment of run b: dropped
    ])
    table = aggregate.summarise(rows)
    row = table.loc["baseline"]
    assert row["n_runs"] == 2 and row["korean_mae_mean"] == pytest.approx(3.0)
    assert row["korean_mae_std"] == pytest.approx(2 ** 0.5)
    assert row["korean_mae_pooled"] == pytest.approx((2.0 * 1 + 4.0 * 3) / 4)
    # training noise within a run beside the spread between runs: root mean of the runs' seed variances
    assert row["korean_mae_train_std"] == pytest.approx(((0.3 ** 2 + 0.4 ** 2) / 2) ** 0.5)
    assert "| baseline | 2 | 3 | 3.00 ± 1.41 | 0.35 |" in aggregate.markdown(table)


def test_a_one_seed_run_has_no_training_seed_std():
    rows = pd.DataFrame([{"run": r, "condition": "baseline", "korean_mae": m, "korean_cs5": 0.5, "korean_bias": 0.0,
                          "general_mae": 1.0, "n": 2, "korean_mae_seed_std": float("nan"), "n_seeds": 1}
                         for r, m in (("a", 2.0), ("b", 3.0))])
    assert "| baseline | 2 | 1 | 2.50 ± 0.71 | - |" in aggregate.markdown(aggregate.summarise(rows))


def test_collect_reads_seed_means_and_skips_details_from_before_per_seed_training(monkeypatch):
    per_seed = {"korean": {"mae": 3.0, "cs5": 0.6, "bias": 0.1, "n": 10}, "general": {"mae": 5.0},
                "seed_std": {"korean": {"mae": 0.2}}, "n_seeds": 2}
    old = {"korean": {"mae": 3.0, "cs5": 0.6, "bias": 0.1, "n": 10}, "general": {"mae": 5.0}}
    exps = [{"rev": "new", "State": "Success", "seed": 1}, {"rev": "old", "State": "Success", "seed": 2}]
    monkeypatch.setattr(aggregate, "experiments", lambda rev=None: (exps, {"seed": 0}))
    monkeypatch.setattr(aggregate, "_git_json", lambda rev, path: per_seed if rev == "new" else old)
    rows = aggregate.collect()
    assert set(rows["rev"]) == {"new"} and (rows["korean_mae_seed_std"] == 0.2).all() and (rows["n_seeds"] == 2).all()
