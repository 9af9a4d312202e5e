"""The multilabel peers (stage ``baselines@multilabel``): the ``multilabel`` network retrained
with the other losses (BCE, focal), TF-IDF + one-vs-rest logistic regression and fastText, each
scored at probability 0.5 and at thresholds tuned on valid (never on test)."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from kexue.config import require_network
from kexue.corpora.tag_labels import LABEL_NAMES, load_split
from kexue.macro_f1 import per_label_counts
from kexue.metrics import (
    line_counts,
    multilabel_scores,
    threshold_candidates,
    tune_threshold,
    tune_thresholds_per_label,
)
from kexue.text.vocab import characters

if TYPE_CHECKING:
    from kexue.families.multilabel import Config


@dataclass(frozen=True)
class BaselineConfig:
    losses: list[Literal["zlpr", "bce", "focal"]]  # the `multilabel` network retrained with each loss
    threshold_candidates: int = field(metadata={"min": 1})  # tuned probability thresholds come from 1/(n+1) ... n/(n+1)
    per_label_thresholds: bool  # also tune one threshold per label (besides one global threshold)
    tfidf: bool  # TF-IDF over character n-grams + one-vs-rest logistic regression
    ngram_min: int = field(metadata={"min": 1})
    ngram_max: int = field(metadata={"min": 1})
    min_df: int = field(metadata={"min": 1})
    c_grid: list[float]  # inverse regularisation strengths; the best valid micro F1 at 0.5 is kept
    seed: int  # also seeds fastText (its initialisation and the order of its training lines)
    # fastText supervised, one sigmoid per label (loss ova), over the characters the network reads,
    # its word n-grams = character n-grams (kexue.peers.fasttext): every (lr, epoch, word_ngrams)
    # of the grids is fitted on train and the best valid micro F1 at 0.5 kept
    fasttext: bool = False
    fasttext_lr: list[float] = field(default_factory=lambda: [0.1])
    fasttext_epoch: list[int] = field(default_factory=lambda: [5])
    fasttext_word_ngrams: list[int] = field(default_factory=lambda: [2])
    fasttext_dim: int = field(default=10, metadata={"min": 1})  # embedding size


def _threshold_peers(name: str, y: dict, probs: dict, candidates: list[float],
                     per_label: bool, extra: dict) -> dict:
    """``name_t0.5``, ``name_tuned`` (one threshold from valid), ``name_tuned_per_label``; each
    with its per-line ``items`` (:func:`line_counts`) of valid and test, and per line and label
    under ``items["per_label"]`` (:func:`kexue.macro_f1.per_label_counts`)."""
    def scored(threshold) -> dict:
        out: dict = {split: multilabel_scores(y[split], probs[split] >= threshold, LABEL_NAMES)
                     for split in ("test", "valid")}
        out["items"] = {split: line_counts(y[split], probs[split] >= threshold,
                                           out[split]["micro_f1"]) for split in ("valid", "test")}
        out["items"]["per_label"] = {
            split: per_label_counts(y[split], probs[split] >= threshold, out[split]["macro_f1"])
            for split in ("valid", "test")}
        return out

    peers = {f"{name}_t0.5": {**scored(0.5), "threshold": 0.5, **extra}}
    t = tune_threshold(y["valid"], probs["valid"], candidates)
    peers[f"{name}_tuned"] = {**scored(t), "threshold": t, **extra}
    if per_label:
        ts = tune_thresholds_per_label(y["valid"], probs["valid"], candidates)
        peers[f"{name}_tuned_per_label"] = {
            **scored(ts), "threshold": dict(zip(LABEL_NAMES, map(float, ts), strict=True)), **extra}
    return peers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _tfidf_lr(cfg: BaselineConfig, texts: dict, y: dict) -> tuple[dict, dict]:
    """Probabilities on valid and test of the C (from ``c_grid``) with the best valid micro F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(cfg.ngram_min, cfg.ngram_max),
                                 min_df=cfg.min_df, sublinear_tf=True)
    x = {"train": vectorizer.fit_transform(texts["train"])}
    for split in ("valid", "test"):
        x[split] = vectorizer.transform(texts[split])
    best = None
    for c in cfg.c_grid:
        clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, random_state=cfg.seed))
        clf.fit(x["train"], y["train"].astype(int))
        f1 = multilabel_scores(y["valid"], clf.predict_proba(x["valid"]) >= 0.5, LABEL_NAMES)["micro_f1"]
        if best is None or f1 > best[0]:
            best = (f1, c, clf)
    _, c, clf = best
    probs = {split: clf.predict_proba(x[split]) for split in ("valid", "test")}
    extra = {"train_seconds": round(time.perf_counter() - start, 2), "C": c,
             "features": int(x["train"].shape[1])}
    return probs, extra


