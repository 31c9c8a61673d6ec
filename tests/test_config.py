"""The config loader: typos, wrong types and missing keys fail before any work, naming the key."""
from pathlib import Path

import pytest
import yaml

import pipeline.data.sources  # noqa: F401  (registers the source names the loader checks)
import pipeline.models  # noqa: F401  (registers the encoder names)
from pipeline import config
from pipeline.config import ConfigError, load_section

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = config.SECTION_TYPES


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def base_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("params_file", ["params.yaml", "tests/fixtures/params.tiny.yaml"])
def test_every_section_of_shipped_params_loads(params_file):
    path = ROOT / params_file
    top_seed = yaml.safe_load(path.read_text())["seed"]
    for section, cls in SECTIONS.items():
        cfg = load_section(cls, section, path)
        assert getattr(cfg, "seed", top_seed) == top_seed
    data = load_section(config.DataConfig, "data", path)
    assert isinstance(data.synthetic, config.SyntheticConfig)
    budget = load_section(config.BudgetConfig, "budget", path)
    assert budget.phase("general", 0).epochs >= 1 and budget.phase("korean", 0).epochs >= 1


def test_shipped_params_have_no_section_the_loader_does_not_know():
    for path in (ROOT / "params.yaml", ROOT / "tests/fixtures/params.tiny.yaml"):
        assert set(yaml.safe_load(path.read_text())) == set(config.KNOWN_SECTIONS)


def test_unknown_key_names_full_path_and_allowed_keys(tmp_path):
    params = base_params()
    params["multitrain"]["couplng"] = "rank"
    with pytest.raises(ConfigError, match=r"multitrain\.couplng.*allowed: .*'coupling'"):
        load_section(config.MultiTrainConfig, "multitrain", write(tmp_path, params))


def test_unknown_section_is_rejected(tmp_path):
    params = base_params()
    params["trian_baseline"] = {"encoder": "resnet18"}
    with pytest.raises(ConfigError, match="unknown section.*trian_baseline"):
        load_section(config.TrainBaselineConfig, "train_baseline", write(tmp_path, params))


def test_wrong_type_names_key_and_expected_type(tmp_path):
    params = base_params()
    params["pretrain_vcop"]["lr"] = "3e-4"  # PyYAML reads 3e-4 (no dot) as a string
    with pytest.raises(ConfigError, match=r"pretrain_vcop\.lr: expected float, got '3e-4'"):
        load_section(config.VCOPConfig, "pretrain_vcop", write(tmp_path, params))


def test_bool_is_not_an_int(tmp_path):
    params = base_params()
    params["pretrain_vcop"]["epochs"] = True
    with pytest.raises(ConfigError, match=r"pretrain_vcop\.epochs"):
        load_section(config.VCOPConfig, "pretrain_vcop", write(tmp_path, params))


def test_missing_key_is_named(tmp_path):
    params = base_params()
    del params["pretrain_vcop"]["encoder"]
    with pytest.raises(ConfigError, match="pretrain_vcop.*encoder"):
        load_section(config.VCOPConfig, "pretrain_vcop", write(tmp_path, params))


def test_missing_section_is_named(tmp_path):
    params = base_params()
    del params["evaluate"]
    with pytest.raises(ConfigError, match="missing section 'evaluate'"):
        load_section(config.EvalConfig, "evaluate", write(tmp_path, params))


def test_literal_values_are_checked(tmp_path):
    params = base_params()
    params["multitrain"]["coupling"] = "glue"
    with pytest.raises(ConfigError, match=r"multitrain\.coupling: expected one of"):
        load_section(config.MultiTrainConfig, "multitrain", write(tmp_path, params))


@pytest.mark.parametrize("section,key,value,message", [
    ("pretrain_vcop", "lr", -1.0, "lr must be > 0"),
    ("build_sequences", "tuple_len", 2, "tuple_len must be 3, 4 or 5"),
    ("build_sequences", "tuple_len", 7, "tuple_len must be 3, 4 or 5"),
    ("split_korean", "korean_val_frac", 0.7, "korean_val_frac must be in"),
    ("split_korean", "label_frac", 0.0, "label_frac must be in"),
    ("data", "image_size", 8, "image_size must be >= 24"),
    ("data", "korean", "csv", r"korean_root \(or root\): needed for source 'csv'"),  # no root given
])
def test_out_of_range_values_fail_with_the_fix(tmp_path, section, key, value, message):
    params = base_params()
    params[section][key] = value
    with pytest.raises(ConfigError, match=message):
        load_section(SECTIONS[section], section, write(tmp_path, params))


