"""evaluate's seed machinery on fixed predictions: seed means and std, paired Δ over (seed, person), the one
metrics row per condition that `dvc metrics show` prints, per-seed plain outputs and the report's words."""
import numpy as np
import pandas as pd
import pytest

from pipeline import comparison, report
from pipeline.artifacts import CONDITIONS
from pipeline.config import EvalConfig

OFFSET = {"baseline": 3.0, "finetune_korean": 1.0, "downstream": 1.5, "multitrain": 0.5}


def fixture(seeds=(0, 1), noise: float = 0.1) -> tuple[comparison.Predictions, dict[str, pd.DataFrame]]:
    """12 Korean test persons x 2 photos, 5 general photos; condition c errs by OFFSET[c] (+ seed in seed rows)."""
    rng = np.random.default_rng(0)
    korean = pd.DataFrame({"person_id": [f"p{i // 2}" for i in range(24)], "age": rng.uniform(5, 60, 24),
                           "cache_row": range(24)})
    general = pd.DataFrame({"person_id": [f"g{i}" for i in range(5)], "age": rng.uniform(5, 60, 5),
                            "cache_row": range(24, 29)})
    tests = {"korean": korean, "general": general}
    preds = {(c, s, t): table["age"].to_numpy() + OFFSET[c] + s + rng.normal(0, noise, len(table))
             for c in CONDITIONS for s in seeds for t, table in tests.items()}
    return preds, tests


def test_results_hold_seed_means_seed_std_and_each_seed():
    preds, tests = fixture()
    results = comparison.condition_metrics(preds, tests, [0, 1])
    finetune = results["finetune_korean"]
    assert finetune["korean"]["mae"] == pytest.approx(1.5, abs=0.05)  # errors 1 and 2 years over the two seeds
    assert finetune["seed_std"]["korean"]["mae"] == pytest.approx(np.std([1, 2], ddof=1), abs=0.05)
    assert finetune["korean"]["n"] == 24 and finetune["n_seeds"] == 2
    assert set(finetune["per_seed"]) == {"0", "1"}
    assert finetune["per_seed"]["1"]["korean"]["mae"] == pytest.approx(2, abs=0.05)


def test_one_metrics_row_per_condition_in_reading_order_saying_what_its_ci_covers():
    preds, tests = fixture()
    results = comparison.condition_metrics(preds, tests, [0, 1])
    compared = comparison.compare_conditions(preds, tests["korean"], EvalConfig(seed=0, n_bootstrap=200), [0, 1])
    row = comparison.headline(results["downstream"], compared["vs_finetune_korean"]["downstream"])
    assert list(row) == sorted(row)  # DVC's alphabetical columns are the reading order, 10_ after 09_
    assert row["01_korean_mae"] == pytest.approx(2.0, abs=0.05) and row["10_n_seeds"] == 2
    assert row["06_dmae_vs_finetune"] == pytest.approx(0.5, abs=0.05) and row["09_ci_over"] == "seeds+persons"
    assert row["07_dmae_ci_low"] <= row["06_dmae_vs_finetune"] <= row["08_dmae_ci_high"]
    assert compared["vs_finetune_korean"]["downstream"]["per_seed_mae_diff"] == pytest.approx({"0": 0.5, "1": 0.5},
                                                                                               abs=0.05)
    reference = comparison.headline(results["finetune_korean"], None)
    assert reference["06_dmae_vs_finetune"] is None and reference["09_ci_over"] is None


def test_a_one_seed_row_says_its_ci_covers_persons_only():
    preds, tests = fixture(seeds=(0,))
    results = comparison.condition_metrics(preds, tests, [0])
    compared = comparison.compare_conditions(preds, tests["korean"], EvalConfig(seed=0, n_bootstrap=200), [0])
    row = comparison.headline(results["multitrain"], compared["vs_finetune_korean"]["multitrain"])
    assert row["09_ci_over"] == "persons" and row["10_n_seeds"] == 1 and row["02_korean_mae_seed_std"] is None


