"""Metrics shared by the families, from scikit-learn where it has them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score


def classification_metrics(y_true: np.ndarray, prob_pos: np.ndarray) -> dict:
    pred = (prob_pos >= 0.5).astype(int)
    return {
        "accuracy": round(float(accuracy_score(y_true, pred)), 4),
        "macro_f1": round(float(f1_score(y_true, pred, average="macro")), 4),
        "roc_auc": round(float(roc_auc_score(y_true, prob_pos)), 4),
        "examples": int(len(y_true)),
    }


def correct_items(y_true: np.ndarray, prob_pos: np.ndarray, accuracy: float | None = None) -> list[int]:
    """1 for an example classified right at P(positive) >= 0.5, else 0: their mean is the
    accuracy of :func:`classification_metrics` (checked against ``accuracy`` when given)."""
    hits = ((np.asarray(prob_pos) >= 0.5).astype(int) == np.asarray(y_true).astype(int)).astype(int)
    if accuracy is not None and round(float(hits.mean()), 4) != accuracy:
        raise AssertionError(f"the per-example items give accuracy {hits.mean():.4f}, "
                             f"the metrics say {accuracy}")
    return hits.tolist()
