"""Adversarial validation: pick the validation set among the training samples that look most like
the test inputs.

Recipe of the 科学空间 post "如何划分一个跟测试集更接近的验证集？" (kexue.fm/archives/7805): train a
discriminator to tell the training pool from the (unlabelled) test inputs; its probability that a
training sample is a test sample measures how test-like the sample is, and the k most test-like
training samples become the validation set. When the test set is shifted (here: a later part of
the review files, a later stretch of the newspaper), such a validation set ranks models more like
the test set does than a random one.

The discriminator is TF-IDF over character n-grams + logistic regression, *cross-fitted*: the pool
of training and test inputs is cut into folds and every sample is scored by a model fitted on the
other folds, so no sample is scored by a model that saw it (an in-sample score would reward
memorised samples, not test-like ones). Only test *inputs* are used, never test labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Likeness:
    """Out-of-fold P(test) of every training-pool sample, and how separable the two sets are."""

    train_scores: np.ndarray  # (n_train,) out-of-fold P(test | text)
    test_scores: np.ndarray  # (n_test,) out-of-fold P(test | text)
    auc: float  # ROC AUC of the out-of-fold scores: 0.5 = no shift, 1.0 = fully separable


def score_test_likeness(train_texts: Sequence[str], test_texts: Sequence[str], folds: int = 5,
                  ngram_max: int = 2, min_df: int = 2, c: float = 1.0, seed: int = 0) -> Likeness:
    """Cross-fitted discriminator scores (see the module note). Each fold refits the TF-IDF
    vocabulary too, so not even the n-gram statistics of a scored sample leak into its scorer."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"folds={folds}: cross-fitting needs at least 2 folds")
    if len(train_texts) < folds or len(test_texts) < folds:
        raise ValueError(f"{len(train_texts)} training and {len(test_texts)} test texts: "
                         f"each side needs at least folds={folds} texts")
    texts = np.asarray([*train_texts, *test_texts], dtype=object)
    is_test = np.r_[np.zeros(len(train_texts), int), np.ones(len(test_texts), int)]
    scores = np.empty(len(texts), dtype=np.float64)
    for fit_idx, score_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, is_test):
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=min_df,
                                     sublinear_tf=True)
        x_fit = vectorizer.fit_transform(texts[fit_idx])
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
        clf.fit(x_fit, is_test[fit_idx])
        scores[score_idx] = clf.predict_proba(vectorizer.transform(texts[score_idx]))[:, 1]
    return Likeness(train_scores=scores[: len(train_texts)], test_scores=scores[len(train_texts):],
                    auc=float(roc_auc_score(is_test, scores)))


def adversarial_validation_split(train_scores: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, valid indices): valid = the ``size`` most test-like samples (ties broken by
    index, so the split is deterministic), train = the rest, both in their original order."""
    n = len(train_scores)
    if not 0 < size < n:
        raise ValueError(f"validation size {size} must be between 1 and {n - 1} (the pool has {n} samples)")
    order = np.lexsort((np.arange(n), -np.asarray(train_scores)))  # by score desc, then index
    valid = np.sort(order[:size])
    keep = np.ones(n, bool)
    keep[valid] = False
    return np.flatnonzero(keep), valid


def random_validation_split(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, valid indices) with a seeded uniform choice of ``size`` samples as valid."""
    if not 0 < size < n:
        raise ValueError(f"validation size {size} must be between 1 and {n - 1} (the pool has {n} samples)")
    valid = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    keep = np.ones(n, bool)
    keep[valid] = False
    return np.flatnonzero(keep), valid


def sweep_models(c_grid: Sequence[float], ngram_maxes: Sequence[int]) -> list[str]:
    """Names of the sweep's models, in the order ``sweep_scores`` scores them: n-gram range in the
    outer loop, C in the inner one, each in the order listed."""
    return [f"char 1-{n} C={c:g}" for n in ngram_maxes for c in c_grid]


