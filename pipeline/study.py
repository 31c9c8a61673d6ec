"""Label-budget study: when does order pretraining help? Runs and collects a sweep of DVC experiments.

    python -m pipeline.study run      # one `dvc exp run` per (label fraction, split seed), unchanged stages reused
    python -m pipeline.study collect  # metrics/study.json, metrics/study.md, metrics/plots/study.png
                                      # (another profile P: metrics/study_P.json, study_P.md, plots/study_P.png)
    python -m pipeline.study collect --merge  # also keep the fractions this clone did not run from the
                                              # existing metrics/study.json (a budget rerun elsewhere joins them)

Both take --profile (default `study`, profiles/study.yaml; `full` on a GPU): its overrides go to every run as
`-S` options, and collect keeps only the experiments run with them. Training seeds are not split seeds: each
run sets the split seed (`seed`: which persons are train, val and test) and trains every params.yaml:train_seeds
seed on that split, so 3 split seeds x the default 3 training seeds are 9 training runs per fraction. Split
seeds run in the outer loop: a split's fraction-independent training (VCOP pretraining, the general phases,
which DVC or the finished checkpoints in .checkpoints/ reuse) is done once for its five fractions.

The label fraction (`split_korean.label_frac`, chosen by person) limits the *labelled* Korean training photos of
conditions 2-4; VCOP tuples keep every Korean training person, whose order comes from capture dates or ages.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pipeline import aggregate, profiles, runtime
from pipeline.artifacts import CONDITION_STAGES
from pipeline.data import intervals
from pipeline.layout import DATA_SUMMARY, EVAL, METRICS, PLOTS, SPLITS_SUMMARY
from pipeline.metrics import compare_blocks

log = logging.getLogger("pipeline.study")
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
SPLIT_SEEDS = (0, 1, 2)
FRACTION_KEY = "split_korean.label_frac"
REFERENCE = "finetune_korean"
GENERAL_KEY = "05_general_mae"  # the headline metric evaluate writes per condition (metrics/eval/<condition>.json)


def run(fractions: list[float], split_seeds: list[int], profile: str, sets: Sequence[str] = ()) -> None:
    """Each run is a workspace experiment: DVC skips stages whose deps and params did not change. `sets`: further
    KEY=VALUE params for every run (a real data set's folders: data.korean_root=/data/...)."""
    extra = profiles.set_args(profile)  # a bad profile fails here, before the first run
    extra += [arg for kv in sets for arg in ("-S", kv)]
    total, started = len(fractions) * len(split_seeds), time.monotonic()
    for i, (seed, fraction) in enumerate(((s, f) for s in split_seeds for f in fractions), start=1):
        name = f"study-{profile}-f{fraction:g}-s{seed}"
        log.info("[%d/%d] running %s (%.0f min so far)", i, total, name, (time.monotonic() - started) / 60)
        subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "-n", name, *extra, "-S", f"seed={seed}",
                        "-S", f"{FRACTION_KEY}={fraction}"], check=True)
    log.info("%d runs in %.1f min", total, (time.monotonic() - started) / 60)


def collect_runs(overrides: dict, rev: str | None = None) -> tuple[pd.DataFrame, float | None]:
    """Per-photo Korean-test predictions of every finished study experiment based on commit `rev` (HEAD) and
    run with a profile's `overrides` (one row per run, training seed and photo: columns split_seed, train_seed,
    photo, person_id, age, one per condition), and the Korean Bayes floor of their data."""
    exps, base = aggregate.experiments(rev)
    params = {**base, **overrides}
    frames, data_json, seen, old_format = [], None, set(), 0
    for exp, (fraction, seed) in aggregate.runs(exps, params, (FRACTION_KEY, "seed")):
        exp_rev = exp["rev"]
        run_key = (float(fraction), int(seed))
        if run_key in seen:  # the same run listed twice counts once
            continue
        preds = aggregate.git_csv(exp_rev, aggregate.PREDICTIONS)
        if preds is None or "person_id" not in preds:
            continue
        if not {"seed", "photo"} <= set(preds):  # written before training seeds were separate from the split's
            old_format += 1
            continue
        seen.add(run_key)
        frames.append(preds.rename(columns={"seed": "train_seed"}).assign(
            label_frac=run_key[0], split_seed=run_key[1], labelled_persons=labelled_persons(exp_rev),
            **general_maes(exp_rev)))
        data_json = data_json or aggregate.git_show(exp_rev, str(DATA_SUMMARY))
    if old_format:
        log.warning("skipped %d experiment(s) whose predictions.csv has no training-seed column (made before "
                    "per-seed training); rerun them with `python -m pipeline.study run`", old_format)
    if not frames:
        return pd.DataFrame(), None
    runs = pd.concat(frames, ignore_index=True)
    floor = json.loads(data_json).get("bayes_floor_mae_korean") if data_json else None
    # every photo is a row: a person photographed twice at the same age keeps both photos
    return runs, floor


