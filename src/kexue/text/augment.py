"""Label-preserving variants of training texts: word deletion, word swaps and replacement of a word
by one of its nearest neighbours in the word vectors (stage `augment`).

Sources:

- Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for Boosting Performance on Text
  Classification Tasks" (arXiv:1901.11196): random deletion (each word with probability p, never
  all of them) and random swap (n = round(p * len) swaps of two random positions).
- kexue.fm's word-vector posts (【不可思议的Word2Vec】 series, https://kexue.fm/archives/4304,
  and "更别致的词向量模型" https://kexue.fm/archives/4667): words with a high cosine similarity
  occur in similar contexts, so swapping one for another mostly keeps a sentence's meaning. EDA's
  synonym replacement used WordNet; here the "synonyms" are the k nearest neighbours in the
  project's own word2vec vectors, above a cosine threshold.

A review is cut into words by the learnt lexicon (:func:`kexue.text.tokenized.load_segmenter`);
each variant applies, in this order, replacement (each replaceable word with probability
``p_replace``), swap and deletion. EDA draws one operation per variant; composing them gives
more varied variants for the same ratio, and setting a probability to 0 turns an operation off.

The variants are label-preserving only approximately: a deleted 不 or 没有, or a neighbour that
is an antonym (word vectors put 好 and 差 close together, since they share contexts), can flip a
review's sentiment. That is why the number of variants per training row (``ratio``) and every
probability are params, and why the sentiment family trains with or without them
(``sentiment.augment``).
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.io import read_jsonl, write_jsonl

# Chinese characters only: punctuation, digits and Latin tokens are never replaced (nor offered
# as neighbours)
_REPLACEABLE = re.compile("[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
OPERATIONS = ("replace", "swap", "delete")


@dataclass(frozen=True)
class AugmentConfig:
    ratio: float = field(metadata={"min": 0.0, "max": 100.0})  # variants per training row, on average
    p_delete: float = field(metadata={"min": 0.0, "max": 0.9})  # each word deleted with this probability
    p_swap: float = field(metadata={"min": 0.0, "max": 1.0})  # round(p_swap * words) random swaps
    p_replace: float = field(metadata={"min": 0.0, "max": 1.0})  # each replaceable word replaced with this probability
    neighbours: int = field(metadata={"min": 1})  # k nearest neighbours considered per word
    min_similarity: float = field(metadata={"min": -1.0, "max": 1.0})  # only neighbours at least this cosine-similar
    seed: int


Neighbours = dict[str, list[tuple[str, float]]]  # word -> [(neighbour, cosine similarity)], best first


def replaceable(word: str) -> bool:
    """Only words made of Chinese characters are replaced (not punctuation, digits, Latin)."""
    return _REPLACEABLE.fullmatch(word) is not None


def join_words(words: Sequence[str]) -> str:
    """The text of ``words``: concatenated, with a space where two ASCII alphanumeric tokens meet
    (the segmenter dropped it: "very good" must not become "verygood")."""
    out: list[str] = []
    for word in words:
        if out and out[-1][-1:].isascii() and out[-1][-1:].isalnum() and word[:1].isascii() \
                and word[:1].isalnum():
            out.append(" ")
        out.append(word)
    return "".join(out)


def nearest_neighbours(words: Sequence[str], matrix: np.ndarray, queries: Iterable[str], k: int,
                       min_similarity: float, batch: int = 512) -> Neighbours:
    """For each query word that has a vector and is :func:`replaceable`, its ``k`` nearest
    replaceable words by cosine similarity (itself excluded), keeping those at least
    ``min_similarity`` similar; words without such a neighbour are left out. One
    (batch, n_candidates) matrix product per ``batch`` queries."""
    index = {w: i for i, w in enumerate(words)}
    unit = np.asarray(matrix, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    cand_ids = np.array([i for i, w in enumerate(words) if replaceable(w)], dtype=np.int64)
    cand_pos = {int(i): p for p, i in enumerate(cand_ids)}
    cand = unit[cand_ids]  # (n_cand, dim)
    query_words = sorted({w for w in queries if w in index and replaceable(w)}, key=index.get)
    out: Neighbours = {}
    if len(cand_ids) < 2 or not query_words:
        return out
    k = min(k, len(cand_ids) - 1)
    for start in range(0, len(query_words), batch):
        chunk = query_words[start : start + batch]
        sims = unit[[index[w] for w in chunk]] @ cand.T  # (chunk, n_cand)
        for row, word in enumerate(chunk):
            sims[row, cand_pos[index[word]]] = -np.inf  # not itself
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (chunk, k), unordered
        for row, word in enumerate(chunk):
            order = top[row][np.argsort(-sims[row, top[row]], kind="stable")]
            kept = [(words[cand_ids[c]], round(float(sims[row, c]), 4)) for c in order
                    if sims[row, c] >= min_similarity]
            if kept:
                out[word] = kept
    return out


def augment_words(words: list[str], neighbours: Neighbours, cfg: AugmentConfig,
                  rng: np.random.Generator) -> tuple[list[str], dict[str, int]]:
    """One variant of ``words`` and how many words each operation changed (replaced words,
    swaps of two different words, deleted words)."""
    words = list(words)
    counts = {op: 0 for op in OPERATIONS}
    if cfg.p_replace > 0:
        for i, word in enumerate(words):
            options = [w for w, sim in neighbours.get(word, ()) if sim >= cfg.min_similarity]
            if options and rng.random() < cfg.p_replace:
                words[i] = options[int(rng.integers(len(options)))]
                counts["replace"] += 1
    n_swaps = round(cfg.p_swap * len(words)) if len(words) > 1 else 0
    for _ in range(n_swaps):
        i, j = rng.choice(len(words), size=2, replace=False)
        if words[i] != words[j]:
            words[i], words[j] = words[j], words[i]
            counts["swap"] += 1
    if cfg.p_delete > 0 and len(words) > 1:
        keep = rng.random(len(words)) >= cfg.p_delete
        if not keep.any():  # never delete every word: keep one at random (as EDA does)
            keep[int(rng.integers(len(words)))] = True
        counts["delete"] = int((~keep).sum())
        words = [w for w, k in zip(words, keep, strict=True) if k]
    return words, counts


def variants_per_row(n_rows: int, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """How many variants each row gets: ``floor(ratio)`` each, plus one for a random
    ``round(frac(ratio) * n_rows)`` of them, so the total is ``ratio * n_rows`` (rounded)."""
    whole = math.floor(ratio)
    counts = np.full(n_rows, whole, dtype=np.int64)
    extra = round((ratio - whole) * n_rows)
    if extra:
        counts[rng.choice(n_rows, size=extra, replace=False)] += 1
    return counts


def augment_rows(rows: Sequence[dict], segment: Callable[[str], list[str]], neighbours: Neighbours,
                 cfg: AugmentConfig, seed: int, stats: dict | None = None) -> list[dict]:
    """``cfg.ratio`` variants per row on average (see :func:`variants_per_row`): each a copy of
    its row (label, weight and every other field kept) with a new ``text``, ``augmented_from``
    = the row's id (or its position when rows have none) and, if rows have ids,
    ``id = f"{id}-aug{j}"`` (j = the draw). A variant identical to its source, or to an earlier
    variant of the same row, is dropped. ``stats``, if given, receives the counts."""
    rng = np.random.default_rng(seed)
    per_row = variants_per_row(len(rows), cfg.ratio, rng)
    out: list[dict] = []
    ops: Counter = Counter()
    drawn = dropped = changed = 0
    for position, (row, n) in enumerate(zip(rows, per_row, strict=True)):
        if n == 0:
            continue
        words = segment(row["text"])
        if not words:
            continue
        seen = {row["text"], join_words(words)}
        for j in range(int(n)):
            new_words, counts = augment_words(words, neighbours, cfg, rng)
            text = join_words(new_words)
            drawn += 1
            if text in seen:
                dropped += 1
                continue
            seen.add(text)
            ops.update(counts)
            changed += counts["replace"] + 2 * counts["swap"] + counts["delete"]
            variant = dict(row, text=text, augmented_from=row.get("id", position))
            if "id" in row:
                variant["id"] = f"{row['id']}-aug{j}"
            out.append(variant)
    if stats is not None:
        stats.update({
            "source_rows": len(rows), "variants": len(out), "drawn": drawn,
            "dropped_identical": dropped,
            "operations": {op: ops[op] for op in OPERATIONS},  # replaced words, swaps, deleted words
            "mean_words_changed": round(changed / max(len(out), 1), 3),
            "words_with_neighbours": len(neighbours)})
    return out


def augment_file(data: str | Path, vectors_dir: str | Path, tokenized_dir: str | Path,
                 out: str | Path, cfg: AugmentConfig) -> dict:
    """Read the training rows of ``data``, cut them with the learnt lexicon, find the neighbours
    of their words in the vectors of ``vectors_dir``, write only the variants to ``out``
    (atomically) and return the metrics."""
    from kexue.text.tokenized import load_segmenter
    from kexue.text.word_vectors import WordVectors

    start = time.perf_counter()
    rows = read_jsonl(data)
    segmenter = load_segmenter(tokenized_dir)
    cut = {row["text"]: segmenter(row["text"]) for row in rows}  # each text segmented once
    vectors = WordVectors.load(vectors_dir)
    vocab = {w for words in cut.values() for w in words}
    t0 = time.perf_counter()
    neighbours = nearest_neighbours(vectors.words, vectors.matrix, vocab, cfg.neighbours,
                                    cfg.min_similarity)
    neighbour_seconds = time.perf_counter() - t0
    print(f"augment: {len(rows)} rows, {len(vocab)} distinct words, {len(neighbours)} with a "
          f"neighbour >= {cfg.min_similarity} ({neighbour_seconds:.1f}s)", file=sys.stderr)
    stats: dict = {}
    variants = augment_rows(rows, cut.__getitem__, neighbours, cfg, cfg.seed, stats)
    write_jsonl(out, variants)
    stats["distinct_words"] = len(vocab)
    stats["neighbour_seconds"] = round(neighbour_seconds, 2)
    stats["seconds"] = round(time.perf_counter() - start, 2)
    return stats
