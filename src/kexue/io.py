"""Atomic writes, JSON/JSONL helpers and checksums.

Every file a stage writes goes through here: content lands in a temporary file in the target's
directory and is renamed over the target only when complete, so an interrupted stage never leaves
a half-written output behind (``os.replace`` is atomic on POSIX within one filesystem).

Temporary names are hidden and carry the writer's process id: ``.<name>.<pid>.<random>.tmp``
(files and folders) and ``.<stem>.tmp.<pid>.<random><suffix>`` (:func:`atomic_path`, which keeps
the suffix). An exception removes them at once. A process killed outright (SIGKILL, or SIGTERM,
which runs no cleanup) leaves one behind: the project's ``.gitignore`` covers these names, so it
can never be committed from a git-tracked folder such as ``metrics/`` or ``plots/``, and the next
write of the same target deletes the leftovers of writers that are no longer running.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _sweep(parent: Path, prefix: str, suffix: str) -> None:
    """Delete ``parent/<prefix><pid>.<random><suffix>`` left by a writer that was killed (its
    process is gone); a live writer's temporary (another process, or this one) is kept."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.[A-Za-z0-9_]+" + re.escape(suffix) + "$")
    try:
        names = os.listdir(parent)
    except FileNotFoundError:
        return
    for name in names:
        match = pattern.match(name)
        if match and not _alive(int(match.group(1))):
            _remove(parent / name)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8",
                 fsync: bool = True) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it to ``path``, on error delete it.

    ``fsync=False`` skips flushing the content to disk before the rename: the file is still
    whole or absent after a killed process, but not necessarily after a power cut (for files
    that are rewritten often and can be rebuilt, e.g. training curves)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    _sweep(path.parent, prefix, ".tmp")
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that wants a file name (e.g. Keras
    ``model.save``); rename it to ``path`` on success, delete it on error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.stem}.tmp."
    _sweep(path.parent, prefix, path.suffix)
    # keep the suffix: Keras checks that a model file ends in ".keras"
    fd, tmp = tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        _remove(Path(tmp))
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; on success it replaces ``path`` whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    _sweep(path.parent, prefix, ".tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
    with atomic_write(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=indent, sort_keys=False)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False))
            handle.write("\n")
            count += 1
    return count


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


class CorruptFileError(ValueError):
    """An input file's bytes are damaged: not valid UTF-8, cut short, or not parseable."""


def utf8_error(path: str | os.PathLike, data: bytes, err: UnicodeDecodeError) -> str:
    """Where ``err`` (from decoding ``data``, the bytes of ``path``) is, for a person: the
    1-based line and byte column of the first bad byte, the bytes, and why they are not UTF-8."""
    line = data.count(b"\n", 0, err.start) + 1
    column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
    bad = data[err.start:err.end]
    if err.end >= len(data) and err.reason == "unexpected end of data":
        why = "the file ends inside a character, so it was cut short"
    else:
        why = err.reason
    return f"{path}: line {line}, byte {column}: {bad!r} is not valid UTF-8 ({why})"


def read_utf8(path: str | os.PathLike, fix: str = "") -> str:
    """The text of ``path``; bytes that are not UTF-8 raise :class:`CorruptFileError` naming the
    file, the line and the byte column (not a bare ``UnicodeDecodeError``), then ``fix``."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptFileError(utf8_error(path, data, err) + (f": {fix}" if fix else "")) from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def require_files(folder: str | os.PathLike, names: Iterable[str], stage: str) -> Path:
    """``folder`` if every file ``names`` is in it; else FileNotFoundError naming the first
    missing file and the DVC stage that writes it (``dvc repro <stage>``)."""
    folder = Path(folder)
    for name in names:
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: train the model first "
                                    f"(`dvc repro {stage}`)")
    return folder
