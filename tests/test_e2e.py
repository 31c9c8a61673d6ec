"""End to end: the real `dvc repro` on the smoke profile in a temp copy of the repo, then its real outputs.

The smoke profile is reproduced once per pytest run (`reproduced`); every test works on its own copy of it.
"""
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from pipeline.artifacts import CONDITIONS
from tests.helpers import ROOT, TINY_PARAMS, commit_all, dvc, face_photos, make_project, megaage, photo, ramp, run


HEADLINE_KEYS = ["01_korean_mae", "02_korean_mae_seed_std", "03_korean_cs5", "04_korean_bias", "05_general_mae",
                 "06_dmae_vs_finetune", "07_dmae_ci_low", "08_dmae_ci_high", "09_ci_over", "10_n_seeds",
                 "11_korean_band_acc"]
TRAIN_SEEDS = yaml.safe_load(TINY_PARAMS.read_text())["train_seeds"]
TRAINING = ("pretrain_vcop", "train_baseline", "finetune_korean", "downstream", "multitrain")


def numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def declared(kind: str) -> list[Path]:
    """Every `kind` path of dvc.yaml, a foreach stage's once per training seed of the smoke profile."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    paths = []
    for stage in stages.values():
        items = [str(s) for s in TRAIN_SEEDS] if "foreach" in stage else [None]
        for item in (stage.get("do", stage).get(kind, [])):
            path = next(iter(item)) if isinstance(item, dict) else item
            paths += [Path(path.replace("${item}", seed)) if seed is not None else Path(path) for seed in items]
    return paths


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Path:
    """The smoke profile reproduced once and committed: a read-only template. Tests never run in it; each takes
    its own copy (`project`), so any test passes alone, in any order."""
    work = make_project(tmp_path_factory.mktemp("e2e") / "template")
    dvc("repro", cwd=work)
    commit_all(work)
    return work


def _not_dvc_tmp(folder: str, names: list[str]) -> list[str]:
    return ["tmp"] if Path(folder).name == ".dvc" else []  # locks and state of the template's dvc runs


@pytest.fixture
def project(reproduced, tmp_path) -> Path:
    """This test's own copy of the reproduced project (git history, DVC cache and checkpoints included)."""
    work = tmp_path / "project"
    shutil.copytree(reproduced, work, symlinks=True, ignore=_not_dvc_tmp)
    return work


@pytest.mark.slow
def test_repro_writes_every_declared_metric_finite(project):
    for path in declared("metrics"):
        values = list(numbers(json.loads((project / path).read_text())))
        assert values and all(math.isfinite(v) for v in values), path
    for condition in ("baseline", "finetune_korean", "downstream", "multitrain"):
        result = json.loads((project / f"metrics/eval/details/{condition}.json").read_text())
        assert result["korean"]["n"] > 0 and 0 <= result["korean"]["cs5"] <= 1
    for path in declared("plots") + [Path("metrics/report.md")] + \
            [Path(f"metrics/plots/{n}.png") for n in ("cs_curve", "scatter", "mae_by_band", "training_curves")]:
        assert (project / path).stat().st_size > 0, path
    assert "| multitrain |" in (project / "metrics/report.md").read_text()
    for stage in ("finetune_korean", "downstream", "multitrain"):  # forgetting, measured on general val
        for seed in TRAIN_SEEDS:
            trained = json.loads((project / f"metrics/train/{stage}/seed{seed}.json").read_text())
            assert math.isfinite(trained["korean_general_val_mae"]) and trained["korean_general_val_mae"] > 0, stage
    for condition in ("baseline", "finetune_korean", "downstream", "multitrain"):  # every seed's own numbers
        result = json.loads((project / f"metrics/eval/details/{condition}.json").read_text())
        assert sorted(result["per_seed"]) == [str(s) for s in TRAIN_SEEDS] and result["n_seeds"] == len(TRAIN_SEEDS)
    predictions = pd.read_csv(project / "metrics/eval/predictions.csv")
    assert sorted(predictions["seed"].unique()) == TRAIN_SEEDS
    pretext = json.loads((project / "metrics/eval/comparison.json").read_text())["pretext"]
    assert {"val_acc", "val_top3", "val_kendall_tau", "chance_top3"} <= set(pretext)
    assert sorted(pretext["per_seed"]) == [str(s) for s in TRAIN_SEEDS]


