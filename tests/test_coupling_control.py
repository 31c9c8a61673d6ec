"""benchmarks/coupling_control.py --runs: one condition of two finished default runs, paired photo by photo."""
import importlib.util

import pytest

from tests.helpers import ROOT
from tests.test_pool_runs import predictions, write_run

spec = importlib.util.spec_from_file_location("coupling_control", ROOT / "benchmarks" / "coupling_control.py")
coupling_control = importlib.util.module_from_spec(spec)
spec.loader.exec_module(coupling_control)


def test_two_runs_are_paired_per_seed_and_photo(tmp_path, capsys):
    # multitrain errs by 2.0 years in the treated run and by 2.5 in the control, on every photo of both seeds
    treated = write_run(tmp_path / "rank", predictions(0.0))
    control = write_run(tmp_path / "none", predictions(0.5))
    assert coupling_control.main(["--runs", treated, control]) == 0
    out = capsys.readouterr().out
    assert f"seed 1: {treated} 2.000  {control} 2.500  (24 photos)" in out
    assert f"multitrain: {treated} - {control} = -0.500 years" in out
    assert "seeds+persons: 2 training seeds, 12 persons; 48 photo-runs" in out


def test_runs_of_another_split_are_refused(tmp_path, capsys):
    treated = write_run(tmp_path / "a", predictions(0.0))
    control = write_run(tmp_path / "b", predictions(0.0, persons=13))
    assert coupling_control.main(["--runs", treated, control]) == 2
    assert "scored different test photos or training seeds" in capsys.readouterr().err


def test_a_folder_without_a_finished_run_is_named(tmp_path, capsys):
    treated = write_run(tmp_path / "a", predictions(0.0))
    assert coupling_control.main(["--runs", treated, str(tmp_path / "missing")]) == 2
    assert "missing/metrics/eval/predictions.csv: no such file" in capsys.readouterr().err


def test_an_unknown_condition_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        coupling_control.main(["--runs", "a", "b", "--condition", "multitrian"])
