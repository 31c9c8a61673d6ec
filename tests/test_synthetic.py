"""The synthetic generator: deterministic, learnable age cues, and a correct Bayes floor."""
import hashlib
from dataclasses import replace

import numpy as np
import pytest

from pipeline.config import ConfigError, SyntheticConfig, build
from pipeline.data import floor, render, synthetic, synthetic_photos


def digest(photos) -> str:
    h = hashlib.sha256()
    for p in photos:
        h.update(p.path.encode() + p.jpeg + str(p.age).encode())
    return h.hexdigest()


def test_same_params_give_identical_bytes_for_any_worker_count(syn_cfg):
    one = digest(synthetic_photos.generate(syn_cfg, seed=3, size=32, out_dir="x"))
    again = digest(synthetic_photos.generate(syn_cfg, seed=3, size=32, out_dir="x"))
    two_workers = digest(synthetic_photos.generate(replace(syn_cfg, workers=2), seed=3, size=32, out_dir="x"))
    assert one == again == two_workers


def test_other_seed_gives_other_persons(syn_cfg):
    assert digest(synthetic_photos.generate(syn_cfg, 3, 32, "x")) != digest(synthetic_photos.generate(syn_cfg, 4, 32, "x"))


def test_domains_counts_and_series(syn_cfg):
    persons = synthetic.plan_persons(syn_cfg, 0)
    general = [p for p in persons if p.domain == "general"]
    korean = [p for p in persons if p.domain == "korean"]
    assert len(general) == syn_cfg.n_general_persons and len(korean) == syn_cfg.n_korean_persons
    assert all(4 <= len(p.ages_years) <= 6 and list(p.ages_years) == sorted(p.ages_years) for p in korean)
    assert {p.split_hint for p in general} == {"train", "test"}


def test_rendered_face_distance_grows_with_age_gap(syn_cfg):
    """A face drifts further from itself the more years pass: the cue order prediction relies on."""
    traits = synthetic.draw_traits(np.random.default_rng(0), "general", syn_cfg)

    def face(age: float) -> np.ndarray:  # same nuisance rng: only the age differs
        return np.asarray(render.render_face(traits, age, 48, np.random.default_rng(1)), float)

    # pixel L1 is crude across growth *and* greying at once, so each span stays within one regime
    for start, gaps in ((4.0, (0.0, 5.0, 20.0)), (30.0, (0.0, 5.0, 20.0, 40.0))):
        distances = [np.abs(face(start + gap) - face(start)).mean() for gap in gaps]
        assert distances[0] == 0 and distances == sorted(distances) and distances[1] > 0


def test_floor_matches_monte_carlo_and_no_estimator_beats_it(syn_cfg):
    """Numerical integration vs sampling the generator itself (person offsets, rates, per-photo noise)."""
    big = replace(syn_cfg, n_general_persons=6000, n_korean_persons=10)
    persons = [p for p in synthetic.plan_persons(big, 11) if p.domain == "general"]
    true, apparent = [], []
    for person in persons:
        _, app, _ = synthetic.person_apparent_ages(person, syn_cfg, 11)
        true += person.ages_years
        apparent += app
    true, apparent = np.array(true), np.array(apparent)
    prior_ages = np.concatenate([p.ages_years for p in synthetic.plan_persons(
        replace(syn_cfg, n_general_persons=20000, n_korean_persons=10), 5) if p.domain == "general"])
    value = floor.bayes_floor(prior_ages, "general", syn_cfg)
    best = np.abs(floor.posterior_median(apparent, floor.prior_grid(prior_ages), "general", syn_cfg) - true).mean()
    naive = np.abs(apparent - true).mean()  # read the apparent age as the true age
    assert best == pytest.approx(value, rel=0.05)
    assert naive > value
    assert 1.0 < value < 6.0


def test_floor_grows_with_noise(syn_cfg):
    ages = synthetic.sample_general_ages(np.random.default_rng(0), 20000)
    low = floor.bayes_floor(ages, "general", replace(syn_cfg, age_noise_years=0.5))
    high = floor.bayes_floor(ages, "general", replace(syn_cfg, age_noise_years=4.0))
    assert high > low


@pytest.mark.parametrize("key,value,message", [
    ("n_general_persons", -3, "n_general_persons must be >= 10"),
    ("korean_photos", [6, 4], "korean_photos must be"),
    ("korean_photos", [1, 4], "korean_photos low must be >= 2"),
    ("age_noise_years", -1.0, "age_noise_years must be >= 0"),
])
def test_bad_generator_params_fail_before_writing(syn_cfg, key, value, message):
    data = {**syn_cfg.__dict__, key: value}
    with pytest.raises(ConfigError, match=message):
        build(SyntheticConfig, data, "params.yaml:data.synthetic")