@pytest.mark.slow
def test_second_repro_is_up_to_date(project):
    out = dvc("repro", cwd=project).stdout
    # check_params runs on every repro (always_changed) and rewrites nothing; no other stage may run
    ran = [line for line in out.splitlines() if line.startswith("Running stage")]
    skipped = [line for line in out.splitlines() if line.endswith("didn't change, skipping")]
    # 3 data stages, 5 training stages per training seed, evaluate
    assert ran == ["Running stage 'check_params':"] and len(skipped) == 3 + 5 * len(TRAIN_SEEDS) + 1, out


@pytest.mark.slow
def test_adding_a_training_seed_reruns_only_that_seed(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train_seeds"] = [*TRAIN_SEEDS, 7]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(dvc("status", "--json", cwd=project).stdout))
    assert changed == {f"{stage}@7" for stage in TRAINING} | {"evaluate", "check_params"}, changed


def output_digests(work: Path) -> dict[str, str]:
    """md5 of every file the pipeline wrote (data, models, metrics) and of dvc.lock."""
    folders = [work / "data", work / "models", work / "metrics"]
    files = [f for folder in folders for f in folder.rglob("*") if f.is_file() and f.name != ".gitignore"]
    return {str(f.relative_to(work)): hashlib.md5(f.read_bytes()).hexdigest() for f in files + [work / "dvc.lock"]}


@pytest.mark.slow
def test_same_params_and_seed_give_identical_bytes(project):
    """A second full run from scratch (no checkpoints to resume) rewrites every output byte for byte on the same
    machine, models included, so dvc.lock and `git status` stay clean."""
    before = output_digests(project)
    shutil.rmtree(project / ".checkpoints")
    dvc("repro", "-f", cwd=project)
    after = output_digests(project)
    assert after == before, sorted(k for k in before if after.get(k) != before[k])  # dvc.lock included


@pytest.mark.slow
def test_outputs_keep_the_users_umask(project):
    umask = os.umask(0)
    os.umask(umask)
    for path in ("models/multitrain/seed0/model.pt", "metrics/eval/baseline.json", "metrics/report.md"):
        assert (project / path).stat().st_mode & 0o777 == 0o666 & ~umask, path  # not mkstemp's 0600


@pytest.mark.slow
def test_bad_params_fail_before_any_output_is_touched(project):
    """DVC deletes a stage's outputs before running it: the check must come first, in check_params."""
    before = output_digests(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["multitrain"]["couplng"] = "rank"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = dvc("repro", cwd=project, check=False)
    assert proc.returncode != 0 and "multitrain.couplng" in proc.stdout + proc.stderr
    assert "Running stage 'multitrain'" not in proc.stdout
    assert output_digests(project) == before


@pytest.mark.slow
def test_metrics_show_has_one_headline_row_per_condition(project):
    shown = json.loads(dvc("metrics", "show", "--json", cwd=project).stdout)[""]["data"]
    assert sorted(shown) == [f"metrics/eval/{c}.json" for c in sorted(CONDITIONS)]
    for path, entry in shown.items():  # finetune_korean has no Δ vs itself: null, which DVC leaves out
        expected = HEADLINE_KEYS[:5] + HEADLINE_KEYS[9:] if "finetune_korean" in path else HEADLINE_KEYS
        assert list(entry["data"]) == expected, path
        assert entry["data"]["10_n_seeds"] == len(TRAIN_SEEDS)
        assert "finetune_korean" in path or entry["data"]["09_ci_over"] == "seeds+persons"  # the CI's clusters
    table = dvc("metrics", "show", cwd=project).stdout.splitlines()
    assert table[0].split() == ["Path", *HEADLINE_KEYS] and len(table) == 5


@pytest.mark.slow
def test_plots_show_draws_each_figure_once_with_every_condition(project):
    shown = json.loads(dvc("plots", "show", "--json", cwd=project).stdout)
    assert "errors" not in shown, shown.get("errors")
    plots = shown["data"]
    histories = {f"metrics/history/{s}/seed{k}.csv" for s in TRAINING for k in TRAIN_SEEDS}
    comparisons = {"cumulative score CS(n), Korean test", "predicted vs true age, Korean test",
                   "MAE per age band (x = the band's lowest age), Korean test"}
    assert set(plots) == histories | comparisons | {"metrics/plots/contact_sheet.png"}
    for plot_id in comparisons:
        (plot,) = plots[plot_id]
        drawn = {row["field"] for row in plot["content"]["data"]["values"]}
        assert drawn == set(CONDITIONS), plot_id


@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_with_rank_zero_writing(project, tmp_path):
    """DDP on CPU: 2 processes, same output format as one process; any write from rank 1 raises (runtime.py)."""
    work = project
    shutil.rmtree(work / ".checkpoints")  # a 2-process run never resumes a 1-process checkpoint anyway
    single = {s: json.loads((work / f"metrics/train/{s}/seed0.json").read_text())
              for s in ("train_baseline", "multitrain")}
    single_history = pd.read_csv(work / "metrics/history/multitrain/seed0.csv")
    for stage in ("train_baseline", "multitrain"):  # plain age steps; multitrain's two encoders and coupling
        proc = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    f"stages/{stage}.py", "--train-seed", "0"], work)
        assert "distributed: 2 processes, backend gloo" in proc.stderr
        assert "[rank 1]" not in proc.stderr  # rank 1 logs warnings only: there should be none
        metrics = json.loads((work / f"metrics/train/{stage}/seed0.json").read_text())
        assert set(metrics) == set(single[stage]) and all(math.isfinite(v) for v in numbers(metrics))
    history = pd.read_csv(work / "metrics/history/multitrain/seed0.csv")
    assert list(history.columns) == list(single_history.columns) and len(history) == len(single_history)
    assert not list(work.rglob(".*.tmp"))  # no half-written file left by a second writer
    run([sys.executable, "-c", "from pipeline.artifacts import load_age_model, model_path; "
         "load_age_model(model_path('multitrain', 0))"], work)


