"""Paired Korean-test MAE difference of one condition between two study profiles (same seeds, persons, photos),
or between two finished default runs.

    python benchmarks/coupling_control.py [--treated study] [--control coupling_none] [--condition multitrain]
                                          [--fraction 1.0] [--rev <commit>]
    python benchmarks/coupling_control.py --runs TREATED CONTROL [--condition multitrain]

The first form runs after both profiles' study experiments exist (`python -m pipeline.study run`; docs/results.md
"Label budgets") and reads them as `pipeline.study collect` does; docs/results.md "Coupling control" holds the result. With --runs, TREATED and CONTROL are finished `dvc repro` runs of one split and
data, each a project folder or `git:<rev>` (that commit's run): e.g. the committed run against a scratch clone
that ran with `multitrain.coupling: none`. Prints each run's MAE (split seed, training seed) and the paired Δ
(treated - control) with a 95% CI that resamples (training seed, person) clusters within each split.
"""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from pipeline import profiles, study
from pipeline.aggregate import run_predictions
from pipeline.layout import CONDITIONS
from pipeline.metrics import compare_blocks

# one test photo of one training run: its row in predictions.csv, checked by person and age
KEY = ["split_seed", "train_seed", "photo", "person_id", "age"]


def run_frame(source: str, condition: str) -> pd.DataFrame:
    """One finished default run as study rows: its training seeds on one split (its number is not in
    predictions.csv; the pairing checks that both runs scored the same photos)."""
    preds = run_predictions(source).rename(columns={"seed": "train_seed"}).assign(split_seed=0)
    return preds[KEY + [condition]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--treated", default="study")
    parser.add_argument("--control", default="coupling_none")
    parser.add_argument("--condition", default="multitrain", choices=CONDITIONS)
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--rev", default=None)
    parser.add_argument("--runs", nargs=2, metavar=("TREATED", "CONTROL"), default=None,
                        help="two finished default runs (folder or git:<rev>) instead of study profiles")
    args = parser.parse_args(argv)
    if args.runs:
        names = tuple(args.runs)
        try:
            frames = {role: run_frame(source, args.condition) for role, source in zip(("treated", "control"), names)}
        except FileNotFoundError as err:
            print(err, file=sys.stderr)
            return 2
    else:
        names = (args.treated, args.control)
        frames = {}
        for role, profile in zip(("treated", "control"), names):
            runs, _ = study.collect_runs(profiles.overrides(profile), args.rev)
            if runs.empty or not (runs["label_frac"] == args.fraction).any():
                print(f"no finished experiments of profile {profile} at label fraction {args.fraction}",
                      file=sys.stderr)
                return 2
            frames[role] = runs[runs["label_frac"] == args.fraction][KEY + [args.condition]]
    both = frames["treated"].merge(frames["control"], on=KEY, suffixes=("_treated", "_control"))
    if args.runs and not len(both) == len(frames["treated"]) == len(frames["control"]):
        print(f"{names[0]} and {names[1]} scored different test photos or training seeds: not one split and data",
              file=sys.stderr)
        return 2
    errors = {role: (both[f"{args.condition}_{role}"] - both["age"]).abs() for role in ("treated", "control")}
    for (split, seed), part in both.assign(**{f"e_{r}": e for r, e in errors.items()}).groupby(
            ["split_seed", "train_seed"]):
        where = f"seed {seed}" if args.runs else f"split {split} seed {seed}"
        print(f"{where}: {names[0]} {part['e_treated'].mean():.3f}  {names[1]} "
              f"{part['e_control'].mean():.3f}  ({len(part)} photos)")
    diff = compare_blocks(study.error_blocks(both, errors["treated"] - errors["control"]), 1000, 0, 0.95)
    ci = f"[{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]" if diff["ci_low"] is not None else "[no CI]"
    print(f"{args.condition}: {names[0]} - {names[1]} = {diff['mae_diff']:+.3f} years {ci} (95% CI over "
          f"{diff['ci_over']}: {diff['n_seeds']} training seeds, {diff['n_persons']} persons; {len(both)} photo-runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
