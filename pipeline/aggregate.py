"""Mean ± std over split seeds (or folds): python -m pipeline.aggregate [--over KEY], after queued `dvc exp run`s.

`--over seed` (default) collects the experiments that differ from params.yaml in `seed` (the split seed) only;
`--over split_korean.korean_test_person` collects leave-one-person-out folds (FG-NET protocol). Each experiment
already trains every params.yaml:train_seeds seed: its numbers are seed means, and the table shows the
training-seed std within an experiment beside the std between experiments.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import subprocess
import sys
from typing import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from pipeline import layout, runtime
from pipeline.config import flatten, read_params
from pipeline.artifacts import CONDITION_STAGES

log = logging.getLogger("pipeline.aggregate")
METRICS = ("mae", "cs5", "bias")
PREDICTIONS = layout.PREDICTIONS.as_posix()  # a path inside a commit too (git show <rev>:<path>)


def value_of(row: dict, over: str):
    """The value of param `over` in one `dvc.api.exp_show()` row; None when the row does not set it."""
    for key, value in row.items():
        if key.split(":", 1)[-1] == over and value not in (None, "", "-"):
            return value
    return None


def _same(a, b) -> bool:
    """Loose equality: exp_show may render numbers in lists as strings ('6' vs 6.0)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def matches_workspace(row: dict, params: dict, over: str | tuple[str, ...]) -> bool:
    """Only experiments that differ from the current params.yaml in `over` alone are runs of this setting."""
    varied = (over,) if isinstance(over, str) else over
    for key, value in row.items():
        name = key.split(":", 1)[-1]
        if name not in varied and name in params and not _same(value, params[name]):
            return False
    return True


def runs(exps: list[dict], params: dict, over: tuple[str, ...]) -> Iterator[tuple[dict, list]]:
    """The one experiment filter (aggregate, study): finished experiments that set every param of `over` and
    differ from `params` in those alone, each with its values of `over`."""
    for exp in exps:
        rev, values = exp.get("rev"), [value_of(exp, key) for key in over]
        if (rev and rev != "workspace" and None not in values and finished(exp)
                and matches_workspace(exp, params, over)):
            yield exp, values


def finished(exp: dict) -> bool:
    """False for an experiment that failed, is queued or still runs: its metrics are not (yet) its own."""
    return str(exp.get("State") or "").lower() not in ("failed", "queued", "running")


def git_show(rev: str, path: str) -> str | None:
    """A file as committed in an experiment's rev; None when that rev lacks it (failed or queued)."""
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else None


def git_csv(rev: str, path: str) -> pd.DataFrame | None:
    """A CSV as committed in `rev` (person ids kept as text); None when that rev lacks it."""
    text = git_show(rev, path)
    return pd.read_csv(io.StringIO(text), dtype={"person_id": str}) if text is not None else None


def run_predictions(source: str) -> pd.DataFrame:
    """Per-photo Korean-test predictions of one finished run: a project folder that ran `dvc repro`, or
    `git:<rev>` (the run committed at that commit)."""
    if source.startswith("git:"):
        preds = git_csv(source[4:], PREDICTIONS)
        if preds is None:
            raise FileNotFoundError(f"{source}: that commit holds no {PREDICTIONS}")
        return preds
    path = Path(source) / PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; is {source} a project folder whose `dvc repro` finished?")
    return pd.read_csv(path, dtype={"person_id": str})


def _git_json(rev: str, path: str) -> dict | None:
    text = git_show(rev, path)
    return json.loads(text) if text is not None else None


def experiments(rev: str | None = None) -> tuple[list[dict], dict]:
    """`dvc exp show` rows of the experiments based on commit `rev` (default: HEAD, as `dvc exp show`), and
    that commit's params.yaml, flat: experiments are compared with the params they were run from, so
    collecting after a later commit (`--rev <commit>`) works."""
    import dvc.api  # imported here: the rest of the package does not need dvc

    if rev is None:
        return dvc.api.exp_show(), flatten(read_params())
    text = git_show(rev, "params.yaml")
    if text is None:
        raise SystemExit(f"error: no params.yaml in revision {rev!r}; give a commit of this repository")
    return dvc.api.exp_show(revs=rev), flatten(yaml.safe_load(text) or {})


