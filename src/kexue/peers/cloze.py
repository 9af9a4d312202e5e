"""The cloze peers (stage ``baselines@cloze``), on the reader's valid and test samples with the
same candidates (the document nouns of prepare_cloze's answer tags):

- ``most_frequent_noun`` (and ``_not_in_query``): the candidate seen most often in the document;
- ``random_noun``: a uniform draw among the candidates (its expected accuracy reported too);
- ``context_match``: the candidate whose document occurrences are surrounded by the words around
  the blank, its window, decay, aggregation, frequency weight and IDF chosen on valid.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kexue.corpora.cloze import BLANK, ClozeSample, candidate_keys, load_meta, load_samples
from kexue.io import read_jsonl


def most_frequent(sample: ClozeSample, answer_tags: Sequence[str], exclude_query: bool = False) -> str:
    """The document noun (word with an occurrence under ``answer_tags``) seen most often in the
    document, ties to the earliest; ``exclude_query`` skips words the query shows (the answer
    never is one: it occurs once in its sentence and is blanked)."""
    keys = candidate_keys(sample.document, sample.document_tags, answer_tags)
    counts = Counter(k for k in keys if k)
    words = {k: w for w, k in zip(sample.document, keys, strict=True) if k}
    shown = set(sample.query) if exclude_query else set()
    allowed = [k for k in counts if words[k] not in shown] or list(counts)
    return words[max(allowed, key=lambda k: (counts[k], -k))]


def random_noun(sample: ClozeSample, answer_tags: Sequence[str], rng: np.random.Generator
                ) -> tuple[str, float]:
    """A document noun drawn uniformly, and 1 / (number of document nouns) — the chance it is
    right."""
    keys = candidate_keys(sample.document, sample.document_tags, answer_tags)
    words = list(dict.fromkeys(w for w, k in zip(sample.document, keys, strict=True) if k))
    return words[int(rng.integers(len(words)))], 1.0 / len(words)


def inverse_document_frequency(articles: Sequence[Sequence[str]]) -> Callable[[str], float]:
    """Smoothed IDF over training articles (each a list of its words): ``ln((1 + N) / (1 +
    df(w))) + 1``, so a word no training article holds weighs most and none weighs 0."""
    df = Counter(w for words in articles for w in set(words))
    n = len(articles)
    return lambda w: float(np.log((1 + n) / (1 + df.get(w, 0))) + 1.0)


@dataclass(frozen=True)
class ContextMatchGrid:
    """The settings the context-match peer tries; valid accuracy picks one (test is scored once
    with it). Every combination is tried."""

    windows: list[int]  # k: the query words within ±k of the blank, looked for within ±k of each occurrence
    decays: list[float]  # a match d positions away (the farther of the two sides) weighs decay^(d - 1)
    aggregates: list[Literal["max", "sum"]]  # a candidate's match: its best occurrence, or all summed
    frequency_weights: list[float]  # added: this times the candidate's count in the document
    idf: list[bool]  # a matched word weighs its IDF over the training articles (else 1)
    exclude_query: list[bool]  # skip candidates the query shows (the answer never is one)


@dataclass(frozen=True)
class ContextSetting:
    window: int
    decay: float
    aggregate: str
    frequency_weight: float
    idf: bool
    exclude_query: bool


def grid_settings(grid: ContextMatchGrid) -> list[ContextSetting]:
    """Every combination of the grid, in its declared order (ties on valid go to the first)."""
    lists = (grid.windows, grid.decays, grid.aggregates, grid.frequency_weights, grid.idf,
             grid.exclude_query)
    names = ("windows", "decays", "aggregates", "frequency_weights", "idf", "exclude_query")
    for name, values in zip(names, lists, strict=True):
        if not values:
            raise ValueError(f"baselines.cloze.context_match.{name} is empty: list at least one value")
    if min(grid.windows) < 1:
        raise ValueError(f"baselines.cloze.context_match.windows = {grid.windows}: windows are >= 1")
    if not all(0 < d <= 1 for d in grid.decays):
        raise ValueError(f"baselines.cloze.context_match.decays = {grid.decays}: decays are in (0, 1]")
    return [ContextSetting(*values) for values in itertools.product(*lists)]


@dataclass
class ContextTable:
    """What the context-match peer needs of one sample: the candidate words (key order), their
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


def context_choices(table: ContextTable, settings: Sequence[ContextSetting]) -> list[str]:
    """The word each setting picks: the candidate with the highest match (the summed weights of
    the query words within ±k of the blank found within ±k of an occurrence — IDF or 1, times
    decay^(d - 1) for the farther distance d of the two — over its best occurrence or all of
    them) plus ``frequency_weight`` × its count; ties to the more frequent, then the earlier
    candidate."""
    n = len(table.words)
    order = np.arange(n)
    out = []
    cache: dict[tuple, np.ndarray] = {}
    for s in settings:
        key = (s.window, s.decay, s.idf, s.aggregate)
        if key not in cache:
            farther = np.maximum(table.query_distance[None, :], table.distance)  # (occurrences, words)
            weights = table.idf if s.idf else np.ones_like(table.idf)
            per_pair = np.where(farther <= s.window, s.decay ** (farther - 1.0), 0.0)
            per_occurrence = per_pair @ weights  # (occurrences,)
            match = np.zeros(n)
            if s.aggregate == "max":
                np.maximum.at(match, table.owner, per_occurrence)
            else:
                match = np.bincount(table.owner, per_occurrence, minlength=n).astype(np.float64)
            cache[key] = match
        score = np.round(cache[key] + s.frequency_weight * table.counts, 9)
        allowed = ~table.shown if s.exclude_query and not table.shown.all() else np.ones(n, bool)
        ranked = np.lexsort((-order, table.counts, np.where(allowed, score, -np.inf)))
        out.append(table.words[ranked[-1]])
    return out


