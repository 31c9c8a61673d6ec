"""Rounding perturbation on one machine: the whole pipeline with 1 and with 2 CPU threads per process, compared.

    python benchmarks/perturbation.py [--params params.yaml] [--threads 1 2] [--reuse 2=.]
                                      [--out benchmarks/results/perturbation.json]
    python benchmarks/perturbation.py --runs intel=DIR amd=DIR --out benchmarks/results/machines.json
    python benchmarks/perturbation.py --from benchmarks/results/perturbation_7c5e9bb.json

Another thread count sums floats in another order, as another CPU does, so a result that survives this check is
not an artefact of one machine's rounding. Each thread count runs `dvc repro` from scratch in its own copy of the
sources (no data, models or checkpoints shared; AGE_VCOP_THREADS sets torch's intra-op threads in every stage,
pipeline/runtime.py) with the given params, i.e. every params.yaml:train_seeds seed of every condition. It prints
per condition the seed-mean Korean-test MAE of each run and |Δ| between them (goal <= 0.05 years), whether |Δ|
stays within what the two runs' training-seed noise predicts (Welch's t-test over their per-seed MAEs: another
summation order redraws every seed, so at 3 seeds the 0.05 goal asks a seed std near 0.03), and for each Δ MAE vs
finetune_korean whether its sign and its significance (CI over training seed and test person) agree.
About twice the default `dvc repro` on 2 cores; nothing is written into this checkout except --out. `--reuse T=DIR`
reads thread count T's results from a project that already ran `dvc repro` with these params and T threads (e.g.
`--reuse 2=.`: this checkout's committed default run on 2 cores), so only the other count is run. `--runs`
compares two finished runs by name and runs nothing: the same commit on two machines is the perturbation this
check stands in for. `--from FILE` compares again the per-seed results a written FILE holds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

from pipeline.layout import CONDITIONS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pipeline", "stages", "profiles", "dvc.yaml", ".dvcignore")  # what a run needs; no data, no outputs
REFERENCE = "finetune_korean"
GOAL_YEARS = 0.05  # |Δ seed-mean MAE| between thread counts that counts as machine-independent
DEFAULT_OUT = ROOT / "benchmarks/results/perturbation.json"


def make_copy(work: Path, params: Path) -> Path:
    """A fresh DVC project at `work` (no git): the sources and `params` as params.yaml."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.exists():
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    shutil.copy(params, work / "params.yaml")
    for args in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"]):
        subprocess.run([sys.executable, "-m", "dvc", *args], cwd=work, check=True)
    return work


def repro(work: Path, threads: int) -> float:
    """`dvc repro` in `work` with `threads` intra-op threads per stage; its wall time (s). Raises on failure."""
    # dvc runs each stage's `python`: this interpreter's folder first, so an unactivated venv still serves them
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(work), "AGE_VCOP_THREADS": str(threads),
           "AGE_VCOP_DEVICE": "cpu", "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    with open(work / "repro.log", "w") as log:
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=work, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"dvc repro with {threads} thread(s) failed ({proc.returncode}); see {work / 'repro.log'}")
    return time.perf_counter() - started


def read_results(work: Path) -> dict:
    """Per condition: the headline row, every seed's Korean MAE, and the Δ vs finetune_korean entry."""
    compared = json.loads((work / "metrics/eval/comparison.json").read_text())
    out = {}
    for condition in CONDITIONS:
        row = json.loads((work / f"metrics/eval/{condition}.json").read_text())
        details = json.loads((work / f"metrics/eval/details/{condition}.json").read_text())
        out[condition] = {"korean_mae": row["01_korean_mae"], "seed_std": row["02_korean_mae_seed_std"],
                          "per_seed": {s: r["korean"]["mae"] for s, r in details["per_seed"].items()},
                          "vs_reference": compared[f"vs_{REFERENCE}"].get(condition)}
    return out


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def seed_noise(a: list[float], b: list[float]) -> dict:
    """Is the gap between two runs' seed means larger than their training noise predicts? Another thread count or
    CPU changes every draw from the first epoch on, so the two runs behave like two sets of training seeds: Welch's
    t-test of the per-seed MAEs. `noise_95`: the |Δ| that seed noise alone exceeds with probability 0.05 (Welch's
    t quantile times the standard error); `p`: two-sided. Empty with fewer than 2 seeds in a run or no spread."""
    if min(len(a), len(b)) < 2:
        return {}
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if va + vb == 0:
        return {}
    # by hand rather than scipy's ttest_ind, which warns of precision loss when one run's seeds agree exactly
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    t = abs(float(np.mean(a)) - float(np.mean(b))) / se
    return {"noise_se": se, "noise_df": df, "noise_95": float(stats.t.ppf(0.975, df)) * se,
            "noise_p": float(2 * stats.t.sf(t, df))}


def compare_runs(a: dict, b: dict) -> list[dict]:
    """One row per condition: both runs' seed means, |Δ| (and the largest per-seed |Δ|), whether |Δ| stays within
    the training noise of their seeds (seed_noise), and for a Δ vs the reference whether sign and significance
    agree."""
    rows = []
    for condition in CONDITIONS:
        ra, rb = a[condition], b[condition]
        seeds = sorted(set(ra["per_seed"]) & set(rb["per_seed"]))
        row = {"condition": condition, "mae_a": ra["korean_mae"], "mae_b": rb["korean_mae"],
               "abs_diff": abs(ra["korean_mae"] - rb["korean_mae"]),
               "max_seed_abs_diff": max(abs(ra["per_seed"][s] - rb["per_seed"][s]) for s in seeds),
               **seed_noise(list(ra["per_seed"].values()), list(rb["per_seed"].values()))}
        row["within_goal"] = row["abs_diff"] <= GOAL_YEARS
        da, db = ra["vs_reference"], rb["vs_reference"]
        if da is not None and db is not None:
            row.update(delta_a=da["mae_diff"], delta_b=db["mae_diff"], ci_a=[da["ci_low"], da["ci_high"]],
                       ci_b=[db["ci_low"], db["ci_high"]], ci_over=da.get("ci_over"),
                       same_sign=_sign(da["mae_diff"]) == _sign(db["mae_diff"]),
                       same_significance=da["significant"] == db["significant"])
        rows.append(row)
    return rows


