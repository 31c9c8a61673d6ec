"""How much validation MAE jumps between consecutive epochs, per training stage and phase, over training seeds.

    python benchmarks/val_swing.py                      # metrics/history/<stage>/seed<k>.csv of the last run
                                                        #   (made with budget.*.val_every 1: the default has no
                                                        #   per-epoch val)
    python benchmarks/val_swing.py path/to/history/...  # any history CSVs (one phase column, val_mae per epoch)

A recipe whose val MAE swings by years between epochs lets best-epoch selection on a small val split turn tiny
differences into different models; this prints the largest jump of each phase and each seed's.
"""
from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd

HISTORY = Path("metrics/history")


def largest_jumps(paths: list[Path]) -> dict[str, list[float]]:
    """phase tag ("<stage>/<phase>") -> the largest |val_mae(e+1) - val_mae(e)| of each file, in file order."""
    jumps: dict[str, list[float]] = defaultdict(list)
    for path in paths:
        frame = pd.read_csv(path)
        if "val_mae" not in frame:  # pretrain_vcop selects on accuracy; val_every 0 scores no single epoch
            continue
        for phase, rows in frame.groupby("phase", sort=True):
            maes = rows.sort_values("epoch")["val_mae"].to_numpy()
            stage, _, name = str(phase).partition("/")
            tag = f"{stage}/{name.split('/')[-1] or stage}"
            jumps[tag].append(float(abs(maes[1:] - maes[:-1]).max()) if len(maes) > 1 else 0.0)
    return dict(jumps)


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted(HISTORY.glob("*/seed*.csv"))
    if not paths:
        sys.exit(f"no history CSVs under {HISTORY}/: run `dvc repro` first or name the files")
    jumps = largest_jumps(paths)
    if not jumps:
        sys.exit("no per-epoch val MAE in these histories: the default scores no single epoch (val_every 0). The "
                 "weights do not depend on it, so rerun with `dvc exp run -S optim.val_every=1` for the curves")
    for tag, values in sorted(jumps.items()):
        print(f"{tag:28s} largest jump {max(values):6.2f} years   per file {[round(v, 2) for v in values]}")


if __name__ == "__main__":
    main()
