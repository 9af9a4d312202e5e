import os

import pytest

from kexue.io import (
    atomic_dir,
    atomic_path,
    atomic_write,
    read_json,
    read_jsonl,
    require_files,
    write_json,
    write_jsonl,
)


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write('{"half": ')
        raise RuntimeError("interrupted")
    assert read_json(target) == {"a": 1}  # the old content survives
    assert _leftovers(tmp_path) == ["out.json"]  # and no temp file is left behind


def test_atomic_write_new_file_absent_after_failure(tmp_path):
    target = tmp_path / "sub" / "new.jsonl"

    def rows():
        yield {"x": 1}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_jsonl(target, rows())
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_jsonl_round_trip_keeps_unicode(tmp_path):
    rows = [{"text": "质量还不错", "label": 1}, {"text": "很后悔", "label": 0}]
    assert write_jsonl(tmp_path / "a.jsonl", rows) == 2
    assert read_jsonl(tmp_path / "a.jsonl") == rows
    assert "质量" in (tmp_path / "a.jsonl").read_text(encoding="utf-8")


def test_atomic_dir_swaps_whole_directory(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(ValueError), atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("2")
        raise ValueError
    assert _leftovers(target) == ["a.txt"]
    assert _leftovers(tmp_path) == ["d"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert _leftovers(target) == ["c.txt"]
    assert _leftovers(tmp_path) == ["d"]


def test_atomic_path_keeps_suffix_and_cleans_up(tmp_path):
    target = tmp_path / "model.keras"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".keras" and tmp.parent == tmp_path
        tmp.write_bytes(b"ok")
    assert target.read_bytes() == b"ok"
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")
    assert target.read_bytes() == b"ok"
    assert _leftovers(tmp_path) == ["model.keras"]
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_require_files_names_the_missing_file_and_the_stage(tmp_path):
    (tmp_path / "model.keras").write_text("x")
    assert require_files(tmp_path, ["model.keras"], "train@cloze") == tmp_path
    with pytest.raises(FileNotFoundError, match=r"vocab\.json not found.*dvc repro train@cloze"):
        require_files(tmp_path, ["model.keras", "vocab.json"], "train@cloze")