def _ci(delta: float, ci: list) -> str:
    return f"{delta:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci[0] is not None else f"{delta:+.2f} [no CI]"


def thread_names(a: int | str, b: int | str) -> tuple[str, str]:
    """Column names of a thread-count comparison."""
    return f"{a} thread(s)", f"{b} threads"


def markdown(rows: list[dict], names: tuple[str, str]) -> str:
    a, b = names
    lines = [f"| condition | MAE, {a} | MAE, {b} | |Δ| (goal <= {GOAL_YEARS}) | seed noise 95 % (p) | "
             f"max per-seed |Δ| | Δ vs {REFERENCE}, {a} | Δ vs {REFERENCE}, {b} | same sign | same significance |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        deltas = (f"{_ci(r['delta_a'], r['ci_a'])} | {_ci(r['delta_b'], r['ci_b'])} | "
                  f"{'yes' if r['same_sign'] else 'NO'} | {'yes' if r['same_significance'] else 'NO'}"
                  if "delta_a" in r else "- | - | - | -")
        noise = (f"{r['noise_95']:.3f} (p {r['noise_p']:.2f}{'' if r['noise_p'] >= 0.05 else ', beyond'})"
                 if "noise_95" in r else "-")
        lines.append(f"| {r['condition']} | {r['mae_a']:.3f} | {r['mae_b']:.3f} | {r['abs_diff']:.3f}"
                     f"{'' if r['within_goal'] else ' (over)'} | {noise} | {r['max_seed_abs_diff']:.3f} | {deltas} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--threads", type=int, nargs=2, default=[1, 2], metavar=("A", "B"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/age_vcop_perturbation"))
    parser.add_argument("--out", type=Path, default=None, help=f"default {DEFAULT_OUT.relative_to(ROOT)}")
    parser.add_argument("--reuse", action="append", default=[], metavar="T=DIR",
                        help="thread count T's results from DIR's finished run instead of running it")
    parser.add_argument("--runs", nargs=2, default=None, metavar="NAME=DIR",
                        help="compare two finished runs (each a project that ran `dvc repro`); nothing is run")
    parser.add_argument("--from", dest="written", type=Path, default=None, metavar="FILE",
                        help="compare again the two runs' per-seed results that FILE (written by this script) "
                             "holds, with this version's columns; nothing is run; writes --out if given, else FILE")
    args = parser.parse_args(argv)
    if args.written:
        written = json.loads(args.written.read_text())
        pair = written["results"] if "results" in written else written["runs"]  # --runs files, thread files
        (a, ra), (b, rb) = pair.items()
        names = (a, b) if "results" in written else thread_names(a, b)
        return report(compare_runs(ra, rb), names, args.out or args.written,
                      {k: v for k, v in written.items() if k != "rows"})
    args.out = args.out or DEFAULT_OUT
    if args.runs:
        (a, dir_a), (b, dir_b) = (item.split("=", 1) for item in args.runs)
        if a == b:
            parser.error(f"--runs needs two names, got {a!r} twice")
        results = {a: read_results(Path(dir_a)), b: read_results(Path(dir_b))}
        return report(compare_runs(results[a], results[b]), (a, b), args.out,
                      {"runs": {a: dir_a, b: dir_b}, "results": results})
    reused = {int(t): Path(d) for t, d in (item.split("=", 1) for item in args.reuse)}
    results, seconds = {}, {}
    for threads in args.threads:
        if threads in reused:
            print(f"{threads} thread(s): the results of {reused[threads]}", flush=True)
            results[threads], seconds[threads] = read_results(reused[threads]), None
            continue
        work = make_copy(args.work / f"threads{threads}", args.params.resolve())
        print(f"dvc repro with {threads} thread(s) in {work} ...", flush=True)
        seconds[threads] = round(repro(work, threads), 1)
        results[threads] = read_results(work)
        print(f"  {seconds[threads] / 60:.1f} min", flush=True)
    a, b = args.threads
    return report(compare_runs(results[a], results[b]), thread_names(a, b), args.out,
                  {"threads": args.threads, "seconds": seconds, "runs": {str(t): r for t, r in results.items()}})


def report(rows: list[dict], names: tuple[str, str], out: Path, extra: dict) -> int:
    """Print the comparison table and the verdict; write it (and `extra`) to `out` as JSON."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**extra, "rows": rows}, indent=2) + "\n")
    print(markdown(rows, names))
    agree = all(r.get("same_sign", True) and r.get("same_significance", True) for r in rows)
    tested = [r for r in rows if "noise_p" in r]
    print(f"seed means within {GOAL_YEARS} years: {sum(r['within_goal'] for r in rows)}/{len(rows)}; "
          f"within their seeds' training noise (Welch p >= 0.05): "
          f"{sum(r['noise_p'] >= 0.05 for r in tested)}/{len(tested)}; "
          f"every Δ's sign and significance agree: {'yes' if agree else 'no'}; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
