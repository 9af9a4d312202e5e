"""Bad input and damaged models give one line and an exit code, never a traceback; the output is
always valid JSON."""

import io
import json
import math
import sys

import pytest
from stage_deps import ROOT, dvc_stages

from kexue import cli


def _fails(capsys, argv, code=1) -> str:
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    return line


def test_a_missing_or_directory_file_is_named(tmp_path, capsys):
    line = _fails(capsys, ["segment", "--file", str(tmp_path / "none.txt")])
    assert "cannot read --file" in line and "none.txt" in line
    line = _fails(capsys, ["segment", "--file", str(tmp_path)])
    assert "is a directory" in line


def test_invalid_utf8_names_its_line_and_is_never_echoed(tmp_path, capsys, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_bytes("好的\n".encode() + b"\xff\xfe bad\n")
    line = _fails(capsys, ["segment", "--file", str(path)])
    assert "line 2 is not valid UTF-8" in line
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xc3(\n")))
    assert "standard input: line 2 is not valid UTF-8" in _fails(capsys, ["segment", "--file", "-"])
    among = tmp_path / "among.txt"
    among.write_bytes(b"\x80\n")
    assert "--among" in _fails(capsys, ["similar-sentence", "q", "--among", str(among)])


def test_a_damaged_model_is_not_reported_as_missing(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.keras", "train_info.json", "vocab.json", "bigram_vocab.json"):
        (model / name).write_bytes(b"\x00garbage")
    line = _fails(capsys, ["sentiment", "--model", str(model), "好"])
    assert "cannot load the model" in line and "dvc repro train@sentiment" in line


def test_out_of_range_arguments_and_a_directory_out(tmp_path, capsys):
    assert "-k must be >= 1" in _fails(capsys, ["similar", "北京", "-k", "-3"])
    line = _fails(capsys, ["generate", "--model", "vae", "--out", str(tmp_path)])
    assert "must name a .png file" in line
    line = _fails(capsys, ["generate", "--model", "vae", "--out", str(tmp_path / "no" / "g.png")])
    assert "does not exist" in line


def test_a_decompression_bomb_picture_is_refused(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("L", (6000, 6000)).save(path)  # 36M pixels, a few kB on disk
    assert "more than 25,000,000 pixels" in _fails(capsys, ["classify", str(path)])
    assert "is a directory" in _fails(capsys, ["classify", str(tmp_path)])


def test_non_finite_numbers_are_written_as_null(capsys):
    cli._emit([{"score": math.nan, "nested": [math.inf, -math.inf, 1.5]}])
    assert json.loads(capsys.readouterr().out) == {"score": None, "nested": [None, None, 1.5]}


def test_every_train_hint_names_a_stage_of_the_pipeline():
    stages = {s.name.split(":")[-1] for s in dvc_stages(ROOT)}
    assert set(cli.TRAIN_STAGES.values()) <= stages


@pytest.mark.parametrize("command", ["similar", "similar-sentence", "title", "cloze"])
def test_a_missing_model_names_the_stage_that_trains_it(tmp_path, capsys, command):
    among = tmp_path / "among.txt"
    among.write_text("一句\n", encoding="utf-8")
    argv = {"similar": ["similar", "北京", "--model", str(tmp_path / "none")],
            "similar-sentence": ["similar-sentence", "q", "--among", str(among), "--model",
                                 str(tmp_path / "none")],
            "title": ["title", "一段话。", "--model", str(tmp_path / "none")],
            "cloze": ["cloze", "北京/ns 好/a", "___ 好/a", "--pretagged", "--model",
                      str(tmp_path / "none")]}[command]
    line = _fails(capsys, argv)
    assert "dvc repro" in line or "not found" in line
