"""Pooling over time, and zeroing of padded steps, that respect the padding."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """Max over the time axis of the unmasked steps only.

    Keras's ``GlobalMaxPooling1D`` ignores the mask, so padded steps (whose RNN outputs are
    copies of the last state, or zeros) can win the max; here they are pushed to the dtype's
    minimum first. A fully padded row returns zeros.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):  # inputs: (batch, seq_len, dim)
        if mask is None:
            return ops.max(inputs, axis=1)
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)  # (batch, seq_len, 1)
        very_low = ops.full_like(inputs, -1e9)
        pooled = ops.max(ops.where(keep, inputs, very_low), axis=1)  # (batch, dim)
        any_step = ops.any(keep, axis=1)  # (batch, 1)
        return ops.where(any_step, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package="kexue")
class ZeroPadding(keras.layers.Layer):
    """``x`` with the padded positions (id 0) set to zero, so a convolution sees the same
    neighbourhood in a padded batch as in the sequence alone. Inputs: [x (batch, T, d), ids (batch, T)]."""

    def call(self, inputs):
        x, ids = inputs
        keep = ops.cast(ops.expand_dims(ids > 0, -1), x.dtype)  # (batch, T, 1)
        return x * keep

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
