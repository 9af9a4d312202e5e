"""The sentiment network's inputs: character ids, the ids of the bigram starting at each
character, and — with ``sentiment.embeddings`` — the id of the word (cut with the learnt lexicon)
that contains each character, with its pretrained vector table; all aligned per character."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from kexue.text.vocab import Vocab
from kexue.text.vocab import characters as tokens


def bigrams(chars: list[str]) -> list[str]:
    """The bigram starting at each character (the last one pairs with an end marker), so the
    bigram sequence aligns with the character sequence."""
    return [a + b for a, b in zip(chars, chars[1:] + ["</s>"], strict=True)]


def encode(vocab: Vocab, texts: list[str], maxlen: int,
           bigram_vocab: Vocab | None = None) -> list[np.ndarray] | tuple[list[np.ndarray], ...]:
    chars = [tokens(t) for t in texts]
    ids = [vocab.encode(c, maxlen) for c in chars]
    if bigram_vocab is None:
        return ids
    pairs = [bigram_vocab.encode(bigrams(c), maxlen) if c else np.ones(1, np.int32) for c in chars]
    return ids, pairs


def word_ids(word_vocab: Vocab, segment, texts: list[str], maxlen: int) -> list[np.ndarray]:
    """Per character, the id of the word (cut by ``segment``) that contains it; aligned with
    :func:`tokens` (a text whose words do not spell its characters gets <unk> throughout)."""
    out = []
    for text in texts:
        ids: list[int] = []
        for word in segment(text):
            ids.extend([word_vocab.index.get(word, 1)] * len(word))
        if len(ids) != len(tokens(text)):
            ids = [1] * len(tokens(text))
        out.append(np.asarray(ids[:maxlen] or [1], dtype=np.int32))
    return out


def add_words(encoded, words: list[np.ndarray] | None):
    if words is None:
        return encoded
    return (*encoded, words) if isinstance(encoded, tuple) else (encoded, words)


def input_specs(cfg_bigrams: bool, embeddings: str) -> list:
    ids = [keras.Input(shape=(None,), dtype="int32", name="char_ids")]  # (batch, seq_len)
    if cfg_bigrams:
        ids.append(keras.Input(shape=(None,), dtype="int32", name="bigram_ids"))
    if embeddings != "none":
        ids.append(keras.Input(shape=(None,), dtype="int32", name="word_ids"))
    return ids


def concat_inputs(a, b):
    if isinstance(a, tuple):
        return tuple(list(x) + list(y) for x, y in zip(a, b, strict=True))
    return list(a) + list(b)


def word_channel(embeddings: str, vectors_root: str | Path | None, tokenized_dir: str | Path | None):
    """(word vocab, segmenter, matrix with pad and <unk> rows) for the word vectors named
    ``embeddings`` (word2vec | glove)."""
    from kexue.text.tokenized import load_segmenter
    from kexue.text.word_vectors import WordVectors

    if vectors_root is None or tokenized_dir is None:
        raise ValueError(f"sentiment.embeddings = {embeddings} needs the word vectors and the "
                         "learnt lexicon: pass vectors_root (holding word2vec/ and glove/) and "
                         "tokenized_dir (stage train: --inputs vectors_root=... tokenized_dir=...)")

    vectors = WordVectors.load(Path(vectors_root) / embeddings)
    vocab = Vocab(["<pad>", "<unk>", *vectors.words])
    matrix = np.concatenate([np.zeros((2, vectors.dim), np.float32), vectors.matrix])
    return vocab, load_segmenter(tokenized_dir), matrix
