"""Center loss with the labels as a model input (科学空间, "Keras中自定义复杂的loss函数", 2017).

Keras's loss signature ``loss(y_true, y_pred)`` sees one output and its target; the center loss
(Wen et al., "A Discriminative Feature Learning Approach for Deep Face Recognition", ECCV 2016)
needs the feature vector *and* a per-class centre picked by the label. The post's way out: feed
the label in as a second model input, keep the centres in an embedding table looked up by that
label, compute the squared distance inside the model as a second output, and give that output a
loss that returns its prediction unchanged, weighted by λ next to the softmax cross-entropy:

    L = CE(y, softmax(W f)) + λ · mean_i ||f_i − c_{y_i}||²

The centres are ordinary trainable weights, so the optimizer moves them toward the features of
their class as it moves the features toward them (the post's update; the paper's separate
moving-average rule is not used). The training model has inputs ``[images, labels]`` and
outputs ``[probs, center]``; the classifier used at inference is a second model over the same
layers from ``images`` to ``probs`` alone, so it needs no labels and holds no centre table.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class CenterDistance(keras.layers.Layer):
    """``[features (batch, dim), labels (batch,) or (batch, 1) int]`` → ``||f − c_y||²`` (batch,).

    ``centers`` (num_classes, dim) is a trainable table, initialised at zero (the post's
    embedding starts near zero too), so at first the loss is the features' squared norm.
    """

    def __init__(self, num_classes: int, **kwargs):
        kwargs.setdefault("dtype", "float32")  # a squared distance in bfloat16 loses its small values
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(f"CenterDistance: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)

    def build(self, input_shape):
        features_shape = input_shape[0]
        self.centers = self.add_weight(name="centers", shape=(self.num_classes, features_shape[-1]),
                                       initializer="zeros")  # (num_classes, dim)

    def call(self, inputs):
        features, labels = inputs
        features = ops.cast(features, self.compute_dtype)  # (batch, dim)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))  # (batch,)
        centers = ops.take(self.centers, labels, axis=0)  # (batch, dim): c_{y_i}
        return ops.sum(ops.square(features - centers), axis=-1)  # (batch,)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0],)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="kexue")
def prediction_as_loss(y_true, y_pred):
    """The loss of an output that already is a loss (here the squared distance): ``y_pred`` per
    example, ``y_true`` ignored (Keras needs a target; the family feeds zeros). Keras then
    averages it over the batch and multiplies it by the output's ``loss_weights`` entry (λ)."""
    del y_true
    return y_pred


def center_loss(features, labels, centers):
    """The closed form in NumPy: mean over the batch of ``||f_i − c_{y_i}||²`` (unweighted).
    ``features`` (n, dim), ``labels`` (n,) int, ``centers`` (num_classes, dim)."""
    import numpy as np

    features = np.asarray(features, dtype=np.float64)
    picked = np.asarray(centers, dtype=np.float64)[np.asarray(labels, dtype=np.int64)]
    return float(np.mean(np.sum((features - picked) ** 2, axis=-1)))


def with_center_loss(classifier: keras.Model, features: str, weight: float,
                     labels_name: str = "labels") -> keras.Model:
    """The training model of ``classifier`` (one image input → class probabilities) whose layer
    named ``features`` gives the vectors to gather: inputs ``[classifier input, labels]``,
    outputs ``{"probs": probabilities, "center": ||f − c_y||²}``. It shares the classifier's
    layers, so training it trains the classifier. ``weight`` (λ) is not stored here: it is the
    ``loss_weights`` entry of ``center`` when the model is compiled (:func:`compile_losses`)."""
    if weight < 0:
        raise ValueError(f"with_center_loss: the weight must be >= 0, got {weight}")
    feature_tensor = classifier.get_layer(features).output  # (batch, dim)
    num_classes = int(classifier.output.shape[-1])
    labels = keras.Input(shape=(), dtype="int32", name=labels_name)  # (batch,)
    distance = CenterDistance(num_classes, name="center")([feature_tensor, labels])  # (batch,)
    return keras.Model([classifier.input, labels], {"probs": classifier.output, "center": distance},
                       name=f"{classifier.name}_center_loss")


def compile_losses(weight: float, label_smoothing: float = 0.0) -> dict:
    """``loss`` and ``loss_weights`` for :meth:`keras.Model.compile` of a
    :func:`with_center_loss` model: cross-entropy on ``probs``, ``weight`` × the distance."""
    return {"loss": {"probs": keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
                     "center": prediction_as_loss},
            "loss_weights": {"probs": 1.0, "center": float(weight)}}