NO_LABEL = "none"  # fastText's label for a line without any: fastText skips unlabelled lines


def _fasttext(cfg: BaselineConfig, texts: dict, y: dict) -> tuple[dict, dict]:
    """fastText's per-label probabilities on valid and test, of the (lr, epoch, word_ngrams) with
    the best valid micro F1 at 0.5. A line with none of the labels is trained with the extra
    label :data:`NO_LABEL` (else fastText would skip it, and never learn that a label is absent);
    its probability is not scored."""
    from kexue.peers import fasttext

    documents = {split: [characters(t) for t in texts[split]] for split in texts}
    labels = [[name for name, hit in zip(LABEL_NAMES, row, strict=True) if hit] or [NO_LABEL]
              for row in y["train"]]
    start = time.perf_counter()
    settings = fasttext.grid(cfg.fasttext_lr, cfg.fasttext_epoch, cfg.fasttext_word_ngrams)
    model, valid_probs, chosen = fasttext.tune(
        (documents["train"], labels), documents["valid"], LABEL_NAMES, settings,
        lambda probs: multilabel_scores(y["valid"], probs >= 0.5, LABEL_NAMES)["micro_f1"],
        dim=cfg.fasttext_dim, loss="ova", seed=cfg.seed)
    probs = {"valid": valid_probs,
             "test": fasttext.probabilities(model, documents["test"], LABEL_NAMES)}
    extra = {"train_seconds": round(time.perf_counter() - start, 2),
             "chosen": {"lr": chosen["lr"], "epoch": chosen["epoch"],
                        "word_ngrams": chosen["word_ngrams"], "dim": cfg.fasttext_dim, "loss": "ova"},
             "tried": chosen["candidates"]}
    return probs, extra


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """The `multilabel` network trained with each of ``cfg.losses`` (its params section, only the
    loss changed), scored at probability 0.5 and at thresholds tuned on valid; and the TF-IDF
    and (``cfg.fasttext``) fastText peers, scored the same ways. Thresholds never see test.
    Every peer carries per-line ``items`` for the evaluate stage's paired bootstrap."""
    if cfg.ngram_min > cfg.ngram_max:
        raise ValueError(f"baselines.multilabel: ngram_min={cfg.ngram_min} > ngram_max={cfg.ngram_max}")
    data_dir = Path(data_dir)
    splits = {s: load_split(data_dir, s) for s in ("train", "valid", "test")}
    texts = {s: t for s, (t, _) in splits.items()}
    y = {s: labels for s, (_, labels) in splits.items()}
    candidates = threshold_candidates(cfg.threshold_candidates)
    peers: dict = {}
    if cfg.losses:
        network = require_network(network, "multilabel")
        for loss in cfg.losses:
            from kexue.families.multilabel import MultilabelClassifier, train

            # the sigmoid peers as practitioners train them: no logit adjustment (their thresholds,
            # global and per label, are tuned on valid instead)
            net = dataclasses.replace(network, loss=loss, logit_adjustment=0.0)
            with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
                info = train(net, data_dir, Path(tmp) / "model", None, None, family=f"multilabel_{loss}")
                clf = MultilabelClassifier(Path(tmp) / "model")
                probs = {split: _sigmoid(clf.logits(texts[split])) for split in ("valid", "test")}
            extra = {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"],
                     "best_epoch": info["best_epoch"]}
            peers.update(_threshold_peers(loss, y, probs, candidates, cfg.per_label_thresholds, extra))
    if cfg.tfidf:
        probs, extra = _tfidf_lr(cfg, texts, y)
        tfidf = _threshold_peers("tfidf_lr", y, probs, candidates, cfg.per_label_thresholds, extra)
        peers["tfidf_lr"] = tfidf.pop("tfidf_lr_t0.5")
        peers.update(tfidf)
    if cfg.fasttext:
        probs, extra = _fasttext(cfg, texts, y)
        fast = _threshold_peers("fasttext", y, probs, candidates, cfg.per_label_thresholds, extra)
        peers["fasttext"] = fast.pop("fasttext_t0.5")
        peers.update(fast)
    return peers


def __getattr__(name: str):
    # the network's params schema, imported only when a stage asks for it (it loads Keras)
    if name == "NetworkConfig":
        from kexue.families.multilabel import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
