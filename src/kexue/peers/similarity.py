"""The similarity peers (stage ``baselines@similarity``), on the query sets of
:mod:`kexue.retrieval`. Peers score the same queries and candidates as the network: TF-IDF over
character n-grams (cosine), BM25 (``bm25s``, :mod:`kexue.peers.bm25`) over characters and/or
bigrams, and the network (:mod:`kexue.families.similarity`) retrained with m = 0 (softmax over
s·cos θ) in that stage, the only peer that imports Keras. Their settings are chosen on valid by
the sentence set (top-1, then MRR); test is scored once, for the choice.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from kexue.config import require_network
from kexue.corpora.prepared_articles import load_articles
from kexue.retrieval import members, selection_key, split_retrieval
from kexue.text.vocab import characters

if TYPE_CHECKING:
    from kexue.families.similarity import Config


def bm25_terms(text: str, terms: str) -> list[str]:
    """The terms BM25 indexes: characters, character bigrams, or both."""
    chars = characters(text)
    out = []
    if terms in ("chars", "both"):
        out.extend(chars)
    if terms in ("bigrams", "both"):
        out.extend(a + b for a, b in zip(chars, chars[1:], strict=False))
    return out


@dataclass(frozen=True)
class BaselineConfig:
    tfidf_ngram_max: list[int]  # TF-IDF character n-grams 1..n; each n is tried, the best on valid kept
    tfidf_min_df: int = field(metadata={"min": 1})  # n-grams in fewer training texts are dropped
    bm25_terms: list[Literal["chars", "bigrams", "both"]]  # tried on valid, the best kept
    bm25_k1: list[float]  # BM25 term-frequency saturation: each tried on valid (with each b, terms)
    bm25_b: list[float]  # BM25 length normalisation, in [0, 1]: likewise
    margin_ablation: bool  # retrain the `similarity` network with margin 0 (softmax over s·cos θ)


def _pick_on_valid(options: dict, articles: dict) -> tuple[str, dict]:
    """``options``: name → score function (queries, candidates) → scores. Every option is scored
    on valid; the one best there (sentence set top-1, then MRR) is scored once on test. Returns
    its name and ``{"test", "valid", "items", "valid_by_option"}`` (each option's valid
    sentence set top-1)."""
    valid = {name: split_retrieval(articles["valid"], score) for name, score in options.items()}
    best = max(valid, key=lambda name: selection_key(valid[name][0]))
    test_metrics, test_items = split_retrieval(articles["test"], options[best])
    return best, {"test": test_metrics, "valid": valid[best][0],
                  "items": {"valid": valid[best][1]["sentence"], "test": test_items["sentence"],
                            "headline": {"valid": valid[best][1]["headline"],
                                         "test": test_items["headline"]}},
                  "valid_by_option": {name: result[0]["sentence_top1"]
                                      for name, result in valid.items()}}


def fit_tfidf(train_texts: Sequence[str], ngram_max: int, min_df: int):
    """The TF-IDF peer: character n-grams 1..``ngram_max``, sublinear tf, idf from
    ``train_texts`` (the training articles, as the network learns), rows L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=min_df,
                           sublinear_tf=True).fit(train_texts)


def tfidf_scores(vectorizer, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """(queries, candidates) cosines of the TF-IDF vectors."""
    return np.asarray((vectorizer.transform(queries) @ vectorizer.transform(candidates).T).todense())


def bm25_scores(queries: Sequence[str], candidates: Sequence[str], terms: str, k1: float,
                b: float) -> np.ndarray:
    """(queries, candidates) BM25 scores (``bm25s``), the candidates being the collection."""
    from kexue.peers import bm25

    return bm25.scores([bm25_terms(c, terms) for c in candidates],
                       [bm25_terms(q, terms) for q in queries], k1, b)


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """The peers on the same queries and candidates (both query sets); every choice among their
    settings is made on valid only, and test is scored once, for the choice."""
    data_dir = Path(data_dir)
    articles = {s: load_articles(data_dir, s) for s in ("test", "valid")}
    peers: dict = {}

    if cfg.tfidf_ngram_max:
        start = time.perf_counter()
        train_texts = members(load_articles(data_dir, "train"), 1)[0]
        vectorizers: dict = {}

        def tfidf(ngram_max: int):
            def score(queries, candidates):
                if ngram_max not in vectorizers:
                    vectorizers[ngram_max] = fit_tfidf(train_texts, ngram_max, cfg.tfidf_min_df)
                return tfidf_scores(vectorizers[ngram_max], queries, candidates)
            return score

        best, peers["tfidf_char"] = _pick_on_valid(
            {str(n): tfidf(n) for n in cfg.tfidf_ngram_max}, articles)
        peers["tfidf_char"]["chosen"] = {"ngram_max": int(best),
                                         "features": len(vectorizers[int(best)].vocabulary_)}
        peers["tfidf_char"]["seconds"] = round(time.perf_counter() - start, 2)

    if cfg.bm25_terms:
        start = time.perf_counter()
        grid = {f"{terms} k1={k1:g} b={b:g}": (terms, k1, b)
                for terms in cfg.bm25_terms for k1 in cfg.bm25_k1 for b in cfg.bm25_b}

        def bm25(terms: str, k1: float, b: float):
            return lambda queries, candidates: bm25_scores(queries, candidates, terms, k1, b)

        best, peers["bm25"] = _pick_on_valid({name: bm25(*option) for name, option in grid.items()},
                                             articles)
        terms, k1, b = grid[best]
        peers["bm25"]["chosen"] = {"terms": terms, "k1": k1, "b": b}
        peers["bm25"]["seconds"] = round(time.perf_counter() - start, 2)

    if cfg.margin_ablation:
        from kexue.families.similarity import evaluate, train

        net = dataclasses.replace(require_network(network, "similarity"), margin=0.0)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = train(net, data_dir, Path(tmp) / "model", None, None, family="similarity_m0")
            metrics, _ = evaluate(Path(tmp) / "model", data_dir)
        peers["softmax_m0"] = {"test": metrics["test"], "valid": metrics["valid"],
                               "items": {s: metrics["items"][s] for s in ("valid", "test", "headline")},
                               "train_seconds": info["train_seconds"],
                               "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"]}
        if "parts" in metrics:  # the margin acts on the learnt part: its figures alone too
            peers["softmax_m0"]["parts"] = metrics["parts"]
    return peers


def __getattr__(name: str):
    # the network's params schema, imported only when a stage asks for it (it loads Keras)
    if name == "NetworkConfig":
        from kexue.families.similarity import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
