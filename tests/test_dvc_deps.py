"""dvc.yaml contract: every stage's deps cover every project module its script imports, directly or not, and
every training stage runs once per training seed.

A module missing from a stage's deps means a changed default there leaves stale models and metrics that
`dvc status` calls up to date. Imports inside functions count too (ast walks the whole file). A `foreach` stage
is checked through its `do:` body, which every generated stage (name@seed) shares.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
RAW_STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
STAGES = {name: stage.get("do", stage) for name, stage in RAW_STAGES.items()}  # foreach: the per-item body
TRAINING = ("pretrain_vcop", "train_baseline", "finetune_korean", "downstream", "multitrain")


def module_file(name: str) -> Path | None:
    """pipeline.data.cache -> pipeline/data/cache.py (or the package's __init__.py); None outside the project."""
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the `pipeline` modules a file imports (from-imports of submodules included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pipeline import train`
    return {n for n in names if n.split(".")[0] == "pipeline"}


def import_closure(script: Path) -> set[Path]:
    """Every project file `script` needs: its imports, theirs, and each parent package's __init__.py."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                found = module_file(".".join(parts[:depth]))
                if found is not None and found not in seen:
                    todo.append(found)
    return {p.relative_to(ROOT) for p in seen}


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(dep) or Path(dep) in path.parents for dep in deps)


def script_of(stage: dict) -> Path:
    words = stage["cmd"].split()
    return Path(next(w for w in words if w.endswith(".py")))


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_its_import_closure(name: str) -> None:
    stage = STAGES[name]
    deps = [str(d) for d in stage.get("deps", [])]
    needed = import_closure(ROOT / script_of(stage))
    missing = sorted(str(p) for p in needed if not covered(p, deps))
    assert not missing, f"dvc.yaml stage '{name}' imports modules missing from its deps: {missing}"


def test_closure_follows_function_level_and_indirect_imports(tmp_path: Path) -> None:
    """The walker itself: a stage that imports only pipeline.runtime still needs pipeline/__init__.py."""
    closure = import_closure(ROOT / "stages" / "prepare_data.py")
    assert Path("pipeline/__init__.py") in closure
    assert Path("pipeline/runtime.py") in closure
    assert len(closure) > 5  # config, runtime, data modules, ...


def _paths(items: list) -> list[str]:
    return [next(iter(item)) if isinstance(item, dict) else item for item in items]


@pytest.mark.parametrize("name", TRAINING)
def test_training_stages_run_once_per_training_seed_with_their_own_outputs(name: str) -> None:
    raw, stage = RAW_STAGES[name], STAGES[name]
    assert raw.get("foreach") == "${train_seeds}", name
    assert stage["cmd"] == f"python stages/{name}.py --train-seed ${{item}}"
    assert _paths(stage["outs"]) == [f"models/{name}/seed${{item}}", f"metrics/train/{name}/seed${{item}}.json"]
    assert _paths(stage["plots"]) == [f"metrics/history/{name}/seed${{item}}.csv"]
    # a stage that read the list itself would rerun every seed when one is added
    assert "train_seeds" not in stage.get("params", [])


def test_a_run_starts_from_the_same_seeds_run_upstream_and_evaluate_reads_every_seed() -> None:
    assert "models/train_baseline/seed${item}" in STAGES["finetune_korean"]["deps"]
    assert "models/pretrain_vcop/seed${item}" in STAGES["downstream"]["deps"]
    evaluate = STAGES["evaluate"]
    assert "train_seeds" in evaluate["params"]
    assert {f"models/{s}" for s in TRAINING} <= set(evaluate["deps"])  # above every seed's run: a new one counts


# the modules only training runs need (the training loop, its step functions, DDP side, checkpoints and weight
# averages)
TRAINING_MODULES = {Path("pipeline/phases.py"), Path("pipeline/train.py"), Path("pipeline/steps.py"),
                    Path("pipeline/distributed.py"), Path("pipeline/checkpoint.py"), Path("pipeline/averaging.py")}


@pytest.mark.parametrize("script", ["stages/evaluate.py", "pipeline/predict.py", "pipeline/study.py",
                                    "pipeline/aggregate.py", "pipeline/report.py", "pipeline/comparison.py",
                                    "pipeline/artifacts.py", "stages/build_sequences.py"])
def test_evaluation_and_tools_import_no_training_module(script: str) -> None:
    """Layers point one way: paths come from pipeline.layout, so nothing outside training imports training."""
    assert not import_closure(ROOT / script) & TRAINING_MODULES


def test_the_evaluate_stage_depends_on_no_training_module() -> None:
    deps = {Path(str(d)) for d in STAGES["evaluate"]["deps"]}
    assert not deps & TRAINING_MODULES, sorted(map(str, deps & TRAINING_MODULES))


# the params each training stage reads: the budget phases it runs, `optim` and `runtime` filling what they leave out
PHASE_PARAMS = {"pretrain_vcop": {"seed", "optim", "runtime", "pretrain_vcop"},
                "train_baseline": {"optim", "runtime", "budget.general", "train_baseline"},
                "finetune_korean": {"optim", "runtime", "budget.korean", "budget.select_start", "finetune_korean"},
                "downstream": {"optim", "runtime", "budget", "downstream"},
                "multitrain": {"optim", "runtime", "budget", "multitrain"}}


@pytest.mark.parametrize("name", TRAINING)
def test_a_training_stage_depends_on_the_params_it_reads_only(name: str) -> None:
    """budget.korean.lr must not rerun train_baseline, nor budget.general.epochs finetune_korean; every listed key
    exists in params.yaml (DVC would track nothing under a misspelt one)."""
    assert set(STAGES[name]["params"]) == PHASE_PARAMS[name]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in STAGES[name]["params"]:
        tree = params
        for part in key.split("."):
            assert isinstance(tree, dict) and part in tree, f"{name}: params key {key} not in params.yaml"
            tree = tree[part]
