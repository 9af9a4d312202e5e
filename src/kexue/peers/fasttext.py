"""fastText supervised (Joulin et al. 2017, "Bag of Tricks for Efficient Text Classification")
through ``fasttext-wheel``: the averaged embeddings of a document's tokens and of its hashed token
n-grams (``wordNgrams``) feed a linear classifier, softmax over the labels (one label per document)
or one sigmoid per label (``loss="ova"``, the multi-label mode).

The caller decides what a token is (a character, for the character models of kexue); token
n-grams are then character n-grams. Training is deterministic: one thread and a fixed seed, so a
rerun gives the same model. The training file lives in a temporary directory.

Probabilities are read through the binding's own ``predict`` (``model.f.predict``): the Python
wrapper's ``FastText.predict`` of fasttext-wheel 0.9.2 calls ``np.array(..., copy=False)``,
which numpy 2 rejects. fastText reports ``exp(log(p + 1e-5))`` for each label; :func:`probabilities`
subtracts that 1e-5 again.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

LABEL_PREFIX = "__label__"
_EPSILON = 1e-5  # fastText's predict adds it before the log
_SEPARATORS = " \n\r\t\v\f\0"  # fastText splits a line on these


def require_fasttext():
    try:
        import fasttext
    except ImportError:
        raise ImportError("the fastText peer needs the package fasttext-wheel: "
                          "pip install fasttext-wheel==0.9.2 (make setup installs it)") from None
    return fasttext


def document_line(tokens: Iterable[str]) -> str:
    """The tokens as one fastText input line (space-separated; separator characters inside a
    token are dropped, and so are tokens left empty)."""
    out = []
    for token in tokens:
        clean = "".join(ch for ch in token if ch not in _SEPARATORS)
        if clean.startswith(LABEL_PREFIX):
            raise ValueError(f"fastText peer: the token {clean!r} would be read as a label")
        if clean:
            out.append(clean)
    return " ".join(out)


def fit(documents: Sequence[Sequence[str]], labels: Sequence[Sequence[str]], *, lr: float,
        epoch: int, word_ngrams: int, dim: int, loss: str = "softmax", seed: int = 0,
        bucket: int = 2_000_000):
    """A fastText supervised model of ``documents`` (token lists) with ``labels`` (label names
    per document; a document without any is skipped by fastText). The lines are written in an
    order shuffled by ``seed`` and read by one training thread, so two fits with the same
    arguments give the same model."""
    fasttext = require_fasttext()
    if len(documents) != len(labels):
        raise ValueError(f"fastText peer: {len(documents)} documents but {len(labels)} label lists")
    with tempfile.TemporaryDirectory(prefix="kexue-fasttext-") as tmp:
        path = Path(tmp) / "train.txt"
        with path.open("w", encoding="utf-8") as out:
            # fastText reads the file in order with a decaying learning rate: a file sorted by
            # label would leave the model leaning to the last label, so the lines are shuffled
            for i in np.random.default_rng(seed).permutation(len(documents)):
                tags = " ".join(LABEL_PREFIX + document_line([n]) for n in labels[i])
                out.write(f"{tags} {document_line(documents[i])}\n")
        return fasttext.train_supervised(
            input=str(path), lr=lr, epoch=epoch, wordNgrams=word_ngrams, dim=dim, loss=loss,
            seed=seed, thread=1, minCount=1, bucket=bucket, verbose=0)


def probabilities(model, documents: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """(documents, len(names)): the model's probability of each named label (0 for a label the
    model never saw). Softmax rows sum to 1; ``ova`` gives an independent sigmoid per label."""
    column = {LABEL_PREFIX + name: j for j, name in enumerate(names)}
    out = np.zeros((len(documents), len(names)), dtype=np.float64)
    for i, tokens in enumerate(documents):
        # k = -1: every label; threshold 0: none filtered out
        for prob, label in model.f.predict(document_line(tokens) + "\n", -1, 0.0, "strict"):
            j = column.get(label)
            if j is not None:
                out[i, j] = prob
    return np.clip(out - _EPSILON, 0.0, 1.0)


def grid(lr: Sequence[float], epoch: Sequence[int], word_ngrams: Sequence[int]) -> list[dict]:
    """Every (lr, epoch, word_ngrams) setting, in that nesting order."""
    settings = [{"lr": a, "epoch": b, "word_ngrams": c} for a in lr for b in epoch for c in word_ngrams]
    if not settings:
        raise ValueError("fastText peer: empty lr / epoch / word_ngrams grid: list at least one "
                         "value of each")
    if min(lr) <= 0 or min(epoch) < 1 or min(word_ngrams) < 1:
        raise ValueError(f"fastText peer: lr {list(lr)} must be > 0, epoch {list(epoch)} and "
                         f"word_ngrams {list(word_ngrams)} >= 1")
    return settings


def tune(train: tuple[Sequence[Sequence[str]], Sequence[Sequence[str]]],
         valid_documents: Sequence[Sequence[str]], names: Sequence[str],
         settings: Sequence[Mapping], score: Callable[[np.ndarray], float], *, dim: int,
         loss: str = "softmax", seed: int = 0):
    """Fit one model per setting of ``settings`` (keys lr, epoch, word_ngrams) on ``train``
    (documents, label lists) and keep the one whose ``score(valid probabilities)`` is highest
    (ties: the earlier setting). Returns (model, valid probabilities,
    {"lr", "epoch", "word_ngrams", "valid_score", "fit_seconds", "candidates", "dim", "loss"})."""
    best = None
    tried = []
    for setting in settings:
        start = time.perf_counter()
        model = fit(*train, **setting, dim=dim, loss=loss, seed=seed)
        seconds = time.perf_counter() - start
        probs = probabilities(model, valid_documents, names)
        value = float(score(probs))
        tried.append({**setting, "valid_score": round(value, 4), "fit_seconds": round(seconds, 2)})
        if best is None or value > best[0]:
            best = (value, model, probs, tried[-1])
    if best is None:
        raise ValueError("fastText peer: no setting to try")
    _, model, probs, chosen = best
    return model, probs, {**chosen, "candidates": tried, "dim": dim, "loss": loss, "seed": seed}
