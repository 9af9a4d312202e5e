"""Run pipeline stages in one Python process: ``python tests/stage_runner.py REPO STAGE...``.

Each named stage and every stage upstream of it runs once, dependencies first, by calling its
``python -m kexue.stages.<module> ARGS`` command in this process (``runpy``) instead of a new
interpreter: TensorFlow is imported once instead of once per stage, which is most of a tiny stage's
time. Between stages the process is put back to a fresh one's state as far as the stages can tell
(Keras session, dtype policy, random seeds are set by each stage itself). Used by the end-to-end
test's determinism check, whose twin copy must give the metrics the `dvc repro` copy gives: a
stage leaking state into the next would show there as a difference.
"""

from __future__ import annotations

import gc
import os
import runpy
import shlex
import sys
import time
from pathlib import Path


def stage_order(repo: Path, targets: list[str]) -> list[tuple[str, str]]:
    """``[(stage, cmd)]`` for ``targets`` and everything upstream of them, dependencies first
    (DVC's own graph of the repo)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(os.fspath(repo)) as dvc_repo:
        graph = dvc_repo.index.graph  # edges point from a stage to the stages it depends on
        by_name = {stage.addressing: stage for stage in graph.nodes}
        order, seen = [], set()
        for target in targets:
            for stage in nx.dfs_postorder_nodes(graph, by_name[target]):
                if stage.addressing not in seen and stage.cmd:
                    seen.add(stage.addressing)
                    order.append((stage.addressing, stage.cmd))
    return order


def _fresh_state() -> None:
    """What a new interpreter would not carry over from the previous stage."""
    if "keras" in sys.modules:
        import keras

        keras.backend.clear_session()
        keras.config.set_dtype_policy("float32")
    if "tensorflow" in sys.modules:
        # a stage with fit.deterministic turns TensorFlow's op determinism on for the process, and
        # Keras then leaves XLA off: the next stage would not run as it does on its own
        from tensorflow.python.framework import config as tf_config

        if tf_config.is_op_determinism_enabled():
            tf_config.disable_op_determinism()
    gc.collect()


def run_stage(name: str, cmd: str) -> None:
    argv = shlex.split(cmd)
    if argv[:2] != ["python", "-m"] or len(argv) < 3:
        raise SystemExit(f"stage_runner: {name}: expected `python -m MODULE ...`, got {cmd!r}")
    module, args = argv[2], argv[3:]
    saved = sys.argv
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise SystemExit(f"stage_runner: {name} exited {exit_.code}") from None
    finally:
        sys.argv = saved
        _fresh_state()


def main(argv: list[str]) -> int:
    repo, targets = Path(argv[0]).resolve(), argv[1:]
    os.chdir(repo)
    for name, cmd in stage_order(repo, targets):
        print(f"Running stage '{name}':", flush=True)
        start = time.perf_counter()
        run_stage(name, cmd)
        print(f"stage_runner: {name} done in {time.perf_counter() - start:.1f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
