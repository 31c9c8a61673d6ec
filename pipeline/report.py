"""Figures (PNG) and metrics/report.md from the evaluate stage's numbers (its CSVs come from pipeline.comparison)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on CI or servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline import runtime  # noqa: E402
from pipeline.artifacts import CONDITION_STAGES, CONDITIONS  # noqa: E402
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


def plot_training(histories: dict[str, pd.DataFrame], path: Path) -> None:
    fig, (ax_age, ax_vcop) = plt.subplots(1, 2, figsize=(10, 4))
    for stage, frame in histories.items():
        if "val_mae" in frame:
            ax_age.plot(frame["step"], frame["val_mae"], marker="o", ms=3, label=stage)
        if "val_acc" in frame:
            ax_vcop.plot(frame["step"], frame["val_acc"], marker="o", ms=3, label=f"{stage} val")
            ax_vcop.plot(frame["step"], frame["train_acc"], ls="--", label=f"{stage} train")
    ax_age.set(xlabel="epoch (all phases)", ylabel="val MAE (years)", title="Age training")
    ax_vcop.set(xlabel="epoch", ylabel="permutation accuracy", title="VCOP pretext", ylim=(0, 1))
    for ax in (ax_age, ax_vcop):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def write_figures(tables: Tables, histories_dir: Path, plots_dir: Path) -> list[Path]:
    """The four evaluate figures from its tables (comparison.Tables) and the training histories; their paths."""
    histories = {s: pd.read_csv(p) for s in (*CONDITION_STAGES.values(), "pretrain_vcop")
                 if (p := histories_dir / f"{s}.csv").exists()}
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


def table(results: dict[str, dict], comparison: dict) -> str:
    lines = ["| condition | Korean MAE | CS@5 | bias | Δ MAE vs baseline [95% CI] | Δ MAE vs finetune_korean "
             "[95% CI] | general MAE |", "|---|---|---|---|---|---|---|"]
    for name in CONDITIONS:
        k, g = results[name]["korean"], results[name]["general"]
        lines.append(f"| {name} | {k['mae']:.2f} | {k['cs5']:.3f} | {k['bias']:+.2f} | "
                     f"{_ci(comparison['vs_baseline'].get(name))} | {_ci(comparison['vs_finetune_korean'].get(name))}"
                     f" | {g['mae']:.2f} |")
    return "\n".join(lines)


def verdict(results: dict[str, dict], comparison: dict) -> str:
    """One paragraph, every word decided by the numbers."""
    maes = {name: results[name]["korean"]["mae"] for name in CONDITIONS}
    best = min(maes, key=maes.get)
    parts = [f"On the Korean test set ({results[best]['korean']['n']} photos, "
             f"{comparison['vs_baseline'][next(iter(comparison['vs_baseline']))]['n_persons']} persons) the lowest "
             f"MAE is {best}'s ({maes[best]:.2f} years" + (f"; Bayes floor {floor}" if (floor := comparison.get(
                 "bayes_floor_korean")) is not None else "") + ")."]
    for name in ("downstream", "multitrain"):
        entry = comparison["vs_finetune_korean"][name]
        if entry["ci_low"] is None:
            parts.append(f"{name} vs finetune_korean: Δ {entry['mae_diff']:+.2f} years, no CI "
                         f"({entry['n_persons']} test person(s); aggregate the folds or seeds).")
        elif entry["significant"]:
            direction = "better" if entry["mae_diff"] < 0 else "worse"
            parts.append(f"{name} is significantly {direction} than finetune_korean "
                         f"(Δ {entry['mae_diff']:+.2f} years, 95% CI [{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]).")
        else:
            parts.append(f"{name} is not significantly different from finetune_korean "
                         f"(Δ {entry['mae_diff']:+.2f} years, 95% CI [{entry['ci_low']:+.2f}, {entry['ci_high']:+.2f}]"
                         " includes 0).")
    pretext = comparison["pretext"]
    parts.append(f"The VCOP pretext reached {pretext['val_acc']:.2f} permutation accuracy on val tuples "
                 f"(chance {pretext['chance']:.2f}).")
    parts.append("This is one seed: CIs resample test persons, not training runs; run several seeds "
                 "(README: Usage) before drawing conclusions.")
    return " ".join(parts)


def write_report(path: Path, results: dict[str, dict], comparison: dict, data_summary: dict,
                 figures: list[Path]) -> str:
    body = table(results, comparison)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(data_summary.items()) if not isinstance(v, dict))
    text = "\n\n".join([
        "# age-vcop report",
        "Generated by `dvc repro` (stage evaluate) from metrics/eval/details/*.json and comparison.json; do not edit by hand.",
        "## Conditions on the Korean test split\n\n" + body +
        "\n\nΔ < 0 means the condition's MAE is lower. * = the 95% person-level paired bootstrap CI excludes 0.",
        "## Verdict\n\n" + verdict(results, comparison),
        "## Data\n\n" + summary,
        "## Figures\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in figures),
    ]) + "\n"
    runtime.write_text(path, text)
    return body
