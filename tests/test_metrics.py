"""Metric functions against hand-computed cases; the bootstrap against a known distribution."""
import numpy as np
import pytest

from pipeline import metrics


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
