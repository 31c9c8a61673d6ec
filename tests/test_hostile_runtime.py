"""The error log is a new private file per run (a link planted under a fixed name is never followed), and a forced
AGE_VCOP_DEVICE the machine cannot give fails in one line naming the variable."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest
import torch

from pipeline import runtime


def failing_stage() -> None:
    runtime.read_json(Path("nowhere/metrics.json"))  # an expected failure raised by project code: one line


def run(capsys, main, name: str = "stage") -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        runtime.entry_point(main, name)
    return stop.value.code, capsys.readouterr().err


def logged_at(err: str) -> Path:
    return Path(err.split("traceback in ")[1].split(";")[0])


def test_each_failure_logs_to_its_own_private_file_and_never_follows_a_planted_link(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the temp folder other users could write into
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "age-vcop-stage.log").symlink_to(victim)  # planted under the name the log once had
    code, err = run(capsys, failing_stage)
    first = logged_at(err)
    assert code == 2 and victim.read_text() == "keep me" and "Traceback" not in err
    assert first.parent == tmp_path and not first.is_symlink() and "FileNotFoundError" in first.read_text()
    assert stat.S_IMODE(first.stat().st_mode) == 0o600  # tracebacks may name private paths
    _, again = run(capsys, failing_stage)
    assert logged_at(again) != first and first.exists()  # a second (or concurrent) run keeps the first log


@pytest.mark.parametrize("value, match", [("cuda", "AGE_VCOP_DEVICE=cuda: no such CUDA device here"),
                                          ("cuda:7", "AGE_VCOP_DEVICE=cuda:7: no such CUDA device"),
                                          ("gpu", "AGE_VCOP_DEVICE='gpu' is not a device")])
def test_a_forced_device_the_machine_lacks_fails_in_one_line(capsys, monkeypatch, value, match):
    monkeypatch.setenv("AGE_VCOP_DEVICE", value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a GPU machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError, match=match):
        runtime.pick_device()
    code, err = run(capsys, lambda: runtime.setup(seed=0, stage="stage"))
    assert code == 2 and match in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_forced_cpu_still_works(monkeypatch):
    monkeypatch.setenv("AGE_VCOP_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
