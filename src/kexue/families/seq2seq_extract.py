"""Extractive headlines: a character keep/drop tagger that compresses the paragraph.

On 2,122 pairs the abstractive decoder has to learn what to say and how to say it; a People's
Daily headline, though, mostly reuses the paragraph's characters in their order (deletion-based
compression, Filippova et al. 2015, "Sentence compression by deletion with LSTMs"). The tagger
learns the first half alone: each paragraph character is labelled 1 when it lies on the longest
common subsequence (LCS) of the paragraph and its headline (:func:`keep_labels`), and a
BiLSTM over the character embeddings predicts that label; a headline is the ``k`` characters
with the highest keep probability, in paragraph order (:func:`compress`). ``k`` — and whether the
beam-searched abstractive headline or the extractive one is the family's headline — is chosen on
valid ROUGE-L (:func:`choose_decoding`), test never consulted.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from kexue.text.rouge import rouge_scores
from kexue.text.vocab import characters


def keep_labels(paragraph: Sequence[str], headline: Sequence[str]) -> np.ndarray:
    """1 for each paragraph character on a longest common subsequence with the headline (the
    alignment that takes the earliest paragraph character wherever the LCS length allows), else
    0: (len(paragraph),) int32."""
    n, m = len(paragraph), len(headline)
    suffix = np.zeros((n + 1, m + 1), dtype=np.int32)  # LCS length of paragraph[i:], headline[j:]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            suffix[i, j] = (suffix[i + 1, j + 1] + 1 if paragraph[i] == headline[j]
                            else max(suffix[i + 1, j], suffix[i, j + 1]))
    keep = np.zeros(n, dtype=np.int32)
    i = j = 0
    while i < n and j < m:
        if paragraph[i] == headline[j] and suffix[i, j] == suffix[i + 1, j + 1] + 1:
            keep[i] = 1
            i, j = i + 1, j + 1
        elif suffix[i + 1, j] >= suffix[i, j + 1]:
            i += 1
        else:
            j += 1
    return keep


def masked_keep_loss(labels, logits):
    """Mean binary cross-entropy of the keep logits over the real characters (label -1 = padding)."""
    labels = keras.ops.cast(labels, "float32")
    logits = keras.ops.reshape(keras.ops.cast(logits, "float32"), keras.ops.shape(labels))
    real = keras.ops.cast(labels >= 0, "float32")
    losses = keras.ops.binary_crossentropy(keras.ops.maximum(labels, 0.0), logits, from_logits=True)
    return keras.ops.sum(losses * real) / keras.ops.maximum(keras.ops.sum(real), 1.0)


def build_extractor(vocab_size: int, embedding_dim: int, units: int, layers: int,
                    dropout: float) -> keras.Model:
    """Paragraph ids (batch, x_len) → keep logits (batch, x_len, 1): character embeddings,
    spatial dropout, ``layers`` BiLSTMs of ``units/2`` per direction, a linear read-out."""
    x_ids = keras.Input(shape=(None,), dtype="int32", name="x_ids")
    h = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="keep_embedding")(x_ids)
    h = keras.layers.SpatialDropout1D(dropout, name="keep_dropout")(h)
    for i in range(layers):
        h = keras.layers.Bidirectional(keras.layers.LSTM(units // 2, return_sequences=True),
                                       name=f"keep_bilstm_{i}")(h)
    logits = keras.layers.Dense(1, name="keep_logits")(h)  # (batch, x_len, 1)
    return keras.Model(x_ids, logits, name="keep_tagger")


def keep_log_probs(model: keras.Model, inputs: Sequence[np.ndarray], batch_size: int = 128
                   ) -> list[np.ndarray]:
    """Per encoded paragraph, the log keep probability of each of its characters."""
    from kexue.families.seq2seq_data import pad_ids
    from kexue.infer import compiled_call

    call = compiled_call(model)
    out: list[np.ndarray] = []
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        logits = np.asarray(call(pad_ids(chunk)), dtype=np.float64)[..., 0]  # (n, x_len)
        log_keep = -np.logaddexp(0.0, -logits)  # log sigmoid
        out.extend(log_keep[row, : len(ids)] for row, ids in enumerate(chunk))
    return out


def compress(text: str, log_keep: np.ndarray, chars: int) -> tuple[str, float]:
    """The ``chars`` characters of ``text`` the tagger most wants to keep (ties: the earlier),
    in their order, and the mean log keep probability of those kept."""
    letters = characters(text)[: len(log_keep)]
    if not letters:
        return "", 0.0
    picked = np.sort(np.argsort(-log_keep[: len(letters)], kind="stable")[:chars])
    return "".join(letters[i] for i in picked), float(log_keep[picked].mean())


def choose_decoding(references: Sequence[str], abstractive: Sequence[str], texts: Sequence[str],
                    log_keep: Sequence[np.ndarray], chars: Sequence[int]) -> dict:
    """The headline decoding with the best valid ROUGE-L (then ROUGE-1): the abstractive beam
    search or the extractive compression at each length in ``chars``. Returns ``{"chosen":
    "abstractive" | "extractive", "chars": k or None, "valid_rougeL": {option: score}}``."""
    options = {"abstractive": rouge_scores(references, abstractive)}
    for k in chars:
        hypotheses = [compress(t, lk, k)[0] for t, lk in zip(texts, log_keep, strict=True)]
        options[f"extractive_{k}"] = rouge_scores(references, hypotheses)
    best = max(options, key=lambda name: (round(options[name]["rougeL"], 6),
                                          round(options[name]["rouge1"], 6)))
    return {"chosen": "abstractive" if best == "abstractive" else "extractive",
            "chars": None if best == "abstractive" else int(best.rsplit("_", 1)[1]),
            "valid_rougeL": {name: round(scores["rougeL"], 4) for name, scores in options.items()}}


class ValidExtractRouge(keras.callbacks.Callback):
    """Logs ``val_rougeL``: the best valid ROUGE-L of the extractive headlines over ``chars``, so
    the tagger's best epoch is picked on the reported metric."""

    def __init__(self, inputs: Sequence[np.ndarray], texts: Sequence[str], references: Sequence[str],
                 chars: Sequence[int]):
        super().__init__()
        self.inputs, self.texts, self.references, self.chars = inputs, texts, references, chars

    def on_epoch_end(self, epoch, logs=None):
        log_keep = keep_log_probs(self.model, self.inputs)
        best = 0.0
        for k in self.chars:
            hypotheses = [compress(t, lk, k)[0] for t, lk in zip(self.texts, log_keep, strict=True)]
            best = max(best, rouge_scores(self.references, hypotheses)["rougeL"])
        if logs is not None:
            logs["val_rougeL"] = best
