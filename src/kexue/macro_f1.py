"""Macro F1 in the paired bootstrap (:mod:`kexue.comparison`): per-item statistics kept per label,
and the metric that averages the labels' F1s over a resample.

A multi-label system's per-line statistics ``[tp, predicted, gold]`` summed over lines give micro
F1; macro F1 (the mean of per-label F1s) needs them per label: ``[tp_1, predicted_1, gold_1, ...,
tp_L, predicted_L, gold_L]``. The metric ``mean_f1`` computes F1 of each consecutive
``[tp, predicted, gold]`` triple of the summed columns and averages them, so one triple (micro
counts) gives plain F1 and L triples give macro F1: one ``kind`` serves both metrics of
:mod:`kexue.every_peer`. A label neither gold nor predicted in a resample counts F1 0, as
:func:`kexue.metrics.multilabel_scores` (and scikit-learn) count it on the whole set.

Importing this module registers ``mean_f1`` in :data:`kexue.comparison.METRICS`.
"""

from __future__ import annotations

import numpy as np

from kexue.comparison import METRICS, f1_metric


def mean_f1_metric(totals: np.ndarray, n: int) -> np.ndarray:
    """The mean F1 over the ``[tp, predicted, gold]`` triples of ``totals`` (..., 3k)."""
    totals = np.asarray(totals, dtype=np.float64)
    if totals.shape[-1] % 3:
        raise ValueError(f"mean F1: {totals.shape[-1]} columns of statistics, expected "
                         "[tp, predicted, gold] per label (a multiple of 3)")
    triples = totals.reshape(*totals.shape[:-1], totals.shape[-1] // 3, 3)
    return f1_metric(triples, n).mean(axis=-1)


METRICS.setdefault("mean_f1", mean_f1_metric)


def per_label_counts(y_true: np.ndarray, y_pred: np.ndarray,
                     macro_f1: float | None = None) -> list[list[int]]:
    """Per line ``[tp, predicted, gold]`` of every label in turn (3 × labels columns); summed over
    any set of lines, :func:`mean_f1_metric` gives that set's macro F1. Checked against
    ``macro_f1`` (as :func:`kexue.metrics.multilabel_scores` rounds it) when given."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"per-label counts: gold {y_true.shape} and predictions {y_pred.shape} "
                         "must both be (lines, labels)")
    counts = np.stack([y_true & y_pred, y_pred, y_true], axis=2).reshape(len(y_true), -1)
    if macro_f1 is not None:
        value = round(float(mean_f1_metric(counts.sum(0), len(counts))), 4)
        if value != macro_f1:
            raise AssertionError(f"multilabel: the per-label items give macro F1 {value}, "
                                 f"the metrics say {macro_f1}")
    return counts.astype(int).tolist()
