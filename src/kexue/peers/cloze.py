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

from kexue.corpora.cloze import ClozeSample, candidate_keys, load_meta, load_samples
from kexue.text.context_match import (
    ContextSetting,
    ContextTable,
    context_scores,
    context_table,
    inverse_document_frequency,
    match_scores,
    training_articles,
)


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


def context_choices(table: ContextTable, settings: Sequence[ContextSetting]) -> list[str]:
    """The word each setting picks: the candidate with the highest :func:`context_scores`; ties
    to the more frequent, then the earlier candidate."""
    order = np.arange(len(table.words))
    out = []
    cache: dict[tuple, np.ndarray] = {}
    for s in settings:
        key = (s.window, s.decay, s.idf, s.aggregate)
        if key not in cache:
            cache[key] = match_scores(table, *key)
        ranked = np.lexsort((-order, table.counts, context_scores(table, s, cache[key])))
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
