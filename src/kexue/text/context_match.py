"""Context match: how well the words around a cloze's blank match the words around each
candidate's occurrences in the document — the lexical evidence a reader without a network would
try first. The cloze family's peer ranks candidates by it alone (:mod:`kexue.peers.cloze`, its
setting chosen on valid); the cloze reader adds it, weighted, to its own log-probabilities
(:mod:`kexue.families.cloze_evidence`).

A candidate's score: the query words within ±k of the blank found within ±k of one of its
occurrences, each weighing its IDF over the training articles (or 1) times decay^(d - 1) for the
farther distance d of the two sides, over its best occurrence or all of them summed, plus a
weight times its count in the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kexue.corpora.cloze import BLANK, ClozeSample, candidate_keys
from kexue.io import read_jsonl


@dataclass(frozen=True)
class ContextSetting:
    window: int  # k
    decay: float  # a match d positions away weighs decay^(d - 1)
    aggregate: Literal["max", "sum"]  # over the candidate's occurrences
    frequency_weight: float  # added: this times the candidate's count in the document
    idf: bool  # a matched word weighs its IDF (else 1)
    exclude_query: bool  # skip candidates the query shows (the answer never is one)


@dataclass(frozen=True)
class DocumentFrequency:
    """In how many of ``articles`` training articles each word occurs; :meth:`idf` is the
    smoothed ``ln((1 + N) / (1 + df(w))) + 1``, so a word no training article holds weighs most
    and none weighs 0."""

    articles: int
    counts: dict[str, int]

    @classmethod
    def of(cls, articles: Sequence[Sequence[str]]) -> DocumentFrequency:
        return cls(len(articles), dict(Counter(w for words in articles for w in set(words))))

    def idf(self, word: str) -> float:
        return float(np.log((1 + self.articles) / (1 + self.counts.get(word, 0))) + 1.0)


def inverse_document_frequency(articles: Sequence[Sequence[str]]) -> Callable[[str], float]:
    """:meth:`DocumentFrequency.idf` over ``articles`` (each a list of its words)."""
    return DocumentFrequency.of(articles).idf


@dataclass
class ContextTable:
    """What context match needs of one sample: the candidate words (key order), their
    counts in the document and whether the query shows them; per candidate occurrence its
    candidate index; per distinct query word near the blank its distance to the blank and its
    IDF; and per (occurrence, query word) the distance to the nearest other document position
    holding that word (``window + 1`` when none is within ``window``)."""

    words: list[str]
    counts: np.ndarray  # (candidates,)
    shown: np.ndarray  # (candidates,) bool
    owner: np.ndarray  # (occurrences,) candidate index
    query_distance: np.ndarray  # (query words,)
    idf: np.ndarray  # (query words,)
    distance: np.ndarray  # (occurrences, query words)


def context_table(sample: ClozeSample, answer_tags: Sequence[str], window: int,
                  idf: Callable[[str], float]) -> ContextTable:
    """:class:`ContextTable` of ``sample`` for windows up to ``window``."""
    keys = np.asarray(candidate_keys(sample.document, sample.document_tags, answer_tags))
    positions = np.flatnonzero(keys)  # candidate occurrences
    if not len(positions):
        raise ValueError(f"{sample.id}: the document has no candidate word (no word tagged "
                         f"{'/'.join(answer_tags)})")
    owner = keys[positions] - 1
    words = [""] * int(keys.max())
    for i in positions:
        words[keys[i] - 1] = sample.document[i]
    counts = np.bincount(owner, minlength=len(words))
    shown_words = set(sample.query)
    shown = np.array([w in shown_words for w in words], dtype=bool)
    query = list(sample.query)
    blank = query.index(BLANK)
    near: dict[str, int] = {}  # query word -> its distance to the blank (the nearest place)
    for d in range(1, window + 1):
        for j in (blank - d, blank + d):
            if 0 <= j < len(query) and query[j] != BLANK:
                near.setdefault(query[j], d)
    at: dict[str, list[int]] = {w: [] for w in near}
    for i, w in enumerate(sample.document):
        if w in at:
            at[w].append(i)
    distance = np.full((len(positions), len(near)), window + 1, dtype=np.int64)
    for column, w in enumerate(near):
        if at[w]:
            gaps = np.abs(positions[:, None] - np.asarray(at[w])[None, :])  # (occurrences, places)
            gaps[gaps == 0] = window + 1  # the occurrence itself is not its context
            distance[:, column] = np.minimum(gaps.min(axis=1), window + 1)
    return ContextTable(words, counts, shown, owner,
                        np.asarray(list(near.values()), dtype=np.int64),
                        np.asarray([idf(w) for w in near], dtype=np.float64), distance)


def match_scores(table: ContextTable, window: int, decay: float, idf: bool, aggregate: str
                 ) -> np.ndarray:
    """Per candidate, the summed weights of the query words within ±``window`` of the blank found
    within ±``window`` of an occurrence — IDF or 1, times decay^(d - 1) for the farther distance d
    of the two — over its best occurrence (``max``) or all of them (``sum``)."""
    n = len(table.words)
    farther = np.maximum(table.query_distance[None, :], table.distance)  # (occurrences, words)
    weights = table.idf if idf else np.ones_like(table.idf)
    per_pair = np.where(farther <= window, decay ** (farther - 1.0), 0.0)
    per_occurrence = per_pair @ weights  # (occurrences,)
    if aggregate == "max":
        match = np.zeros(n)
        np.maximum.at(match, table.owner, per_occurrence)
        return match
    return np.bincount(table.owner, per_occurrence, minlength=n).astype(np.float64)


def context_scores(table: ContextTable, setting: ContextSetting,
                   match: np.ndarray | None = None) -> np.ndarray:
    """Per candidate (key order) the score ``setting`` ranks by: its match (:func:`match_scores`,
    or ``match`` when the caller has it) plus ``frequency_weight`` × its count; ``-inf`` for the
    candidates the query shows when ``exclude_query`` (unless the query shows them all)."""
    if match is None:
        match = match_scores(table, setting.window, setting.decay, setting.idf, setting.aggregate)
    score = np.round(match + setting.frequency_weight * table.counts, 9)
    if setting.exclude_query and not table.shown.all():
        score = np.where(table.shown, -np.inf, score)
    return score


def training_articles(data_dir: str | Path) -> list[list[str]]:
    """The words of each training article (for the IDF of the context-match peer)."""
    path = Path(data_dir) / "train.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_cloze`")
    return [[w for sentence in row["words"] for w in sentence] for row in read_jsonl(path)]
