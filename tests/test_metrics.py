"""Metric functions against hand-computed cases; the bootstrap against a known distribution."""
import numpy as np
import pytest
import torch

from pipeline import metrics
from pipeline.models import AgeRegressor, build_encoder


def test_age_metrics_hand_computed():
    true = np.array([10.0, 20.0, 30.0, 65.0])
    pred = np.array([12.0, 14.0, 30.0, 72.0])  # errors +2, -6, 0, +7
    m = metrics.age_metrics(pred, true)
    assert m["mae"] == pytest.approx(15 / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 36 + 0 + 49) / 4))
    assert m["bias"] == pytest.approx(3 / 4)
    assert (m["cs3"], m["cs5"], m["cs7"]) == (0.5, 0.5, 1.0)
    assert m["n"] == 4
    assert m["mae_band"]["0-12"] == 2 and m["mae_band"]["20-29"] == 6 and m["mae_band"]["30-39"] == 0 and m["mae_band"]["60+"] == 7
    assert m["mae_band"]["40-49"] is None


def test_cs_curve_is_monotone_and_ends_at_one():
    curve = metrics.cs_curve(np.array([0.0, 3.0, 20.0]), np.zeros(3), max_years=15)
    assert curve[0] == pytest.approx(1 / 3) and curve[3] == pytest.approx(2 / 3) and curve[15] == pytest.approx(2 / 3)
    assert (np.diff(curve) >= 0).all()


def test_empty_test_set_is_an_error():
    with pytest.raises(ValueError, match="test split is empty"):
        metrics.age_metrics(np.zeros(0), np.zeros(0))


def test_bootstrap_ci_covers_known_difference_at_nominal_rate():
    """Persons with a true mean difference of 0.5: the 95% CI should contain it ~95% of the time."""
    rng = np.random.default_rng(0)
    hits, trials = 0, 200
    for _ in range(trials):
        persons = np.repeat(np.arange(40), 3)
        person_effect = rng.normal(0, 1, 40)[persons]  # correlated photos within a person
        a = 3 + person_effect + rng.normal(0, 0.5, len(persons)) + 0.5
        b = 3 + person_effect + rng.normal(0, 0.5, len(persons))
        ci = metrics.paired_bootstrap(a, b, persons, 400, int(rng.integers(1e9)))
        hits += ci["ci_low"] <= 0.5 <= ci["ci_high"]
    assert 0.88 <= hits / trials <= 0.99


def test_bootstrap_resamples_persons_not_photos():
    """One person holds all the difference: a photo bootstrap would be narrow, a person bootstrap is wide."""
    persons = np.repeat(np.arange(10), 10)
    diff = np.where(persons == 0, 10.0, 0.0)
    ci = metrics.paired_bootstrap(diff, np.zeros_like(diff), persons, 2000, 0)
    assert ci["mae_diff"] == pytest.approx(1.0)
    assert ci["ci_low"] == pytest.approx(0.0) and ci["ci_high"] >= 2.0
    assert ci["n_persons"] == 10


def test_bootstrap_needs_enough_persons():
    with pytest.raises(metrics.TooFewPersonsError, match="korean_test_frac"):
        metrics.paired_bootstrap(np.ones(6), np.zeros(6), np.array([0, 0, 1, 1, 2, 2]), 100, 0)


def test_compare_reports_the_difference_without_ci_for_one_person():
    out = metrics.compare(np.array([3.0, 5.0]), np.array([2.0, 2.0]), np.array(["p", "p"]), 100, 0)
    assert out["mae_diff"] == pytest.approx(2.0) and out["ci_low"] is None and not out["significant"]
    assert "korean_test_frac" in out["no_ci_reason"]


def _person_diffs(rng: np.random.Generator, n_persons: int = 30, photos: int = 3) -> tuple[np.ndarray, np.ndarray]:
    persons = np.repeat(np.arange(n_persons), photos)
    return rng.normal(0.3, 1.0, n_persons)[persons] + rng.normal(0, 0.3, len(persons)), persons


def test_one_seed_ci_covers_persons_only_and_says_so():
    diff, persons = _person_diffs(np.random.default_rng(0))
    out = metrics.paired_bootstrap(diff, np.zeros_like(diff), persons, 500, 0)
    assert out["n_seeds"] == 1 and out["ci_over"] == "persons"
    as_rows = metrics.paired_bootstrap(diff[None], np.zeros((1, len(diff))), persons, 500, 0)
    assert as_rows == out  # (n_photos,) and (1, n_photos) are the same one-seed run


