"""Layers of the similarity recipe: cosine logits for margin softmaxes (AM-Softmax), and a bag
of hashed character n-grams (a sentence encoder that keeps exact lexical overlap).

苏剑林, "基于GRU和AM-Softmax的句子相似度模型" (kexue.fm, 2018): when a classifier
is trained only to shape an embedding that is later compared by cosine, score classes by the
cosine between the L2-normalised embedding and L2-normalised class vectors, and subtract a margin
m from the target's cosine before a softmax at scale s (Wang et al., "Additive Margin Softmax for
Face Verification", 2018):

    loss = −log  e^{s(cos θ_y − m)} / (e^{s(cos θ_y − m)} + Σ_{j≠y} e^{s cos θ_j})

This layer computes the cosines; the margin and the scale need the label, so they live in the
loss (:func:`kexue.losses.am_softmax_loss`), and the same layer serves m = 0 (a plain softmax
over scaled cosines, the ablation).

The module also holds :class:`HashedNgramBag`, the similarity family's n-gram bag encoder (one
module for the family's layers, so its DVC stages depend on one file); see the section below.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class CosineLogits(keras.layers.Layer):
    """cos θ_j between each input vector and each class vector w_j (both L2-normalised).

    (batch, dim) → (batch, num_classes), values in [−1, 1]. No bias: a bias would let a class win
    without its vector being close, which is what the cosine retrieval relies on.
    Why normalise inside the layer (and not with a unit-norm constraint on the kernel): the
    gradient then never pushes the norms, so the scale of the logits is s alone.
    """

    def __init__(self, num_classes: int, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"CosineLogits: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.num_classes),
                                      initializer="glorot_uniform")  # (dim, num_classes)

    def call(self, inputs):
        x = l2_normalize(inputs, axis=-1, epsilon=self.epsilon)  # (batch, dim)
        w = l2_normalize(ops.cast(self.kernel, x.dtype), axis=0, epsilon=self.epsilon)  # (dim, num_classes)
        return ops.matmul(x, w)  # (batch, num_classes)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kexue")
class L2Normalize(keras.layers.Layer):
    """x / ‖x‖ over the last axis (the sentence vector whose dot products are cosines)."""

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return l2_normalize(inputs, axis=-1, epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


def l2_normalize(x, axis: int = -1, epsilon: float = 1e-12):
    """x / max(‖x‖, √ε) along ``axis`` (a zero vector stays zero)."""
    squares = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squares, epsilon))


# --- hashed n-gram bag --------------------------------------------------------------------
#
# Bags of hashed character n-grams: a sentence vector that keeps exact lexical overlap.
#
# Used by the similarity family (苏剑林, "基于GRU和AM-Softmax的句子相似度模型", kexue.fm, 2018)
# beside or instead of its GRU encoder. Why: the retrieval classes at test time are articles the
# model never trained on, and a headline and its lead mostly share rare names and entities. An
# embedding table learns vectors only for what it saw; feature hashing (Weinberger et al., "Feature
# Hashing for Large Scale Multitask Learning", 2009) gives *every* n-gram, seen in training or not,
# a fixed signed coordinate of a ``dim``-dimensional vector:
#
#     v = Σ_g  w_g · sign(g) · e_{coord(g)}
#
# so the dot product of two texts' vectors is their weighted n-gram overlap, up to collision noise
# of about 1/√dim (unit vectors): a rare n-gram that a query and a candidate share raises their
# cosine even if no training sentence held it. The weight of an n-gram is
#
#     w_g = idf_g · softplus(θ_g) / ln 2
#
# an idf prior (from the training sentences' document frequencies, fixed; n-grams never seen get
# the largest idf) times a learnt factor (1 at the start) looked up in a table of ``slots`` entries
# by the n-gram's hash: the loss the bag is trained with (AM-Softmax over articles) learns which
# n-grams tie the sentences of one article together, a supervised correction of idf.
#
# n-gram ids come from :func:`ngram_hash`, a stable hash (CRC-32 of the UTF-8 bytes): Python's
# ``hash()`` of a string is salted per process and would give another model in every process.

PRIME = 2_147_483_647  # 2^31 − 1: ids live in [1, PRIME − 1]; products of two fit in int64
# fixed multipliers of the three hash mixes (coordinate, sign, slot): any distinct values in
# [1, PRIME) work; changing them changes every saved model's meaning, so they are constants
_COORD_MIX, _SIGN_MIX, _SLOT_MIX = 1_103_515_245, 69_069, 40_503


def ngram_hash(ngram: str) -> int:
    """A stable id in [1, 2^31 − 2] for ``ngram`` (0 is padding): CRC-32 of its UTF-8 bytes,
    the same in every process and on every machine."""
    return zlib.crc32(ngram.encode("utf-8")) % (PRIME - 1) + 1


def char_ngrams(text: str, ngram_max: int, maxlen: int) -> list[str]:
    """The distinct character n-grams (1 ≤ n ≤ ``ngram_max``) of the first ``maxlen``
    non-space characters, in order of first occurrence (shorter n-grams first)."""
    if ngram_max < 1 or maxlen < 1:
        raise ValueError(f"char_ngrams: need ngram_max >= 1 and maxlen >= 1, got {ngram_max}, {maxlen}")
    chars = [ch for ch in text if not ch.isspace()][:maxlen]
    seen: dict[str, None] = {}
    for n in range(1, ngram_max + 1):
        for i in range(len(chars) - n + 1):
            seen.setdefault("".join(chars[i : i + n]), None)
    return list(seen)


def hashed_ngrams(text: str, ngram_max: int, maxlen: int) -> np.ndarray:
    """``ngram_hash`` of each distinct n-gram of ``text`` (int32); an empty text gives ``[0]``
    (padding only: the bag is the zero vector)."""
    ids = [ngram_hash(g) for g in char_ngrams(text, ngram_max, maxlen)]
    return np.asarray(ids or [0], dtype=np.int32)


def _mix(ids, multiplier: int, modulus: int):
    """(ids · multiplier mod PRIME) mod modulus, exact in int64 (ids < 2^31, multiplier < 2^31)."""
    return ops.mod(ops.mod(ids * multiplier, PRIME), modulus)


def slot_of(ids: np.ndarray, slots: int) -> np.ndarray:
    """The weight-table slot of each id (NumPy twin of the layer's lookup, for idf counting)."""
    ids = np.asarray(ids, dtype=np.int64)
    return (ids * _SLOT_MIX % PRIME) % slots


def document_frequency_idf(documents: Iterable[np.ndarray], slots: int) -> np.ndarray:
    """idf per slot, ``ln((N + 1) / (df + 1)) + 1`` (scikit-learn's smooth idf), where df counts
    the documents (arrays of distinct ids, 0 = padding) holding an id of that slot."""
    df = np.zeros(slots, dtype=np.float64)
    n = 0
    for ids in documents:
        ids = np.asarray(ids, dtype=np.int64)
        df[np.unique(slot_of(ids[ids > 0], slots))] += 1
        n += 1
    return (np.log((n + 1) / (df + 1)) + 1).astype(np.float32)


@keras.saving.register_keras_serializable(package="kexue")
class HashedNgramBag(keras.layers.Layer):
    """Hashed n-gram ids (batch, length), 0 = padding → weighted signed bag (batch, dim).

    Weights: ``theta`` (slots,), trainable, init 0 (factor softplus(0)/ln 2 = 1); ``idf``
    (slots,), not trainable, init 1 until :meth:`set_idf` is called with
    :func:`document_frequency_idf` of the training texts (saved with the model).
    The output is not normalised: follow it with an L2 normalisation.
    """

    def __init__(self, dim: int, slots: int, **kwargs):
        super().__init__(**kwargs)
        if dim < 1 or slots < 1:
            raise ValueError(f"HashedNgramBag: dim and slots must be >= 1, got {dim}, {slots}")
        self.dim, self.slots = int(dim), int(slots)

    def build(self, input_shape):
        self.theta = self.add_weight(name="theta", shape=(self.slots,), initializer="zeros")  # (slots,)
        self.idf = self.add_weight(name="idf", shape=(self.slots,), initializer="ones",
                                   trainable=False)  # (slots,)

    def set_idf(self, idf: np.ndarray) -> None:
        idf = np.asarray(idf, dtype=np.float32)
        if idf.shape != (self.slots,):
            raise ValueError(f"HashedNgramBag.set_idf: expected shape ({self.slots},), got {idf.shape}")
        self.idf.assign(idf)

    def ngram_weights(self, ids):
        """w_g for each id (batch, length); 0 at padding."""
        ids = ops.cast(ids, "int64")  # (batch, length)
        slot = _mix(ids, _SLOT_MIX, self.slots)  # (batch, length)
        factor = ops.softplus(ops.take(self.theta, slot)) / math.log(2.0)  # (batch, length)
        return ops.take(self.idf, slot) * factor * ops.cast(ids > 0, factor.dtype)

    def call(self, ids):
        ids64 = ops.cast(ids, "int64")  # (batch, length)
        coord = _mix(ids64, _COORD_MIX, self.dim)  # (batch, length), in [0, dim)
        sign = 1.0 - 2.0 * ops.cast(_mix(ids64, _SIGN_MIX, 2), "float32")  # (batch, length), ±1
        values = self.ngram_weights(ids) * sign  # (batch, length)
        batch = ops.shape(ids)[0]
        rows = ops.expand_dims(ops.arange(batch, dtype="int64"), 1) * self.dim  # (batch, 1)
        flat = ops.segment_sum(ops.reshape(values, (-1,)), ops.reshape(rows + coord, (-1,)),
                               num_segments=batch * self.dim)  # (batch · dim,)
        return ops.reshape(flat, (batch, self.dim))  # (batch, dim)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "slots": self.slots}


def bag_vectors(layer: HashedNgramBag, documents: Sequence[np.ndarray]) -> np.ndarray:
    """Unit bag vectors (documents, dim) of id arrays (for tests and quick looks)."""
    width = max(len(d) for d in documents)
    ids = np.zeros((len(documents), width), dtype=np.int32)
    for row, doc in enumerate(documents):
        ids[row, : len(doc)] = doc
    out = keras.ops.convert_to_numpy(layer(ids))
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
