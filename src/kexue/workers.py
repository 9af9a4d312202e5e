"""Which worker of a multi-worker run (``fit.distribute: multi_worker``) this process is, and
where its writes go.

Every worker of a ``MultiWorkerMirroredStrategy`` run executes the same program, so every one
of them reaches the code that writes the model, the checkpoint units and the DVCLive output.
Only the chief writes them where they belong; the others write to a temporary folder that is
removed afterwards (the pattern of TensorFlow's multi-worker Keras tutorial: saving may read
distributed variables, so every worker takes part in it, but only one copy is kept).

The chief is the task of type ``chief`` in ``TF_CONFIG``, or worker 0 when the cluster has no
``chief`` entry (TensorFlow's own rule). Without a multi-worker strategy every process is its
own chief.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_multi_worker = False  # set by kexue.train.make_strategy("multi_worker") in this process


def joined() -> None:
    """Record that this process is a worker of a multi-worker run (``make_strategy`` calls it)."""
    global _multi_worker
    _multi_worker = True


def task() -> tuple[str, int] | None:
    """``(type, index)`` of this process's task in ``TF_CONFIG``, or None without one."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    spec = json.loads(raw).get("task") or {}
    return spec.get("type", "worker"), int(spec.get("index", 0))


def is_chief(distribute: str | None = None) -> bool:
    """Whether this process writes the run's outputs: always, unless it is a non-chief task of
    a multi-worker run (``distribute == "multi_worker"``, or with ``distribute`` None, a
    multi-worker strategy made in this process)."""
    multi = _multi_worker if distribute is None else distribute == "multi_worker"
    found = task()
    if not multi or found is None:
        return True
    kind, index = found
    cluster = json.loads(os.environ["TF_CONFIG"]).get("cluster") or {}
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def scratch() -> Path:
    """A fresh temporary folder for a non-chief worker's writes (its caller removes it)."""
    kind, index = task() or ("worker", 0)
    return Path(tempfile.mkdtemp(prefix=f"kexue-{kind}{index}-"))


@contextmanager
def chief_path(path: str | os.PathLike | None, distribute: str | None = None
               ) -> Iterator[Path | None]:
    """``path`` on the chief; elsewhere a temporary folder standing in for it, removed when the
    block ends (None stays None)."""
    if path is None or is_chief(distribute):
        yield None if path is None else Path(path)
        return
    tmp = scratch()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
