"""Unsupervised word discovery: boundary entropy + a unigram (minimum-entropy) term, then a DP.

Sources, all by 苏剑林 on kexue.fm:

- 【中文分词系列】 1. 基于AC自动机的快速分词 / 2. 基于切分的新词发现 (https://kexue.fm/archives/3913)
  and 【中文分词系列】 3. 字标注法与HMM模型 / 5. 基于语言模型的无监督分词
  (https://kexue.fm/archives/3956): words are found from raw text alone — n-gram counts, the
  *free-ness* of a string (the entropy of the characters on its left and right: a word can be
  followed and preceded by many different things) and its *cohesion* (mutual information), and a
  dynamic programme that picks the best segmentation under the learnt scores.
- 最小熵原理（二）：“当机立断”之词库构建 (https://kexue.fm/archives/5476) and 最小熵原理（三）
  (https://kexue.fm/archives/5597): a good lexicon lowers the *average information per
  character* of the corpus under a unigram word model; merging two units with a large pointwise
  mutual information lowers it. :func:`average_char_entropy` measures it before and after.

The boundary criterion used here is the *normalised variation of branching entropy* (nVBE,
Magistry & Sagot 2012, an elaboration of the free-ness above): for a string ``x`` of length
``n``, ``VBE_right(x) = H_right(x) - H_right(x[:-1])`` (how much more uncertain the next
character becomes once ``x`` is complete; it jumps up at a word end) and
``VBE_left(x) = H_left(x) - H_left(x[1:])``; each is standardised (z-score) over all the
distinct strings of the same length so that lengths compare, and the *autonomy* is
``a(x) = z(VBE_left(x)) + z(VBE_right(x))``.

A word's score is ``len(w) * a(w) - word_penalty + lm_weight * log P(w)``: the autonomy of every
character it covers, a fixed cost per word (a bias against cutting: without it the DP cuts
more often than the PKU standard does), and the unigram log-probability of 5476, with ``P`` estimated from a first segmentation of the corpus without that term. The
segmentation of a text is the one that maximises the sum of its words' scores
(:func:`best_segmentation`); the lexicon is the set of words that segmentation uses, with their
counts and scores, so a :class:`LexiconSegmenter` built from it reproduces it.

Digit runs (with a decimal point, %, 万/亿 and a trailing 年/月/日), Latin runs and runs of one
punctuation mark are fixed tokens (:func:`pretokenize`); only runs of Chinese characters are
segmented. Pure Python / NumPy.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DIGITS = "0-9０-９"
_LATIN = "A-Za-zＡ-Ｚａ-ｚ"


def _token_pattern(number_suffixes: str) -> re.Pattern:
    suffix = f"[{re.escape(number_suffixes)}]?" if number_suffixes else ""
    number = rf"[{_DIGITS}]+(?:[.．∶:／/·][{_DIGITS}]+)*[%％‰]?[万亿]?{suffix}"
    return re.compile(
        rf"(?P<cjk>[{_CJK}]+)|(?P<num>{number})|(?P<lat>[{_LATIN}][{_LATIN}{_DIGITS}]*)"
        rf"|(?P<space>\s+)|(?P<other>(?P<mark>[^{_CJK}{_DIGITS}{_LATIN}\s])(?P=mark)*)")


_PATTERNS: dict[str, re.Pattern] = {}


def pretokenize(text: str, number_suffixes: str = "年月日") -> list[tuple[str, str]]:
    """``[(kind, piece)]`` with kind ``cjk`` (a run of Chinese characters, to be segmented),
    ``num`` (digits with an optional decimal part, %, 万/亿 and one of ``number_suffixes``:
    the PKU standard writes １９９７年, １月, ６３．５万 as one word), ``lat`` (a Latin run, digits
    allowed after the first letter) or ``other`` (a run of one repeated mark: ，, ——, ……).
    Whitespace is dropped."""
    pattern = _PATTERNS.get(number_suffixes)
    if pattern is None:
        pattern = _PATTERNS[number_suffixes] = _token_pattern(number_suffixes)
    out = []
    for match in pattern.finditer(text):
        kind = "other" if match.group("other") is not None else match.lastgroup
        if kind != "space":
            out.append((kind, match.group(0)))
    return out


@dataclass
class NgramStatistics:
    """Counts and branching entropies (nats) of every n-gram of Chinese characters, by length.

    ``by_length[n]`` holds parallel arrays over the distinct n-grams: ``ngrams`` (strings),
    ``count``, ``h_left`` / ``h_right`` (entropy of the unit just before / after, where the text
    boundary, each punctuation run, "a number" and "a Latin run" are units too), ``vbe_left`` /
    ``vbe_right`` (the variation of branching entropy; for n = 1 relative to the entropy of the
    unit distribution)."""

    by_length: dict[int, dict[str, np.ndarray]]

    def autonomy(self, min_count: int = 2) -> dict[str, tuple[int, float]]:
        """``{ngram: (count, a)}`` for n-grams seen at least ``min_count`` times, with
        ``a = z(vbe_left) + z(vbe_right)``, each z-score over all distinct n-grams of that
        length (Magistry & Sagot's normalisation, so that scores of different lengths compare)."""
        out: dict[str, tuple[int, float]] = {}
        for table in self.by_length.values():
            score = np.zeros(len(table["count"]))
            for key in ("vbe_left", "vbe_right"):
                values = table[key]
                std = values.std()
                score += (values - values.mean()) / (std if std > 0 else 1.0)
            for i in np.flatnonzero(table["count"] >= min_count):
                out[table["ngrams"][i]] = (int(table["count"][i]), float(score[i]))
        return out


def _entropy_by_group(groups: np.ndarray, neighbours: np.ndarray, n_groups: int,
                      n_units: int) -> np.ndarray:
    """Entropy of the neighbour distribution of each group: ``log T - sum c log c / T``."""
    pairs, counts = np.unique(groups * n_units + neighbours, return_counts=True)
    owner = pairs // n_units
    total = np.bincount(owner, weights=counts, minlength=n_groups)
    plogp = np.bincount(owner, weights=counts * np.log(counts), minlength=n_groups)
    return np.log(total) - plogp / total


def ngram_statistics(texts: Iterable[str], max_n: int, number_suffixes: str = "年月日",
                     ) -> NgramStatistics:
    """Count the n-grams (``1 <= n <= max_n``) inside the Chinese runs of ``texts`` and the
    entropy of their left and right neighbours, vectorised with NumPy.

    The corpus becomes one array of unit ids with a boundary id between texts; the n-grams of
    length n get dense ids level by level (``id_n = id_{n-1}(prefix) * V + last unit``, then
    ``np.unique``), so codes stay far below 2**63 whatever ``max_n``."""
    if max_n < 1:
        raise ValueError(f"ngram_statistics: max_n must be >= 1, got {max_n}")
    units = {"<boundary>": 0, "<num>": 1, "<lat>": 2}
    ids = [0]
    for text in texts:
        for kind, piece in pretokenize(text, number_suffixes):
            if kind == "cjk":
                ids.extend(units.setdefault(char, len(units)) for char in piece)
            elif kind in ("num", "lat"):
                ids.append(units[f"<{kind}>"])
            else:
                ids.append(units.setdefault(piece, len(units)))
        ids.append(0)
    corpus = np.array(ids, dtype=np.int64)  # (n_positions,) starts and ends with a boundary
    names = np.array(list(units), dtype=object)
    n_units = len(units)
    is_cjk = np.array([len(u) == 1 and bool(re.match(f"[{_CJK}]", u)) for u in units])[corpus]
    unit_counts = np.bincount(corpus, minlength=n_units)[1:]  # boundaries excluded
    p = unit_counts[unit_counts > 0] / unit_counts.sum()
    h_units = float(-(p * np.log(p)).sum())

    by_length: dict[int, dict[str, np.ndarray]] = {}
    valid = code = dense = None
    for n in range(1, max_n + 1):
        if n == 1:
            valid, code = is_cjk, corpus
        else:  # the n-gram at i = the (n-1)-gram at i followed by unit i + n - 1
            valid = valid[:-1] & is_cjk[n - 1 :]
            code = dense[:-1] * n_units + corpus[n - 1 :]
        starts = np.flatnonzero(valid)  # every valid n-gram has a unit on each side
        if len(starts) == 0:
            break
        uniq, first, inverse, count = np.unique(code[starts], return_index=True,
                                                return_inverse=True, return_counts=True)
        dense = np.full(len(code), -1, dtype=np.int64)
        dense[starts] = inverse
        first = starts[first]
        h_right = _entropy_by_group(inverse, corpus[starts + n], len(uniq), n_units)
        h_left = _entropy_by_group(inverse, corpus[starts - 1], len(uniq), n_units)
        if n == 1:
            vbe_right, vbe_left = h_right - h_units, h_left - h_units
        else:
            shorter = by_length[n - 1]
            vbe_right = h_right - shorter["h_right"][uniq // n_units]  # prefix x[:-1]
            vbe_left = h_left - shorter["h_left"][shorter["dense"][first + 1]]  # suffix x[1:]
        ngrams = np.array(["".join(names[corpus[i : i + n]]) for i in first], dtype=object)
        by_length[n] = {"ngrams": ngrams, "count": count, "h_left": h_left, "h_right": h_right,
                        "vbe_left": vbe_left, "vbe_right": vbe_right, "dense": dense}
    for table in by_length.values():
        del table["dense"]
    return NgramStatistics(by_length)


def best_segmentation(run: str, scores: dict[str, float], max_len: int,
                      unknown: float) -> list[str]:
    """The segmentation of ``run`` into words of ``scores`` (and single characters, which score
    ``unknown`` when absent) that maximises the sum of the word scores; dynamic programming over
    end positions, ties to the earliest start."""
    size = len(run)
    best = [0.0] + [-math.inf] * size  # best[j]: best total of run[:j]
    back = [0] * (size + 1)
    for j in range(1, size + 1):
        for i in range(max(0, j - max_len), j):
            score = scores.get(run[i:j])
            if score is None:
                if j - i > 1:
                    continue
                score = unknown
            score += best[i]
            if score > best[j]:
                best[j], back[j] = score, i
    words, j = [], size
    while j > 0:
        words.append(run[back[j] : j])
        j = back[j]
    return words[::-1]


class _RunSegmenter:
    """Segments whole texts: fixed tokens pass through, Chinese runs go to the DP (memoised)."""

    def __init__(self, scores: dict[str, float], max_len: int, number_suffixes: str):
        self.scores, self.max_len, self.number_suffixes = scores, max_len, number_suffixes
        self.unknown = min(scores.values(), default=0.0) - 1.0
        self.cache: dict[str, list[str]] = {}

    def __call__(self, text: str) -> list[str]:
        words: list[str] = []
        for kind, piece in pretokenize(text, self.number_suffixes):
            if kind != "cjk":
                words.append(piece)
                continue
            cut = self.cache.get(piece)
            if cut is None:
                cut = best_segmentation(piece, self.scores, self.max_len, self.unknown)
                if len(self.cache) < 2_000_000:
                    self.cache[piece] = cut
            words.extend(cut)
        return words


@dataclass(frozen=True)
class DiscoveryConfig:
    """Hyper-parameters of :func:`learn_lexicon` (chosen on People's Daily valid lines).

    - ``max_word_len``: longest candidate word; 4 beats 5 and 6 (PKU cuts long compounds).
    - ``min_count``: a candidate must occur this often (2 beats 3 and 5).
    - ``word_penalty``: a fixed cost per word, i.e. a bias against cutting; 1.5 balances P and R.
    - ``lm_weight``: weight of the unigram log-probability (5476's minimum-entropy term).
    - ``number_suffixes``: characters glued to a digit run (see :func:`pretokenize`).
    """

    max_word_len: int = 4
    min_count: int = 2
    word_penalty: float = 1.5
    lm_weight: float = 0.3
    number_suffixes: str = "年月日"

    def __post_init__(self):
        if self.max_word_len < 1 or self.min_count < 1:
            raise ValueError(f"DiscoveryConfig: max_word_len and min_count must be >= 1: {self}")


@dataclass
class Lexicon:
    """The learnt words ``{word: (count, score)}``: count = uses in the segmented corpus,
    score = the word's term in the DP objective. Only Chinese words are listed (numbers, Latin
    and punctuation are fixed tokens)."""

    words: dict[str, tuple[int, float]]
    config: DiscoveryConfig

    def rows(self) -> list[tuple[str, int, float]]:
        """``(word, count, score)`` by decreasing count, then word."""
        return sorted(((w, c, s) for w, (c, s) in self.words.items()),
                      key=lambda row: (-row[1], row[0]))

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence], config: DiscoveryConfig) -> Lexicon:
        return cls({str(w): (int(c), float(s)) for w, c, s in rows}, config)

    def config_dict(self) -> dict:
        return asdict(self.config)

    def segmenter(self) -> LexiconSegmenter:
        return LexiconSegmenter(self)

    def __len__(self) -> int:
        return len(self.words)

    @property
    def n_used(self) -> int:
        """Words the segmented corpus uses (count > 0): the lexicon size to report."""
        return sum(count > 0 for count, _ in self.words.values())


