"""params.yaml names each optimisation key once (`optim`, machine settings in `runtime`), and every training phase
resolves to what it trained with before the phases overrode `optim` sparsely; every key line is commented; keys that
mean nothing in a combination are refused."""
import json
import re
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

import pipeline.data.sources  # noqa: F401  (registers the source names check_all checks)
import pipeline.models  # noqa: F401  (registers the encoder names)
from pipeline import config, profiles
from pipeline.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# The resolved optimisation of every phase as the stages loaded it from params.yaml (and the profiles) at commit
# bda576d, when budget.general, budget.korean and pretrain_vcop each listed all 14 keys: hard-coded, not recomputed,
# so a change to the new layout or to its resolution that moves any value (or an int to a float) fails here.
BEFORE_RUNTIME = {"amp": True, "num_workers": 0, "checkpoint_every_s": 120.0}
BEFORE_OPTIM = {"batch_size": 32, "lr": 0.002, "weight_decay": 0.0001, "warmup_epochs": 0.5, "grad_clip": 5.0,
                "patience": 0, "ema_decay": 0.0, "bn_recalibration": 20, "swa_epochs": 3, "val_every": 0,
                **BEFORE_RUNTIME}
# keys added since, at the value that trains what was trained before (photo_control none: the photos as they are)
IDENTITY = {"photo_control": "none"}
BEFORE = {
    "default": {
        "general": {**BEFORE_OPTIM, "epochs": 6},
        "korean": {**BEFORE_OPTIM, "epochs": 10, "general_mix": 0.25},
        "select_start": True,
        "pretrain_vcop": {**BEFORE_OPTIM, "epochs": 5, "encoder": "efficientnet_lite0", "encoder_weights": "imagenet",
                          "head_hidden": 512, "dropout": 0.5, **IDENTITY},
    },
    "full": {
        "general": {**BEFORE_OPTIM, "epochs": 20, "batch_size": 128},
        "korean": {**BEFORE_OPTIM, "epochs": 20, "batch_size": 128, "lr": 0.001, "general_mix": 0.25},
        "select_start": True,
        "pretrain_vcop": {**BEFORE_OPTIM, "epochs": 30, "batch_size": 64, "encoder": "efficientnet_lite0",
                          "encoder_weights": "imagenet", "head_hidden": 512, "dropout": 0.5, **IDENTITY},
    },
    "real": {
        "general": {**BEFORE_OPTIM, "epochs": 5},
        "korean": {**BEFORE_OPTIM, "epochs": 10, "general_mix": 0.25},
        "select_start": True,
        "pretrain_vcop": {**BEFORE_OPTIM, "epochs": 10, "encoder": "efficientnet_lite0", "encoder_weights": "imagenet",
                          "head_hidden": 512, "dropout": 0.5, **IDENTITY},
    },
    "tiny": {  # tests/fixtures/params.tiny.yaml: the code defaults filled what it left out
        "general": {**BEFORE_OPTIM, "epochs": 1, "bn_recalibration": 2},
        "korean": {**BEFORE_OPTIM, "epochs": 1, "lr": 0.001, "general_mix": 0.25, "bn_recalibration": 2},
        "select_start": True,
        "pretrain_vcop": {**BEFORE_OPTIM, "epochs": 1, "batch_size": 16, "lr": 0.001, "encoder": "tiny_cnn",
                          "encoder_weights": "none", "head_hidden": 64, "dropout": 0.5, **IDENTITY},
    },
}


