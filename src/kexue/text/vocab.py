"""Text as the character models read it: its characters, and a token vocabulary with reserved
padding (0) and unknown (1) ids."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kexue.io import atomic_write

PAD, UNK = "<pad>", "<unk>"


def characters(text: str) -> list[str]:
    """The characters of ``text``; whitespace is dropped."""
    return [ch for ch in text if not ch.isspace()]


class Vocab:
    def __init__(self, tokens: Sequence[str]):
        if list(tokens[:2]) != [PAD, UNK]:
            tokens = [PAD, UNK, *[t for t in tokens if t not in (PAD, UNK)]]
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sequences: Iterable[Iterable[str]], min_count: int = 1, max_size: int = 0) -> Vocab:
        """Most frequent tokens first (ties broken by the token, so the order is deterministic)."""
        counter = Counter(t for seq in sequences for t in seq)
        ranked = sorted((t for t, c in counter.items() if c >= min_count), key=lambda t: (-counter[t], t))
        if max_size:
            ranked = ranked[: max_size - 2]
        return cls([PAD, UNK, *ranked])

    def encode(self, tokens: Iterable[str], maxlen: int = 0) -> np.ndarray:
        ids = [self.index.get(t, 1) for t in tokens]
        if maxlen:
            ids = ids[:maxlen]
        return np.asarray(ids or [1], dtype=np.int32)  # never empty: an empty text is one <unk>

    def save(self, path: str | Path) -> None:
        with atomic_write(path) as handle:
            json.dump({"tokens": self.tokens}, handle, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        with open(path, encoding="utf-8") as handle:
            return cls(json.load(handle)["tokens"])