class LexiconSegmenter:
    """Maximum-score segmentation of whole texts with a :class:`Lexicon`:
    ``"".join(segmenter(text))`` is ``text`` without its whitespace."""

    def __init__(self, lexicon: Lexicon):
        cfg = lexicon.config
        self._run = _RunSegmenter({w: s for w, (_, s) in lexicon.words.items()},
                                  cfg.max_word_len, cfg.number_suffixes)

    def segment(self, text: str) -> list[str]:
        return self._run(text)

    __call__ = segment


def learn_lexicon(texts: Iterable[str], cfg: DiscoveryConfig = DiscoveryConfig()) -> Lexicon:
    """Learn a lexicon from raw ``texts`` (no word boundaries) and segment them with it.

    1. :func:`ngram_statistics` up to ``max_word_len``; the autonomy ``a(w)`` of every n-gram
       seen ``min_count`` times.
    2. First pass: segment every text maximising ``sum len(w) a(w)`` (the plain nVBE
       segmentation); the unit counts give the unigram model ``P(w) = count / tokens`` (unused candidates get 0.5).
    3. Second pass with ``len(w) a(w) - word_penalty + lm_weight log P(w)``; the words it uses
       form the lexicon, with their counts. Every character keeps its score (count 0 when it
       was never a word on its own) for new texts. ``lexicon.segmenter()`` reproduces the
       second pass (the DP's optimum uses only lexicon words, so dropping the unused
       candidates cannot change it).
    """
    texts = list(texts)
    stats = ngram_statistics(texts, cfg.max_word_len, cfg.number_suffixes)
    autonomy = stats.autonomy(cfg.min_count)
    first = {w: len(w) * a for w, (_, a) in autonomy.items()}
    run = _RunSegmenter(first, cfg.max_word_len, cfg.number_suffixes)
    tokens = Counter(w for text in texts for w in run(text))
    log_total = math.log(max(sum(tokens.values()), 1))
    scores = {w: s - cfg.word_penalty + cfg.lm_weight * (math.log(tokens.get(w, 0.5)) - log_total)
              for w, s in first.items()}
    run = _RunSegmenter(scores, cfg.max_word_len, cfg.number_suffixes)
    used = Counter(w for text in texts for w in run(text) if w in scores)
    words = {w: (c, scores[w]) for w, c in used.items()}
    for char in (w for w in scores if len(w) == 1 and w not in words):
        words[char] = (0, scores[char])  # keep every known character's own score
    return Lexicon(words, cfg)


def average_char_entropy(words_per_text: Iterable[Sequence[str]]) -> float:
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
