"""The sentiment peers (stage ``baselines_sentiment``): TF-IDF over character n-grams +
logistic regression (unweighted, and with the split stage's density-ratio weights when it wrote
them) and fastText over characters, each tuned on the same validation split as the network."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score

from kexue.corpora.reviews import LABELS, load_rows, sample_weights
from kexue.metrics import classification_metrics, correct_items
from kexue.text.vocab import characters as tokens


@dataclass(frozen=True)
class BaselineConfig:
    ngram_min: int = field(metadata={"min": 1})  # character n-gram range of the TF-IDF features
    ngram_max: int = field(metadata={"min": 1})
    min_df: int = field(metadata={"min": 1})
    c_grid: list[float]  # inverse regularisation strengths tried; the best on valid is kept
    seed: int  # also seeds fastText (its initialisation and the order of its training lines)
    refit: bool = False  # refit the chosen C (and fastText setting) on train + valid (as sentiment.refit does)
    # fastText supervised over the characters kexue reads, its word n-grams = character n-grams
    # (kexue.peers.fasttext): every (lr, epoch, word_ngrams) of the grids is fitted on train and the
    # best valid accuracy kept
    fasttext: bool = False
    fasttext_lr: list[float] = field(default_factory=lambda: [0.1])
    fasttext_epoch: list[int] = field(default_factory=lambda: [5])
    fasttext_word_ngrams: list[int] = field(default_factory=lambda: [2])
    fasttext_dim: int = field(default=10, metadata={"min": 1})  # embedding size


def baselines(cfg: BaselineConfig, data_dir: str | Path) -> dict:
    """The peers a practitioner would use: TF-IDF over character n-grams + logistic regression,
    with C picked on the same validation split the neural model uses; when the split carries
    density-ratio weights (stage `split`), a second peer trains with them, so the weighting's
    gain is shown apart from the network's; and (``cfg.fasttext``) fastText over characters, its
    setting picked on valid. Each peer carries ``items``: 1/0 per review right or wrong on valid
    and test, for the paired bootstrap of the evaluate stage."""
    if cfg.ngram_min > cfg.ngram_max:
        raise ValueError(f"baselines.sentiment: ngram_min={cfg.ngram_min} > ngram_max={cfg.ngram_max}")
    data_dir = Path(data_dir)
    splits = {s: load_rows(data_dir, s) for s in ("train", "valid", "test")}
    weighted = all("weight" in r for s in ("train", "valid") for r in splits[s][2])
    peers = {"tfidf_char_lr": _tfidf_lr(cfg, splits, "none")}
    if weighted:
        peers["tfidf_char_lr_density_ratio"] = _tfidf_lr(cfg, splits, "density_ratio")
    if cfg.fasttext:
        peers["fasttext"] = _fasttext(cfg, splits)
    return peers


def _fasttext(cfg: BaselineConfig, splits: dict) -> dict:
    """fastText (softmax over neg / pos) on the review characters; lr / epoch / word_ngrams
    chosen by valid accuracy, refit on train + valid when ``cfg.refit`` (valid figures then come
    from the selection fit, as for the TF-IDF peer and the network)."""
    from kexue.peers import fasttext

    documents = {split: [tokens(t) for t in splits[split][0]] for split in splits}
    y = {split: splits[split][1].astype(int) for split in splits}

    def labels(parts):
        return [[LABELS[v]] for part in parts for v in y[part]]

    start = time.perf_counter()
    settings = fasttext.grid(cfg.fasttext_lr, cfg.fasttext_epoch, cfg.fasttext_word_ngrams)
    model, valid_probs, chosen = fasttext.tune(
        (documents["train"], labels(["train"])), documents["valid"], LABELS, settings,
        lambda probs: accuracy_score(y["valid"], (probs[:, 1] >= 0.5).astype(int)),
        dim=cfg.fasttext_dim, seed=cfg.seed)
    if cfg.refit:
        model = fasttext.fit(documents["train"] + documents["valid"], labels(["train", "valid"]),
                             lr=chosen["lr"], epoch=chosen["epoch"],
                             word_ngrams=chosen["word_ngrams"], dim=cfg.fasttext_dim, seed=cfg.seed)
    seconds = time.perf_counter() - start
    prob = {"valid": valid_probs[:, 1],
            "test": fasttext.probabilities(model, documents["test"], LABELS)[:, 1]}
    out: dict = {split: classification_metrics(y[split], prob[split]) for split in ("test", "valid")}
    out["items"] = {split: correct_items(y[split], prob[split], out[split]["accuracy"])
                    for split in ("valid", "test")}
    out["cost"] = {"train_seconds": round(seconds, 2), "fits": len(settings) + int(cfg.refit)}
    out["chosen"] = {"lr": chosen["lr"], "epoch": chosen["epoch"],
                     "word_ngrams": chosen["word_ngrams"], "dim": cfg.fasttext_dim,
                     "refit": cfg.refit}
    out["tried"] = chosen["candidates"]
    return out


def _tfidf_lr(cfg: BaselineConfig, splits: dict, weighting: str) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def weights(split):
        return sample_weights(splits[split][2], weighting, split)

    def fitted(c, parts):
        vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(cfg.ngram_min, cfg.ngram_max),
                                     min_df=cfg.min_df, sublinear_tf=True)
        texts = [t for p in parts for t in splits[p][0]]
        y = np.concatenate([splits[p][1] for p in parts]).astype(int)
        w = None if weighting == "none" else np.concatenate([weights(p) for p in parts])
        clf = LogisticRegression(C=c, max_iter=3000, random_state=cfg.seed)
        clf.fit(vectorizer.fit_transform(texts), y, sample_weight=w)
        return vectorizer, clf

    start = time.perf_counter()
    best = None
    for c in cfg.c_grid:
        vectorizer, clf = fitted(c, ["train"])
        valid_prob = clf.predict_proba(vectorizer.transform(splits["valid"][0]))[:, 1]
        score = accuracy_score(splits["valid"][1].astype(int), (valid_prob >= 0.5).astype(int))
        if best is None or score > best[0]:
            best = (score, c, vectorizer, clf, valid_prob)
    _, c, vectorizer, clf, valid_prob = best
    if cfg.refit:
        vectorizer, clf = fitted(c, ["train", "valid"])
    seconds = time.perf_counter() - start
    prob = {"test": clf.predict_proba(vectorizer.transform(splits["test"][0]))[:, 1],
            "valid": valid_prob}
    out: dict = {split: classification_metrics(splits[split][1].astype(int), prob[split])
                 for split in ("test", "valid")}
    out["items"] = {split: correct_items(splits[split][1], prob[split], out[split]["accuracy"])
                    for split in ("valid", "test")}
    out["cost"] = {"train_seconds": round(seconds, 2), "features": len(vectorizer.vocabulary_)}
    out["chosen"] = {"C": c, "sample_weights": weighting, "refit": cfg.refit}
    return out