def context_match(grid: ContextMatchGrid, answer_tags: Sequence[str],
                  splits: dict[str, Sequence[ClozeSample]], idf: Callable[[str], float]) -> dict:
    """The context-match peer: every grid setting scored on ``splits["valid"]``, the best (the
    first of equals) kept and scored once on ``splits["test"]``. Per split its accuracy and
    per-sample hits (``items``); the chosen setting, and per option value the best valid
    accuracy of the settings that have it."""
    settings = grid_settings(grid)
    window = max(grid.windows)
    valid = splits["valid"]
    picks = [context_choices(context_table(x, answer_tags, window, idf), settings) for x in valid]
    hits = np.array([[w == x.answer for w in row] for row, x in zip(picks, valid, strict=True)])
    accuracy = hits.mean(axis=0)  # (settings,)
    best = int(np.argmax(accuracy))
    chosen = settings[best]
    result: dict = {"items": {"valid": hits[:, best].astype(int).tolist()},
                    "chosen": dataclasses.asdict(chosen), "settings_tried": len(settings)}
    result["valid"] = {"accuracy": round(float(accuracy[best]), 4), "samples": len(valid)}
    test = splits["test"]
    test_hits = [context_choices(context_table(x, answer_tags, chosen.window, idf), [chosen])[0]
                 == x.answer for x in test]
    result["test"] = {"accuracy": round(float(np.mean(test_hits)), 4), "samples": len(test)}
    result["items"]["test"] = [int(h) for h in test_hits]
    by_option: dict = {}
    for field_name in ("window", "decay", "aggregate", "frequency_weight", "idf", "exclude_query"):
        values: dict = {}
        for s, a in zip(settings, accuracy, strict=True):
            label = str(getattr(s, field_name)).lower()
            values[label] = max(values.get(label, 0.0), round(float(a), 4))
        by_option[field_name] = values
    result["valid_best_by_option"] = by_option
    return result


def training_articles(data_dir: str | Path) -> list[list[str]]:
    """The words of each training article (for the IDF of the context-match peer)."""
    path = Path(data_dir) / "train.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_cloze`")
    return [[w for sentence in row["words"] for w in sentence] for row in read_jsonl(path)]


PEERS = ("most_frequent_noun", "most_frequent_noun_not_in_query", "random_noun", "context_match")


@dataclass(frozen=True)
class BaselineConfig:
    peers: list[Literal["most_frequent_noun", "most_frequent_noun_not_in_query", "random_noun",
                        "context_match"]]
    seed: int  # seeds the random peer (one stream per split)
    context_match: ContextMatchGrid  # the context-match peer's settings, picked on valid


def baselines(cfg: BaselineConfig, data_dir: str | Path) -> dict:
    """The peers' accuracy and per-sample hits on the model's valid and test samples (candidates:
    the document nouns of prepare_cloze's answer tags, as the reader's)."""
    if not cfg.peers:
        raise ValueError(f"baselines.cloze.peers is empty: list at least one of {', '.join(PEERS)}")
    tags = load_meta(data_dir)["answer_tags"]
    splits = {split: load_samples(data_dir, split) for split in ("test", "valid")}
    peers: dict = {}
    for name in cfg.peers:
        if name == "context_match":
            start = time.perf_counter()
            idf = inverse_document_frequency(training_articles(data_dir))
            peers[name] = context_match(cfg.context_match, tags, splits, idf)
            peers[name]["seconds"] = round(time.perf_counter() - start, 1)
            continue
        result: dict = {"items": {}}  # right (1) or wrong (0) per sample, for the bootstrap
        for number, (split, items) in enumerate(splits.items()):
            if name == "random_noun":
                rng = np.random.default_rng([cfg.seed, number])
                draws = [random_noun(s, tags, rng) for s in items]
                hits = [w == s.answer for (w, _), s in zip(draws, items, strict=True)]
                result[split] = {
                    "accuracy": round(float(np.mean(hits)), 4),
                    "expected_accuracy": round(float(np.mean([p for _, p in draws])), 4),
                    "samples": len(items)}
            else:
                exclude = name == "most_frequent_noun_not_in_query"
                hits = [most_frequent(s, tags, exclude) == s.answer for s in items]
                result[split] = {"accuracy": round(float(np.mean(hits)), 4), "samples": len(items)}
            result["items"][split] = [int(h) for h in hits]
        peers[name] = result
    return peers


def __getattr__(name: str):
    # the reader's params schema, imported only when a stage asks for it (it loads Keras)
    if name == "NetworkConfig":
        from kexue.families.cloze import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