def test_predictions_table_has_a_row_per_seed_and_photo():
    preds, tests = fixture()
    results = comparison.condition_metrics(preds, tests, [0, 1])
    tables = comparison.tables(preds, tests["korean"], results, [0, 1])
    assert len(tables.predictions) == 48 and list(tables.predictions["seed"].unique()) == [0, 1]
    assert list(tables.predictions["photo"][:24]) == list(range(24))
    assert set(CONDITIONS) <= set(tables.predictions) and len(tables.cs_curve) == 16


def _report(seeds):
    preds, tests = fixture(seeds, noise=0.0)
    results = comparison.condition_metrics(preds, tests, list(seeds))
    compared = comparison.compare_conditions(preds, tests["korean"], EvalConfig(seed=0, n_bootstrap=200), list(seeds))
    compared["pretext"] = {"val_acc": 0.4, "val_top3": 0.8, "val_kendall_tau": 0.3, "chance_acc": 1 / 6,
                           "chance_top3": 0.5, "chance_kendall_tau": 0.0, "n_val_tuples": 30, "n_seeds": len(seeds)}
    return results, compared


def test_report_states_seed_means_each_seed_and_what_the_ci_covers():
    results, compared = _report((0, 1))
    text = report.verdict(results, compared)
    assert "mean over 2 training seed(s)" in text and "95% CI over 2 training seeds x 12 test persons" in text
    assert "top-3 0.80 (chance 0.50)" in text and "Kendall's tau" in text and "one training seed" not in text
    assert "(training seed, test person)" in report._table_note(compared)
    seeds = report.seed_table(results, compared).splitlines()
    assert "seed 0" in seeds[0] and "seed 1" in seeds[0] and seeds[4].startswith("| downstream | 1.50 (+0.50) |")
    assert "1.50 ± 0.71" in report.table(results, compared)  # finetune_korean: 1 and 2 years over the seeds


def test_a_one_seed_report_says_its_ci_leaves_training_noise_out():
    results, compared = _report((0,))
    assert "one training seed" in report.verdict(results, compared)
    assert "test persons only" in report._table_note(compared)


def test_pretext_scores_every_seeds_vcop_model_on_the_same_val_tuples(in_tmp):
    import torch

    from pipeline import artifacts, layout
    from pipeline.data import sequences
    from pipeline.models import VCOPModel, build_encoder

    val = pd.DataFrame({"person_id": [f"v{i // 4}" for i in range(16)], "age": [10.0, 20.0, 30.0, 40.0] * 4,
                        "cache_row": range(16)})
    layout.SEQUENCES.mkdir(parents=True)
    sequences.build_tuples(val, 3, 2.0, 4, seed=0)[0].to_csv(layout.tuples_path("val"), index=False)
    images = np.random.default_rng(0).integers(0, 255, (16, 32, 32, 3), dtype=np.uint8)
    for seed in (0, 1):
        torch.manual_seed(seed)
        artifacts.save_model(artifacts.model_path("pretrain_vcop", seed), VCOPModel(build_encoder("tiny_cnn"), 3, 16),
                             "vcop", "tiny_cnn", tuple_len=3, head_hidden=16)
    scores = comparison.pretext_scores(images, torch.device("cpu"), EvalConfig(seed=0, n_bootstrap=100), [0, 1])
    assert scores["n_seeds"] == 2 and scores["n_val_tuples"] == 16 and set(scores["per_seed"]) == {"0", "1"}
    for key in ("val_acc", "val_top3", "val_kendall_tau"):
        assert scores[key] == pytest.approx(np.mean([scores["per_seed"][s][key] for s in ("0", "1")]))
    assert scores["val_acc"] <= scores["val_top3"] and -1 <= scores["val_kendall_tau"] <= 1
    assert scores["chance_acc"] == pytest.approx(1 / 6) and scores["chance_top3"] == pytest.approx(0.5)