def selection_agreement(valid_scores: Sequence[float], test_scores: Sequence[float],
                        models: Sequence[str] | None = None) -> dict:
    """How well a validation set stands in for the test set over a sweep of candidate models
    (higher scores better):

    - ``kendall_tau``, ``kendall_p``: scipy's ``kendalltau`` (τ-b) between the candidates' valid
      and test scores, and its p-value against no association; both ``None`` when either side is
      constant (no ranking to compare);
    - ``mean_gap``: mean of valid − test (> 0: the validation set flatters the models), and
      ``mean_abs_gap``: mean of |valid − test|;
    - the model the validation set picks (best valid score) — ``picked_model``, its index in the
      sweep, its valid and test score — and its ``regret``: the best test score among the
      candidates minus the picked model's test score (0 when valid picks the test-best model).

    Ties on valid go to the candidate listed first (``np.argmax`` returns the first maximum), so
    the pick does not depend on anything but the order of the sweep; the same rule names the
    test-best model."""
    from scipy.stats import kendalltau

    valid_scores, test_scores = np.asarray(valid_scores, float), np.asarray(test_scores, float)
    if len(valid_scores) != len(test_scores) or len(valid_scores) < 2:
        raise ValueError("selection_agreement needs the same number (≥ 2) of valid and test scores")
    names = list(models) if models is not None else [f"model {i}" for i in range(len(valid_scores))]
    if len(names) != len(valid_scores):
        raise ValueError(f"{len(names)} model names for {len(valid_scores)} scores")
    tau = kendalltau(valid_scores, test_scores)
    defined = bool(np.isfinite(tau.statistic))
    picked, best = int(np.argmax(valid_scores)), int(np.argmax(test_scores))
    return {"models": len(valid_scores),
            "kendall_tau": round(float(tau.statistic), 4) if defined else None,
            "kendall_p": float(f"{tau.pvalue:.4g}") if defined else None,
            "mean_gap": round(float(np.mean(valid_scores - test_scores)), 4),
            "mean_abs_gap": round(float(np.mean(np.abs(valid_scores - test_scores))), 4),
            "picked_model": names[picked], "picked_index": picked,
            "picked_valid": round(float(valid_scores[picked]), 4),
            "picked_test": round(float(test_scores[picked]), 4),
            "best_test_model": names[best], "best_test": round(float(test_scores[best]), 4),
            "regret": round(float(test_scores[best] - test_scores[picked]), 4)}


def density_ratio_weights(scores: np.ndarray, prior_ratio: float, max_weight: float) -> np.ndarray:
    """Importance weights p_test(x) / p_train(x) from the discriminator's P(test | x).

    Why: Bayes' rule gives p_test(x) / p_train(x) = odds(x) · n_train / n_test, and weighting the
    training loss by it makes its expectation the test distribution's (covariate-shift correction,
    Shimodaira 2000). The discriminator is fitted with balanced classes, so ``prior_ratio`` is 1
    here; weights are clipped to ``[1 / max_weight, max_weight]`` (a few near-certain scores would
    otherwise dominate) and scaled to mean 1, so the loss keeps its size."""
    p = np.clip(np.asarray(scores, np.float64), 1e-6, 1 - 1e-6)
    w = np.clip(p / (1 - p) * prior_ratio, 1.0 / max_weight, max_weight)
    return (w / w.mean()).astype(np.float32)


