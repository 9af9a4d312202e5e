"""The headline peers (stage ``baselines@seq2seq``): what a practitioner would try before a
network, on the same paragraphs and references as the model.

- ``lead``: the first N characters of the paragraph, N the median training headline length.
- ``tfidf_clause``: the paragraph's clause with the highest TF-IDF score (n-gram range and
  scoring chosen on valid ROUGE-L).
- ``no_copy_prior`` (``copy_prior_ablation``): the ``seq2seq`` network retrained without its copy
  prior, the ablation of the post's 先验分布.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from kexue.config import require_network
from kexue.corpora.prepared_articles import headline_pairs, load_articles
from kexue.text.rouge import headline_metrics, rouge_l_items
from kexue.text.vocab import characters

if TYPE_CHECKING:
    from kexue.families.seq2seq import Config

_CLAUSE_END = re.compile(r"[，。！？；：,!?;:…]+")


def lead_headline(text: str, chars: int) -> str:
    """The first ``chars`` non-space characters of the paragraph."""
    return "".join(characters(text)[:chars])


def clauses(text: str) -> list[str]:
    """The paragraph cut at clause punctuation (，。！？；：… and ASCII forms), marks dropped."""
    return [c for c in (piece.strip() for piece in _CLAUSE_END.split(text)) if c]


def tfidf_clause(texts: Sequence[str], vectorizer, scoring: str) -> list[str]:
    """Per paragraph, the clause with the highest score under ``vectorizer`` (a fitted
    TfidfVectorizer with ``norm=None``): ``sum`` of its n-gram weights, their ``mean`` per
    character, or the ``cosine`` with the whole paragraph's vector. Ties: the earliest clause."""
    out = []
    for text in texts:
        pieces = clauses(text) or [text]
        weights = vectorizer.transform(pieces)  # (clauses, features), raw tf·idf
        if scoring == "sum":
            score = np.asarray(weights.sum(axis=1)).ravel()
        elif scoring == "mean":
            score = np.asarray(weights.sum(axis=1)).ravel() / np.array([max(len(p), 1) for p in pieces])
        elif scoring == "cosine":
            whole = vectorizer.transform([text])  # (1, features)
            dots = np.asarray((weights @ whole.T).todense()).ravel()
            norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel()) * math.sqrt(
                whole.multiply(whole).sum())
            score = dots / np.maximum(norms, 1e-12)
        else:
            raise ValueError(f"tfidf_clause: scoring {scoring!r}: expected sum | mean | cosine")
        out.append(pieces[int(np.argmax(score))])
    return out


@dataclass(frozen=True)
class BaselineConfig:
    tfidf_ngram_max: list[int] = field(metadata={"min": 1})  # character n-grams 1..n, each tried on valid
    tfidf_scoring: list[Literal["sum", "mean", "cosine"]]  # clause scores tried on valid
    copy_prior_ablation: bool  # retrain the `seq2seq` network without the copy prior


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """The peers on the same paragraphs and references (``network.strip_headline_notes``;
    ``network`` defaults to params.yaml's ``seq2seq`` section, which the ablation retrains);
    every choice among their settings is made on valid (ROUGE-L)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    network = require_network(network, "seq2seq")
    strip = network.strip_headline_notes
    data_dir = Path(data_dir)
    train_texts, train_headlines = headline_pairs(load_articles(data_dir, "train"), strip)
    splits = {s: headline_pairs(load_articles(data_dir, s), strip) for s in ("test", "valid")}
    peers: dict = {}

    chars = int(np.median([len(h) for h in train_headlines]))
    start = time.perf_counter()
    leads = {split: [lead_headline(t, chars) for t in texts] for split, (texts, _) in splits.items()}
    peers["lead"] = {split: headline_metrics(splits[split][1], hyps) for split, hyps in leads.items()}
    peers["lead"]["items"] = {split: rouge_l_items(splits[split][1], hyps)
                              for split, hyps in leads.items()}
    peers["lead"]["chosen"] = {"chars": chars}
    peers["lead"]["seconds"] = round(time.perf_counter() - start, 2)

    if cfg.tfidf_ngram_max and cfg.tfidf_scoring:
        results = {}
        for n in cfg.tfidf_ngram_max:
            start = time.perf_counter()
            vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, n), norm=None,
                                         sublinear_tf=False, lowercase=False)
            vectorizer.fit(train_texts)  # idf from the training paragraphs
            fit_seconds = time.perf_counter() - start
            for scoring in cfg.tfidf_scoring:
                start = time.perf_counter()
                clauses = {split: tfidf_clause(texts, vectorizer, scoring)
                           for split, (texts, _) in splits.items()}
                out = {split: headline_metrics(splits[split][1], hyps) for split, hyps in clauses.items()}
                out["items"] = {split: rouge_l_items(splits[split][1], hyps)
                                for split, hyps in clauses.items()}
                out["chosen"] = {"ngram_max": n, "scoring": scoring}
                out["seconds"] = round(fit_seconds + time.perf_counter() - start, 2)
                results[(n, scoring)] = out
        best = max(results, key=lambda key: (results[key]["valid"]["rougeL"], results[key]["valid"]["rouge1"]))
        peers["tfidf_clause"] = results[best]

    if cfg.copy_prior_ablation:
        from kexue.families.seq2seq import evaluate, train

        net = dataclasses.replace(network, copy_prior=False)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = train(net, data_dir, Path(tmp) / "model", None, None, family="seq2seq_no_prior")
            metrics, _ = evaluate(Path(tmp) / "model", data_dir)
        peers["no_copy_prior"] = {"test": metrics["test"], "valid": metrics["valid"],
                                  "train_seconds": info["train_seconds"],
                                  "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"]}
    return peers


def __getattr__(name: str):
    # the network's params schema, imported only when a stage asks for it (it loads Keras)
    if name == "NetworkConfig":
        from kexue.families.seq2seq import Config

        return Config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
