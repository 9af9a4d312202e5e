"""Metrics shared by the families, from scikit-learn where it has them."""

from __future__ import annotations

from collections.abc import Sequence

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


# --- multilabel: one 0/1 decision per (example, label) ------------------------------------


def _f1(tp, fp, fn):
    """F1 = 2tp / (2tp + fp + fn), element-wise; 0 where nothing was gold or predicted (as sklearn)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
    return ((y_true & y_pred).sum(0), (~y_true & y_pred).sum(0), (y_true & ~y_pred).sum(0))


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """F1 pooled over every (example, label) decision, unrounded."""
    tp, fp, fn = _counts(y_true, y_pred)
    return float(_f1(tp.sum(), fp.sum(), fn.sum()))


def multilabel_scores(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str]) -> dict:
    """Micro F1 (pooled over every line × label decision), macro F1 (mean of per-label F1s),
    micro precision / recall, exact-match accuracy, and per-label precision / recall / F1."""
    tp, fp, fn = _counts(y_true, y_pred)
    per_label_f1 = _f1(tp, fp, fn)
    all_tp, all_fp, all_fn = tp.sum(), fp.sum(), fn.sum()  # pooled over labels
    per_label = {}
    for i, name in enumerate(names):
        per_label[name] = {
            "precision": round(float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else 0.0, 4),
            "recall": round(float(tp[i] / (tp[i] + fn[i])) if tp[i] + fn[i] else 0.0, 4),
            "f1": round(float(per_label_f1[i]), 4),
            "support": int(tp[i] + fn[i]),
        }
    return {
        "micro_f1": round(float(_f1(all_tp, all_fp, all_fn)), 4),
        "macro_f1": round(float(per_label_f1.mean()), 4),
        "micro_precision": round(float(all_tp / (all_tp + all_fp)) if all_tp + all_fp else 0.0, 4),
        "micro_recall": round(float(all_tp / (all_tp + all_fn)) if all_tp + all_fn else 0.0, 4),
        "exact_match": round(float((y_true.astype(bool) == y_pred.astype(bool)).all(1).mean()), 4),
        "examples": int(len(y_true)),
        "per_label": per_label,
    }


def line_counts(y_true: np.ndarray, y_pred: np.ndarray, micro_f1: float | None = None) -> list[list[int]]:
    """Per line ``[labels right, predicted, gold]``: summed over any set of lines they give that
    set's micro F1 (2 tp / (predicted + gold)), the statistics of the paired bootstrap. Checked
    against ``micro_f1`` (as :func:`multilabel_scores` rounds it) when given."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    counts = np.stack([(y_true & y_pred).sum(1), y_pred.sum(1), y_true.sum(1)], axis=1)
    if micro_f1 is not None:
        tp, predicted, gold = counts.sum(0)
        value = round(float(_f1(tp, predicted - tp, gold - tp)), 4)
        if value != micro_f1:
            raise AssertionError(f"multilabel: the per-line items give micro F1 {value}, "
                                 f"the metrics say {micro_f1}")
    return counts.astype(int).tolist()


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, candidates: Sequence[float]) -> float:
    """The one threshold (``scores >= t`` is positive) with the best micro F1 on ``y_true``;
    ties go to the first candidate."""
    best, best_f1 = candidates[0], -1.0
    for t in candidates:
        tp, fp, fn = _counts(y_true, scores >= t)
        f1 = float(_f1(tp.sum(), fp.sum(), fn.sum()))
        if f1 > best_f1:
            best, best_f1 = t, f1
    return float(best)


def tune_thresholds_per_label(y_true: np.ndarray, scores: np.ndarray,
                              candidates: Sequence[float]) -> np.ndarray:
    """Per label, the threshold with the best F1 of that label; ties go to the first candidate."""
    f1s = np.stack([_f1(*_counts(y_true, scores >= t)) for t in candidates])  # (candidates, labels)
    return np.asarray(candidates, dtype=np.float64)[f1s.argmax(0)]


def threshold_candidates(n: int) -> list[float]:
    """n evenly spaced probabilities strictly inside (0, 1): 1/(n+1), ..., n/(n+1)."""
    return [round(i / (n + 1), 6) for i in range(1, n + 1)]
