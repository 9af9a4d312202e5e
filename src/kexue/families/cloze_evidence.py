"""The cloze reader joined to the context-match evidence.

"开学啦！咱们来做完形填空" (kexue.fm/archives/4564) has the reader point at document positions;
the words around the blank, found around a candidate's occurrences, are strong evidence of their
own (the context-match peer, :mod:`kexue.text.context_match`, beats the reader alone on People's
Daily). The reader's candidate distribution and that evidence are joined as a product of experts:

    P(c) ∝ P_reader(c) · exp(w · score(c))

``score`` is context match with the setting the peer chose on valid (read from the peer's output
by `train@cloze`), ``w`` is chosen on valid among ``cloze.context_weights`` (0 = the reader alone)
and saved beside the model (``context.json``, with the training articles' document frequencies the
IDF needs), so the evaluation and ``kexue cloze`` use the same joined model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kexue.corpora.cloze import ClozeSample
from kexue.io import read_json, write_json
from kexue.text.context_match import (
    ContextSetting,
    DocumentFrequency,
    context_scores,
    context_table,
)

EVIDENCE_FILE = "context.json"


@dataclass(frozen=True)
class Evidence:
    """The context-match evidence a trained reader adds: its setting, its weight, and the
    document frequencies of the training articles (for the IDF)."""

    setting: ContextSetting
    weight: float
    frequency: DocumentFrequency

    def scores(self, samples: Sequence[ClozeSample], answer_tags: Sequence[str] | None
               ) -> list[np.ndarray]:
        """Per sample, the context-match score of each candidate (key order)."""
        return [context_scores(context_table(s, answer_tags, self.setting.window,
                                             self.frequency.idf), self.setting) for s in samples]

    def save(self, path: str | Path) -> None:
        write_json(path, {"setting": asdict(self.setting), "weight": self.weight,
                          "articles": self.frequency.articles,
                          "document_frequency": self.frequency.counts}, indent=None)

    @classmethod
    def load(cls, path: str | Path) -> Evidence:
        data = read_json(path)
        return cls(ContextSetting(**data["setting"]), float(data["weight"]),
                   DocumentFrequency(int(data["articles"]), dict(data["document_frequency"])))


def peer_setting(peers: dict) -> ContextSetting:
    """The setting the context-match peer chose on valid, from `baselines@cloze`'s output."""
    try:
        return ContextSetting(**peers["context_match"]["chosen"])
    except KeyError as err:
        raise ValueError("the peers file has no context_match choice: list context_match in "
                         "baselines.cloze.peers and run `dvc repro baselines@cloze`") from err


def join(probs: np.ndarray, scores: np.ndarray, weight: float) -> np.ndarray:
    """``probs`` (index 0 unused, key k at index k) times ``exp(weight · scores)``, renormalised
    over the candidates; index 0 stays 0. Weight 0 is the reader's distribution renormalised
    (its ranking unchanged)."""
    reader = np.maximum(np.asarray(probs, dtype=np.float64)[1:], 1e-30)
    logits = np.log(reader)
    if weight:
        logits = logits + weight * np.asarray(scores, dtype=np.float64)
    logits = logits - logits.max()
    joined = np.exp(logits)
    return np.concatenate([[0.0], joined / joined.sum()])


def choose_weight(probs: Sequence[np.ndarray], scores: Sequence[np.ndarray], labels: np.ndarray,
                  weights: Sequence[float]) -> tuple[float, dict[str, float]]:
    """The weight with the best accuracy on these (valid) samples, the first of equals, and the
    accuracy of each weight tried."""
    tried: dict[str, float] = {}
    best, best_accuracy = weights[0], -1.0
    for w in weights:
        hits = [int(np.argmax(join(p, s, w)[1:]) + 1) == y
                for p, s, y in zip(probs, scores, labels, strict=True)]
        accuracy = round(float(np.mean(hits)), 4)
        tried[str(w)] = accuracy
        if accuracy > best_accuracy:
            best, best_accuracy = w, accuracy
    return float(best), tried
