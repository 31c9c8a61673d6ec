"""benchmarks/perturbation.py's comparison of two thread counts' runs (without running the pipeline)."""
import importlib.util
import json
from pathlib import Path

import pytest

from tests.helpers import ROOT

spec = importlib.util.spec_from_file_location("perturbation", ROOT / "benchmarks" / "perturbation.py")
perturbation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(perturbation)


def run(shift: float, delta: float, significant: bool) -> dict:
    """One run's read_results(): condition MAEs 4 + shift, downstream's Δ vs finetune_korean `delta`."""
    out = {}
    for condition in perturbation.CONDITIONS:
        entry = None if condition == "finetune_korean" else {
            "mae_diff": delta, "ci_low": delta - 0.1, "ci_high": delta + 0.1, "significant": significant,
            "ci_over": "seeds+persons"}
        out[condition] = {"korean_mae": 4.0 + shift, "seed_std": 0.1, "per_seed": {"0": 4.0 + shift, "1": 4.0},
                          "vs_reference": entry}
    return out


def test_sign_and_significance_flips_and_mae_drift_are_flagged():
    rows = {r["condition"]: r for r in perturbation.compare_runs(run(0.0, -0.3, True), run(0.2, 0.05, False))}
    down = rows["downstream"]
    assert down["abs_diff"] == pytest.approx(0.2) and not down["within_goal"]
    assert not down["same_sign"] and not down["same_significance"]
    assert "delta_a" not in rows["finetune_korean"]
    text = perturbation.markdown(list(rows.values()), (1, 2))
    assert "| downstream | 4.000 | 4.200 | 0.200 (over) |" in text and "| NO | NO |" in text


def test_runs_that_agree_pass():
    rows = perturbation.compare_runs(run(0.0, -0.3, True), run(0.01, -0.28, True))
    assert all(r["within_goal"] for r in rows)
    assert all(r["same_sign"] and r["same_significance"] for r in rows if "delta_a" in r)


def write_run(root: Path, shift: float, delta: float) -> Path:
    """The files read_results() reads, as a finished `dvc repro` leaves them (metrics/eval)."""
    eval_dir = root / "metrics/eval"
    (eval_dir / "details").mkdir(parents=True)
    compared = {}
    for condition, result in run(shift, delta, True).items():
        (eval_dir / f"{condition}.json").write_text(json.dumps(
            {"01_korean_mae": result["korean_mae"], "02_korean_mae_seed_std": result["seed_std"]}))
        (eval_dir / f"details/{condition}.json").write_text(json.dumps(
            {"per_seed": {s: {"korean": {"mae": m}} for s, m in result["per_seed"].items()}}))
        if result["vs_reference"] is not None:
            compared[condition] = result["vs_reference"]
    (eval_dir / "comparison.json").write_text(json.dumps({"vs_finetune_korean": compared}))
    return root


def test_two_finished_runs_are_compared_by_name(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", 0.0, -0.3), write_run(tmp_path / "b", 0.3, -0.3)
    out = tmp_path / "machines.json"
    assert perturbation.main(["--runs", f"intel={a}", f"amd={b}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| condition | MAE, intel | MAE, amd |" in printed
    assert "| baseline | 4.000 | 4.300 | 0.300 (over) |" in printed
    written = json.loads(out.read_text())
    assert written["runs"] == {"intel": str(a), "amd": str(b)}
    assert {r["condition"]: r["abs_diff"] for r in written["rows"]}["multitrain"] == pytest.approx(0.3)


def test_seed_noise_is_welchs_test_of_the_per_seed_maes():
    from scipy import stats

    a, b = [4.0, 4.1, 4.3], [4.2, 4.5, 4.4]
    noise = perturbation.seed_noise(a, b)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert noise["noise_p"] == pytest.approx(welch.pvalue)
    assert noise["noise_95"] == pytest.approx(stats.t.ppf(0.975, welch.df) * abs(sum(a) / 3 - sum(b) / 3)
                                              / abs(welch.statistic))
    assert perturbation.seed_noise([4.0], b) == {}  # one seed: no spread to compare against


def test_a_gap_beyond_the_seeds_noise_is_flagged_and_one_within_it_is_not():
    far, near = run(0.0, -0.3, True), run(0.0, -0.3, True)
    for condition in perturbation.CONDITIONS:
        far[condition]["per_seed"] = {"0": 5.0, "1": 5.01, "2": 5.02}
        far[condition]["korean_mae"] = 5.01
        near[condition]["per_seed"] = {"0": 3.9, "1": 4.0, "2": 4.13}
    base = run(0.0, -0.3, True)
    for condition in perturbation.CONDITIONS:
        base[condition]["per_seed"] = {"0": 4.0, "1": 4.01, "2": 4.02}
        base[condition]["korean_mae"] = 4.01
    beyond = perturbation.compare_runs(base, far)
    assert all(r["noise_p"] < 0.05 for r in beyond)
    assert "(p 0.00, beyond)" in perturbation.markdown(beyond, ("a", "b"))
    within = perturbation.compare_runs(base, near)
    assert all(r["noise_p"] >= 0.05 for r in within)
    assert "beyond" not in perturbation.markdown(within, ("a", "b"))


def test_a_written_comparison_is_compared_again_from_its_file(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", 0.0, -0.3), write_run(tmp_path / "b", 0.3, -0.3)
    first = tmp_path / "machines.json"
    perturbation.main(["--runs", f"intel={a}", f"amd={b}", "--out", str(first)])
    again = tmp_path / "again.json"
    assert perturbation.main(["--from", str(first), "--out", str(again)]) == 0
    assert "| baseline | 4.000 | 4.300 | 0.300 (over) |" in capsys.readouterr().out
    rewritten = json.loads(again.read_text())
    assert rewritten["runs"] == json.loads(first.read_text())["runs"]
    assert {r["condition"] for r in rewritten["rows"]} == set(perturbation.CONDITIONS)
    assert all("noise_p" in r for r in rewritten["rows"])
