"""The closed-track segmentation peers (stage ``baselines@segment_closed``): CRFsuite over
character-window features (c1 and c2 chosen on valid) and forward maximum matching with the
training vocabulary; the training lines are their only resource. Each reports SIGHAN scores,
characters per second and per-line word counts. No Keras here: no peer retrains the network."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kexue.corpora.people_daily import bmes_tags, load_rows, words_from_bmes
from kexue.peers import crfsuite
from kexue.peers.dictionary import max_match
from kexue.peers.segmentation import score_segmenter
from kexue.spans import word_f1

__all__ = ["BaselineConfig", "baselines"]
_SPACE = re.compile(r"\s+")


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


def baselines(cfg: BaselineConfig, data_dir: str | Path) -> dict:
    """The closed-track peers on the same lines: SIGHAN scores, characters per second, and the
    per-line word counts for the comparison."""
    data_dir = Path(data_dir)
    train_rows = load_rows(data_dir, "train")
    vocab = {w for r in train_rows for w in r["words"]}
    splits = {s: load_rows(data_dir, s) for s in ("valid", "test")}
    peers: dict = {}

    def score(name: str, cut, extra: dict | None = None) -> None:
        peers[name] = {**score_segmenter(cut, splits, vocab), **(extra or {})}

    if cfg.crfsuite_max_iterations and cfg.crfsuite_c1 and cfg.crfsuite_c2:
        def labelled(rows):
            return ["".join(r["words"]) for r in rows], [bmes_tags(r["words"]) for r in rows]

        start = time.perf_counter()
        model, chosen = crfsuite.tune(labelled(train_rows), labelled(splits["valid"]),
                                      cfg.crfsuite_c1, cfg.crfsuite_c2, cfg.crfsuite_max_iterations,
                                      word_f1)
        tuning_seconds = round(time.perf_counter() - start, 1)
        score("crfsuite", lambda texts: _cut_runs(lambda runs: crfsuite.predict(model, runs), texts),
              {"chosen": chosen, "tuning_seconds": tuning_seconds})
    if cfg.max_match_longest:
        score("max_match", lambda texts: [max_match(t, vocab, cfg.max_match_longest) for t in texts])
    return peers