def general_maes(rev: str) -> dict[str, float]:
    """`general_<condition>`: each condition's general-test MAE in one experiment (NaN where it lacks one), so
    the study shows what Korean training did to the general domain beside the Korean MAE."""
    maes = {}
    for condition in CONDITION_STAGES:
        text = aggregate.git_show(rev, str(EVAL / f"{condition}.json"))
        value = json.loads(text).get(GENERAL_KEY) if text is not None else None
        maes[f"general_{condition}"] = float(value) if value is not None else float("nan")
    return maes


def labelled_persons(rev: str) -> float:
    """How many Korean training persons carried labels in one experiment (the budget in persons); NaN if unknown."""
    text = aggregate.git_show(rev, str(SPLITS_SUMMARY))
    value = json.loads(text).get("korean_train_labelled", {}).get("n_persons") if text is not None else None
    return float(value) if value is not None else float("nan")


def error_blocks(runs: pd.DataFrame, diff: pd.Series) -> list[tuple[np.ndarray, np.ndarray]]:
    """metrics.seed_person_bootstrap's blocks: one per split seed, `diff` as (training seed, photo) rows.

    `runs` holds split_seed, train_seed, photo and person_id; `diff` one value per row of it (e.g. |err_a| -
    |err_b|). Every training seed of a split must hold the same photos (evaluate writes them so)."""
    blocks = []
    for split, part in runs.assign(diff=diff).groupby("split_seed"):
        table = part.pivot(index="train_seed", columns="photo", values="diff")
        if table.isna().any().any():
            raise ValueError(f"split seed {split}: the training seeds' predictions.csv rows cover different photos; "
                             "rerun evaluate for that experiment")
        persons = part.drop_duplicates("photo").set_index("photo")["person_id"].reindex(table.columns)
        blocks.append((table.to_numpy(), persons.to_numpy()))
    return blocks


