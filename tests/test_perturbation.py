"""benchmarks/perturbation.py's comparison of two thread counts' runs (without running the pipeline)."""
import importlib.util

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