def set_key(tree: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree[key]
    tree[last] = value


def write(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def params_of(name: str, tmp_path: Path, monkeypatch) -> Path:
    """params.yaml as `dvc exp run $(python -m pipeline.profiles <name>)` leaves it, or the smoke fixture."""
    if name == "tiny":
        return ROOT / "tests/fixtures/params.tiny.yaml"
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if name != "default":
        monkeypatch.chdir(ROOT)  # profiles/ is read relative to the repository root
        for key, value in profiles.overrides(name).items():
            set_key(params, key, value)
    return write(tmp_path, params)


def exact(value) -> str:
    """JSON with sorted keys: 120 and 120.0 differ here, as they do in a checkpoint's fingerprint."""
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_phase_resolves_to_the_values_it_trained_with_before(name, tmp_path, monkeypatch):
    path = params_of(name, tmp_path, monkeypatch)
    config.check_all(path)
    budget = config.load_section(config.BudgetConfig, "budget", path)
    vcop = config.load_training(config.VCOPConfig, "pretrain_vcop", ["--train-seed", "0"], path)
    before = BEFORE[name]
    # what fit() receives (its fingerprint hashes asdict of it) for each age phase, the seed being the training seed
    for phase in ("general", "korean"):
        expected = {k: v for k, v in before[phase].items() if k != "general_mix"}
        assert exact(asdict(budget.phase(phase, 0))) == exact({**expected, "seed": 0}), phase
    assert budget.korean.general_mix == before["korean"]["general_mix"]
    assert budget.select_start is before["select_start"]
    assert exact(asdict(vcop)) == exact({**before["pretrain_vcop"], "seed": 0})


def test_amp_is_one_switch_for_every_phase(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["runtime"]["amp"] = False  # dvc exp run -S runtime.amp=false
    path = write(tmp_path, params)
    budget = config.load_section(config.BudgetConfig, "budget", path)
    vcop = config.load_section(config.VCOPConfig, "pretrain_vcop", path)
    assert not budget.general.amp and not budget.korean.amp and not vcop.amp


def test_a_phase_takes_optim_unless_it_sets_its_own_key(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["optim"]["weight_decay"] = 0.01
    params["budget"]["korean"]["lr"] = 5.0e-4
    params["budget"]["general"]["weight_decay"] = 0.0  # -S +budget.general.weight_decay=0.0: a key it lacked
    path = write(tmp_path, params)
    budget = config.load_section(config.BudgetConfig, "budget", path)
    vcop = config.load_section(config.VCOPConfig, "pretrain_vcop", path)
    assert (budget.general.weight_decay, budget.korean.weight_decay, vcop.weight_decay) == (0.0, 0.01, 0.01)
    assert (budget.general.lr, budget.korean.lr, vcop.lr) == (2.0e-3, 5.0e-4, 2.0e-3)


def test_shipped_phases_name_only_what_differs_from_optim():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    own = {"budget.general": params["budget"]["general"], "budget.korean": params["budget"]["korean"],
           "pretrain_vcop": params["pretrain_vcop"]}
    optim_keys = set(params["optim"])
    # the keys a phase repeats on purpose: its epochs (its budget), the Korean phase's separately tuned lr, and
    # pretrain_vcop's batch_size, counted in tuples, not photos
    allowed = {"budget.general": {"epochs"}, "budget.korean": {"epochs", "lr"},
               "pretrain_vcop": {"epochs", "batch_size"}}
    for phase, keys in own.items():
        assert set(keys) & optim_keys <= allowed[phase], phase
        assert not set(keys) & set(params["runtime"]), phase
    assert "epochs" not in params["optim"]  # every phase sets its own: a default there would be read by none


@pytest.mark.parametrize("mistake, match", [
    (("budget", "korean", "amp", False), r"budget\.korean\.amp: a machine setting .* set runtime\.amp instead"),
    (("pretrain_vcop", "num_workers", 2), r"pretrain_vcop\.num_workers: a machine setting"),
    (("optim", "lr", "3e-4"), r"params\.yaml:optim\.lr: expected float, got '3e-4'"),
    (("optim", "batch_size", 1), r"params\.yaml:optim: batch_size must be >= 2"),
    (("runtime", "checkpoint_every_s", -1.0), r"params\.yaml:runtime: checkpoint_every_s must be >= 0"),
    (("optim", "epochs", 3), r"unknown key.*optim\.epochs"),
    (("runtime", "lr", 0.1), r"unknown key.*runtime\.lr"),
])
def test_mistakes_are_named_where_they_are_made(tmp_path, mistake, match):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    *keys, value = mistake
    set_key(params, ".".join(keys), value)
    with pytest.raises(ConfigError, match=match):
        config.check_all(write(tmp_path, params))


def test_a_missing_optim_section_is_named(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    del params["optim"]
    with pytest.raises(ConfigError, match="missing section 'optim'"):
        config.load_section(config.BudgetConfig, "budget", write(tmp_path, params))


# ------------------------------------------------------------------ combinations that mean nothing
@pytest.mark.parametrize("changes, match", [
    ({"optim.swa_epochs": 0, "optim.val_every": 1}, r"params\.yaml:optim: val_every=1 has no effect with swa_epochs 0"),
    ({"optim.val_every": 1, "budget.korean.swa_epochs": 0}, r"budget: korean\.val_every=1 has no effect"),
    ({"budget.general.swa_epochs": 0, "budget.general.val_every": 2}, r"budget: general\.val_every=2 has no effect"),
    ({"pretrain_vcop.swa_epochs": 0, "pretrain_vcop.val_every": 1}, r"pretrain_vcop: val_every=1 has no effect"),
])
def test_val_every_without_swa_epochs_is_refused(tmp_path, changes, match):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in changes.items():
        set_key(params, key, value)
    with pytest.raises(ConfigError, match=match):
        config.check_all(write(tmp_path, params))


def test_val_every_with_swa_epochs_and_swa_epochs_alone_are_accepted(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["optim"]["val_every"] = 1  # the README's one edit for every phase's val curves
    config.check_all(write(tmp_path, params))
    params["optim"]["val_every"] = 0
    params["budget"]["korean"]["swa_epochs"] = 0  # best-epoch selection in one phase
    config.check_all(write(tmp_path, params))


def test_general_test_frac_is_refused_where_the_general_source_has_an_official_test_list(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["data"]["general"] == "synthetic"  # the default data carries its own general test list
    params["split_korean"]["general_test_frac"] = 0.3
    with pytest.raises(ConfigError, match=r"split_korean\.general_test_frac=0\.3 has no effect: data\.general "
                                          r"'synthetic' brings its own test list"):
        config.check_all(write(tmp_path, params))
    params["data"].update(general="utkface", general_root=str(tmp_path))  # no official list: the share splits it
    config.check_all(write(tmp_path, params))


def test_korean_test_frac_is_refused_where_the_korean_source_has_an_official_test_list(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(korean="aihub_aging", korean_root=str(tmp_path))
    config.check_all(write(tmp_path, params))  # at its default the key is accepted
    params["split_korean"]["korean_test_frac"] = 0.2
    with pytest.raises(ConfigError, match=r"split_korean\.korean_test_frac=0\.2 has no effect: data\.korean "
                                          r"'aihub_aging' brings its own test list"):
        config.check_all(write(tmp_path, params))
    params["data"].update(korean="synthetic", korean_root="")  # the synthetic Korean persons have none
    config.check_all(write(tmp_path, params))


def test_the_unused_test_share_value_is_the_shipped_one():
    split = config.load_section(config.SplitConfig, "split_korean", ROOT / "params.yaml")
    assert split.general_test_frac == split.korean_test_frac == config.TEST_FRAC_DEFAULT
    known = set(config.REGISTRIES["source"]())
    assert {s for sources in config.OFFICIAL_TEST_SOURCES.values() for s in sources} <= known


# ------------------------------------------------------------------ every key line commented, no measurements
KEY_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*):")


def test_every_key_line_of_params_yaml_has_a_comment():
    lines = (ROOT / "params.yaml").read_text().splitlines()
    bare = [f"{n}: {line.strip()}" for n, line in enumerate(lines, 1) if KEY_LINE.match(line) and "#" not in line]
    assert not bare, f"params.yaml key lines without a comment (say why the value is what it is): {bare}"


def test_params_yaml_comments_quote_no_measured_numbers():
    """Measured MAEs and timings live in docs/recipe.md and benchmarks/, which name the command that made them."""
    comments = [line.split("#", 1)[1] for line in (ROOT / "params.yaml").read_text().splitlines() if "#" in line]
    measured = [c.strip() for c in comments if re.search(r"\b\d+\.\d{2,}\b|\d\s*%\s*(faster|slower|better|worse)", c)]
    assert not measured, measured