@pytest.mark.parametrize("vcop_encoder", ["efficientnet_lite0", "efficientnet_lite0_frozen2"])
def test_multitrain_refuses_the_age_encoders_architecture_as_its_vcop_encoder(tmp_path, vcop_encoder):
    params = base_params()
    assert params["multitrain"]["age_encoder"] == "efficientnet_lite0"
    params["multitrain"].update(vcop_encoder=vcop_encoder, vcop_encoder_weights="imagenet")
    with pytest.raises(ConfigError, match=f"'{vcop_encoder}' are both efficientnet_lite0"):
        load_section(SECTIONS["multitrain"], "multitrain", write(tmp_path, params))


def test_a_frozen_encoder_without_weights_fails_naming_the_key(tmp_path):
    params = base_params()
    params["train_baseline"].update(encoder="efficientnet_lite0_frozen2", encoder_weights="none")
    with pytest.raises(ConfigError, match=r"train_baseline\.encoder_weights: encoder 'efficientnet_lite0_frozen2' "
                                          "keeps its first layers as loaded"):
        load_section(SECTIONS["train_baseline"], "train_baseline", write(tmp_path, params))


def test_valid_override_is_used_and_top_level_seed_fills_sections(tmp_path):
    params = base_params()
    params["seed"] = 7
    params["pretrain_vcop"]["lr"] = 0.5
    cfg = load_section(config.VCOPConfig, "pretrain_vcop", write(tmp_path, params))
    assert cfg.lr == 0.5 and cfg.seed == 7
    # the data set does not follow the training seed (dvc reruns prepare_data only when `data` changes)
    data = load_section(config.DataConfig, "data", write(tmp_path, params))
    assert data.synthetic.seed == 0


def test_nested_budget_and_synthetic_sections_are_checked_at_load(tmp_path):
    params = base_params()
    params["budget"]["korean"]["epochz"] = 3
    with pytest.raises(ConfigError, match=r"budget\.korean.*epochz"):
        load_section(config.BudgetConfig, "budget", write(tmp_path, params))
    params = base_params()
    params["data"]["synthetic"]["n_korean_persons"] = -5
    with pytest.raises(ConfigError, match=r"data\.synthetic: n_korean_persons must be >= 10"):
        load_section(config.DataConfig, "data", write(tmp_path, params))


@pytest.mark.parametrize("section,key,value", [
    ("train_baseline", "protocol", "linear_probe"),  # protocol means something for downstream only
    ("finetune_korean", "protocol", "korean_only"),
    ("finetune_korean", "encoder", "resnet18"),  # it inherits train_baseline's encoder
])
def test_keys_are_rejected_where_they_mean_nothing(tmp_path, section, key, value):
    params = base_params()
    params[section] = {**(params[section] or {}), key: value}
    with pytest.raises(ConfigError, match=rf"unknown key.*{section}\.{key}"):
        load_section(SECTIONS[section], section, write(tmp_path, params))


def test_top_level_seed_type_is_reported_as_params_seed(tmp_path):
    params = base_params()
    params["seed"] = "0"
    with pytest.raises(ConfigError, match=r"params\.yaml:seed: expected int, got '0'"):
        config.check_all(write(tmp_path, params))


@pytest.mark.parametrize("section,key,value,registry", [
    ("data", "korean", "CSV", "'csv'"),  # sources are lower case
    ("pretrain_vcop", "encoder", "resnet19", "'resnet18'"),
    ("multitrain", "age_encoder", "tinycnn", "'tiny_cnn'"),
    ("downstream", "encoder", "r21d", "'r21d_mini'"),
])
def test_unknown_registry_names_are_rejected_naming_the_key_and_the_list(tmp_path, section, key, value, registry):
    params = base_params()
    params[section] = {**(params[section] or {}), key: value}
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: unknown \w+ '{value}'; available: .*{registry}"):
        config.check_all(write(tmp_path, params))


def test_general_test_frac_has_its_own_key(tmp_path):
    params = base_params()
    params["split_korean"]["general_test_frac"] = 0.1
    cfg = load_section(config.SplitConfig, "split_korean", write(tmp_path, params))
    assert cfg.general_test_frac == 0.1 and cfg.korean_test_frac == 0.25


