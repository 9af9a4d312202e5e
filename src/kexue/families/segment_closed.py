"""Word segmentation on the SIGHAN closed track: the training lines are the only resource.

The ``segment`` network (:mod:`kexue.families.segment`) with ``segment_closed.dictionary: none``
(no jieba word list as a feature), reported beside the open-track default, and the closed-track
peers: CRFsuite over character-window features (:mod:`kexue.peers.crfsuite`, c1 and c2 chosen on
valid) and forward maximum matching with the training vocabulary. jieba brings its own dictionary
and belongs to the open track. The peers are in :mod:`kexue.peers.segment_closed`. Every system
also gives per-line word counts, so the evaluation can compare kexue with the strongest peer by a
paired bootstrap (:mod:`kexue.comparison`).
"""

from __future__ import annotations

from pathlib import Path

from kexue.config import ConfigError
from kexue.families import segment
from kexue.families.segment import Config

__all__ = ["Config", "evaluate", "train"]


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None) -> dict:
    if cfg.dictionary != "none":
        raise ConfigError(f"params.yaml: segment_closed.dictionary = {cfg.dictionary!r}: the closed "
                          "track uses no external word list; set it to none")
    return segment.train(cfg, data_dir, model_dir, live_dir, resume_root, family="segment_closed")


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """The segment family's scores, speeds and per-line word counts, and the track."""
    metrics, confusion = segment.evaluate(model_dir, data_dir)
    return {**metrics, "track": "closed"}, confusion
