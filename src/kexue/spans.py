"""Per-line span statistics for the paired bootstrap of segmentation and NER.

A line's words (as character spans) or entities (spans with their type) give one row
``[spans in both, predicted spans, gold spans]``; summed over any set of lines the rows give that
set's corpus precision, recall and F1 (:func:`kexue.comparison.f1_metric`), which is what a
resample of the lines needs. Kept apart from the corpus reader so that evaluation code can change
without touching what the training stages import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# the reader's own word → span mapping, so the counts agree with its scores by construction
from kexue.corpora.people_daily import _word_spans as word_spans


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
