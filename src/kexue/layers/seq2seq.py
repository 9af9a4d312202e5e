"""Layers of the headline seq2seq model (苏剑林, "玩转Keras之seq2seq自动生成标题", kexue.fm/archives/5861).

- :class:`TokenPresence`: which vocabulary ids occur in an input (a bag of characters, 0/1);
- :class:`CopyPrior`: the post's "先验分布": output logits averaged with a learnt prior
  ``exp(log_scale) · presence + shift``, so characters of the article are favoured (a headline
  mostly reuses the article's characters) without a pointer network;
- :class:`ConditionalLayerNormalization`: layer normalisation whose gain and bias are shifted by
  a function of a condition vector (the post's "SelfModulatedLayerNormalization", conditioned on
  the encoder's max-pooled summary);
- :class:`KeyPaddingMask`: an explicit attention mask from the key ids, so a one-step decoder
  (whose inputs carry no Keras mask) attends exactly as the training model does.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class TokenPresence(keras.layers.Layer):
    """(batch, seq_len) ids → (batch, vocab_size) floats, 1 where the id occurs in the row.

    Ids in ``ignore_ids`` (padding, unknown, ...) never count as present."""

    def __init__(self, vocab_size: int, ignore_ids: tuple[int, ...] | list[int] = (0,), **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.ignore_ids = [int(i) for i in ignore_ids]

    def call(self, ids):  # ids: (batch, seq_len)
        counts = ops.bincount(ops.cast(ids, "int32"), minlength=self.vocab_size)  # (batch, vocab)
        present = ops.cast(ops.greater(counts, 0), self.compute_dtype)  # (batch, vocab)
        keep = ops.ones((self.vocab_size,), dtype=self.compute_dtype)
        if self.ignore_ids:
            idx = ops.convert_to_tensor([[i] for i in self.ignore_ids], dtype="int32")
            keep = ops.scatter_update(keep, idx, ops.zeros((len(self.ignore_ids),),
                                                           dtype=self.compute_dtype))
        return present * keep  # (batch, vocab)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.vocab_size)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "ignore_ids": self.ignore_ids}


@keras.saving.register_keras_serializable(package="kexue")
class CopyPrior(keras.layers.Layer):
    """[logits (batch, steps, vocab), presence (batch, vocab)] → (logits + prior) / 2 with
    ``prior = exp(gain + log_scale) · presence + shift`` (``log_scale`` and ``shift`` per
    vocabulary entry, ``gain`` one scalar; all zero at the start).

    Why: the softmax of the average is the normalised geometric mean of the decoder's
    distribution and a prior distribution in which characters present in the input get a
    learnt boost (``shift`` alone is an unconditional log-prior over the vocabulary). The post
    learns ``log_scale`` per character; ``gain`` adds nothing to what the layer can express but
    is shared by all characters, so on little data the boost is learnt for the characters that
    are rarely seen too."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        vocab = input_shape[0][-1]
        self.gain = self.add_weight(shape=(), initializer="zeros", name="gain")
        self.log_scale = self.add_weight(shape=(vocab,), initializer="zeros", name="log_scale")
        self.shift = self.add_weight(shape=(vocab,), initializer="zeros", name="shift")

    def call(self, inputs):
        logits, presence = inputs  # (batch, steps, vocab), (batch, vocab)
        prior = ops.exp(self.gain + self.log_scale) * presence + self.shift  # (batch, vocab)
        return (logits + ops.expand_dims(prior, 1)) / 2.0  # (batch, steps, vocab)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, list | tuple) else mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="kexue")
class ConditionalLayerNormalization(keras.layers.Layer):
    """[x (batch, steps, dim), condition (batch, cond_dim)] → LN(x) · (1 + γ(c)) + β(c),
    γ and β each a two-layer MLP (``hidden`` ReLU units, then ``dim`` linear units, zero
    initialised: at the start this is a plain layer normalisation without gain or bias)."""

    def __init__(self, hidden: int, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.epsilon = int(hidden), float(epsilon)
        self.supports_masking = True

    def build(self, input_shape):
        dim, cond = input_shape[0][-1], input_shape[1][-1]
        for name in ("gamma", "beta"):
            setattr(self, f"{name}_w1", self.add_weight(shape=(cond, self.hidden),
                                                        initializer="glorot_uniform",
                                                        name=f"{name}_w1"))
            setattr(self, f"{name}_b1", self.add_weight(shape=(self.hidden,), initializer="zeros",
                                                        name=f"{name}_b1"))
            setattr(self, f"{name}_w2", self.add_weight(shape=(self.hidden, dim),
                                                        initializer="zeros", name=f"{name}_w2"))
            setattr(self, f"{name}_b2", self.add_weight(shape=(dim,), initializer="zeros",
                                                        name=f"{name}_b2"))

    def _mlp(self, name: str, condition):
        h = ops.relu(ops.matmul(condition, getattr(self, f"{name}_w1"))
                     + getattr(self, f"{name}_b1"))  # (batch, hidden)
        out = ops.matmul(h, getattr(self, f"{name}_w2")) + getattr(self, f"{name}_b2")  # (batch, dim)
        return ops.expand_dims(out, 1)  # (batch, 1, dim)

    def call(self, inputs):
        x, condition = inputs  # (batch, steps, dim), (batch, cond_dim)
        mean = ops.mean(x, axis=-1, keepdims=True)  # (batch, steps, 1)
        var = ops.mean(ops.square(x - mean), axis=-1, keepdims=True)
        normed = (x - mean) / ops.sqrt(var + self.epsilon)  # (batch, steps, dim)
        return normed * (1.0 + self._mlp("gamma", condition)) + self._mlp("beta", condition)

    def compute_mask(self, inputs, mask=None):
        return mask[0] if isinstance(mask, list | tuple) else mask

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="kexue")
class KeyPaddingMask(keras.layers.Layer):
    """[queries (batch, q_steps, dim), key_ids (batch, k_steps)] → bool (batch, q_steps, k_steps):
    True where the key is not padding (id 0)."""

    def call(self, inputs):
        queries, key_ids = inputs
        keys = ops.expand_dims(ops.not_equal(key_ids, 0), 1)  # (batch, 1, k_steps)
        rows = ops.ones_like(queries[..., :1], dtype="bool")  # (batch, q_steps, 1)
        return ops.logical_and(rows, keys)  # (batch, q_steps, k_steps)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], input_shape[0][1], input_shape[1][1])
