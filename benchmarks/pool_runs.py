"""Pool finished default runs of one split (e.g. the same code on several machines) as more training seeds.

    python benchmarks/pool_runs.py NAME=SOURCE [NAME=SOURCE ...] [--only multitrain=NAME,NAME] [--out FILE]

SOURCE is a project folder that ran `dvc repro` or `git:<rev>` (that commit's committed run). Every run must
have scored the same test photos (split seed and data equal; checked). Each (run, training seed) becomes one row of
the paired differences, so the CI resamples (run x seed, test person) clusters as evaluate does for seeds
(pipeline.metrics.compare_blocks). Prints per condition the pooled Korean-test MAE, its std over all runs' seeds
and the Δ vs finetune_korean. `--only COND=NAMES` pools a condition over those runs alone (a run whose code
predates a change to that condition).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.aggregate import run_predictions
from pipeline.layout import CONDITIONS
from pipeline.metrics import compare_blocks

REFERENCE = "finetune_korean"


def seed_rows(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [g.sort_values("photo").reset_index(drop=True) for _, g in frame.groupby("seed")]


def pool(frames: dict[str, pd.DataFrame], condition: str, n_boot: int) -> dict:
    rows = [g for frame in frames.values() for g in seed_rows(frame)]
    maes = [float(np.mean(np.abs(g[condition] - g["age"]))) for g in rows]
    result = {"runs": sorted(frames), "n_runs": len(rows), "korean_mae": float(np.mean(maes)),
              "seed_std": float(np.std(maes, ddof=1))}
    if condition != REFERENCE:
        diffs = np.stack([np.abs(g[condition] - g["age"]).to_numpy() - np.abs(g[REFERENCE] - g["age"]).to_numpy()
                          for g in rows])
        result["vs_reference"] = compare_blocks([(diffs, rows[0]["person_id"].to_numpy())], n_boot, seed=0)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=SOURCE")
    parser.add_argument("--only", action="append", default=[], metavar="COND=NAME,NAME")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if malformed := [r for r in args.runs if "=" not in r]:
        parser.error(f"runs are NAME=SOURCE (a folder or git:<rev>): {malformed}")
    try:
        frames = {name: run_predictions(source) for name, source in (r.split("=", 1) for r in args.runs)}
    except FileNotFoundError as err:  # a folder without a finished run, or a commit that holds none
        parser.error(str(err))
    first_name, first = next(iter(frames.items()))
    for name, frame in frames.items():
        for a, b in zip(seed_rows(first), seed_rows(frame)):
            if not a[["photo", "age", "person_id"]].equals(b[["photo", "age", "person_id"]]):
                parser.error(f"{name} scored other test photos than {first_name}: not the same split and data")
    given = list(frames)
    for i, name in enumerate(given):
        for other in given[i + 1:]:
            if frames[name].equals(frames[other]):
                # git:<rev> shows the run last committed at or before <rev>, which may be another machine's
                parser.error(f"{name} and {other} hold the same predictions: one run given twice would count its "
                             "seeds twice; check which commit committed each run")
    only = {cond: names.split(",") for cond, names in (o.split("=", 1) for o in args.only)}
    if unknown := sorted({n for names in only.values() for n in names} - set(frames)):
        parser.error(f"--only names runs not given: {unknown}; given: {sorted(frames)}")
    results = {}
    for condition in CONDITIONS:
        chosen = {n: frames[n] for n in only.get(condition, frames)}
        results[condition] = pool(chosen, condition, args.n_boot)
        r = results[condition]
        line = f"{condition:16s} {r['n_runs']:3d} runs  {r['korean_mae']:.3f} ± {r['seed_std']:.3f}"
        if "vs_reference" in r:
            v = r["vs_reference"]
            line += f"  Δ vs {REFERENCE} {v['mae_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] ({v['ci_over']})"
        print(line)
    if args.out:
        args.out.write_text(json.dumps({"sources": dict(r.split("=", 1) for r in args.runs), "results": results},
                                       indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
