"""Simpler GloVe (kexue.fm "更别致的词向量模型：simpler glove"): fit ⟨v_i, v_j⟩ to the pointwise
mutual information of co-occurring words, with GloVe's weighting and no bias terms.

1. Co-occurrence counts ``X_ij``: how often ``j`` is within ``window`` tokens of ``i`` in the
   same sentence (both directions, so ``X`` is symmetric), over the tokenized corpora.
2. Targets: ``PMI_ij = log(P_ij / (P_i P_j)) = log(X_ij N / (X_i X_j))`` with ``X_i`` the row
   sums and ``N`` the total; only observed pairs (``X_ij > 0``) enter the loss.
3. Loss: ``sum_ij f(X_ij) (⟨v_i, v_j⟩ - PMI_ij)^2`` with ``f(x) = min(1, (x / x_max)^alpha)``.
   One vector per word (the inner product is symmetric, so the post needs no separate context
   vectors) and no biases: the PMI already removes the unigram terms that GloVe's biases absorb.

Trained in Keras with AdaGrad (as the post did) over shuffled batches of observed pairs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kexue.io import write_json
from kexue.nonfinite import StopOnNonFiniteLoss
from kexue.text.tokenized import sentences as tokenized_sentences
from kexue.text.word_vectors import WordVectors, build_vocab, count_words, encode_corpus


@dataclass(frozen=True)
class Config:
    dim: int = field(metadata={"min": 1})  # vector size
    window: int = field(metadata={"min": 1})  # co-occurrence window (tokens each side)
    min_count: int = field(metadata={"min": 1})  # rarer words are dropped
    x_max: float = field(metadata={"min": 0.0})  # counts at or above this get weight 1
    alpha: float = field(metadata={"min": 0.0})  # weight exponent below x_max
    epochs: int = field(metadata={"min": 1})  # passes over the observed pairs
    batch_size: int = field(metadata={"min": 1})  # observed pairs per step
    learning_rate: float = field(metadata={"min": 0.0})  # AdaGrad rate
    threads: int = field(metadata={"min": 1})  # TensorFlow threads
    seed: int


def cooccurrence(ids: np.ndarray, sent: np.ndarray, window: int, vocab_size: int,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric window counts as COO ``(rows, cols, counts)``, each pair (i, j) and (j, i)."""
    codes = []
    for offset in range(1, window + 1):
        same = sent[:-offset] == sent[offset:]
        a, b = ids[:-offset][same].astype(np.int64), ids[offset:][same].astype(np.int64)
        codes += [a * vocab_size + b, b * vocab_size + a]
    if not codes or not sum(len(c) for c in codes):
        empty = np.zeros(0, np.int64)
        return empty.astype(np.int32), empty.astype(np.int32), empty.astype(np.float64)
    uniq, counts = np.unique(np.concatenate(codes), return_counts=True)
    return ((uniq // vocab_size).astype(np.int32), (uniq % vocab_size).astype(np.int32),
            counts.astype(np.float64))


def pmi_targets(rows: np.ndarray, cols: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``log(X_ij N / (X_i X_j))`` for each observed pair (``X_i`` = row sums of X)."""
    size = int(max(rows.max(), cols.max())) + 1 if len(rows) else 0
    row_sums = np.bincount(rows, weights=counts, minlength=size)
    total = counts.sum()
    return np.log(counts) + np.log(total) - np.log(row_sums[rows]) - np.log(row_sums[cols])


def glove_weights(counts: np.ndarray, x_max: float, alpha: float) -> np.ndarray:
    return np.minimum(1.0, (counts / x_max) ** alpha)


def build_model(vocab_size: int, dim: int, seed: int):
    """``[i, j] → ⟨v_i, v_j⟩`` with one embedding table and no bias."""
    import keras

    i = keras.Input(shape=(), dtype="int32", name="word_i")  # (batch,)
    j = keras.Input(shape=(), dtype="int32", name="word_j")  # (batch,)
    table = keras.layers.Embedding(
        vocab_size, dim, name="vectors",
        embeddings_initializer=keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=seed))
    dot = keras.layers.Dot(axes=-1, name="dot")([table(i), table(j)])  # (batch, 1)
    return keras.Model([i, j], dot)


def glove_loss(vectors: np.ndarray, rows, cols, targets, weights) -> float:
    """The objective in closed form: ``sum f(X_ij) (⟨v_i, v_j⟩ - PMI_ij)^2``."""
    scores = np.einsum("nd,nd->n", vectors[rows], vectors[cols])
    return float(np.sum(weights * (scores - targets) ** 2))


def _batches(arrays: list[np.ndarray], batch_size: int, rng: np.random.Generator):
    """One epoch of shuffled batches, cut in NumPy (see word2vec._dataset for why)."""
    import tensorflow as tf

    order = rng.permutation(len(arrays[0]))
    n = len(order) // batch_size * batch_size
    i, j, t, w = (a[order] for a in arrays)

    def cut(a, lo, hi, shape):
        return a[lo:hi].reshape(shape)

    full = tf.data.Dataset.from_tensor_slices(
        ((cut(i, 0, n, (-1, batch_size)), cut(j, 0, n, (-1, batch_size))),
         cut(t, 0, n, (-1, batch_size, 1)), cut(w, 0, n, (-1, batch_size))))
    if n < len(order):
        tail = tf.data.Dataset.from_tensors(((i[n:], j[n:]), t[n:, None], w[n:]))
        full = full.concatenate(tail) if n else tail
    return full.prefetch(tf.data.AUTOTUNE)


def train_vectors(cfg: Config, sentences: list[list[str]]) -> tuple[WordVectors, dict]:
    from kexue.families.word2vec import _set_threads

    _set_threads(cfg.threads)
    import keras

    from kexue.train import seed_everything

    seed_everything(cfg.seed, deterministic=False)
    counts = count_words(sentences)
    words = build_vocab(counts, cfg.min_count)
    index = {w: i for i, w in enumerate(words)}
    ids, sent = encode_corpus(sentences, index)
    start = time.perf_counter()
    rows, cols, x = cooccurrence(ids, sent, cfg.window, len(words))
    targets = pmi_targets(rows, cols, x).astype(np.float32)
    weights = glove_weights(x, cfg.x_max, cfg.alpha).astype(np.float32)
    count_seconds = time.perf_counter() - start
    model = build_model(len(words), cfg.dim, cfg.seed)
    # summed, not averaged, over the batch: AdaGrad's step then sees per-pair gradients (a mean
    # over 10^5 pairs is far below the accumulator's initial value and nothing moves)
    model.compile(optimizer=keras.optimizers.Adagrad(cfg.learning_rate),
                  loss=keras.losses.MeanSquaredError(reduction="sum"))
    rng = np.random.default_rng(cfg.seed)
    start = time.perf_counter()
    history = []
    for _ in range(cfg.epochs):
        result = model.fit(_batches([rows, cols, targets, weights], cfg.batch_size, rng),
                           epochs=1, verbose=2, callbacks=[StopOnNonFiniteLoss("glove.learning_rate")])
        history.append(float(result.history["loss"][-1]))
    seconds = time.perf_counter() - start
    vectors = keras.ops.convert_to_numpy(model.get_layer("vectors").embeddings)
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(words),
            "corpus_tokens": sum(map(len, sentences)), "pairs": len(rows),
            "count_seconds": round(count_seconds, 2), "train_seconds": round(seconds, 2),
            "pairs_per_second": round(len(rows) * cfg.epochs / seconds, 1),
            "loss_per_epoch": history,
            "final_objective": glove_loss(vectors, rows, cols, targets, weights),
            "params": int(model.count_params())}
    return WordVectors(words, vectors, [counts[w] for w in words]), info


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir=None,
          resume_root=None) -> dict:
    """Stage `train@glove`: vectors from ``data_dir`` (the tokenize stage's folder)."""
    from kexue.families.word2vec import log_curve

    vectors, info = train_vectors(cfg, list(tokenized_sentences(data_dir)))
    vectors.save(model_dir)
    write_json(Path(model_dir) / "train_info.json", info)
    log_curve(live_dir, info["loss_per_epoch"])
    return {**info, "monitor": "loss", "best_value": info["loss_per_epoch"][-1],
            "best_epoch": cfg.epochs, "epochs_run": cfg.epochs}
