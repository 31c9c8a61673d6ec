"""Label-budget study: when does order pretraining help? Runs and collects a sweep of DVC experiments.

    python -m pipeline.study run      # one `dvc exp run` per (label fraction, seed), unchanged stages reused
    python -m pipeline.study collect  # metrics/study.json, metrics/study.md, metrics/plots/study.png

The label fraction (`split_korean.label_frac`, chosen by person) limits the *labelled* Korean training photos of
conditions 2-4; VCOP tuples keep every Korean training person, whose order comes from capture dates or ages.
"""
from __future__ import annotations

import argparse
import io
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import aggregate, runtime
from pipeline.conditions import CONDITION_STAGES
from pipeline.config import read_params
from pipeline.evaluate import compare

log = logging.getLogger("pipeline.study")
FRACTIONS = (0.05, 0.1, 0.25, 0.5, 1.0)
SEEDS = (0, 1, 2)
FRACTION_KEY = "split_korean.label_frac"
REFERENCE = "finetune_korean"


def run(fractions: list[float], seeds: list[int]) -> None:
    """Each run is a workspace experiment: DVC skips stages whose deps and params did not change."""
    for seed in seeds:
        for fraction in fractions:
            name = f"study-f{fraction:g}-s{seed}"
            log.info("running %s", name)
            subprocess.run([sys.executable, "-m", "dvc", "exp", "run", "-n", name, "-S", f"seed={seed}",
                            "-S", f"{FRACTION_KEY}={fraction}"], check=True)


def _git_csv(rev: str, path: str) -> pd.DataFrame | None:
    proc = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True)
    return pd.read_csv(io.StringIO(proc.stdout), dtype={"person_id": str}) if proc.returncode == 0 else None


def collect_runs() -> pd.DataFrame:
    """Per-photo Korean-test predictions of every finished study experiment: one row per (run, photo)."""
    import dvc.api

    params = aggregate._flatten(read_params())
    frames = []
    for exp in dvc.api.exp_show():
        rev, seed = exp.get("rev"), aggregate._value_of(exp, "seed")
        fraction = aggregate._value_of(exp, FRACTION_KEY)
        if not rev or rev == "workspace" or fraction is None or seed is None:
            continue
        others = {k: v for k, v in exp.items() if k.split(":", 1)[-1] not in (FRACTION_KEY, "seed")}
        if not aggregate._matches_workspace(others, params, "seed"):
            continue
        preds = _git_csv(rev, "metrics/eval/predictions.csv")
        if preds is None or "person_id" not in preds:
            continue
        frames.append(preds.assign(label_frac=float(fraction), seed=int(seed)))
    if not frames:
        return pd.DataFrame()
    runs = pd.concat(frames, ignore_index=True)
    return runs.drop_duplicates(subset=["label_frac", "seed", "person_id", "age"], keep="first")


def summarise(runs: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95) -> list[dict]:
    """Per (condition, fraction): MAE mean ± std over seeds, and the paired Δ vs finetune_korean with a CI that
    resamples (seed, person) clusters pooled over seeds."""
    rows = []
    for fraction, part in runs.groupby("label_frac"):
        cluster = part["seed"].astype(str) + ":" + part["person_id"]
        errors = {c: (part[c] - part["age"]).abs().to_numpy() for c in CONDITION_STAGES}
        for condition in CONDITION_STAGES:
            per_seed = part.assign(e=errors[condition]).groupby("seed")["e"].mean()
            row = {"condition": condition, "label_frac": float(fraction), "n_seeds": int(per_seed.size),
                   "mae_mean": float(per_seed.mean()),
                   "mae_std": float(per_seed.std(ddof=1)) if per_seed.size > 1 else None}
            if condition != REFERENCE:
                diff = compare(errors[condition], errors[REFERENCE], cluster.to_numpy(), n_boot, 0, ci)
                row.update({f"vs_{REFERENCE}_{k}": v for k, v in diff.items() if k != "no_ci_reason"})
            rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [f"| condition | label fraction | seeds | Korean MAE (mean ± std) | Δ vs {REFERENCE} [95% CI] |",
             "|---|---|---|---|---|"]
    for r in rows:
        std = f" ± {r['mae_std']:.2f}" if r["mae_std"] is not None else ""
        if r["condition"] == REFERENCE:
            delta = "-"
        elif r[f"vs_{REFERENCE}_ci_low"] is None:
            delta = f"{r[f'vs_{REFERENCE}_mae_diff']:+.2f} (no CI)"
        else:
            mark = " *" if r[f"vs_{REFERENCE}_significant"] else ""
            delta = (f"{r[f'vs_{REFERENCE}_mae_diff']:+.2f} [{r[f'vs_{REFERENCE}_ci_low']:+.2f}, "
                     f"{r[f'vs_{REFERENCE}_ci_high']:+.2f}]{mark}")
        lines.append(f"| {r['condition']} | {r['label_frac']:g} | {r['n_seeds']} | {r['mae_mean']:.2f}{std} | "
                     f"{delta} |")
    return "\n".join(lines)


def plot(rows: list[dict], floor: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for condition, part in table.groupby("condition", sort=False):
        part = part.sort_values("label_frac")
        std = part["mae_std"].astype(float).fillna(0).to_numpy()
        band = 1.96 * std / np.sqrt(part["n_seeds"].to_numpy())  # 95% band of the mean over seeds
        ax.plot(part["label_frac"], part["mae_mean"], marker="o", label=condition)
        ax.fill_between(part["label_frac"], part["mae_mean"] - band, part["mae_mean"] + band, alpha=0.2)
    if floor is not None:
        ax.axhline(floor, color="k", ls="--", lw=1, label="Bayes floor")
    ax.set(xscale="log", xlabel="labelled share of Korean training persons", ylabel="Korean test MAE (years)",
           title="MAE vs label budget (mean over seeds, 95% band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with runtime.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "collect", "all"])
    parser.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(message)s")
    if args.action in ("run", "all"):
        run(args.fractions, args.seeds)
    if args.action in ("collect", "all"):
        runs = collect_runs()
        if runs.empty:
            log.error("no finished study experiments; run `python -m pipeline.study run` first")
            return 2
        rows = summarise(runs)
        floor = runtime.read_json("metrics/data.json").get("bayes_floor_mae_korean")
        runtime.write_json("metrics/study.json", {"rows": rows, "bayes_floor_korean": floor})
        text = markdown(rows)
        runtime.write_text("metrics/study.md", "# Label-budget study (Korean test)\n\n" + text + "\n")
        plot(rows, floor, Path("metrics/plots/study.png"))
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
