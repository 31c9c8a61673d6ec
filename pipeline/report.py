"""Figures (PNG) and metrics/report.md from the evaluate stage's numbers (its CSVs come from pipeline.comparison)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import runtime  # noqa: E402
from pipeline.artifacts import CONDITION_STAGES, CONDITIONS, run_name  # noqa: E402
from pipeline.comparison import Tables  # noqa: E402


def save_figure(fig: plt.Figure, path: Path) -> None:
    """PNG at the report's resolution, written atomically; closes the figure."""
    fig.tight_layout()
    with runtime.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_cs(curves: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in CONDITIONS:
        ax.plot(curves["n"], curves[name], marker="o", ms=3, label=name)
    ax.set(xlabel="error tolerance n (years)", ylabel="CS(n)", title="Cumulative score, Korean test", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def plot_scatter(preds: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(8, 8), sharex=True, sharey=True)
    top = max(preds["age"].max(), max(preds[c].max() for c in CONDITIONS)) + 2
    for ax, name in zip(axes.flat, CONDITIONS):
        ax.scatter(preds["age"], preds[name], s=6, alpha=0.5)
        ax.plot([0, top], [0, top], color="k", lw=1)
        ax.set(title=name, xlabel="true age", ylabel="predicted age", xlim=(0, top), ylim=(0, top))
    save_figure(fig, path)


def plot_bands(bands: pd.DataFrame, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(CONDITIONS)
    x = np.arange(len(bands))
    for i, name in enumerate(CONDITIONS):
        ax.bar(x + i * width, bands[name].fillna(0), width, label=name)
    ax.set_xticks(x + width * (len(CONDITIONS) - 1) / 2, bands["band"])
    ax.set(xlabel="true age band", ylabel="MAE (years)", title="MAE per age band, Korean test")
    ax.legend()
    save_figure(fig, path)


def plot_training(histories: dict[tuple[str, int], pd.DataFrame], path: Path) -> None:
    """Training curves of every (stage, training seed) run: one colour per stage, one line per seed; train (dashed)
    every epoch, val (markers) on the epochs that were scored (`val_every`)."""
    fig, (ax_age, ax_vcop) = plt.subplots(1, 2, figsize=(10, 4))
    colours = {stage: f"C{i}" for i, stage in enumerate(dict.fromkeys(stage for stage, _ in histories))}
    for (stage, seed), frame in histories.items():
        first = seed == min(s for st, s in histories if st == stage)  # one legend entry per stage
        for ax, metric in ((ax_age, "mae"), (ax_vcop, "acc")):  # multitrain has both
            if f"train_{metric}" in frame:
                ax.plot(frame["step"], frame[f"train_{metric}"], ls="--", lw=1, color=colours[stage],
                        label=f"{stage} train" if first else None)
            if f"val_{metric}" in frame and frame[f"val_{metric}"].notna().any():
                scored = frame[frame[f"val_{metric}"].notna()]
                ax.plot(scored["step"], scored[f"val_{metric}"], marker="o", ms=3, lw=1, color=colours[stage],
                        label=f"{stage} val" if first else None)
    ax_age.set(xlabel="epoch (all phases)", ylabel="MAE (years)", title="Age training (one line per seed)")
    ax_vcop.set(xlabel="epoch", ylabel="permutation accuracy", title="VCOP pretext (one line per seed)", ylim=(0, 1))
    for ax in (ax_age, ax_vcop):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def write_figures(tables: Tables, histories_dir: Path, plots_dir: Path, seeds: Sequence[int]) -> list[Path]:
    """The four evaluate figures from its tables (comparison.Tables) and every seed's training history; their
    paths."""
    histories = {(s, seed): pd.read_csv(p) for s in (*CONDITION_STAGES.values(), "pretrain_vcop") for seed in seeds
                 if (p := histories_dir / f"{run_name(s, seed)}.csv").exists()}
    figures = [plots_dir / f for f in ("cs_curve.png", "scatter.png", "mae_by_band.png", "training_curves.png")]
    plot_cs(tables.cs_curve, figures[0])
    plot_scatter(tables.predictions, figures[1])
    plot_bands(tables.mae_by_band, figures[2])
    plot_training(histories, figures[3])
    return figures


def _ci(entry: dict | None) -> str:
    if not entry:
        return "-"
    if entry["ci_low"] is None:
        return f"{entry['mae_diff']:+.2f} [no CI: {entry['n_persons']} person(s)]"
    mark = " *" if entry["significant"] else ""
    return f"{entry['mae_diff']:+.2f} [{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]{mark}"


def _mean_std(mean: float, std: float | None) -> str:
    return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"


def table(results: dict[str, dict], comparison: dict) -> str:
    """The seed means: one row per condition."""
    lines = ["| condition | Korean MAE (mean ± seed std) | CS@5 | bias | Δ MAE vs baseline [95% CI] | "
             "Δ MAE vs finetune_korean [95% CI] | general MAE |", "|---|---|---|---|---|---|---|"]
    for name in CONDITIONS:
        k, g, std = results[name]["korean"], results[name]["general"], results[name]["seed_std"]["korean"]
        lines.append(f"| {name} | {_mean_std(k['mae'], std['mae'])} | {k['cs5']:.3f} | {k['bias']:+.2f} | "
                     f"{_ci(comparison['vs_baseline'].get(name))} | {_ci(comparison['vs_finetune_korean'].get(name))}"
                     f" | {g['mae']:.2f} |")
    return "\n".join(lines)


def seed_table(results: dict[str, dict], comparison: dict) -> str:
    """Each training seed's own numbers: Korean MAE, and Δ vs finetune_korean (no CI: one run each)."""
    seeds = list(results[CONDITIONS[0]]["per_seed"])
    lines = ["| condition | " + " | ".join(f"seed {s}: Korean MAE (Δ vs finetune_korean)" for s in seeds) + " |",
             "|---|" + "---|" * len(seeds)]
    for name in CONDITIONS:
        diffs = comparison["vs_finetune_korean"].get(name, {}).get("per_seed_mae_diff", {})
        cells = [f"{results[name]['per_seed'][s]['korean']['mae']:.2f}" + (f" ({diffs[s]:+.2f})" if s in diffs else "")
                 for s in seeds]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ci_words(entry: dict) -> str:
    """What a CI resamples, in words, so that a one-seed CI never reads as if it covered training noise."""
    if entry.get("ci_over") == "seeds+persons":
        return f"95% CI over {entry['n_seeds']} training seeds x {entry['n_persons']} test persons"
    return f"95% CI over {entry['n_persons']} test persons of one training run"


def verdict(results: dict[str, dict], comparison: dict) -> str:
    """One paragraph, every word decided by the numbers."""
    maes = {name: results[name]["korean"]["mae"] for name in CONDITIONS}
    best = min(maes, key=maes.get)
    n_seeds = results[best]["n_seeds"]
    parts = [f"On the Korean test set ({results[best]['korean']['n']} photos, "
             f"{comparison['vs_baseline'][next(iter(comparison['vs_baseline']))]['n_persons']} persons; "
             f"mean over {n_seeds} training seed(s)) the lowest MAE is {best}'s ({maes[best]:.2f} years"
             + (f"; Bayes floor {floor}" if (floor := comparison.get("bayes_floor_korean")) is not None else "")
             + ")."]
    for name in ("downstream", "multitrain"):
        entry = comparison["vs_finetune_korean"][name]
        if entry["ci_low"] is None:
            parts.append(f"{name} vs finetune_korean: Δ {entry['mae_diff']:+.2f} years, no CI "
                         f"({entry['n_persons']} test person(s); aggregate the folds or seeds).")
        elif entry["significant"]:
            direction = "better" if entry["mae_diff"] < 0 else "worse"
            parts.append(f"{name} is significantly {direction} than finetune_korean "
                         f"(Δ {entry['mae_diff']:+.2f} years, {_ci_words(entry)} "
                         f"[{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]).")
        else:
            parts.append(f"{name} is not significantly different from finetune_korean "
                         f"(Δ {entry['mae_diff']:+.2f} years, {_ci_words(entry)} "
                         f"[{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}] includes 0).")
    pretext = comparison["pretext"]
    parts.append(f"The VCOP pretext on {pretext['n_val_tuples']} val tuples (mean over {pretext['n_seeds']} "
                 f"seed(s)): top-1 {pretext['val_acc']:.2f} (chance {pretext['chance_acc']:.2f}), top-3 "
                 f"{pretext['val_top3']:.2f} (chance {pretext['chance_top3']:.2f}), Kendall's tau between "
                 f"predicted and true order {pretext['val_kendall_tau']:+.2f} (chance 0).")
    if n_seeds == 1:
        parts.append("This is one training seed: its CIs resample test persons, not training runs, so training "
                     "noise is not in them; list several seeds in params.yaml:train_seeds before drawing "
                     "conclusions.")
    return " ".join(parts)


def _table_note(comparison: dict) -> str:
    over = {"seeds+persons": "(training seed, test person) clusters, conditions paired on both",
            "persons": "test persons only (one training seed: training noise is not in it)",
            "none": "nothing: too few test persons for a CI"}[next(iter(comparison["vs_finetune_korean"].values()))
                                                               ["ci_over"]]
    return ("Every number is the mean over the training seeds; ± is the seed-to-seed std. Δ < 0 means the "
            f"condition's MAE is lower. The paired bootstrap CI resamples {over}; * = it excludes 0.")


def write_report(path: Path, results: dict[str, dict], comparison: dict, data_summary: dict,
                 figures: list[Path]) -> str:
    body = table(results, comparison)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(data_summary.items()) if not isinstance(v, dict))
    text = "\n\n".join([
        "# age-vcop report",
        "Generated by `dvc repro` (stage evaluate) from metrics/eval/details/*.json and comparison.json; do not edit by hand.",
        "## Conditions on the Korean test split\n\n" + body + "\n\n" + _table_note(comparison),
        "## Each training seed\n\n" + seed_table(results, comparison),
        "## Verdict\n\n" + verdict(results, comparison),
        "## Data\n\n" + summary,
        "## Figures\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in figures),
    ]) + "\n"
    runtime.write_text(path, text)
    return body
