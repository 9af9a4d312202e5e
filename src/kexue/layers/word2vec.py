"""Negative-sampling word2vec as a Keras layer, its loss, and a sparse SGD.

``NegativeSamplingLogits`` holds word2vec's two matrices (input vectors, the word vectors one
keeps; output vectors, for words being predicted) and scores a batch of candidates:
``logit[b, j] = <u_b, o[candidate[b, j]]>`` where ``u_b`` is the centre word's input vector
(skip-gram) or the mean input vector of its context (CBOW). Candidate 0 is the true word, the
rest are noise words; :class:`NegativeSamplingLoss` is ``-log σ(l_0) - w Σ_j log σ(-l_j)``.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class NegativeSamplingLogits(keras.layers.Layer):
    """``[inputs, targets] → logits`` (batch, 1 + noise_words): column 0 scores the true word,
    the others score ``noise_words`` noise words drawn from ``noise_table`` (word2vec's
    unigram^0.75 table: a uniform slot is a draw) and shared by a group of ``group_size``
    consecutive rows of the batch.

    inputs: (batch,) centre ids, or (batch, n) context ids padded with ``vocab_size``
    (``mean_inputs=True``, CBOW); targets: (batch,) ids of the words to predict.

    Why shared noise: word2vec draws k noise words per pair; drawing M per group of g pairs and
    weighting each noise term by k / M (:class:`NegativeSamplingLoss`) has the same expected
    gradient, and turns 7 row gathers and scatters per pair into 2 plus a batched
    (g × d) · (d × M) matmul per group — the sparse row updates, not the arithmetic, are what
    costs on a CPU. Why groups rather than one draw per batch: a noise word then takes the sum
    of g · k / M pair updates in one step (word2vec applies them one by one, each seeing the
    last), so g · k / M must stay moderate (~160) however large the batch, or SGD diverges.
    """

    def __init__(self, vocab_size: int, dim: int, noise_table, noise_words: int,
                 group_size: int = 1024, mean_inputs: bool = False, seed: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.dim, self.mean_inputs = vocab_size, dim, mean_inputs
        self.noise_words, self.group_size, self.seed = noise_words, group_size, seed
        table = ops.convert_to_numpy(noise_table).astype("int32")
        self.table_size = int(table.shape[0])
        # one extra all-zero row: the CBOW pad id (its gradient is masked to zero)
        self.inputs_table = self.add_weight(
            shape=(vocab_size + 1, dim), name="input_vectors",
            initializer=keras.initializers.RandomUniform(-0.5 / dim, 0.5 / dim, seed=seed))
        self.outputs_table = self.add_weight(shape=(vocab_size, dim), name="output_vectors",
                                             initializer="zeros")
        self.noise_table = self.add_weight(shape=(self.table_size,), dtype="int32",
                                           name="noise_table", trainable=False,
                                           initializer=keras.initializers.Constant(table))
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        ids, targets = inputs
        u = ops.take(self.inputs_table, ids, axis=0)  # (batch, d) or (batch, n, d)
        if self.mean_inputs:
            mask = ops.cast(ops.not_equal(ids, self.vocab_size), u.dtype)[..., None]  # (batch, n, 1)
            u = ops.sum(u * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)  # (batch, d)
        positive = ops.sum(u * ops.take(self.outputs_table, targets, axis=0), axis=-1)  # (batch,)
        batch = ops.shape(u)[0]
        groups = (batch + self.group_size - 1) // self.group_size
        padded = ops.pad(u, [[0, groups * self.group_size - batch], [0, 0]])  # (groups * g, d)
        padded = ops.reshape(padded, (groups, self.group_size, self.dim))  # (groups, g, d)
        slots = keras.random.randint((groups, self.noise_words), 0, self.table_size,
                                     dtype="int32", seed=self.seed_generator)
        noise = ops.take(self.outputs_table, ops.take(self.noise_table, slots), axis=0)  # (groups, M, d)
        negative = ops.matmul(padded, ops.transpose(noise, (0, 2, 1)))  # (groups, g, M)
        negative = ops.reshape(negative, (-1, self.noise_words))[:batch]  # (batch, M)
        return ops.concatenate([positive[:, None], negative], axis=1)  # (batch, 1 + M)

    def input_vectors(self):
        return ops.convert_to_numpy(self.inputs_table)[: self.vocab_size]

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim,
                "noise_table": ops.convert_to_numpy(self.noise_table).tolist(),
                "noise_words": self.noise_words, "group_size": self.group_size,
                "mean_inputs": self.mean_inputs,
                "seed": self.seed}


@keras.saving.register_keras_serializable(package="kexue")
class NegativeSamplingLoss(keras.losses.Loss):
    """``softplus(-l_0) + noise_weight · Σ_{j>0} softplus(l_j)`` per row (``y_true`` is ignored:
    column 0 is always the true word), summed over the batch so that the SGD rate is per pair as
    in word2vec. With M shared noise words standing for k per pair, ``noise_weight = k / M``."""

    def __init__(self, noise_weight: float = 1.0, name: str = "negative_sampling",
                 reduction: str = "sum", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.noise_weight = noise_weight

    def call(self, y_true, y_pred):
        positive = ops.softplus(-y_pred[:, 0])  # (batch,)
        noise = ops.sum(ops.softplus(y_pred[:, 1:]), axis=-1)  # (batch,)
        return positive + self.noise_weight * noise

    def get_config(self):
        return {**super().get_config(), "noise_weight": self.noise_weight}


@keras.saving.register_keras_serializable(package="kexue")
class SparseSGDModel(keras.Model):
    """A functional model whose ``fit`` applies plain SGD to the rows a batch touched only.

    Keras's optimizers turn the sparse gradient of an embedding into an update of the whole
    matrix (or add per-row bookkeeping); word2vec's update is ``row -= lr * g`` on the gathered
    rows, which here is one scatter per matrix (TensorFlow backend). The compiled optimizer
    supplies the learning rate (its schedule) and the step counter, nothing else.

    Each pair's gradient is summed into its rows, as word2vec's updates add up; a frequent word
    takes the sum of its pairs in the batch in one step (word2vec applies them one at a time,
    each seeing the last), so the batch size must stay moderate: 8192 pairs at rate 0.025 train
    stably on the kexue corpora, 16384 at a slowly decaying rate diverged (NaN).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pair_loss = keras.metrics.Mean(name="loss")  # per row of the batch

    @property
    def metrics(self):
        return [self.pair_loss]

    def train_step(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        lr = self.optimizer.learning_rate
        if callable(lr):
            lr = lr(self.optimizer.iterations)
        for var, grad in zip(self.trainable_variables, grads, strict=True):
            if grad is None:
                continue
            if isinstance(grad, tf.IndexedSlices):
                var.value.scatter_sub(tf.IndexedSlices(grad.values * tf.cast(lr, grad.dtype),
                                                       grad.indices, grad.dense_shape))
            else:
                var.assign_sub(grad * tf.cast(lr, grad.dtype))
        self.optimizer.iterations.assign_add(1)
        self.pair_loss.update_state(loss / tf.cast(tf.shape(y_pred)[0], loss.dtype))
        return {"loss": self.pair_loss.result()}