# ------------------------------------------------------------------------------------------ recipe keys
def test_recipe_keys_hold_the_defaults_docs_recipe_documents():
    budget = load_section(config.BudgetConfig, "budget", ROOT / "params.yaml")
    recipe = (ROOT / "docs" / "recipe.md").read_text()
    assert f"(`budget.korean.general_mix`, default {budget.korean.general_mix:g})" in recipe
    assert budget.select_start is True and "(`budget.select_start`, default `true`)" in recipe
    assert load_section(config.SequenceConfig, "build_sequences", ROOT / "params.yaml").resample_each_epoch is False
    baseline = load_section(config.TrainBaselineConfig, "train_baseline", ROOT / "params.yaml")
    assert (baseline.encoder, baseline.encoder_weights) == ("efficientnet_lite0", "imagenet")
    assert "The default age encoder of every condition is ImageNet-pretrained `efficientnet_lite0`" in recipe
    assert "general_mix" not in vars(budget.phase("korean", 0))  # a phase's optimisation only


def test_conditions_must_start_from_the_same_weights(tmp_path):
    params = base_params()
    torch_file = tmp_path / "w.pth"
    import torch

    from pipeline.models import build_encoder
    torch.save(build_encoder("resnet18").state_dict(), torch_file)
    params["train_baseline"]["encoder_weights"] = str(torch_file)
    with pytest.raises(ConfigError, match=r"same weights.*train_baseline\.encoder_weights"):
        config.check_all(write(tmp_path, params))
    params["pretrain_vcop"]["encoder_weights"] = params["multitrain"]["age_encoder_weights"] = str(torch_file)
    config.check_all(write(tmp_path, params))


def test_absent_imagenet_weights_fail_when_params_load_naming_the_key_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    params = base_params()
    params["train_baseline"].update(encoder="resnet18", encoder_weights="imagenet")
    with pytest.raises(ConfigError, match=r"train_baseline\.encoder_weights: ImageNet weights .*resnet18-f37072fd"):
        load_section(config.TrainBaselineConfig, "train_baseline", write(tmp_path, params))
    params["multitrain"]["vcop_encoder_weights"] = "imagenet"
    with pytest.raises(ConfigError, match=r"vcop_encoder_weights: encoder 'r21d_mini' has no ImageNet weights"):
        load_section(config.MultiTrainConfig, "multitrain", write(tmp_path, params))


@pytest.mark.parametrize("phase,value,match", [("korean", 0.9, "general_mix must be in"),
                                               ("general", 0.2, r"unknown key.*budget\.general\.general_mix")])
def test_general_mix_is_a_korean_phase_share_below_0_9(tmp_path, phase, value, match):
    params = base_params()
    params["budget"][phase]["general_mix"] = value
    with pytest.raises(ConfigError, match=match):
        load_section(config.BudgetConfig, "budget", write(tmp_path, params))


def test_training_seed_comes_from_the_command_line_and_splits_keep_the_top_level_seed(tmp_path):
    params = base_params()
    params.update(seed=4, train_seeds=[0, 7])
    path = write(tmp_path, params)
    cfg = config.load_training(config.TrainBaselineConfig, "train_baseline", ["--train-seed", "7"], path)
    assert cfg.seed == 7  # initialisation, augmentation, batch and tuple order
    assert load_section(config.SplitConfig, "split_korean", path).seed == 4  # which persons are train/val/test
    assert load_section(config.SequenceConfig, "build_sequences", path).seed == 4  # which tuples exist
    assert config.split_seed(path) == 4


def test_a_training_seed_outside_train_seeds_is_refused(tmp_path):
    path = write(tmp_path, {**base_params(), "train_seeds": [0, 1]})
    with pytest.raises(ConfigError, match=r"--train-seed 5 is not in .*train_seeds \[0, 1\]"):
        config.train_seed_arg(["--train-seed", "5"], path)
    with pytest.raises(SystemExit):  # argparse: the argument is required
        config.train_seed_arg([], path)


@pytest.mark.parametrize("seeds, match", [
    ([], "non-empty list"), ([0, -1], "integers >= 0"), ("0", "non-empty list"), ([0, 1, 0], "lists a seed twice"),
    (None, "non-empty list"),
])
def test_bad_train_seeds_name_the_key(tmp_path, seeds, match):
    params = base_params()
    params["train_seeds"] = seeds
    path = write(tmp_path, params)
    with pytest.raises(ConfigError, match=rf"params\.yaml:train_seeds: .*{match}"):
        config.check_all(path)