@pytest.mark.slow
def test_predict_cli_on_photos_of_any_size_and_a_corrupt_one(project, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"  # beside the project copy, whose own photos must not be picked up
    photos.mkdir()
    Image.fromarray(ramp(200, 300, 110)).save(photos / "big.png")  # one flat colour would be refused as blank
    Image.fromarray(ramp(20, 20, 80)[..., 0], "L").save(photos / "grey.jpg")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    out = tmp_path / "pred.csv"
    proc = run([sys.executable, "-m", "pipeline.predict", "--model", "downstream", "--out", str(out), str(photos)],
               project, check=False)
    assert proc.returncode == 1, proc.stderr  # 1: some photos could not be read
    table = pd.read_csv(out)
    assert len(table) == 3 and table["predicted_age"].notna().sum() == 2
    assert "broken.jpg" in proc.stderr and "cannot decode" in proc.stderr
    missing = run([sys.executable, "-m", "pipeline.predict", "--model", "baseline", "--out", str(out),
                   str(photos / "nope.jpg")], project, check=False)
    assert missing.returncode == 1 and "nope.jpg: file not found [not_found]" in missing.stderr
    assert pd.read_csv(out)["outcome"].tolist() == ["not_found"]  # a named row, not a crash or a silent skip


@pytest.mark.slow
def test_exp_run_with_face_detection_on_the_smoke_profile(project, tmp_path):
    """`-S data.face=mtcnn` runs the whole chain; the synthetic renders are crops already (MTCNN finds a face
    in only about a third of these 32 px cartoons), so they are kept as they are, and every model file records
    the detector settings that predict then applies to a real photo, from outside the project."""
    dvc("exp", "run", "-S", "data.face=mtcnn", cwd=project)
    meta = json.loads((project / "data/cache/meta.json").read_text())
    assert meta["face"]["general"]["face"] == meta["face"]["korean"]["face"] == "mtcnn"
    assert meta["n_as_crops"] == meta["n_images"] > 0
    assert meta["n_dropped"] == 0
    assert "n_faces" in pd.read_csv(project / "data/cache/index.csv", nrows=1).columns
    assert all(math.isfinite(v) for v in numbers(json.loads((project / "metrics/eval/baseline.json").read_text())))
    photos = face_photos(tmp_path / "photos")
    out = tmp_path / "pred.csv"
    env = {**os.environ, "PYTHONPATH": str(project), "AGE_VCOP_DEVICE": "cpu"}  # the code, not the project's files
    model = project / "models/downstream/seed0/model.pt"
    proc = subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(model), "--out", str(out),
                           str(photos["upright"]), str(photos["no_face"])],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and "dvc repro" not in proc.stderr, proc.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert table["outcome"].tolist() == ["face", "no_face"] and table["fallback"].tolist() == ["", "center_crop"]


