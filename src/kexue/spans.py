"""Scores of words and entities as character spans (segmentation and NER), and the per-line span
statistics of their paired bootstrap.

Entity scores are exact span matches, per type and micro-averaged; word F1 of b/m/e/s tag
sequences compares words as character spans. For the bootstrap, a line's words (as character spans) or entities (spans with their type) give one row
``[spans in both, predicted spans, gold spans]``; summed over any set of lines the rows give that
set's corpus precision, recall and F1 (:func:`kexue.comparison.f1_metric`), which is what a
resample of the lines needs. Kept apart from the corpus reader so that evaluation code can change
without touching what the training stages import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# the reader's own word → span mapping, so the counts agree with its scores by construction
from kexue.corpora.people_daily import (
    ENTITY_KINDS,
    segmentation_scores,
    spans_from_bio,
    words_from_bmes,
)
from kexue.corpora.people_daily import _word_spans as word_spans

KINDS = list(ENTITY_KINDS.values())  # PER, LOC, ORG
Span = tuple[int, int, str]


def span_counts(gold: Sequence[Iterable[Sequence]], predicted: Sequence[Iterable[Sequence]]
                ) -> list[list[int]]:
    """Per line ``[spans in both, predicted spans, gold spans]`` (word spans ``(start, end)`` or
    entity spans ``(start, end, type)``; a span listed twice counts once)."""
    out = []
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        g, p = {tuple(s) for s in gold_spans}, {tuple(s) for s in pred_spans}
        out.append([len(g & p), len(p), len(g)])
    return out


def word_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> list[list[int]]:
    """Per line ``[words right, words predicted, gold words]``, words compared as character spans
    as in :func:`kexue.corpora.people_daily.segmentation_scores` (whose word F1 the sums
    reproduce)."""
    return span_counts([word_spans(g) for g in gold], [word_spans(p) for p in predicted])


def _prf(correct: int, n_pred: int, n_gold: int) -> dict:
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "gold": n_gold, "predicted": n_pred}


def entity_scores(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> dict:
    """Exact-match entity precision / recall / F1 per type and micro-averaged over all types."""
    counts = {kind: [0, 0, 0] for kind in KINDS}  # correct, predicted, gold
    for gold_spans, pred_spans in zip(gold, predicted, strict=True):
        gold_set = {tuple(s) for s in gold_spans}
        for span in {tuple(s) for s in pred_spans}:
            counts[span[2]][1] += 1
            counts[span[2]][0] += span in gold_set
        for span in gold_set:
            counts[span[2]][2] += 1
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    micro = _prf(*total)
    return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "entities": micro["gold"], "per_type": {kind: _prf(*c) for kind, c in counts.items()}}


def entity_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """Micro entity F1 of BIO tag sequences."""
    return entity_scores([spans_from_bio(t) for t in gold], [spans_from_bio(t) for t in predicted])["f1"]


def word_f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """SIGHAN word F1 of b/m/e/s tag sequences (words are compared as character spans)."""
    def words(tags):
        return words_from_bmes(["x"] * len(tags), tags)

    return segmentation_scores([words(t) for t in gold], [words(t) for t in predicted])["f1"]