def summarise(runs: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95) -> list[dict]:
    """Per (condition, fraction): Korean MAE mean over every (split seed, training seed) run, its std over runs,
    over training seeds within a split (pooled) and over split means, and the paired Δ vs finetune_korean with a CI
    that resamples (training seed, person) clusters within each split (splits are strata)."""
    rows = []
    for fraction, part in runs.groupby("label_frac"):
        errors = {c: pd.Series(intervals.table_abs_error(part[c].to_numpy(), part), index=part.index)
                  for c in CONDITION_STAGES}
        n_splits = part["split_seed"].nunique()
        for condition in CONDITION_STAGES:
            per_run = part.assign(e=errors[condition]).groupby(["split_seed", "train_seed"])["e"].mean()
            within = per_run.groupby(level="split_seed").var(ddof=1).dropna()  # one training seed: no variance
            split_means = per_run.groupby(level="split_seed").mean()
            row = {"condition": condition, "label_frac": float(fraction), "n_splits": int(n_splits),
                   "n_train_seeds": int(per_run.groupby(level="split_seed").size().min()), "n_runs": int(per_run.size),
                   "mae_mean": float(per_run.mean()),
                   "labelled_persons": float(part["labelled_persons"].mean()) if "labelled_persons" in part
                   else None,
                   "band_acc": float(np.mean(intervals.life_band(part[condition].to_numpy())
                                             == intervals.label_band(*intervals.bounds(part)))),
                   "mae_std": float(per_run.std(ddof=1)) if per_run.size > 1 else None,
                   "mae_train_std": float(np.sqrt(within.mean())) if len(within) else None,
                   "mae_split_std": float(split_means.std(ddof=1)) if n_splits > 1 else None}
            general = part.groupby("split_seed")[f"general_{condition}"].first() if f"general_{condition}" in part \
                else None
            # a mean over fewer splits than the Korean MAE's would not be comparable beside it
            row["general_mae_mean"] = float(general.mean()) if general is not None and general.notna().all() else None
            if condition != REFERENCE:
                diff = compare_blocks(error_blocks(part, errors[condition] - errors[REFERENCE]), n_boot, 0, ci)
                row.update({f"vs_{REFERENCE}_{k}": v for k, v in diff.items() if k != "no_ci_reason"})
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [f"| condition | label fraction | labelled persons | splits x training seeds | Korean MAE (mean ± std "
             f"over runs) | training-seed std | Δ vs {REFERENCE} [95% CI] | CI over | band accuracy | general MAE "
             "(mean) |", "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
    for r in rows:
        std = f" ± {r['mae_std']:.2f}" if r["mae_std"] is not None else ""
        over = "-"
        if r["condition"] == REFERENCE:
            delta = "-"
        elif r[f"vs_{REFERENCE}_ci_low"] is None:
            delta = f"{r[f'vs_{REFERENCE}_mae_diff']:+.2f} (no CI)"
        else:
            mark = " *" if r[f"vs_{REFERENCE}_significant"] else ""
            delta = (f"{r[f'vs_{REFERENCE}_mae_diff']:+.2f} [{r[f'vs_{REFERENCE}_ci_low']:+.2f}, "
                     f"{r[f'vs_{REFERENCE}_ci_high']:+.2f}]{mark}")
            over = r[f"vs_{REFERENCE}_ci_over"]
        persons = f"{r['labelled_persons']:.0f}" if r.get("labelled_persons") == r.get("labelled_persons") and \
            r.get("labelled_persons") is not None else "-"  # NaN: a run without metrics/splits.json
        band = f"{r['band_acc']:.3f}" if r.get("band_acc") is not None else "-"
        lines.append(f"| {r['condition']} | {r['label_frac']:g} | {persons} | {r['n_splits']} x {r['n_train_seeds']} "
                     f"| {r['mae_mean']:.2f}{std} | {fmt(r['mae_train_std'])} | {delta} | {over} | {band} | "
                     f"{fmt(r.get('general_mae_mean'))} |")
    return "\n".join(lines)


def plot(rows: list[dict], floor: float | None, path: Path) -> None:
    import matplotlib.pyplot as plt

    from pipeline.report import save_figure  # sets the Agg backend

    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for condition, part in table.groupby("condition", sort=False):
        part = part.sort_values("label_frac")
        std = part["mae_std"].astype(float).fillna(0).to_numpy()
        band = 1.96 * std / np.sqrt(part["n_runs"].to_numpy())  # 95% band of the mean over runs
        ax.plot(part["label_frac"], part["mae_mean"], marker="o", label=condition)
        ax.fill_between(part["label_frac"], part["mae_mean"] - band, part["mae_mean"] + band, alpha=0.2)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label="Bayes floor")
    ax.set(xscale="log", xlabel="labelled share of Korean training persons", ylabel="Korean test MAE (years)",
           title="MAE vs label budget (mean over runs, 95% band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


MERGE_KEYS = ("profile", "overrides", "split_seeds", "train_seeds", "bayes_floor_korean")


def merge_rows(rows: list[dict], meta: dict, previous: dict) -> tuple[list[dict], list[float]]:
    """`rows` plus the rows of `previous` (an earlier collection's json) whose label fraction `rows` lacks, and
    those kept fractions. Rows are summaries within one fraction, so fractions collected from different clones
    can stand in one table; the collections must agree on profile, overrides, seeds and data (Bayes floor)."""
    differ = [k for k in MERGE_KEYS if previous.get(k) != meta.get(k)]
    if differ:
        raise ValueError(f"cannot merge: the existing collection differs in {', '.join(differ)}")
    have = {r["label_frac"] for r in rows}
    kept = [r for r in previous["rows"] if r["label_frac"] not in have]
    merged = sorted(rows + kept, key=lambda r: (r["label_frac"], list(CONDITION_STAGES).index(r["condition"])))
    return merged, sorted({r["label_frac"] for r in kept})


def output_name(profile: str) -> str:
    """`study` for the committed study's profile; `study_<profile>` for any other, so collecting a control
    (e.g. profiles/coupling_none.yaml) never overwrites the study's own tables."""
    return "study" if profile == "study" else f"study_{profile}"


def parse_sets(sets: Sequence[str]) -> dict[str, str]:
    """--set KEY=VALUE pairs as the params a run was given (values as text, as `dvc exp show` compares them)."""
    pairs = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"error: --set {item!r}: expected KEY=VALUE, e.g. data.korean_root=/data/kf")
        pairs[key] = value
    return pairs


