"""Hostile predict inputs: an --out that is a link, a device, a FIFO or a folder is refused whatever the flags; a FIFO
given as a photo is skipped, never opened (it would block); a file name that is not UTF-8 is written escaped; a
model file recording an absurd image_size is refused before anything is allocated."""
from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pandas as pd
import pytest
import torch

from pipeline import artifacts, predict
from pipeline.faces import FaceSettings
from pipeline.models import AgeRegressor, build_encoder
from tests.helpers import photo


class Hung(Exception):
    """Raised by the alarm: the code under test blocked (not an OSError, which the old code would swallow)."""


@pytest.fixture
def no_hang():
    def alarm(*_):
        raise Hung("blocked on a FIFO")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 20)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def model_file(path: Path, image_size: int = 32) -> str:
    torch.manual_seed(0)
    artifacts.save_model(path, AgeRegressor(build_encoder("tiny_cnn")), "age", "tiny_cnn",
                         face_settings=FaceSettings(face="none", image_size=image_size).to_dict(),
                         age_range=[0.0, 80.0])
    return str(path)


def special_out(tmp_path: Path, kind: str) -> Path:
    """An --out of `kind`; a link points at a table predict wrote, so only its being a link can refuse it."""
    if kind == "device":
        if not Path("/dev/null").exists():
            pytest.skip("no /dev/null here")
        return Path("/dev/null")
    out = tmp_path / "out.csv"
    if kind in ("link", "dangling_link"):
        target = tmp_path / "elsewhere.csv"
        if kind == "link":
            target.write_text(",".join(predict.COLUMNS) + "\n")
        out.symlink_to(target)
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out.mkdir()
    return out


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("kind, named", [("link", "a symbolic link"), ("dangling_link", "a symbolic link"),
                                         ("device", "a character device"), ("fifo", "a FIFO"), ("folder", "a folder")])
def test_an_out_that_is_not_a_regular_file_is_refused_whatever_the_flags(tmp_path, monkeypatch, caplog, no_hang,
                                                                          kind, named, overwrite):
    model = model_file(tmp_path / "model.pt")
    photo(tmp_path / "photos" / "a.jpg")
    out = special_out(tmp_path, kind)
    before = os.lstat(out)
    monkeypatch.setattr(predict, "predict", lambda *a, **k: pytest.fail("predicted before --out was refused"))
    status = predict.main(["--model", model, "--out", str(out), *(["--overwrite"] if overwrite else []),
                           str(tmp_path / "photos")])
    assert status == 2 and f"--out {out} is {named}" in caplog.text and "choose another --out" in caplog.text
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)  # the same link / node, untouched
    if kind == "link":
        assert (tmp_path / "elsewhere.csv").read_text() == ",".join(predict.COLUMNS) + "\n"


def test_an_out_that_becomes_a_link_while_predicting_is_not_written_through(tmp_path, monkeypatch):
    model = model_file(tmp_path / "model.pt")
    photo(tmp_path / "a.jpg")
    out, victim = tmp_path / "out.csv", tmp_path / "victim.csv"
    victim.write_text("keep me")
    real_predict = predict.predict

    def swap_in_a_link(*args, **kwargs):
        out.symlink_to(victim)
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(predict, "predict", swap_in_a_link)
    with pytest.raises(predict.OutputPathError, match="is a symbolic link"):
        predict.main(["--model", model, "--device", "cpu", "--out", str(out), "--overwrite", str(tmp_path / "a.jpg")])
    assert out.is_symlink() and victim.read_text() == "keep me"


def test_a_fifo_among_the_photos_is_skipped_with_a_reason(tmp_path, caplog, no_hang):
    model = model_file(tmp_path / "model.pt")
    photo(tmp_path / "photos" / "a.jpg")
    os.mkfifo(tmp_path / "photos" / "pipe.jpg")  # no writer: opening it would block for ever
    out = tmp_path / "out.csv"
    assert predict.main(["--model", model, "--device", "cpu", "--out", str(out), str(tmp_path / "photos"),
                         str(tmp_path / "photos" / "pipe.jpg")]) == 1
    table = pd.read_csv(out, keep_default_na=False)
    assert table["outcome"].tolist() == ["crop", "unreadable", "unreadable"]
    assert table["error"].iloc[1].endswith("pipe.jpg: a FIFO (named pipe), not a regular file; skipped: give photo "
                                           "files")
    assert "pipe.jpg: a FIFO" in caplog.text and stat.S_ISFIFO(os.stat(tmp_path / "photos" / "pipe.jpg").st_mode)


def test_a_file_name_that_is_not_utf8_is_written_escaped(tmp_path, capsys):
    model = model_file(tmp_path / "model.pt")
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes on disk; Python sees a lone surrogate
    photo(tmp_path / "photos" / name)
    photo(tmp_path / "photos" / "plain.jpg")
    out = tmp_path / "out.csv"
    assert predict.main(["--model", model, "--device", "cpu", "--out", str(out), str(tmp_path / "photos")]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert [Path(p).name for p in table["path"]] == ["caf\\xe9.jpg", "plain.jpg"]
    assert table["outcome"].tolist() == ["crop", "crop"] and "caf\\xe9.jpg" in capsys.readouterr().out
    assert not list(tmp_path.glob(".out.csv.*"))  # no temp file left beside it


@pytest.mark.parametrize("image_size", [10**9, 4, "48"])
def test_a_model_file_recording_an_absurd_image_size_is_refused(tmp_path, caplog, image_size):
    path = Path(model_file(tmp_path / "model.pt"))
    payload = torch.load(path, weights_only=True)
    payload["face_settings"]["image_size"] = image_size
    torch.save(payload, path)
    with pytest.raises(artifacts.ModelFileError, match=r"image_size .* is not a whole number in 16\.\.512 px"):
        predict.load_model(str(path))
    photo(tmp_path / "a.jpg")
    out = tmp_path / "out.csv"
    assert predict.main(["--model", str(path), "--device", "cpu", "--out", str(out), str(tmp_path / "a.jpg")]) == 2
    assert "image_size" in caplog.text and not out.exists()