def test_shipped_params_train_several_seeds_and_the_smoke_profile_two():
    assert len(config.train_seeds(ROOT / "params.yaml")) >= 3
    assert config.train_seeds(ROOT / "tests/fixtures/params.tiny.yaml") == [0, 1]


# ------------------------------------------------------------------ every key visible, every key meaningful
def _field_table(cls, tree: dict, where: str):
    """(key path, field, value in params.yaml or MISSING) for every field `cls` accepts, nested ones included."""
    from dataclasses import MISSING, fields
    from typing import get_type_hints

    from pipeline.config.loader import nested_class
    hints = get_type_hints(cls)
    for f in fields(cls):
        path, value = f"{where}.{f.name}", tree.get(f.name, MISSING)
        nested = nested_class(hints[f.name])
        if nested is not None:
            yield from _field_table(nested, value if isinstance(value, dict) else {}, path)
        else:
            yield path, f, value


def test_every_accepted_key_is_in_params_yaml_and_no_code_default_contradicts_it():
    """Resolved as the stages load it: a training phase's keys it leaves out come from `optim` and `runtime`."""
    from dataclasses import MISSING
    params = config.resolve_phases(base_params())
    missing, contradicted = [], []
    for section, cls in SECTIONS.items():
        for path, f, value in _field_table(cls, params[section] or {}, section):
            if f.name == "seed" and path.count(".") == 1:  # the top-level seed fills it
                continue
            if value is MISSING:
                missing.append(path)
            elif f.default is not MISSING and f.default != value:
                contradicted.append(f"{path}: code {f.default!r} vs params.yaml {value!r}")
    assert not missing, f"keys config accepts that params.yaml does not show: {missing}"
    assert not contradicted, contradicted


@pytest.mark.parametrize("section,changes,match", [
    ("multitrain", {"coupling": "none", "coupling_weight": 1.0},
     r"multitrain: coupling_weight=1.0 has no effect with coupling 'none'.*leave it at 0.25"),
    ("multitrain", {"coupling": "none", "rank_margin_years": 2.0}, r"rank_margin_years=2.0 has no effect"),
    ("multitrain", {"coupling": "shared_head", "rank_margin_years": 2.0},
     r"rank_margin_years=2.0 has no effect with coupling 'shared_head'"),
    ("multitrain", {"coupling": "distill", "rank_margin_years": 0.5}, r"rank_margin_years=0.5 has no effect"),
    ("data", {"face": "none", "face_margin": 0.4}, r"data: face_margin=0.4 has no effect with face 'none'"),
    ("data", {"face": "none", "face_min_size": 40}, r"face_min_size=40 has no effect with face 'none'"),
    ("split_korean", {"korean_test_person": "p1", "korean_test_frac": 0.3},
     r"korean_test_frac=0.3 has no effect with korean_test_person 'p1'"),
])
def test_a_key_that_means_nothing_in_the_combination_is_rejected_with_the_reason(tmp_path, section, changes, match):
    params = base_params()
    params[section].update(changes)
    with pytest.raises(ConfigError, match=match):
        load_section(SECTIONS[section], section, write(tmp_path, params))


@pytest.mark.parametrize("section,changes", [
    ("multitrain", {"coupling": "none"}), ("multitrain", {"coupling": "shared_head"}),
    ("multitrain", {"coupling": "rank", "rank_margin_years": 2.0}),
    ("data", {"face": "mtcnn", "face_margin": 0.4}), ("split_korean", {"korean_test_person": "p1"}),
])
def test_the_same_keys_at_their_defaults_or_where_they_apply_are_accepted(tmp_path, section, changes):
    params = base_params()
    params[section].update(changes)
    load_section(SECTIONS[section], section, write(tmp_path, params))


def test_evaluate_ci_is_not_a_key_the_95_percent_is_fixed(tmp_path):
    params = base_params()
    params["evaluate"]["ci"] = 0.9
    with pytest.raises(ConfigError, match=r"unknown key.*evaluate\.ci"):
        load_section(config.EvalConfig, "evaluate", write(tmp_path, params))


def test_multitrain_shares_the_age_training_keys(tmp_path):
    params = base_params()
    params["multitrain"]["lr_scale"] = 0.5
    cfg = load_section(config.MultiTrainConfig, "multitrain", write(tmp_path, params))
    assert isinstance(cfg, config.AgeTrainingConfig) and cfg.lr_scale == 0.5 and cfg.loss == "l1"