def collect(over: str = "seed", rev: str | None = None) -> pd.DataFrame:
    """One row per (experiment, condition): finished experiments derived from `rev` (HEAD), same params but
    `over`."""
    exps, params = experiments(rev)
    rows = []
    for exp, (value,) in runs(exps, params, (over,)):
        rev = exp["rev"]
        for condition in CONDITION_STAGES:
            result = _git_json(rev, layout.eval_details_path(condition).as_posix())
            if result is None:  # failed or still queued
                continue
            if "seed_std" not in result:  # written before per-seed training: not a seed mean
                log.warning("%s: %s predates per-seed training; skipped", rev, condition)
                continue
            seed_std = result["seed_std"]["korean"]["mae"]
            rows.append({"experiment": exp.get("Experiment") or rev, "rev": rev, "run": str(value),
                         "condition": condition, **{f"korean_{m}": result["korean"][m] for m in METRICS},
                         "general_mae": result["general"]["mae"], "n": result["korean"]["n"],
                         "korean_mae_seed_std": float("nan") if seed_std is None else seed_std,
                         "n_seeds": result["n_seeds"]})
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per condition: mean, std and count over runs (one experiment per run value: the newest wins), and the
    Korean MAE pooled over all test photos of all runs (the leave-one-person-out figure)."""
    rows = rows.drop_duplicates(subset=["run", "condition"], keep="first")
    value_cols = [c for c in rows.columns if c.startswith(("korean_", "general_")) and c != "korean_mae_seed_std"]
    grouped = rows.groupby("condition", sort=False)[value_cols]
    table = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    table["n_runs"] = grouped.size()
    by_condition = rows.groupby("condition", sort=False)
    # training noise inside one run: the root mean within-run variance over training seeds (NaN for one seed)
    table["korean_mae_train_std"] = np.sqrt((by_condition["korean_mae_seed_std"].apply(lambda s: (s ** 2).mean())))
    table["n_seeds"] = by_condition["n_seeds"].min()
    weighted = rows.assign(err=rows["korean_mae"] * rows["n"]).groupby("condition", sort=False)
    table["korean_mae_pooled"] = weighted["err"].sum() / weighted["n"].sum()
    return table.reindex([c for c in CONDITION_STAGES if c in table.index])


def markdown(table: pd.DataFrame) -> str:
    lines = ["| condition | runs | training seeds each | Korean MAE | training-seed std | Korean CS@5 | Korean bias | "
             "general MAE | Korean MAE pooled |", "|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda m, s: f"{m:.2f} ± {s:.2f}" if np.isfinite(s) else f"{m:.2f}"  # noqa: E731
    for name, r in table.iterrows():
        train_std = f"{r['korean_mae_train_std']:.2f}" if np.isfinite(r["korean_mae_train_std"]) else "-"
        lines.append(f"| {name} | {int(r['n_runs'])} | {int(r['n_seeds'])} | "
                     f"{fmt(r['korean_mae_mean'], r['korean_mae_std'])} | {train_std} | "
                     f"{fmt(r['korean_cs5_mean'], r['korean_cs5_std'])} | "
                     f"{fmt(r['korean_bias_mean'], r['korean_bias_std'])} | "
                     f"{fmt(r['general_mae_mean'], r['general_mae_std'])} | {r['korean_mae_pooled']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--over", default="seed", help="the param that varies between runs (default: seed)")
    parser.add_argument("--rev", default=None, help="collect the experiments of this commit (default: HEAD)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown file (default: metrics/<last part of --over>s.md, e.g. metrics/seeds.md)")
    args = parser.parse_args(argv)
    out = args.out or layout.METRICS / f"{args.over.split('.')[-1]}s.md"
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    rows = collect(args.over, args.rev)
    if rows.empty:
        log.error("no finished experiments with metrics/eval/details/*.json; run e.g. "
                  "`for s in 0 1 2; do dvc exp run --queue -S seed=$s; done; dvc queue start -j 1`, wait, retry")
        return 2
    text = markdown(summarise(rows))
    runtime.write_text(out, f"# Conditions over {args.over} (mean ± std over runs; each run a mean over its "
                       "training seeds)\n\n" + text + "\n")
    print(text)
    log.info("wrote %s from %d experiment(s)", out, rows["rev"].nunique())
    return 0


if __name__ == "__main__":
    sys.exit(main())
