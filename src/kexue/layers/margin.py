"""Cosine logits for margin softmaxes (AM-Softmax).

苏剑林, "基于GRU和AM-Softmax的句子相似度模型" (kexue.fm, 2018): when a classifier
is trained only to shape an embedding that is later compared by cosine, score classes by the
cosine between the L2-normalised embedding and L2-normalised class vectors, and subtract a margin
m from the target's cosine before a softmax at scale s (Wang et al., "Additive Margin Softmax for
Face Verification", 2018):

    loss = −log  e^{s(cos θ_y − m)} / (e^{s(cos θ_y − m)} + Σ_{j≠y} e^{s cos θ_j})

This layer computes the cosines; the margin and the scale need the label, so they live in the
loss (:func:`kexue.losses.am_softmax_loss`), and the same layer serves m = 0 (a plain softmax
over scaled cosines, the ablation).
"""

import keras
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
