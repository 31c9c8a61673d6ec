"""Paired Korean-test MAE difference of one condition between two study profiles (same seeds, persons, photos).

    python benchmarks/coupling_control.py [--treated study] [--control coupling_none] [--condition multitrain]
                                          [--fraction 1.0] [--rev <commit>]

Run after both profiles' study experiments exist (README: Label-budget study). Reads the experiments as
`pipeline.study collect` does; prints each run's MAE (split seed, training seed) and the paired Δ (treated -
control) with a 95% CI that resamples (training seed, person) clusters within each split.
"""
from __future__ import annotations

import argparse
import sys

from pipeline import profiles, study
from pipeline.metrics import compare_blocks

# one test photo of one training run: its row in predictions.csv, checked by person and age
KEY = ["split_seed", "train_seed", "photo", "person_id", "age"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--treated", default="study")
    parser.add_argument("--control", default="coupling_none")
    parser.add_argument("--condition", default="multitrain")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--rev", default=None)
    args = parser.parse_args(argv)
    frames = {}
    for role, profile in (("treated", args.treated), ("control", args.control)):
        runs, _ = study.collect_runs(profiles.overrides(profile), args.rev)
        if runs.empty or not (runs["label_frac"] == args.fraction).any():
            print(f"no finished experiments of profile {profile} at label fraction {args.fraction}", file=sys.stderr)
            return 2
        frames[role] = runs[runs["label_frac"] == args.fraction][KEY + [args.condition]]
    both = frames["treated"].merge(frames["control"], on=KEY, suffixes=("_treated", "_control"))
    errors = {role: (both[f"{args.condition}_{role}"] - both["age"]).abs() for role in ("treated", "control")}
    for (split, seed), part in both.assign(**{f"e_{r}": e for r, e in errors.items()}).groupby(
            ["split_seed", "train_seed"]):
        print(f"split {split} seed {seed}: {args.treated} {part['e_treated'].mean():.3f}  {args.control} "
              f"{part['e_control'].mean():.3f}  ({len(part)} photos)")
    diff = compare_blocks(study.error_blocks(both, errors["treated"] - errors["control"]), 1000, 0, 0.95)
    ci = f"[{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]" if diff["ci_low"] is not None else "[no CI]"
    print(f"{args.condition}: {args.treated} - {args.control} = {diff['mae_diff']:+.3f} years {ci} (95% CI over "
          f"{diff['ci_over']}: {diff['n_seeds']} training seeds, {diff['n_persons']} persons; {len(both)} photo-runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