def collect(profile: str, rev: str | None, merge: bool, sets: Sequence[str] = ()) -> int:
    """Summarise the finished experiments of `profile` (run with `sets`, which only select the experiments and
    are not recorded: they name the user's folders) into metrics/<name>.{json,md} and its plot; with `merge`,
    rows of fractions not collected here stay from the existing json."""
    overrides = profiles.overrides(profile)
    runs, floor = collect_runs({**overrides, **parse_sets(sets)}, rev)
    if runs.empty:
        log.error("no finished study experiments of profile '%s'; run `python -m pipeline.study run "
                  "--profile %s` first", profile, profile)
        return 2
    rows = summarise(runs)
    splits, trained = (sorted(runs[c].unique().tolist()) for c in ("split_seed", "train_seed"))
    name = output_name(profile)
    path = METRICS / f"{name}.json"
    meta = {"profile": profile, "overrides": overrides, "split_seeds": splits, "train_seeds": trained,
            "bayes_floor_korean": floor}
    kept: list[float] = []
    if merge:
        if not path.exists():
            log.error("--merge: no %s to merge with", path)
            return 2
        try:
            rows, kept = merge_rows(rows, meta, json.loads(path.read_text()))
        except ValueError as err:
            log.error("--merge: %s (%s)", err, path)
            return 2
    runtime.write_json(path, {**meta, "rows": rows, "merged_fractions": kept})
    text = markdown(rows)
    source = (f"; fraction(s) {', '.join(f'{f:g}' for f in kept)} kept from the previous collection "
              "(see its git history)") if kept else ""
    runtime.write_text(METRICS / f"{name}.md", f"# Label-budget study (Korean test; profile `{profile}`, split "
                       f"seeds {', '.join(map(str, splits))}, training seeds {', '.join(map(str, trained))}"
                       f"{source})\n\n{text}\n")
    plot(rows, floor, PLOTS / f"{name}.png")
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "collect", "all"])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--split-seeds", "--seeds", dest="split_seeds", type=int, nargs="+",
                        default=list(SPLIT_SEEDS), help="split seeds (top-level `seed`); each run trains every "
                        "params.yaml:train_seeds seed on its split")
    parser.add_argument("--profile", default="study", help="profiles/<name>.yaml, or `default` for params.yaml")
    parser.add_argument("--rev", default=None, help="collect: the experiments of this commit (default: HEAD)")
    parser.add_argument("--merge", action="store_true", help="collect: keep the rows of fractions not collected "
                        "here from the existing metrics/<name>.json (same profile, seeds and data)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="a param for every run (repeatable), e.g. --set data.korean_root=/data/kf; collect "
                        "selects the runs made with the same values")
    args = parser.parse_args(argv)
    parse_sets(args.sets)  # a malformed pair fails before any run
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    if args.action in ("run", "all"):
        run(args.fractions, args.split_seeds, args.profile, args.sets)
    if args.action in ("collect", "all"):
        return collect(args.profile, args.rev, args.merge, args.sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
