"""The character input block the text networks share: character ids → an embedding, and, when
``bigrams`` is on, the ids of the bigram starting at each character → a second embedding (the
feature :func:`kexue.text.vocab.characters` and the taggers' ``char_bigrams`` give). The caller
joins the two (added or concatenated) and keeps the input list for its ``keras.Model``."""

from __future__ import annotations

import keras


def char_embeddings(vocab_size: int, bigram_vocab_size: int, dim: int, bigrams: bool,
                    mask_zero: bool) -> tuple[list, object, object | None]:
    """``(inputs, chars, pairs)``: the ``char_ids`` (and ``bigram_ids``) inputs, each (batch, T)
    int32, and their embeddings (batch, T, dim), named ``char_embedding`` and
    ``bigram_embedding``; ``pairs`` is None without bigrams."""
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, T)
    inputs = [ids]
    chars = keras.layers.Embedding(vocab_size, dim, mask_zero=mask_zero,
                                   name="char_embedding")(ids)  # (batch, T, dim)
    pairs = None
    if bigrams:
        pair_ids = keras.Input(shape=(None,), dtype="int32", name="bigram_ids")  # (batch, T)
        inputs.append(pair_ids)
        pairs = keras.layers.Embedding(bigram_vocab_size, dim, mask_zero=mask_zero,
                                       name="bigram_embedding")(pair_ids)  # (batch, T, dim)
    return inputs, chars, pairs
