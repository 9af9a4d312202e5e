"""Character features of the sequence taggers (:mod:`kexue.tagging`): lines cut into pieces at
sentence punctuation, the lookup form of a character, bigrams, and the lexicon codes that say
where known words start and end; :class:`Features` turns a piece into the model's input ids.
No Keras here: the CRFsuite peer and the tests use it without a network."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kexue.io import read_json, write_json
from kexue.text.vocab import Vocab

if TYPE_CHECKING:
    from kexue.tagging import TaggerConfig

_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*")
_CLAUSE_END = re.compile(r"[，、：,:]")

@functools.lru_cache(maxsize=65536)
def normalise_char(ch: str) -> str:
    """The lookup form of a character: NFKC (full-width digits and letters → ASCII), lower case.
    The text itself is never changed; only the vocabulary sees this form."""
    return unicodedata.normalize("NFKC", ch).lower() or ch


def pieces(text: str, maxlen: int) -> list[tuple[int, int]]:
    """Cut ``text`` into ``(start, end)`` pieces of at most ``maxlen`` characters: after
    sentence-final punctuation, then (for long sentences) after clause punctuation, then hard."""
    out: list[tuple[int, int]] = []
    start = 0
    cuts = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for cut in cuts:
        if cut <= start:
            continue
        _cut_long(text, start, cut, maxlen, out)
        start = cut
    return out


def _cut_long(text: str, start: int, end: int, maxlen: int, out: list[tuple[int, int]]) -> None:
    while end - start > maxlen:
        window = text[start : start + maxlen]
        clause = [m.end() for m in _CLAUSE_END.finditer(window)]
        cut = start + (clause[-1] if clause and clause[-1] > maxlen // 4 else maxlen)
        out.append((start, cut))
        start = cut
    if end > start:
        out.append((start, end))


def char_bigrams(chars: Sequence[str]) -> list[str]:
    """The bigram starting at each character; the last pairs with an end marker."""
    return [a + b for a, b in zip(chars, [*chars[1:], "</s>"], strict=True)]


LEXICON_LENGTHS = (2, 3, 4, 5, 6)  # the last one stands for "this long or longer" (up to 8)
_LONGEST_LEXICON_WORD = 8


@functools.lru_cache(maxsize=65536)
def lexicon_char(ch: str) -> str:
    """One character per position for lexicon matching: the normalised form when it is a
    single character (full-width → ASCII), else the character itself."""
    norm = normalise_char(ch)
    return norm if len(norm) == 1 else ch


def lexicon_prefixes(lexicon: set[str]) -> frozenset[str]:
    """Every prefix (2 characters or more) of a lexicon word: lets the scan stop early."""
    return frozenset(w[:m] for w in lexicon for m in range(2, len(w) + 1))


def lexicon_codes(text: str, lexicon: set[str], prefixes: frozenset[str] | None = None) -> np.ndarray:
    """Per character, which lexicon words start and end at it, by length (2, 3, 4, 5, 6-8): two
    bits per length, packed into one id in 1..1024 (0 is padding). ``text`` and the lexicon
    are in :func:`lexicon_char` form.

    Why: a dictionary feature tells the network where known words could begin and end, which
    a window of character embeddings sees only indirectly; segmenters have long used it (e.g.
    Zhang, Zhang & Fu 2018, "Neural Networks Incorporating Dictionaries for Chinese Word
    Segmentation")."""
    n = len(text)
    prefixes = lexicon_prefixes(lexicon) if prefixes is None else prefixes
    sizes = range(2, _LONGEST_LEXICON_WORD + 1)
    starts = np.zeros((n + _LONGEST_LEXICON_WORD, len(sizes)), dtype=bool)  # word of size m at i
    for i in range(n - 1):
        for k, m in enumerate(sizes):
            piece = text[i : i + m]
            if len(piece) < m or piece not in prefixes:
                break  # no lexicon word starts with this piece (or the text ends)
            if piece in lexicon:
                starts[i, k] = True
    ends = np.zeros_like(starts)  # word of size m ending at j = starting at j - m + 1
    for k, m in enumerate(sizes):
        ends[m - 1 :, k] = starts[: len(starts) - m + 1, k]
    starts, ends = starts[:n], ends[:n]
    last = len(LEXICON_LENGTHS) - 1  # sizes from LEXICON_LENGTHS[-1] up share the last bit pair
    bits = np.zeros(n, dtype=np.int32)
    for k in range(len(sizes)):
        slot = min(k, last)
        bits |= starts[:, k].astype(np.int32) << (2 * slot)
        bits |= ends[:, k].astype(np.int32) << (2 * slot + 1)
    return bits + 1


LEXICON_IDS = 1 + 4 ** len(LEXICON_LENGTHS)


@dataclass
class Features:
    """Vocabularies (and the lexicon) that turn a text piece into model inputs: character ids,
    then bigram ids and lexicon codes when they are on."""

    chars: Vocab
    bigrams: Vocab | None
    lexicon: set[str] | None = None
    dictionary: set[str] | None = None
    _prefixes: frozenset[str] | None = field(default=None, repr=False)
    _dictionary_prefixes: frozenset[str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, texts: Sequence[str], cfg: TaggerConfig,
              words: Sequence[Sequence[str]] = ()) -> Features:
        norm = [[normalise_char(c) for c in t] for t in texts]
        chars = Vocab.build(norm, min_count=cfg.min_count)
        pairs = Vocab.build((char_bigrams(n) for n in norm), min_count=cfg.bigram_min_count) \
            if cfg.bigrams else None
        lexicon = None
        if cfg.lexicon_min_count:
            counts = Counter("".join(map(lexicon_char, w)) for line in words for w in line)
            lexicon = {w for w, c in counts.items() if c >= cfg.lexicon_min_count and len(w) > 1}
        dictionary = jieba_dictionary() if cfg.dictionary == "jieba" else None
        return cls(chars, pairs, lexicon, dictionary)

    def encode(self, text: str) -> tuple[np.ndarray, ...]:
        norm = [normalise_char(c) for c in text]
        out = [self.chars.encode(norm)]
        if self.bigrams is not None:
            out.append(self.bigrams.encode(char_bigrams(norm)))
        lexical = "".join(map(lexicon_char, text))
        if self.lexicon is not None:
            if self._prefixes is None:
                self._prefixes = lexicon_prefixes(self.lexicon)
            out.append(lexicon_codes(lexical, self.lexicon, self._prefixes))
        if self.dictionary is not None:
            if self._dictionary_prefixes is None:
                self._dictionary_prefixes = lexicon_prefixes(self.dictionary)
            out.append(lexicon_codes(lexical, self.dictionary, self._dictionary_prefixes))
        return tuple(out)

    def save(self, model_dir: Path) -> None:
        self.chars.save(model_dir / "vocab.json")
        if self.bigrams is not None:
            self.bigrams.save(model_dir / "bigram_vocab.json")
        if self.lexicon is not None:
            write_json(model_dir / "lexicon.json", sorted(self.lexicon), indent=None)
        if self.dictionary is not None:
            write_json(model_dir / "dictionary.json", sorted(self.dictionary), indent=None)

    @classmethod
    def load(cls, model_dir: Path) -> Features:
        bigrams, lexicon = model_dir / "bigram_vocab.json", model_dir / "lexicon.json"
        dictionary = model_dir / "dictionary.json"
        return cls(Vocab.load(model_dir / "vocab.json"),
                   Vocab.load(bigrams) if bigrams.is_file() else None,
                   set(read_json(lexicon)) if lexicon.is_file() else None,
                   set(read_json(dictionary)) if dictionary.is_file() else None)


def jieba_dictionary() -> set[str]:
    """The words of 2 to 8 characters in jieba 0.42's own dictionary (``jieba/dict.txt``, about
    350k entries), in :func:`lexicon_char` form.

    Why: the training month has no entry for a new name or term (中非, 邱县, 石斑鱼 are test-month
    words missed by the model without it); a general word list says where such words could be,
    and the network learns how far to trust it against the PKU standard, which splits some of
    jieba's longer entries. The list ships with the model (``dictionary.json``), so inference
    does not need jieba."""
    import jieba

    path = Path(jieba.__file__).parent / "dict.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: reinstall jieba (pip install jieba==0.42.1) "
                                "or set dictionary: none")
    words = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            word = "".join(map(lexicon_char, line.split(" ", 1)[0]))
            if 2 <= len(word) <= _LONGEST_LEXICON_WORD:
                words.add(word)
    return words
