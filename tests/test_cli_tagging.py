"""`kexue segment` and `kexue ner` on tiny real models trained once per module."""

import io
import json
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import tiny_tagger_config

from kexue import cli
from kexue.config import parse
from kexue.families import ner, segment
from kexue.io import write_jsonl

ROOT = Path(__file__).resolve().parents[1]

CFG = tiny_tagger_config(maxlen=32, layers=1, epochs=30)

SENTENCES = [
    (["我们", "在", "北京", "工作"], [[3, 5, "LOC"]]),
    (["张", "三", "去", "上海"], [[0, 2, "PER"], [3, 5, "LOC"]]),
    (["新华社", "记者", "报道"], [[0, 3, "ORG"]]),
    (["他们", "喜欢", "看书"], []),
]
TEXTS = ["".join(words) for words, _ in SENTENCES]


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pd")
    for split, repeat in (("train", 10), ("valid", 2)):
        rows = [{"line": i, "text": "".join(w), "words": w, "pos": ["x"] * len(w), "entities": e}
                for i, (w, e) in enumerate(SENTENCES * repeat)]
        write_jsonl(root / f"{split}.jsonl", rows)
    return root


@pytest.fixture(scope="module")
def segment_model(toy_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seg") / "model"
    segment.train(parse(segment.Config, CFG, "segment"), toy_data, out, None, None)
    return out


@pytest.fixture(scope="module")
def ner_model(toy_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ner") / "model"
    ner.train(parse(ner.Config, CFG, "ner"), toy_data, out, None, None)
    return out


def _lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_segment_one_text_gives_its_training_words(segment_model, capsys):
    assert cli.main(["segment", "--model", str(segment_model), TEXTS[0]]) == 0
    out = _lines(capsys)
    assert out == [{"text": TEXTS[0], "words": SENTENCES[0][0]}]
    assert "".join(out[0]["words"]) == out[0]["text"]


def test_segment_several_texts_keep_input_order(segment_model, capsys):
    texts = [TEXTS[2], TEXTS[0], TEXTS[3], TEXTS[1]]
    assert cli.main(["segment", "--model", str(segment_model), *texts]) == 0
    out = _lines(capsys)
    assert [o["text"] for o in out] == texts
    assert [o["words"] for o in out] == [SENTENCES[i][0] for i in (2, 0, 3, 1)]


def test_segment_reads_lines_of_a_file(segment_model, tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    assert cli.main(["segment", "--model", str(segment_model), "--file", str(path)]) == 0
    out = _lines(capsys)
    assert [o["text"] for o in out] == TEXTS
    assert [o["words"] for o in out] == [w for w, _ in SENTENCES]


def test_segment_reads_stdin(segment_model, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{TEXTS[1]}\n{TEXTS[0]}\n"))
    assert cli.main(["segment", "--model", str(segment_model)]) == 0
    out = _lines(capsys)
    assert out == [{"text": TEXTS[1], "words": SENTENCES[1][0]},
                   {"text": TEXTS[0], "words": SENTENCES[0][0]}]


def test_ner_gives_entities_with_text_type_and_offsets(ner_model, capsys):
    assert cli.main(["ner", "--model", str(ner_model), TEXTS[1], TEXTS[3]]) == 0
    out = _lines(capsys)
    assert out == [
        {"text": "张三去上海", "entities": [{"text": "张三", "type": "PER", "start": 0, "end": 2},
                                       {"text": "上海", "type": "LOC", "start": 3, "end": 5}]},
        {"text": "他们喜欢看书", "entities": []},
    ]


def test_ner_reads_file_and_stdin(ner_model, tmp_path, monkeypatch, capsys):
    path = tmp_path / "in.txt"
    path.write_text(f"{TEXTS[0]}\n{TEXTS[2]}\n", encoding="utf-8")
    assert cli.main(["ner", "--model", str(ner_model), "--file", str(path)]) == 0
    from_file = _lines(capsys)
    assert [o["text"] for o in from_file] == [TEXTS[0], TEXTS[2]]
    assert from_file[0]["entities"] == [{"text": "北京", "type": "LOC", "start": 3, "end": 5}]
    assert from_file[1]["entities"] == [{"text": "新华社", "type": "ORG", "start": 0, "end": 3}]
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{TEXTS[0]}\n{TEXTS[2]}\n"))
    assert cli.main(["ner", "--model", str(ner_model)]) == 0
    assert _lines(capsys) == from_file


@pytest.mark.parametrize("command", ["segment", "ner"])
def test_missing_model_is_a_clear_error(command, tmp_path, capsys):
    assert cli.main([command, "--model", str(tmp_path / "nope"), "张三"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"kexue {command}: ")
    assert "not found" in captured.err
    assert f"dvc repro train@{command}" in captured.err


def test_console_script_points_to_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["kexue"] == "kexue.cli:main"
    assert callable(cli.main)
