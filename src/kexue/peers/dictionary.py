"""The dictionary segmenters a practitioner reaches for first: jieba (its own 350k-word
dictionary, HMM for unknown words on or off) and forward maximum matching over a vocabulary; and
the timer that gives any segmenter's characters per second."""

from __future__ import annotations

import time
from collections.abc import Sequence


def max_match(text: str, vocab: set[str], longest: int) -> list[str]:
    """Forward maximum matching: at each position take the longest vocabulary word that
    starts there (a single character when none does)."""
    words, i = [], 0
    while i < len(text):
        for size in range(min(longest, len(text) - i), 0, -1):
            if size == 1 or text[i : i + size] in vocab:
                words.append(text[i : i + size])
                i += size
                break
    return words


def chars_per_second(cut, texts: Sequence[str]) -> tuple[list, float]:
    """``(cut(texts), characters per second of that call)``: any per-text tool, timed alone."""
    start = time.perf_counter()
    words = cut(texts)
    seconds = time.perf_counter() - start
    return words, round(sum(len(t) for t in texts) / seconds, 1)


def jieba_cutter(hmm: bool):
    """``cut(texts)`` → words per text with jieba (whitespace dropped); the dictionary is loaded
    here, outside any timing."""
    import jieba

    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()  # load the dictionary now, not inside the timing
    return lambda texts: [[w for w in tokenizer.cut(t, HMM=hmm) if not w.isspace()] for t in texts]
