"""NICE's invertible layers: additive coupling with an interleaved split, and a diagonal scale.

苏剑林, "细水长flow之NICE：流模型的基本概念与实现" (kexue.fm/archives/5776), after Dinh et al.,
"NICE: Non-linear Independent Components Estimation" (2014). A coupling layer splits the vector
into the even- and odd-indexed coordinates (an interleaved split, so both halves see the whole
image), keeps one half and shifts the other by an MLP of the kept half:

    y_keep = x_keep,    y_other = x_other + m(x_keep)

Why this is cheap: the Jacobian is triangular with a unit diagonal, so log|det| = 0 and the
inverse is ``x_other = y_other - m(y_keep)`` whatever ``m`` is. Consecutive layers alternate
which half is kept. Because every coupling preserves volume, NICE ends with a diagonal scale
``y = x · exp(s)``, whose log-determinant ``sum(s)`` enters the log-likelihood: it lets the flow
spend its volume on the directions that matter (and, as the post notes, a large ``s_i``
flags a dimension that carries little information).
"""

from __future__ import annotations

import keras
from keras import ops


def _split(x):
    """(batch, dim) → even-indexed and odd-indexed coordinates, each (batch, dim / 2)."""
    pairs = ops.reshape(x, (-1, ops.shape(x)[-1] // 2, 2))  # (batch, dim / 2, 2)
    return pairs[..., 0], pairs[..., 1]


def _merge(even, odd):
    """Inverse of :func:`_split`: (batch, dim / 2) twice → (batch, dim), interleaved."""
    pairs = ops.stack([even, odd], axis=-1)  # (batch, dim / 2, 2)
    return ops.reshape(pairs, (-1, ops.shape(pairs)[1] * 2))


@keras.saving.register_keras_serializable(package="kexue")
class AdditiveCoupling(keras.layers.Layer):
    """NICE additive coupling over an interleaved split: ``parity`` 0 keeps the even-indexed
    coordinates and shifts the odd ones by an MLP (``depth`` hidden layers of ``width`` units)
    of them; ``parity`` 1 the other way round. Volume-preserving (log|det J| = 0)."""

    def __init__(self, parity: int = 0, width: int = 1000, depth: int = 5,
                 activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        if parity not in (0, 1):
            raise ValueError(f"AdditiveCoupling: parity must be 0 or 1, got {parity!r}")
        if width < 1 or depth < 1:
            raise ValueError(f"AdditiveCoupling: width and depth must be >= 1, got {width}, {depth}")
        self.parity, self.width, self.depth, self.activation = parity, width, depth, activation

    def build(self, input_shape):
        dim = input_shape[-1]
        if dim is None or dim % 2:
            raise ValueError(f"AdditiveCoupling: the last dimension must be even, got {dim}")
        self.hidden = []
        size = dim // 2
        for i in range(self.depth):
            layer = keras.layers.Dense(self.width, activation=self.activation, name=f"hidden{i + 1}")
            layer.build((None, size))
            self.hidden.append(layer)
            size = self.width
        # a zero-initialised output layer: the flow starts as the identity
        self.shift = keras.layers.Dense(dim // 2, kernel_initializer="zeros", name="shift")
        self.shift.build((None, size))

    def _mlp(self, keep):
        h = keep
        for layer in self.hidden:
            h = layer(h)  # (batch, width)
        return self.shift(h)  # (batch, dim / 2)

    def call(self, x):
        even, odd = _split(x)
        if self.parity == 0:
            return _merge(even, odd + self._mlp(even))
        return _merge(even + self._mlp(odd), odd)

    def inverse(self, y):
        even, odd = _split(y)
        if self.parity == 0:
            return _merge(even, odd - self._mlp(even))
        return _merge(even - self._mlp(odd), odd)

    def log_det_jacobian(self, x):
        """Zero for every example (a volume-preserving map). # (batch,)"""
        return ops.zeros(ops.shape(x)[:1], dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "parity": self.parity, "width": self.width,
                "depth": self.depth, "activation": self.activation}


@keras.saving.register_keras_serializable(package="kexue")
class DiagonalScale(keras.layers.Layer):
    """``y = x · exp(s)`` with a learned vector ``s`` (initialised at 0);
    log|det J| = sum(s), the same for every example."""

    def build(self, input_shape):
        self.log_scale = self.add_weight(name="log_scale", shape=(input_shape[-1],),
                                         initializer="zeros")

    def call(self, x):
        return x * ops.exp(self.log_scale)  # (batch, dim)

    def inverse(self, y):
        return y * ops.exp(-self.log_scale)  # (batch, dim)

    def log_det(self):
        """sum(s), a scalar."""
        return ops.sum(self.log_scale)

    def log_det_jacobian(self, x):
        """sum(s) for every example. # (batch,)"""
        return ops.ones(ops.shape(x)[:1], dtype=x.dtype) * ops.cast(self.log_det(), x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
