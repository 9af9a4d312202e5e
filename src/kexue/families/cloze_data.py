"""The cloze reader's inputs: the query and document windows, the word-match bits of each
document position, samples encoded as ids with their candidate keys, the vocabulary, and
length-bucketed batches (no Keras)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kexue.batches import SequenceBatches, pad
from kexue.corpora.cloze import BLANK, ClozeSample, candidate_keys
from kexue.text.vocab import PAD, UNK, Vocab


def query_window(query: Sequence[str], size: int) -> list[str]:
    """At most ``size`` words of ``query`` around its blank (the blank as central as fits)."""
    if len(query) <= size:
        return list(query)
    blank = list(query).index(BLANK)
    start = max(0, min(blank - size // 2, len(query) - size))
    return list(query[start : start + size])


def document_window(length: int, offset: int, size: int) -> tuple[int, int]:
    """[start, end) of ``size`` positions centred on ``offset`` inside ``[0, length)``."""
    if size <= 0 or length <= size:
        return 0, length
    start = max(0, min(offset - size // 2, length - size))
    return start, start + size


MATCH_BITS = {"none": 0, "query": 1, "context": 5}  # match feature bits per match_features


def match_masks(query: Sequence[str], document: Sequence[str]) -> np.ndarray:
    """Per document position an integer whose bits say: 0 its word occurs in the query (an
    answer never does); 1 / 2 the word before / after it equals the word before / after the
    blank; 3 / 4 the same for the two words before / after. (batch-free, int32 (d_len,))"""
    query = list(query)
    b = query.index(BLANK)
    shown = set(query)
    left1 = query[b - 1 : b] if b >= 1 else None
    right1 = query[b + 1 : b + 2] if b + 1 < len(query) else None
    left2 = query[b - 2 : b] if b >= 2 else None
    right2 = query[b + 1 : b + 3] if b + 2 < len(query) else None
    out = np.zeros(len(document), dtype=np.int32)
    for i, word in enumerate(document):
        bits = int(word in shown)
        bits |= 2 * int(left1 is not None and i >= 1 and document[i - 1 : i] == left1)
        bits |= 4 * int(right1 is not None and document[i + 1 : i + 2] == right1)
        bits |= 8 * int(left2 is not None and i >= 2 and document[i - 2 : i] == left2)
        bits |= 16 * int(right2 is not None and document[i + 1 : i + 3] == right2)
        out[i] = bits
    return out


@dataclass
class Encoded:
    """Model inputs of a list of samples: query ids, document ids, candidate keys, each
    document position's match bits (:func:`match_masks`), the answer's key (label; -1 when the
    answer is not a candidate of the kept window) and the key → word lists (``words[i][k - 1]``
    is the word of key k in sample i)."""

    queries: list[np.ndarray]
    documents: list[np.ndarray]
    keys: list[np.ndarray]
    match: list[np.ndarray]
    labels: np.ndarray
    words: list[list[str]]

    def subset(self, keep: np.ndarray) -> Encoded:
        return Encoded([self.queries[i] for i in keep], [self.documents[i] for i in keep],
                       [self.keys[i] for i in keep], [self.match[i] for i in keep],
                       self.labels[keep], [self.words[i] for i in keep])


def encode(items: Sequence[tuple[list[str], list[str], list[str], str | None, int]], vocab: Vocab,
           answer_tags: Sequence[str] | None, max_query_words: int,
           document_words: int = 0) -> Encoded:
    """``items``: (query words with one :data:`BLANK`, document words, document tags, answer or
    None, offset of the cut). ``answer_tags`` None makes every document word a candidate."""
    queries, documents, keys, match, labels, words = [], [], [], [], [], []
    for query, document, tags, answer, offset in items:
        if list(query).count(BLANK) != 1:
            raise ValueError(f"a query needs exactly one blank ({BLANK}), got "
                             f"{list(query).count(BLANK)} in {' '.join(query)[:60]!r}")
        start, end = document_window(len(document), offset, document_words)
        document, tags = document[start:end], tags[start:end]
        if not document:
            raise ValueError("a cloze needs a non-empty document")
        key = candidate_keys(document, tags, answer_tags)
        lookup = {}
        for word, k in zip(document, key, strict=True):
            if k:
                lookup.setdefault(k, word)
        query = query_window(query, max_query_words)
        queries.append(vocab.encode(query))
        match.append(match_masks(query, document))
        documents.append(vocab.encode(document))
        keys.append(np.asarray(key, dtype=np.int32))
        by_word = {w: k for k, w in lookup.items()}
        labels.append(by_word.get(answer, -1) if answer is not None else -1)
        words.append([lookup[k] for k in range(1, len(lookup) + 1)])
    return Encoded(queries, documents, keys, match, np.asarray(labels, dtype=np.int32), words)


def sample_items(rows: Sequence[ClozeSample]):
    return [(s.query, s.document, s.document_tags, s.answer, s.offset) for s in rows]


def build_vocab(rows: Sequence[ClozeSample], min_count: int) -> Vocab:
    """Words of the training documents and queries, counted over the samples (an article's
    words once per query drawn from it); <blank> reserved after <pad> and <unk>."""
    counted = Vocab.build(([w for w in s.query if w != BLANK] + s.document for s in rows),
                          min_count=min_count)
    return Vocab([PAD, UNK, BLANK, *counted.tokens[2:]])


class ClozeBatches(SequenceBatches):
    """Length-bucketed batches ``((query ids, document ids, keys[, match bits]), answer
    keys)``, bucketed by document length (queries are padded per batch to their own longest)."""

    def __init__(self, encoded: Encoded, batch_size: int, seed: int = 0, shuffle: bool = True,
                 with_labels: bool = True, match_bits: int = 0):
        aligned = (encoded.documents, encoded.keys, *([encoded.match] if match_bits else []))
        super().__init__(aligned, encoded.labels if with_labels else None, batch_size, seed, shuffle)
        self.queries = encoded.queries

    def __getitem__(self, index: int):
        batch = super().__getitem__(index)
        idx = self._batches[index]
        # one extra padded step on odd batches, as the documents get (see SequenceBatches)
        queries = pad([self.queries[i] for i in idx],
                      max(len(self.queries[i]) for i in idx) + index % 2)  # (batch, q_len)
        aligned = list(batch[0])  # documents, keys[, match bits]: (batch, d_len) each
        return ((queries, *aligned), *batch[1:])
