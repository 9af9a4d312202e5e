"""Attention-sum over a document's words, and the encoder state at a marked token.

苏剑林, "开学啦！咱们来做完形填空" (kexue.fm/archives/4564, the CMRC2017 cloze): the answer to a
cloze is a word of the document, so score every document *position* against the query, take a
softmax over positions, and give each distinct word the summed probability of the positions it
occupies (the attention-sum reader of Kadlec et al., "Text Understanding with the Attention Sum
Reader Network", 2016):

    α_i = exp(s_i) / Σ_j exp(s_j),        P(w | query, document) = Σ_{i : d_i = w} α_i

Why sum rather than take the best position: a word the document repeats gets credit from every
mention whose context matches the query, and the frequency prior of the "most frequent word"
baseline is built in (uniform scores give exactly the frequency distribution).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class AttentionSum(keras.layers.Layer):
    """P(word) = summed softmax attention of the positions holding it.

    Inputs ``[scores, keys]``: ``scores`` (batch, seq_len) are attention logits over the
    document positions; ``keys`` (batch, seq_len) are integers in ``[0, seq_len]`` naming each
    position's word — positions of the same word share a key, different words have different
    keys, and key 0 marks a position that takes no attention (padding, or a word that may not be
    the answer). Output (batch, seq_len + 1): column k is the probability of the word with key
    k (column 0 is always 0); each row sums to 1 when it has any key > 0, else to 0.

    The sum over positions is a segment sum over (row, key) pairs: O(batch · seq_len), exact,
    whatever the vocabulary (out-of-vocabulary words keep their own keys).
    """

    def call(self, inputs, mask=None):  # keys carry the mask; an input mask is not needed
        scores, keys = inputs
        keys = ops.cast(keys, "int32")  # (batch, seq_len)
        valid = ops.greater(keys, 0)  # (batch, seq_len)
        scores = ops.cast(scores, "float32")
        lowest = ops.min(ops.where(valid, scores, ops.max(scores)), axis=-1, keepdims=True)
        # masked positions get a logit far below every valid one (finite: no inf - inf = nan)
        scores = ops.where(valid, scores, lowest - 1e4)  # (batch, seq_len)
        weights = ops.softmax(scores, axis=-1) * ops.cast(valid, "float32")  # (batch, seq_len) α_i
        batch, length = ops.shape(keys)[0], ops.shape(keys)[1]
        rows = ops.expand_dims(ops.arange(batch, dtype="int32"), 1)  # (batch, 1)
        segments = ops.reshape(rows * (length + 1) + keys, (-1,))  # (batch · seq_len,)
        summed = ops.segment_sum(ops.reshape(weights, (-1,)), segments,
                                 num_segments=batch * (length + 1))  # (batch · (seq_len + 1),)
        return ops.reshape(summed, (batch, length + 1))  # (batch, seq_len + 1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        batch, length = input_shape[0][0], input_shape[0][1]
        return (batch, None if length is None else length + 1)


@keras.saving.register_keras_serializable(package="kexue")
class TokenState(keras.layers.Layer):
    """The encoder state at the position of a marker token (e.g. the cloze blank).

    Inputs ``[states, ids]``: ``states`` (batch, seq_len, dim), ``ids`` (batch, seq_len).
    Output (batch, dim): the state where ``ids == token_id`` (summed if the token occurs more
    than once; zeros if it is missing). Over a bidirectional encoder the state at the blank is
    [forward summary of the left context ; backward summary of the right context]."""

    def __init__(self, token_id: int, **kwargs):
        super().__init__(**kwargs)
        self.token_id = int(token_id)

    def call(self, inputs, mask=None):  # padding is not the token: the input mask is not needed
        states, ids = inputs
        here = ops.cast(ops.equal(ops.cast(ids, "int32"), self.token_id), states.dtype)  # (batch, seq_len)
        return ops.einsum("bl,bld->bd", here, states)  # (batch, dim)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][2])

    def get_config(self):
        return {**super().get_config(), "token_id": self.token_id}


@keras.saving.register_keras_serializable(package="kexue")
class BitFeatures(keras.layers.Layer):
    """Integer bit masks (batch, seq_len) → their lowest ``bits`` bits as 0/1 floats
    (batch, seq_len, bits); bit j of ``x`` is ``(x // 2**j) % 2``. Lets a data pipeline hand a
    model several binary features per position in one padded integer array."""

    def __init__(self, bits: int, **kwargs):
        super().__init__(**kwargs)
        if bits < 1:
            raise ValueError(f"BitFeatures: bits must be >= 1, got {bits}")
        self.bits = int(bits)

    def call(self, masks):
        masks = ops.cast(masks, "int32")[..., None]  # (batch, seq_len, 1)
        powers = ops.cast(2 ** ops.arange(self.bits), "int32")  # (bits,)
        return ops.cast(ops.mod(ops.floor_divide(masks, powers), 2), "float32")

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.bits)

    def get_config(self):
        return {**super().get_config(), "bits": self.bits}