@pytest.mark.slow
def test_exp_run_with_a_misspelt_key_fails_naming_it(project):
    proc = dvc("exp", "run", "-S", "multitrain.couplng=rank", cwd=project, check=False)
    assert proc.returncode != 0
    assert "multitrain.couplng" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_seed_experiments_aggregate_to_mean_and_std(project):
    assert dvc("exp", "run", "-S", "multitrain.couplng=rank", cwd=project, check=False).returncode != 0
    dvc("exp", "run", "-S", "seed=1", cwd=project)
    dvc("exp", "run", "-S", "seed=2", cwd=project)
    proc = run([sys.executable, "-m", "pipeline.aggregate"], project)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "condition" not in line]
    # seeds 1 and 2, plus the committed HEAD run (seed 0); the failed misspelt-key run is not counted
    assert len(rows) == 4 and all("| 3 |" in row and "±" in row for row in rows)
    assert (project / "metrics/seeds.md").exists()


@pytest.mark.slow
def test_repro_on_real_layout_fixtures(tmp_path):
    """MegaAge-Asian layout as the general role, a longitudinal CSV set as the Korean role, through the chain."""
    general = megaage(tmp_path / "megaage", n_train=48, n_test=16)
    korean = tmp_path / "family"
    rows = []
    for p in range(20):
        for k in range(5):
            age = 5 + 3 * p % 30 + 6 * k
            photo(korean / f"p{p}" / f"{k}.jpg", value=int(40 + 2 * age))
            rows.append({"path": f"p{p}/{k}.jpg", "person_id": f"fam{p}", "age": age, "date": f"{1990 + 6 * k}-01-01"})
    pd.DataFrame(rows).to_csv(korean / "manifest.csv", index=False)

    params = yaml.safe_load(TINY_PARAMS.read_text())
    params["data"].update(general="megaage_asian", general_root=str(general), korean="csv", korean_root=str(korean))
    work = make_project(tmp_path / "project", yaml.safe_dump(params), git=False)
    dvc("repro", cwd=work)
    summary = json.loads((work / "metrics/data.json").read_text())
    assert summary["general_photos"] == 64 and summary["korean_persons"] == 20
    for condition in ("baseline", "finetune_korean", "downstream", "multitrain"):
        result = json.loads((work / f"metrics/eval/details/{condition}.json").read_text())
        assert result["korean"]["n"] > 0 and math.isfinite(result["korean"]["mae"])


@pytest.mark.slow
def test_exp_run_on_an_aihub_tree_with_megaage_crops_as_the_general_role(tmp_path):
    """AIHub's face-aging layout (every quirk of tests/aihub_fixture.py) as the Korean role, aligned from its
    labels' landmarks, and MegaAge-Asian's crops as the general role, through `dvc exp run` with per-role face
    settings: each quirk is a named outcome, each role keeps its own face mode, and the model files record it."""
    pytest.importorskip("skimage.data")
    from tests.aihub_fixture import write_tree
    tree = write_tree(tmp_path / "AIHub", n_train=10, n_val=6, photos_per_person=5, side=400)
    general = megaage(tmp_path / "megaage", n_train=48, n_test=16)
    work = make_project(tmp_path / "project")
    commit_all(work)
    dvc("exp", "run", "-S", "data.korean=aihub_aging", "-S", f"data.korean_root={tree.root}",
        "-S", "data.korean_face=landmarks", "-S", "data.general=megaage_asian", "-S", f"data.general_root={general}",
        "-S", "data.general_face=none", cwd=work)
    meta = json.loads((work / "data/cache/meta.json").read_text())
    assert (meta["face"]["general"]["face"], meta["face"]["korean"]["face"]) == ("none", "landmarks")
    dropped = pd.read_csv(work / "data/cache/dropped.csv")
    expected = {outcome: len(files) for outcome, files in tree.expected.items()}
    assert dropped["reason"].value_counts().to_dict() == expected
    assert set(expected) == {"no_label", "no_photo", "bad_label", "age_mismatch", "bad_landmarks"}
    assert meta["n_box_fallback"] == len(tree.box_fallback) > 0
    summary = json.loads((work / "metrics/data.json").read_text())
    assert summary["general_photos"] == 64 and summary["korean_persons"] == 16
    test = pd.read_csv(work / "data/splits/korean_test.csv", dtype={"person_id": str})
    assert test["person_id"].nunique() == 6  # AIHub's Validation persons are the test persons
    payload = torch.load(work / "models/finetune_korean/seed0/model.pt", weights_only=True)
    assert payload["face_settings"]["face"] == "landmarks"
    for condition in CONDITIONS:
        result = json.loads((work / f"metrics/eval/details/{condition}.json").read_text())
        assert result["korean"]["n"] > 0 and math.isfinite(result["korean"]["mae"])


