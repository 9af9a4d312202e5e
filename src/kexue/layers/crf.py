"""A linear-chain conditional random field (CRF) for sequence labelling, in ``keras.ops``.

After 苏剑林, "简明条件随机场CRF介绍（附带纯Keras实现）" (kexue.fm, 2018): an encoder gives each
position a score per tag (the emissions), the CRF adds a learned score for every tag→tag
transition, and a tag path's probability is ``exp(score(path)) / Z`` with

    score(y) = Σ_t emission[t, y_t] + Σ_{t>0} transition[y_{t-1}, y_t]
    log Z    = logsumexp over all paths, computed by the forward recursion
               α_t(j) = logsumexp_i(α_{t-1}(i) + transition[i, j]) + emission[t, j]

Training minimises the negative log-likelihood ``log Z − score(gold)``; decoding takes the
highest-scoring path by Viterbi (max instead of logsumexp, with back-pointers).

Padding: labels are ``-1`` at padded positions; a sequence's valid positions must be a prefix.
Masked steps leave α unchanged, so ``log Z`` and the score only cover the real tokens.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def crf_path_score(emissions, transitions, tags, mask):
    """Score of the given tag paths. emissions (batch, T, K), transitions (K, K),
    tags (batch, T) int, mask (batch, T) in {0, 1} → (batch,)."""
    mask = ops.cast(mask, emissions.dtype)
    safe_tags = ops.where(mask > 0, tags, ops.zeros_like(tags))
    onehot = ops.one_hot(safe_tags, ops.shape(emissions)[-1], dtype=emissions.dtype)  # (B, T, K)
    emit = ops.sum(ops.sum(emissions * onehot, axis=-1) * mask, axis=1)  # (batch,)
    # transition score between consecutive real tokens: onehot_{t-1}ᵀ · transitions · onehot_t
    prev, nxt = onehot[:, :-1], onehot[:, 1:]  # (batch, T-1, K)
    trans = ops.sum(ops.matmul(prev, transitions) * nxt, axis=-1)  # (batch, T-1)
    pair_mask = mask[:, 1:] * mask[:, :-1]
    return emit + ops.sum(trans * pair_mask, axis=1)


def crf_log_partition(emissions, transitions, mask):
    """log Z by the forward recursion. emissions (batch, T, K), mask (batch, T) → (batch,)."""
    mask = ops.cast(mask, emissions.dtype)
    alpha0 = emissions[:, 0]  # (batch, K)
    # one scanned tensor (emissions with the mask as an extra column): Keras's TensorFlow scan
    # cannot check several inputs against each other when the time length is unknown
    steps = ops.concatenate([emissions[:, 1:], ops.expand_dims(mask[:, 1:], -1)], axis=-1)
    steps = ops.transpose(steps, (1, 0, 2))  # (T-1, batch, K+1)

    def forward(alpha, step):
        emission, keep = step[:, :-1], step[:, -1:]  # (batch, K), (batch, 1)
        # (batch, K, 1) + (K, K) → (batch, K, K); logsumexp over the previous tag
        candidate = ops.logsumexp(ops.expand_dims(alpha, 2) + transitions, axis=1) + emission
        alpha = keep * candidate + (1.0 - keep) * alpha
        return alpha, None

    alpha, _ = ops.scan(forward, alpha0, steps)
    return ops.logsumexp(alpha, axis=1)


def crf_nll(emissions, transitions, tags):
    """Negative log-likelihood per sequence; ``tags`` is -1 at padded positions."""
    tags = ops.cast(tags, "int32")
    mask = ops.cast(tags >= 0, emissions.dtype)
    return crf_log_partition(emissions, transitions, mask) - crf_path_score(
        emissions, transitions, tags, mask)


def viterbi_decode(emissions: np.ndarray, transitions: np.ndarray,
                   lengths: np.ndarray | None = None) -> list[np.ndarray]:
    """Best tag path of each sequence (NumPy, vectorised over the batch; decoding runs outside
    the graph). emissions (batch, T, K), transitions (K, K), lengths (batch,) → list of
    (length,) int arrays. Steps past a sequence's length keep its scores and point back to the
    same tag, so one backward pass from the last step serves every length."""
    emissions = np.asarray(emissions, dtype=np.float64)
    transitions = np.asarray(transitions, dtype=np.float64)
    batch, steps, num_tags = emissions.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    if steps == 0:
        return [np.zeros(0, dtype=np.int64) for _ in range(batch)]
    rows = np.arange(batch)
    same_tag = np.broadcast_to(np.arange(num_tags), (batch, num_tags))
    score = emissions[:, 0].copy()  # (batch, K)
    back = np.empty((steps, batch, num_tags), dtype=np.int64)
    back[0] = same_tag
    for t in range(1, steps):
        total = score[:, :, None] + transitions  # (batch, K_prev, K)
        best_prev = total.argmax(axis=1)  # (batch, K)
        best = np.take_along_axis(total, best_prev[:, None, :], axis=1)[:, 0] + emissions[:, t]
        live = (t < lengths)[:, None]  # (batch, 1)
        score = np.where(live, best, score)
        back[t] = np.where(live, best_prev, same_tag)
    paths = np.empty((batch, steps), dtype=np.int64)
    tag = score.argmax(axis=1)  # (batch,)
    paths[:, -1] = tag
    for t in range(steps - 1, 0, -1):
        tag = back[t, rows, tag]
        paths[:, t - 1] = tag
    # a sequence's last real tag sits at its length - 1 and the steps after it repeat it
    return [paths[b, : int(lengths[b])] for b in range(batch)]


@keras.saving.register_keras_serializable(package="kexue")
class CRF(keras.layers.Layer):
    """Holds the transition matrix; passes the emissions through unchanged.

    Use ``crf.loss`` as the model's loss (labels: tag ids, -1 at padding) and
    ``crf.decode(emissions, lengths)`` for Viterbi paths. ``lr_multiplier`` (as in the post) is
    a reparameterisation θ = m·φ: the layer trains φ and uses m × φ as the transitions.
    Why it is not "m × the learning rate": SGD then moves the transitions m² times as fast and
    Adam m times (see kexue.optimizers); for exactly m × lr use
    ``kexue.optimizers.apply_lr_multipliers(opt, model, {"crf": m})`` instead.
    """

    def __init__(self, num_tags: int, lr_multiplier: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if num_tags < 2:
            raise ValueError(f"CRF: num_tags must be >= 2, got {num_tags}")
        if lr_multiplier <= 0:
            raise ValueError(f"CRF: lr_multiplier must be > 0, got {lr_multiplier}")
        self.num_tags = num_tags
        self.lr_multiplier = float(lr_multiplier)

    def build(self, input_shape):
        if input_shape[-1] != self.num_tags:
            raise ValueError(f"CRF: last input dimension {input_shape[-1]} != num_tags "
                             f"{self.num_tags}; put Dense(num_tags) before the CRF")
        self._transitions = self.add_weight(name="transitions", shape=(self.num_tags, self.num_tags),
                                            initializer="glorot_uniform")

    @property
    def transitions(self):
        return self._transitions * self.lr_multiplier  # (K, K)

    def call(self, inputs, mask=None):  # inputs: (batch, seq_len, num_tags)
        # a new tensor, not `inputs` itself: that one carries the encoder's padding mask, which
        # Keras would apply per time step to the per-sequence loss
        return ops.copy(inputs)

    def compute_mask(self, inputs, mask=None):
        return None  # the loss reads padding from the labels (-1)

    def loss(self, y_true, y_pred):
        """Keras loss: mean-able per-sequence NLL."""
        return crf_nll(y_pred, self.transitions, y_true)

    def decode(self, emissions, lengths=None) -> list[np.ndarray]:
        return viterbi_decode(ops.convert_to_numpy(emissions),
                              ops.convert_to_numpy(self.transitions), lengths)

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags,
                "lr_multiplier": self.lr_multiplier}
