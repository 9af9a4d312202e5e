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


def _fake_model(tmp_path, command) -> str:
    """A folder holding (empty) every file the command's model check asks for: the command gets
    past the check to its input, whose errors these tests are about."""
    folder = tmp_path / f"fake_{command}"
    folder.mkdir(exist_ok=True)
    for name in cli.MODEL_FILES[command]:
        (folder / name).write_bytes(b"")
    return str(folder)


def test_a_missing_or_directory_file_is_named(tmp_path, capsys):
    model = ["--model", _fake_model(tmp_path, "segment")]
    line = _fails(capsys, ["segment", "--file", str(tmp_path / "none.txt"), *model])
    assert "cannot read --file" in line and "none.txt" in line
    line = _fails(capsys, ["segment", "--file", str(tmp_path), *model])
    assert "is a directory" in line


def test_invalid_utf8_names_its_line_and_is_never_echoed(tmp_path, capsys, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_bytes("好的\n".encode() + b"\xff\xfe bad\n")
    model = ["--model", _fake_model(tmp_path, "segment")]
    line = _fails(capsys, ["segment", "--file", str(path), *model])
    assert "line 2 is not valid UTF-8" in line
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xc3(\n")))
    assert "standard input: line 2 is not valid UTF-8" in _fails(capsys, ["segment", "--file", "-", *model])
    among = tmp_path / "among.txt"
    among.write_bytes(b"\x80\n")
    assert "--among" in _fails(capsys, ["similar-sentence", "q", "--among", str(among), "--model",
                                        _fake_model(tmp_path, "similar-sentence")])


def test_a_damaged_model_is_not_reported_as_missing(tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.keras", "train_info.json", "vocab.json", "bigram_vocab.json"):
        (model / name).write_bytes(b"\x00garbage")
    line = _fails(capsys, ["sentiment", "--model", str(model), "好"])
    assert "cannot load the model" in line and "dvc repro train@sentiment" in line


def test_out_of_range_arguments_and_a_directory_out(tmp_path, capsys):
    assert "-k must be >= 1" in _fails(capsys, ["similar", "北京", "-k", "-3"])
    line = _fails(capsys, ["generate", "vae", "--out", str(tmp_path)])  # checked before the model
    assert "must name a .png file" in line
    line = _fails(capsys, ["generate", "vae", "--out", str(tmp_path / "no" / "g.png")])
    assert "does not exist" in line


def test_a_decompression_bomb_picture_is_refused(tmp_path, capsys):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("L", (6000, 6000)).save(path)  # 36M pixels, a few kB on disk
    model = ["--model", _fake_model(tmp_path, "classify")]
    assert "more than 25,000,000 pixels" in _fails(capsys, ["classify", str(path), *model])
    assert "is a directory" in _fails(capsys, ["classify", str(tmp_path), *model])


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


def _cli(*argv, cwd=None):
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-c", "import sys\nfrom kexue.cli import main\n"
                           "code = main(sys.argv[1:])\n"
                           "print('tensorflow imported' if 'tensorflow' in sys.modules else 'no tensorflow', "
                           "file=sys.stderr)\nsys.exit(code)", *argv],
                          capture_output=True, text=True, env=env, cwd=cwd)


@pytest.mark.parametrize("argv", [["sentiment", "好"], ["classify", "x.png"], ["image", "x.png"],
                                  ["title", "一段话"], ["generate", "gan", "--out", "g.png"],
                                  ["similar", "北京"]])
def test_a_missing_model_is_one_line_before_tensorflow_is_imported(tmp_path, argv):
    (tmp_path / "x.png").write_bytes(b"")
    result = _cli(*argv, "--model", str(tmp_path / "none"), cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    message, marker = result.stderr.strip().splitlines()
    assert "train" in message and "dvc repro" in message and str(tmp_path / "none") in message
    assert marker == "no tensorflow"


def test_a_model_folder_without_its_files_names_the_missing_file(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    line = _fails(capsys, ["ner", "北京", "--model", str(tmp_path / "m")])
    assert "model.keras not found" in line and "train@ner" in line
    (tmp_path / "center").mkdir()
    assert "train_center" in _fails(capsys, ["classify", "x.png", "--model", str(tmp_path / "center")])


def test_every_verb_has_examples_and_the_family_aliases_work(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, __import__("argparse")._SubParsersAction))
    for name in cli.EXAMPLES:
        help_text = sub.choices[name].format_help()
        assert "examples:" in help_text and f"kexue {name}" in help_text
    assert {"image", "headline", "seq2seq", "similarity", "word-vectors"} <= set(sub.choices)
    assert parser.parse_args(["image", "a.png"]).name == "classify"


def test_a_served_model_prints_no_tensorflow_log_lines(tmp_path):
    """A real (tiny, untrained) classifier answers with JSON on stdout and nothing on stderr but
    this test's own marker; --verbose lets TensorFlow speak."""
    import numpy as np
    from PIL import Image

    from kexue.config import load_section
    from kexue.families import image
    from kexue.io import write_json

    cfg = load_section("image", image.Config)
    import dataclasses

    cfg = dataclasses.replace(cfg, width=2, blocks=1, precision="float32")
    image.build_model(cfg).save(tmp_path / "model.keras")
    write_json(tmp_path / "train_info.json", {"classes": list(image.CLASSES),
                                              "config": dataclasses.asdict(cfg)})
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    result = _cli("classify", str(tmp_path / "x.png"), "--model", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["image"] == str(tmp_path / "x.png")
    assert result.stderr.strip().splitlines() == ["tensorflow imported"]
