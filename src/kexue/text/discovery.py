"""Unsupervised word discovery by cohesion (mutual information) and a unigram segmenter.

This follows two posts by 苏剑林 on kexue.fm:

- 【中文分词系列】 2. 基于切分的新词发现 (https://kexue.fm/archives/3913): count the character
  n-grams of a corpus, keep the n-grams whose *minimum internal cohesion* is high, and cut the
  text wherever no such n-gram spans the gap between two characters; the pieces are the words.
- 最小熵原理（二）：“当机立断”之词库构建 (https://kexue.fm/archives/5476): the same cut,
  justified by the minimum-entropy principle — merging two units whose pointwise mutual
  information is large lowers the *average information per character* needed to memorise the
  corpus; the resulting lexicon then drives a unigram (maximum probability) segmenter, and the
  average entropy per character before (characters) and after (words) measures the gain.

Pipeline: :func:`count_ngrams` → :func:`cohesion_split` → :func:`build_lexicon` →
:func:`segment_with_lexicon` (or :class:`UnigramSegmenter` for many texts), and
:func:`average_char_entropy` to compare segmentations. Pure Python / NumPy.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

#: The post's default thresholds on the cohesion *ratio* for 2-, 3- and 4-grams are 5, 25, 125
#: (each extra character multiplies the bar by 5); here they are natural logarithms of those.
DEFAULT_THRESHOLDS: tuple[float, ...] = (math.log(5), math.log(25), math.log(125))


def count_ngrams(texts: Iterable[str], max_n: int) -> tuple[dict[str, int], int]:
    """Counts of every character n-gram with ``1 <= n <= max_n`` and the number of characters.

    N-grams are counted inside each text only (a text is a run of Chinese text, e.g. a sentence
    between punctuation marks), never across two texts. The total is ``sum(len(text))``, i.e.
    the sum of the 1-gram counts, which the posts use as the corpus size when turning counts into
    probabilities ``P(w) = count(w) / total``.
    """
    if max_n < 1:
        raise ValueError(f"count_ngrams: max_n must be >= 1, got {max_n}")
    counter: Counter[str] = Counter()
    total = 0
    for text in texts:
        length = len(text)
        total += length
        for n in range(1, min(max_n, length) + 1):
            counter.update(text[i : i + n] for i in range(length - n + 1))
    return dict(counter), total


def min_cohesion(ngram: str, counts: dict[str, int], total: int) -> float:
    """The post's *minimum internal cohesion* of an n-gram (n >= 2), in nats:

    ``min_k log( count(w) * total / (count(w[:k]) * count(w[k:])) )`` over ``1 <= k < n``,

    i.e. the pointwise mutual information ``log P(w) / (P(w[:k]) P(w[k:]))`` of its weakest
    split (3913: "最小的凝固度"; 5476: the mutual information that decides whether two
    neighbouring units are merged). ``-inf`` when the n-gram was never seen.
    """
    if len(ngram) < 2:
        raise ValueError(f"min_cohesion: need an n-gram of length >= 2, got {ngram!r}")
    count = counts.get(ngram, 0)
    if count <= 0:
        return -math.inf
    # the weakest split has the largest product of its parts' counts
    largest = max(counts[ngram[:k]] * counts[ngram[k:]] for k in range(1, len(ngram)))
    return math.log(count * total / largest)


def cohesive_ngrams(counts: dict[str, int], total: int, min_count: int,
                    thresholds: Sequence[float], max_n: int) -> set[str]:
    """The n-grams (``2 <= n <= max_n``) that may hold a boundary together: seen at least
    ``min_count`` times and with :func:`min_cohesion` above ``thresholds[n - 2]``."""
    if len(thresholds) < max_n - 1:
        raise ValueError(f"need {max_n - 1} thresholds (for n = 2..{max_n}), got {len(thresholds)}")
    good = set()
    for ngram, count in counts.items():
        n = len(ngram)
        if 2 <= n <= max_n and count >= min_count \
                and min_cohesion(ngram, counts, total) > thresholds[n - 2]:
            good.add(ngram)
    return good


def _cut(text: str, good: set[str], max_n: int) -> list[str]:
    """Cut ``text`` at every gap that no cohesive n-gram covers."""
    if len(text) < 2:
        return [text] if text else []
    keep = np.zeros(len(text) - 1, dtype=bool)  # keep[i]: gap between text[i] and text[i + 1]
    for i in range(len(text) - 1):
        for n in range(2, min(max_n, len(text) - i) + 1):
            if text[i : i + n] in good:
                keep[i : i + n - 1] = True
    pieces, start = [], 0
    for i in np.flatnonzero(~keep):
        pieces.append(text[start : i + 1])
        start = i + 1
    pieces.append(text[start:])
    return pieces


def cohesion_split(texts: Iterable[str], counts: dict[str, int], total: int, min_count: int,
                   thresholds: Sequence[float], max_n: int) -> list[list[str]]:
    """The segmentation step of 3913 ("基于切分的新词发现"), pieces per text.

    The gap between characters ``i`` and ``i + 1`` is kept (not cut) when some n-gram of the text
    with ``2 <= n <= max_n`` that contains both characters is *cohesive*: it occurs at least
    ``min_count`` times in ``counts`` and its :func:`min_cohesion` exceeds ``thresholds[n - 2]``
    (natural log; the post uses log 5, log 25, log 125 for n = 2, 3, 4). Every other gap is cut;
    the pieces are the candidate words, and ``"".join(pieces) == text``.
    """
    good = cohesive_ngrams(counts, total, min_count, thresholds, max_n)
    return [_cut(text, good, max_n) for text in texts]


def build_lexicon(texts: Iterable[str], max_n: int = 4, min_count: int = 8,
                  thresholds: Sequence[float] = DEFAULT_THRESHOLDS, max_word_len: int = 6,
                  ) -> dict[str, int]:
    """A lexicon ``{word: frequency}`` learned without supervision (3913 / 5476).

    Counts n-grams (:func:`count_ngrams`), cuts the texts (:func:`cohesion_split`) and counts the
    pieces. Pieces of length ``2..max_word_len`` are the candidate words. A piece longer than
    ``max_word_len`` (usually a run of several frequent words glued by cohesive n-grams) is
    *split back into its characters*, so the lexicon stays a unigram model of the whole corpus:
    its counts add up to the number of units of some segmentation of every text. Every character
    of the corpus is in the lexicon, with its frequency as a one-character piece, or 1 if it
    never stood alone (so that the segmenter can always fall back to it).
    """
    texts = list(texts)
    counts, total = count_ngrams(texts, max_n)
    lexicon: Counter[str] = Counter()
    for pieces in cohesion_split(texts, counts, total, min_count, thresholds, max_n):
        for piece in pieces:
            if len(piece) <= max_word_len:
                lexicon[piece] += 1
            else:
                lexicon.update(piece)
    for ngram in counts:
        if len(ngram) == 1 and ngram not in lexicon:
            lexicon[ngram] = 1
    return dict(lexicon)


class UnigramSegmenter:
    """Maximum-probability segmentation under a unigram word model (5476, "一元分词模型").

    ``P(w) = lexicon[w] / sum(lexicon.values())``; a character absent from the lexicon gets the
    floor count ``unknown_count`` (below any observed count). Dynamic programming over the
    positions of the text picks the segmentation into lexicon words and single characters with
    the largest total log-probability, i.e. the fewest bits to encode the text.
    """

    def __init__(self, lexicon: dict[str, int], unknown_count: float = 0.5):
        total = sum(lexicon.values())
        if total <= 0:
            raise ValueError("UnigramSegmenter: empty lexicon")
        log_total = math.log(total)
        self.logp = {w: math.log(c) - log_total for w, c in lexicon.items() if c > 0 and w}
        self.unknown_logp = math.log(unknown_count) - log_total
        self.max_len = max(len(w) for w in self.logp)

    def segment(self, text: str) -> list[str]:
        size = len(text)
        best = [0.0] + [-math.inf] * size  # best[j]: best score of text[:j]
        back = [0] * (size + 1)
        logp = self.logp
        for j in range(1, size + 1):
            for i in range(max(0, j - self.max_len), j):
                word = text[i:j]
                score = logp.get(word)
                if score is None:
                    if j - i > 1:
                        continue
                    score = self.unknown_logp
                score += best[i]
                if score > best[j]:
                    best[j], back[j] = score, i
        words, j = [], size
        while j > 0:
            words.append(text[back[j] : j])
            j = back[j]
        return words[::-1]

    def __call__(self, text: str) -> list[str]:
        return self.segment(text)


def segment_with_lexicon(text: str, lexicon: dict[str, int]) -> list[str]:
    """Segment one text with :class:`UnigramSegmenter`; ``"".join(result) == text``.

    Builds the model on every call — for many texts build one :class:`UnigramSegmenter`
    (or use :func:`segment_texts`)."""
    return UnigramSegmenter(lexicon).segment(text)


def segment_texts(texts: Iterable[str], lexicon: dict[str, int]) -> list[list[str]]:
    """:func:`segment_with_lexicon` for many texts, sharing one model."""
    segmenter = UnigramSegmenter(lexicon)
    return [segmenter.segment(text) for text in texts]


def average_char_entropy(words_per_text: list[list[str]]) -> float:
    """Average information per character, in bits, of a corpus cut into units (5476, "平均字信息熵").

    With a unigram model of the units, ``p(w) = N_w / N`` (``N`` unit tokens), the cost of
    memorising the corpus is ``-sum_w N_w log2 p(w)``; dividing by the number of characters gives
    bits per character. Units = characters gives the character entropy; units = words is lower
    when the words are good (the post's criterion for a lexicon).
    """
    units = Counter(w for words in words_per_text for w in words)
    n_units = sum(units.values())
    n_chars = sum(len(w) * c for w, c in units.items())
    if n_chars == 0:
        return 0.0
    freq = np.fromiter(units.values(), dtype=np.float64, count=len(units))
    bits = -np.sum(freq * np.log2(freq / n_units))
    return float(bits / n_chars)
