"""benchmarks/pool_runs.py: finished runs of one split pooled as training seeds (without running the pipeline)."""
import importlib.util

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate import PREDICTIONS
from tests.helpers import ROOT

spec = importlib.util.spec_from_file_location("pool_runs", ROOT / "benchmarks" / "pool_runs.py")
pool_runs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pool_runs)

ERROR = {"baseline": 6.0, "finetune_korean": 2.0, "downstream": 1.5, "multitrain": 2.0}


def predictions(shift: float, seeds=(0, 1), persons: int = 12) -> pd.DataFrame:
    """`persons` test persons x 2 photos; each condition errs by ERROR[c] + shift years in every seed."""
    rows = []
    for seed in seeds:
        for photo in range(2 * persons):
            age = 10.0 + photo
            rows.append({"seed": seed, "photo": photo, "age": age, "person_id": f"k{photo // 2:05d}",
                         **{c: age + e + shift for c, e in ERROR.items()}})
    return pd.DataFrame(rows)


def write_run(folder, frame: pd.DataFrame) -> str:
    """`frame` as the predictions.csv of a finished run in `folder`; returns the folder as a source."""
    (folder / "metrics/eval").mkdir(parents=True)
    frame.to_csv(folder / PREDICTIONS, index=False)
    return str(folder)


def test_runs_pool_as_seeds_with_a_ci_over_run_seed_and_person():
    frames = {"a": predictions(0.0), "b": predictions(0.5)}
    down = pool_runs.pool(frames, "downstream", n_boot=200)
    assert down["n_runs"] == 4 and down["korean_mae"] == pytest.approx((1.5 + 2.0) / 2)
    assert down["seed_std"] == pytest.approx(np.std([1.5, 1.5, 2.0, 2.0], ddof=1))
    delta = down["vs_reference"]
    assert delta["mae_diff"] == pytest.approx(-0.5) and delta["n_seeds"] == 4 and delta["ci_over"] == "seeds+persons"
    assert "vs_reference" not in pool_runs.pool(frames, "finetune_korean", n_boot=200)


def test_runs_of_another_split_are_refused(tmp_path, monkeypatch, capsys):
    for name, frame in {"a": predictions(0.0), "b": predictions(0.0, persons=13)}.items():
        write_run(tmp_path / name, frame)
    monkeypatch.setattr("sys.argv", ["pool_runs", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"])
    with pytest.raises(SystemExit):
        pool_runs.main()
    assert "scored other test photos" in capsys.readouterr().err


def test_only_naming_a_run_not_given_is_refused(tmp_path, monkeypatch, capsys):
    write_run(tmp_path / "a", predictions(0.0))
    monkeypatch.setattr("sys.argv", ["pool_runs", f"a={tmp_path / 'a'}", "--only", "multitrain=a,b"])
    with pytest.raises(SystemExit):
        pool_runs.main()
    assert "--only names runs not given: ['b']" in capsys.readouterr().err


def test_one_run_given_twice_is_refused(tmp_path, monkeypatch, capsys):
    for name in ("a", "b"):
        write_run(tmp_path / name, predictions(0.0))
    monkeypatch.setattr("sys.argv", ["pool_runs", f"a={tmp_path / 'a'}", f"b={tmp_path / 'b'}"])
    with pytest.raises(SystemExit):
        pool_runs.main()
    assert "a and b hold the same predictions" in capsys.readouterr().err


@pytest.mark.parametrize("given, message", [("a=missing", "no such file; is"), ("a", "runs are NAME=SOURCE")])
def test_a_missing_or_unnamed_run_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys, given, message):
    write_run(tmp_path / "b", predictions(0.0))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["pool_runs", given, "b=b"])
    with pytest.raises(SystemExit) as exit_:
        pool_runs.main()
    assert exit_.value.code == 2 and message in capsys.readouterr().err
