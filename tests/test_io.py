import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

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


# ---- a write killed outright ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from kexue.io import atomic_dir, atomic_path, atomic_write
kind, target, sig = sys.argv[1], sys.argv[2], getattr(signal, sys.argv[3])
print(os.getpid(), flush=True)
if kind == "write":
    with atomic_write(target) as handle:
        handle.write('{"half": ')
        handle.flush()
        os.kill(os.getpid(), sig)
elif kind == "path":
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        os.kill(os.getpid(), sig)
else:
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("partial")
        os.kill(os.getpid(), sig)
"""


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize(("kind", "target", "sig"), [
    ("write", "metrics/sentiment.json", "SIGKILL"),
    ("write", "metrics/sentiment.json", "SIGTERM"),  # the default handler runs no cleanup either
    ("path", "plots/confusion.png", "SIGKILL"),
    ("dir", "plots/sentiment/train", "SIGKILL"),
])
def test_a_killed_write_leaves_nothing_git_would_commit_and_the_next_write_cleans_up(
        tmp_path, kind, target, sig):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    (repo / "metrics").mkdir()
    (repo / "plots").mkdir()
    write_json(repo / "metrics" / "other.json", {"kept": True})
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, kind, target, sig], cwd=repo,
                          env=env, capture_output=True)
    assert proc.returncode == -getattr(signal, sig), proc.stderr.decode()[-2000:]
    folder = (repo / target).parent
    left = [p for p in folder.iterdir() if p.name.startswith(".")]
    pid = proc.stdout.decode().strip()
    assert len(left) == 1 and f".{pid}." in left[0].name, left  # the kill left a temporary
    assert not (repo / target).exists()
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""  # nothing to commit
    _git(repo, "add", "-A")
    assert _git(repo, "diff", "--cached", "--name-only") == ""
    # the rerun writes the target and removes the dead writer's temporary
    if kind == "write":
        write_json(repo / target, {"done": True})
    elif kind == "path":
        with atomic_path(repo / target) as tmp:
            tmp.write_bytes(b"png")
    else:
        with atomic_dir(repo / target) as tmp:
            (tmp / "a.txt").write_text("done")
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


def test_a_live_writers_temporary_is_kept(tmp_path):
    """Only leftovers of writers that are gone are removed, never a concurrent writer's."""
    live = tmp_path / f".out.json.{os.getpid()}.abc123.tmp"
    live.write_text("in progress")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    gone = tmp_path / f".out.json.{dead.stdout.strip()}.xyz789.tmp"
    gone.write_text("left by a kill")
    other = tmp_path / ".out.json.old-style.tmp"  # not this module's pattern: left alone
    other.write_text("x")
    write_json(tmp_path / "out.json", {"a": 1})
    assert live.exists() and other.exists() and not gone.exists()
