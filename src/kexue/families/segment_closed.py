"""Word segmentation on the SIGHAN closed track: the training lines are the only resource.

The ``segment`` network (:mod:`kexue.families.segment`) with ``segment_closed.dictionary: none``
(no jieba word list as a feature), reported beside the open-track default, and the closed-track
peers: CRFsuite over character-window features (:mod:`kexue.peers.crfsuite`, c1 and c2 chosen on
valid) and forward maximum matching with the training vocabulary. jieba brings its own dictionary
and belongs to the open track. Every system also gives per-line word counts, so the evaluation
can compare kexue with the strongest peer by a paired bootstrap (:mod:`kexue.comparison`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kexue.config import ConfigError
from kexue.corpora.people_daily import bmes_tags, load_rows, segmentation_scores, words_from_bmes
from kexue.families import segment
from kexue.families.segment import Config, max_match
from kexue.spans import word_counts

__all__ = ["BaselineConfig", "Config", "baselines", "evaluate", "train"]
_SPACE = re.compile(r"\s+")


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


@dataclass(frozen=True)
class BaselineConfig:
    crfsuite_c1: list[float]  # L1 penalties tried (CRFsuite, L-BFGS); the best on valid word F1 is kept
    crfsuite_c2: list[float]  # L2 penalties tried, crossed with crfsuite_c1
    crfsuite_max_iterations: int = field(metadata={"min": 1})  # L-BFGS iterations per fit; 0 = no CRFsuite peer
    max_match_longest: int = field(metadata={"min": 0})  # longest word tried by maximum matching (0 = off)


def _cut_runs(tag_runs: Callable[[list[str]], list[list[str]]], texts: Sequence[str]) -> list[list[str]]:
    """Words of each text from a tagger of whitespace-free runs (whitespace separates words)."""
    runs = [[run for run in _SPACE.split(text) if run] for text in texts]
    tagged = iter(tag_runs([run for text_runs in runs for run in text_runs]))
    return [[w for run in text_runs for w in words_from_bmes(run, next(tagged))] for text_runs in runs]


def baselines(cfg: BaselineConfig, data_dir: str | Path, network: Config | None = None) -> dict:
    """The closed-track peers on the same lines: SIGHAN scores, characters per second, and the
    per-line word counts for the comparison."""
    from kexue.peers import crfsuite

    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    vocab = {w for r in train_rows for w in r["words"]}
    splits = {s: load_rows(data_dir, s) for s in ("valid", "test")}
    peers: dict = {}

    def score(name: str, cut, extra: dict | None = None) -> None:
        peers[name] = {"items": {}}
        for split, rows in splits.items():
            texts = [r["text"] for r in rows]
            start = time.perf_counter()
            words = cut(texts)
            seconds = time.perf_counter() - start
            gold = [r["words"] for r in rows]
            peers[name][split] = segmentation_scores(gold, words, vocab)
            peers[name]["items"][split] = word_counts(gold, words)
            if split == "test":
                peers[name]["chars_per_second"] = round(sum(map(len, texts)) / seconds, 1)
        peers[name].update(extra or {})

    if cfg.crfsuite_max_iterations and cfg.crfsuite_c1 and cfg.crfsuite_c2:
        def labelled(rows):
            return ["".join(r["words"]) for r in rows], [bmes_tags(r["words"]) for r in rows]

        start = time.perf_counter()
        model, chosen = crfsuite.tune(labelled(train_rows), labelled(splits["valid"]),
                                      cfg.crfsuite_c1, cfg.crfsuite_c2, cfg.crfsuite_max_iterations,
                                      segment.word_f1)
        tuning_seconds = round(time.perf_counter() - start, 1)
        score("crfsuite", lambda texts: _cut_runs(lambda runs: crfsuite.predict(model, runs), texts),
              {"chosen": chosen, "tuning_seconds": tuning_seconds})
    if cfg.max_match_longest:
        score("max_match", lambda texts: [max_match(t, vocab, cfg.max_match_longest) for t in texts])
    return peers