def test_ci_over_seeds_and_persons_widens_when_seeds_disagree():
    """Same persons, same mean Δ: seeds that agree give the person-only width, seeds that disagree a wider CI."""
    diff, persons = _person_diffs(np.random.default_rng(1))
    agree = np.stack([diff, diff, diff])
    disagree = np.stack([diff + 1.0, diff, diff - 1.0])  # a training-seed effect of ±1 year, mean unchanged
    one = metrics.paired_bootstrap(diff, np.zeros_like(diff), persons, 1000, 0)
    same = metrics.paired_bootstrap(agree, np.zeros_like(agree), persons, 1000, 0)
    wide = metrics.paired_bootstrap(disagree, np.zeros_like(disagree), persons, 1000, 0)
    assert same["mae_diff"] == pytest.approx(one["mae_diff"]) == pytest.approx(wide["mae_diff"])
    assert same["ci_over"] == wide["ci_over"] == "seeds+persons" and wide["n_seeds"] == 3
    # crossed, not nested: a drawn person counts in every drawn seed, so identical seeds add no false precision
    assert (same["ci_low"], same["ci_high"]) == pytest.approx((one["ci_low"], one["ci_high"]))
    assert wide["ci_high"] - wide["ci_low"] > 1.5 * (one["ci_high"] - one["ci_low"])


def test_conditions_are_paired_on_the_same_seed_and_person():
    """A training seed that shifts both conditions' errors alike (the same run of shared upstream weights)
    cancels in the paired difference: the CI stays as narrow as the condition gap's own noise."""
    rng = np.random.default_rng(2)
    persons = np.repeat(np.arange(20), 2)
    base = rng.normal(4, 1, (3, len(persons)))
    shared = np.array([[0.0], [3.0], [-3.0]])  # per-seed shift of both conditions
    a, b = base + shared + 0.5, base + shared
    out = metrics.paired_bootstrap(a, b, persons, 500, 0)
    assert out["mae_diff"] == pytest.approx(0.5) and out["ci_low"] == pytest.approx(0.5)
    assert out["ci_high"] == pytest.approx(0.5) and out["significant"]
    shuffled = metrics.paired_bootstrap(a, b[::-1], persons, 500, 0)  # seeds mispaired: the shift leaks in
    assert shuffled["ci_high"] - shuffled["ci_low"] > 1.0


def test_blocks_are_strata_weighted_by_photos():
    split_a = (np.full((2, 6), 1.0), np.repeat(np.arange(3), 2))  # 2 seeds x 6 photos, Δ 1
    split_b = (np.full((3, 2), 4.0), np.array(["x", "y"]))  # 3 seeds x 2 photos, Δ 4
    out = metrics.seed_person_bootstrap([split_a, split_b], 300, 0)
    assert out["mae_diff"] == pytest.approx((6 * 1 + 2 * 4) / 8) and out["n_persons"] == 5
    assert 1.0 <= out["ci_low"] <= out["ci_high"] <= 4.0


def test_seed_rows_must_hold_the_same_photos():
    with pytest.raises(ValueError, match="same test photos"):
        metrics.seed_person_bootstrap([(np.zeros((2, 5)), np.arange(4))], 100, 0)


def test_too_few_persons_still_reports_the_seed_mean_difference():
    out = metrics.compare(np.array([[3.0, 5.0], [1.0, 1.0]]), np.full((2, 2), 2.0), np.array(["p", "p"]), 100, 0)
    assert out["mae_diff"] == pytest.approx(0.5) and out["ci_low"] is None and out["ci_over"] == "none"
    assert out["n_seeds"] == 2


def test_kendall_tau_of_orders():
    truth = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 2]])
    guess = np.array([[0, 1, 2], [2, 1, 0], [0, 2, 1]])  # same, reversed, one pair swapped
    assert metrics.kendall_tau(guess, truth) == pytest.approx([1.0, -1.0, 1 / 3])


def test_pretext_metrics_top1_top3_and_tau_beside_chance():
    from pipeline.data.sequences import permutations

    perms = permutations(3)  # 6 classes
    labels = np.array([0, 1, 5])
    logits = np.zeros((3, 6))
    logits[0, 0] = 3  # right
    logits[1, [2, 3, 1]] = [3, 2, 1]  # true class third: a top-3 hit only
    logits[2, 0] = 3  # (0,1,2) guessed for (2,1,0): order reversed
    out = metrics.pretext_metrics(logits, labels, perms)
    assert out["val_acc"] == pytest.approx(1 / 3) and out["val_top3"] == pytest.approx(2 / 3)
    tau_second = metrics.kendall_tau(perms[[2]], perms[[1]])[0]
    assert out["val_kendall_tau"] == pytest.approx((1.0 + tau_second - 1.0) / 3)
    assert (out["chance_acc"], out["chance_top3"], out["chance_kendall_tau"]) == pytest.approx((1 / 6, 0.5, 0.0))


def test_mirror_average_is_the_mean_of_the_photo_and_its_mirror_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8)  # no photo is its own mirror image
    torch.manual_seed(0)
    model = AgeRegressor(build_encoder("tiny_cnn"))
    rows, cpu = np.arange(6), torch.device("cpu")
    plain = metrics.predict_years(model, images, rows, cpu, batch_size=4)
    mirrored = metrics.predict_years(model, images[:, :, ::-1].copy(), rows, cpu, batch_size=4)
    averaged = metrics.predict_years(model, images, rows, cpu, batch_size=4, mirror_average=True)
    assert not np.allclose(plain, mirrored)
    np.testing.assert_allclose(averaged, (plain + mirrored) / 2, rtol=1e-5, atol=1e-4)
