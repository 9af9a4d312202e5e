"""A linear-chain CRF over character-window features (CRFsuite through ``sklearn-crfsuite``):
the classic practitioner's tagger for Chinese segmentation and NER.

Features of character i: the characters at i-2 .. i+2, the bigrams (i-1, i) and (i, i+1) and
(i-2, i-1), (i+1, i+2), the character classes of i-1, i, i+1, and sentence start / end. Trained with
L-BFGS and elastic-net penalties c1 (L1) and c2 (L2), chosen on valid.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable, Sequence

_PAD = "<s>", "</s>"


def char_class(char: str) -> str:
    """d digit, l latin letter, h CJK ideograph, p punctuation, o other."""
    if char in _PAD:
        return char
    if char.isdigit() or unicodedata.category(char) == "Nd":
        return "d"
    if char.isascii() and char.isalpha() or unicodedata.name(char, "").startswith("FULLWIDTH LATIN"):
        return "l"
    if "CJK UNIFIED" in unicodedata.name(char, ""):
        return "h"
    if unicodedata.category(char).startswith("P"):
        return "p"
    return "o"


def char_features(text: str) -> list[dict[str, str]]:
    """One feature dict per character of ``text``."""
    chars = [_PAD[0], _PAD[0], *text, _PAD[1], _PAD[1]]
    out = []
    for i in range(2, len(chars) - 2):
        c = chars
        out.append({
            "c-2": c[i - 2], "c-1": c[i - 1], "c0": c[i], "c+1": c[i + 1], "c+2": c[i + 2],
            "b-2": c[i - 2] + c[i - 1], "b-1": c[i - 1] + c[i], "b+1": c[i] + c[i + 1],
            "b+2": c[i + 1] + c[i + 2], "b-1+1": c[i - 1] + c[i + 1],
            "k-1": char_class(c[i - 1]), "k0": char_class(c[i]), "k+1": char_class(c[i + 1]),
            "k-1k0k+1": char_class(c[i - 1]) + char_class(c[i]) + char_class(c[i + 1]),
        })
    return out


def require_crfsuite():
    try:
        import sklearn_crfsuite
    except ImportError:
        raise ImportError("the CRFsuite peer needs the package sklearn-crfsuite: "
                          "pip install sklearn-crfsuite==0.5.0 (make setup installs it)") from None
    return sklearn_crfsuite


def fit(texts: Sequence[str], tags: Sequence[Sequence[str]], c1: float, c2: float,
        max_iterations: int):
    """A CRFsuite model of the tag sequences, L-BFGS with elastic-net penalties."""
    crf = require_crfsuite().CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=max_iterations,
                                 all_possible_transitions=True)
    crf.fit([char_features(t) for t in texts], [list(t) for t in tags])
    return crf


def predict(crf, texts: Sequence[str]) -> list[list[str]]:
    """The most likely tag sequence of each text (empty texts get no tags)."""
    keep = [t for t in texts if t]
    tagged = iter(crf.predict([char_features(t) for t in keep]) if keep else [])
    return [list(next(tagged)) if t else [] for t in texts]


def tune(train: tuple[Sequence[str], Sequence[Sequence[str]]],
         valid: tuple[Sequence[str], Sequence[Sequence[str]]], c1_grid: Sequence[float],
         c2_grid: Sequence[float], max_iterations: int,
         score: Callable[[Sequence[Sequence[str]], Sequence[Sequence[str]]], float]):
    """Fit one model per (c1, c2), keep the one whose ``score(gold, predicted)`` on valid is
    highest; returns (model, {"c1", "c2", "valid_score", "fit_seconds", "candidates"})."""
    best, chosen, tried = None, None, []
    for c1 in c1_grid:
        for c2 in c2_grid:
            start = time.perf_counter()
            crf = fit(*train, c1=c1, c2=c2, max_iterations=max_iterations)
            seconds = time.perf_counter() - start
            value = score(valid[1], predict(crf, valid[0]))
            tried.append({"c1": c1, "c2": c2, "valid_score": round(value, 4),
                          "fit_seconds": round(seconds, 1)})
            if chosen is None or value > chosen["valid_score"]:
                best, chosen = crf, tried[-1]
    if best is None:
        raise ValueError("CRFsuite peer: empty c1 / c2 grid: list at least one value of each")
    return best, {**chosen, "candidates": tried, "max_iterations": max_iterations}