@pytest.mark.slow
def test_changed_stage_params_never_resume_an_old_checkpoint(project):
    """Same init, other loss weight: a run keyed only on the init would resume and copy the old metrics."""
    metrics = project / "metrics/train/multitrain/seed0.json"
    before = metrics.read_text()
    dvc("exp", "run", "-S", "multitrain.coupling_weight=0.25", cwd=project)
    assert metrics.read_text() != before
    dvc("exp", "run", "-S", "multitrain.coupling_weight=1.0", cwd=project)  # back to the committed params
    assert metrics.read_text() == before


@pytest.mark.slow
def test_label_budget_study_runs_and_collects(project):
    dvc("exp", "run", "-S", "seed=2", cwd=project)  # run without the profile's override: collect must skip it
    # a profile that only changes evaluate: the sweep reuses every trained stage it can
    (project / "profiles/quick.yaml").write_text("evaluate:\n  n_bootstrap: 150\n")
    run([sys.executable, "-m", "pipeline.study", "all", "--profile", "quick", "--fractions", "0.5", "1.0",
         "--seeds", "0", "1"], project)
    study = json.loads((project / "metrics/study_quick.json").read_text())  # named after its profile
    rows = study["rows"]
    # the seed-2 run above lacks the profile's override: collect leaves it out
    assert study["overrides"] == {"evaluate.n_bootstrap": 150} and study["split_seeds"] == [0, 1]
    assert study["train_seeds"] == TRAIN_SEEDS  # every split trained the profile's training seeds
    assert len(rows) == 8 and all(r["n_splits"] == 2 and r["n_train_seeds"] == len(TRAIN_SEEDS) for r in rows)
    assert {r["label_frac"] for r in rows} == {0.5, 1.0}
    assert all(r["general_mae_mean"] > 0 for r in rows)  # the general domain beside the Korean MAE
    downstream = [r for r in rows if r["condition"] == "downstream"]
    assert all(r["vs_finetune_korean_ci_low"] <= r["vs_finetune_korean_mae_diff"] <= r["vs_finetune_korean_ci_high"]
               for r in downstream)
    assert (project / "metrics/plots/study_quick.png").stat().st_size > 0
    assert all(r["labelled_persons"] >= 1 for r in rows)  # the budget in persons, read from each run
    assert re.search(rf"\| downstream \| 0.5 \| \d+ \| 2 x {len(TRAIN_SEEDS)} \|",
                     (project / "metrics/study_quick.md").read_text())
    # committing the results moves HEAD past the experiments' base commit: collect them with --rev
    commit_all(project, "study results")
    run([sys.executable, "-m", "pipeline.study", "collect", "--profile", "quick", "--rev", "HEAD~1"], project)
    assert json.loads((project / "metrics/study_quick.json").read_text())["rows"] == rows



@pytest.mark.slow
def test_a_changed_real_data_root_reruns_prepare_data(tmp_path):
    """DVC cannot see a data root outside the repository: check_params fingerprints it into data/inputs.json."""
    korean = tmp_path / "family"
    rows = [{"path": f"p{p}/{k}.jpg", "person_id": f"fam{p}", "age": 5 + p + 6 * k} for p in range(12) for k in range(4)]
    for row in rows:
        photo(korean / row["path"], value=40 + 2 * row["age"])
    pd.DataFrame(rows).to_csv(korean / "manifest.csv", index=False)
    params = yaml.safe_load(TINY_PARAMS.read_text())
    params["data"].update(korean="csv", korean_root=str(korean))
    work = make_project(tmp_path / "project", yaml.safe_dump(params), git=False)
    dvc("repro", "prepare_data", cwd=work)
    assert "Running stage 'prepare_data'" not in dvc("repro", "prepare_data", cwd=work).stdout  # unchanged root
    rows[0]["age"] += 1  # a corrected age in the manifest
    pd.DataFrame(rows).to_csv(korean / "manifest.csv", index=False)
    assert "Running stage 'prepare_data'" in dvc("repro", "prepare_data", cwd=work).stdout
    photo(korean / "p0/0.jpg", value=200)  # a replaced photo
    assert "Running stage 'prepare_data'" in dvc("repro", "prepare_data", cwd=work).stdout