def split_pool(pool: list[dict], test: list[dict], valid: str, valid_size: float, folds: int,
               ngram_max: int, max_weight: float, seed: int, text_key: str = "text",
               likeness: Likeness | None = None) -> tuple[dict[str, list[dict]], dict]:
    """Score the pool's test-likeness (unless ``likeness`` is given), pick the validation set
    (``valid``: ``random`` or ``adversarial``, ``valid_size`` = its share of the pool) and return
    the splits, every row carrying ``test_likeness`` and its density-ratio ``weight``, with the
    split's metrics."""
    if valid not in ("random", "adversarial"):
        raise ValueError(f"split.valid = {valid!r}: use random or adversarial")
    if likeness is None:
        likeness = score_test_likeness([r[text_key] for r in pool], [r[text_key] for r in test],
                                       folds=folds, ngram_max=ngram_max, seed=seed)
    weights = density_ratio_weights(likeness.train_scores, 1.0, max_weight)
    size = int(round(valid_size * len(pool)))
    if valid == "adversarial":
        train_idx, valid_idx = adversarial_validation_split(likeness.train_scores, size)
    else:
        train_idx, valid_idx = random_validation_split(len(pool), size, seed)
    rows = [{**r, "test_likeness": round(float(s), 6), "weight": round(float(w), 6)}
            for r, s, w in zip(pool, likeness.train_scores, weights, strict=True)]
    test_rows = [{**r, "test_likeness": round(float(s), 6)} for r, s in zip(test, likeness.test_scores, strict=True)]
    splits = {"train": [rows[i] for i in train_idx], "valid": [rows[i] for i in valid_idx],
              "test": test_rows}
    metrics = {
        "discriminator_auc": round(likeness.auc, 4),
        "valid": valid,
        "sizes": {name: len(part) for name, part in splits.items()},
        "mean_test_likeness": {
            "train": round(float(likeness.train_scores[train_idx].mean()), 4),
            "valid": round(float(likeness.train_scores[valid_idx].mean()), 4),
            "test": round(float(likeness.test_scores.mean()), 4)},
        "effective_train_size": round(float(weights[train_idx].sum() ** 2
                                            / (weights[train_idx] ** 2).sum()), 1),
    }
    return splits, metrics


def sweep_scores(splits: dict[str, list[dict]], labels, c_grid: Sequence[float],
                 ngram_maxes: Sequence[int], weighted: bool, seed: int = 0,
                 text_key: str = "text") -> tuple[list[float], list[float]]:
    """(valid scores, test scores) of a small sweep of TF-IDF + logistic-regression models (one per
    n-gram range × C, in the order of ``sweep_models``), each trained on ``splits["train"]`` (with
    its density-ratio weights when ``weighted``). ``labels(rows)`` gives a 1-D array (binary task:
    accuracy) or a 2-D 0/1 array (multi-label task: one-vs-rest, micro F1)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    texts = {name: [r[text_key] for r in rows] for name, rows in splits.items()}
    y = {name: np.asarray(labels(rows)) for name, rows in splits.items()}
    multilabel = y["train"].ndim == 2
    weights = np.array([r["weight"] for r in splits["train"]]) if weighted else None
    valid_scores, test_scores = [], []
    for ngram_max in ngram_maxes:
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=2,
                                     sublinear_tf=True)
        x_train = vectorizer.fit_transform(texts["train"])
        x = {name: vectorizer.transform(texts[name]) for name in ("valid", "test")}
        for c in c_grid:
            if multilabel:  # one-vs-rest over the labels that have both classes in train
                keep = np.flatnonzero(y["train"].any(axis=0) & ~y["train"].all(axis=0))
                pred = {n: np.zeros((len(texts[n]), len(keep)), int) for n in ("valid", "test")}
                for j, label in enumerate(keep):
                    clf = LogisticRegression(C=c, max_iter=2000, solver="liblinear", random_state=seed)
                    clf.fit(x_train, y["train"][:, label], sample_weight=weights)
                    for n in pred:
                        pred[n][:, j] = clf.predict(x[n])
                scores = [f1_score(y[n][:, keep], pred[n], average="micro", zero_division=0)
                          for n in ("valid", "test")]
            else:
                clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
                clf.fit(x_train, y["train"], sample_weight=weights)
                scores = [accuracy_score(y[n], clf.predict(x[n])) for n in ("valid", "test")]
            valid_scores.append(float(scores[0]))
            test_scores.append(float(scores[1]))
    return valid_scores, test_scores
