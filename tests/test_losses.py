"""The losses against their closed forms, written out by hand in NumPy on small cases."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kexue import losses as kexue_losses
from kexue.losses import (
    BinaryFocalLoss,
    HardTruncatedCrossEntropy,
    MultilabelCrossEntropy,
    SoftTruncatedCrossEntropy,
    SparseMultilabelCrossEntropy,
    binary_focal_loss,
    hard_truncated_crossentropy,
    multilabel_crossentropy,
    soft_truncated_crossentropy,
    sparse_multilabel_crossentropy,
)

M = 0.6
# one column per truncation branch: positive above / below m, negative below / above 1 − m
Y = np.array([[1.0], [1.0], [0.0], [0.0]], dtype="float32")
P = np.array([[0.7], [0.5], [0.3], [0.5]], dtype="float32")


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    return np.log(p) - np.log1p(-p)


def test_hard_truncation_zeroes_confident_examples_and_keeps_the_rest():
    got = _np(hard_truncated_crossentropy(Y, P, margin=M))
    np.testing.assert_allclose(got, [0.0, -np.log(0.5), 0.0, -np.log(0.5)], rtol=1e-6)
    # the Loss averages over the batch: two of four examples keep log 2
    assert float(HardTruncatedCrossEntropy(margin=M)(Y, P)) == pytest.approx(np.log(2) / 2,
                                                                             rel=1e-6)
    # margin 1 truncates nothing: plain binary cross-entropy
    bce = _np(keras.losses.binary_crossentropy(Y, P))
    np.testing.assert_allclose(_np(hard_truncated_crossentropy(Y, P, margin=1.0)), bce, rtol=1e-6)


def test_hard_truncation_is_elementwise_over_labels():
    y = np.array([[1, 0, 1], [0, 1, 0]], dtype="float32")
    p = np.array([[0.9, 0.2, 0.55], [0.45, 0.65, 0.8]], dtype="float32")
    expected = np.zeros(2)
    for b in range(2):
        for j in range(3):
            yy, pp = y[b, j], float(p[b, j])
            skip = (yy == 1 and pp > M) or (yy == 0 and pp < 1 - M)
            bce = -np.log(pp) if yy == 1 else -np.log(1 - pp)
            expected[b] += 0.0 if skip else bce / 3
    np.testing.assert_allclose(_np(hard_truncated_crossentropy(y, p, margin=M)), expected,
                               rtol=1e-6)


def test_soft_truncation_equals_its_formula():
    k = 10.0
    expected = []
    for (y,), (p,) in zip(Y, P.astype(np.float64), strict=True):
        if y == 1:
            expected.append(_sigmoid(k * (M - p)) * -np.log(p))
        else:
            expected.append(_sigmoid(k * (p - (1 - M))) * -np.log(1 - p))
    got = _np(soft_truncated_crossentropy(Y, P, margin=M, scale=k))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # the confidently right examples keep some loss, less than the ambiguous ones
    assert 0 < got[0] < got[1] and 0 < got[2] < got[3]


def test_soft_truncation_approaches_the_hard_form_as_scale_grows():
    y = np.array([[1.0], [1.0], [0.0], [0.0], [1.0]], dtype="float32")
    p = np.array([[0.8], [0.4], [0.2], [0.55], [0.62]], dtype="float32")  # none at p = m
    hard = _np(hard_truncated_crossentropy(y, p, margin=M))
    gaps = [np.abs(_np(soft_truncated_crossentropy(y, p, margin=M, scale=k)) - hard).max()
            for k in (1.0, 10.0, 100.0, 1e4)]
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[0] > 0.1 and gaps[-1] < 1e-6


def _focal_np(y, p, gamma, alpha):
    out = np.zeros(y.shape[0])
    for b in range(y.shape[0]):
        for j in range(y.shape[1]):
            p_t = p[b, j] if y[b, j] == 1 else 1 - p[b, j]
            a_t = 1.0 if alpha is None else (alpha if y[b, j] == 1 else 1 - alpha)
            out[b] += -a_t * (1 - p_t) ** gamma * np.log(p_t) / y.shape[1]
    return out


def test_focal_equals_closed_form_and_keras_balanced_focal():
    y = np.array([[1, 0, 1], [0, 0, 1]], dtype="float32")
    p = np.array([[0.9, 0.3, 0.2], [0.6, 0.05, 0.5]], dtype="float32")
    got = _np(binary_focal_loss(y, p, gamma=2.0, alpha=0.25))
    np.testing.assert_allclose(got, _focal_np(y, p.astype(np.float64), 2.0, 0.25), rtol=1e-5)
    keras_focal = keras.losses.binary_focal_crossentropy(y, p, apply_class_balancing=True,
                                                         alpha=0.25, gamma=2.0)
    np.testing.assert_allclose(got, _np(keras_focal), rtol=1e-5)
    no_alpha = _np(binary_focal_loss(y, p, gamma=1.5, alpha=None))
    np.testing.assert_allclose(no_alpha, _focal_np(y, p.astype(np.float64), 1.5, None), rtol=1e-5)


def test_focal_with_gamma_zero_and_no_alpha_is_binary_crossentropy():
    y = np.array([[1, 0, 1], [0, 1, 1]], dtype="float32")
    p = np.array([[0.9, 0.3, 0.2], [0.6, 0.05, 0.5]], dtype="float32")
    got = _np(binary_focal_loss(y, p, gamma=0.0, alpha=None))
    by_hand = -(y * np.log(p.astype(np.float64)) + (1 - y) * np.log(1 - p.astype(np.float64)))
    np.testing.assert_allclose(got, by_hand.mean(axis=-1), rtol=1e-5)
    np.testing.assert_allclose(got, _np(keras.losses.binary_crossentropy(y, p)), rtol=1e-5)


@pytest.mark.parametrize("loss", [
    lambda y, p, **kw: hard_truncated_crossentropy(y, p, margin=0.6, **kw),
    lambda y, p, **kw: soft_truncated_crossentropy(y, p, margin=0.7, scale=5.0, **kw),
    lambda y, p, **kw: binary_focal_loss(y, p, gamma=2.0, alpha=0.25, **kw),
    lambda y, p, **kw: binary_focal_loss(y, p, gamma=0.5, alpha=None, **kw),
], ids=["hard", "soft", "focal", "focal_no_alpha"])
def test_from_logits_agrees_with_probabilities(loss):
    y = np.array([[1, 0, 1, 0], [0, 1, 1, 0]], dtype="float32")
    logits = np.array([[2.0, -0.5, 0.1, 1.5], [-3.0, 0.3, 0.8, -1.2]], dtype="float32")
    from_probs = _np(loss(y, _sigmoid(logits).astype("float32")))
    from_logits = _np(loss(y, logits, from_logits=True))
    assert from_probs.min() > 0.01  # not a comparison of zeros
    np.testing.assert_allclose(from_logits, from_probs, rtol=1e-5)


def test_focal_from_logits_is_exact_and_has_finite_gradients_at_extreme_logits():
    y = np.array([[1.0, 0.0, 1.0, 0.0]], dtype="float32")
    x = tf.Variable([[-100.0, 100.0, 100.0, -100.0]])
    with tf.GradientTape() as tape:
        loss = binary_focal_loss(y, x, gamma=2.0, alpha=0.25, from_logits=True)
    # two examples are wrong by 100 nats ((1 − p_t)^γ = 1), two right (≈ 0); α_t = 0.25, 0.75
    assert float(loss[0]) == pytest.approx((0.25 * 100 + 0.75 * 100) / 4, rel=1e-5)
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()


def _zlpr_np(y, s):
    out = []
    for b in range(y.shape[0]):
        neg = sum(np.exp(s[b, i]) for i in range(y.shape[1]) if y[b, i] == 0)
        pos = sum(np.exp(-s[b, j]) for j in range(y.shape[1]) if y[b, j] == 1)
        out.append(np.log(1 + neg) + np.log(1 + pos))
    return np.array(out)


Y_ML = np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype="float32")
S_ML = np.array([[2.0, -1.0, 0.5, -0.3], [1.2, -2.0, -0.7, 3.0]], dtype="float32")
IDS_ML = np.array([[0, 3], [1, -1]], dtype="int32")  # the positives of Y_ML, -1 = padding


def test_zlpr_equals_the_formula_by_explicit_loops():
    expected = _zlpr_np(Y_ML, S_ML.astype(np.float64))
    np.testing.assert_allclose(_np(multilabel_crossentropy(Y_ML, S_ML)), expected, rtol=1e-6)
    assert float(MultilabelCrossEntropy()(Y_ML, S_ML)) == pytest.approx(expected.mean(), rel=1e-6)


def test_sparse_zlpr_equals_dense_with_padding_duplicates_and_empty_rows():
    np.testing.assert_allclose(_np(sparse_multilabel_crossentropy(IDS_ML, S_ML)),
                               _np(multilabel_crossentropy(Y_ML, S_ML)), rtol=1e-6)
    rng = np.random.default_rng(0)
    s = rng.normal(scale=3.0, size=(4, 6)).astype("float32")
    ids = np.array([[2, 5, 99], [99, 99, 99], [0, 1, 2], [4, 4, 99]])  # 99 = padding here
    y = np.zeros((4, 6), dtype="float32")
    for b, row in enumerate(ids):
        y[b, row[row != 99]] = 1  # the repeated id 4 is one positive
    dense = _np(multilabel_crossentropy(y, s))
    np.testing.assert_allclose(dense, _zlpr_np(y, s.astype(np.float64)), rtol=1e-5)
    np.testing.assert_allclose(_np(sparse_multilabel_crossentropy(ids, s, mask_value=99)), dense,
                               rtol=1e-5)
    loss = SparseMultilabelCrossEntropy(mask_value=99)
    assert float(loss(ids, s)) == pytest.approx(dense.mean(), rel=1e-5)


def test_sparse_zlpr_stays_exact_when_positives_are_confident():
    # Σ_pos e^s ≈ e^40 ≫ 1/ε: subtracting it from Σ_all e^s would lose the negative term
    s = np.array([[40.0, -30.0, 35.0, -25.0]], dtype="float32")
    expected = _zlpr_np(np.array([[1, 0, 1, 0]]), s.astype(np.float64))
    assert expected[0] < 1e-10
    got = _np(sparse_multilabel_crossentropy(np.array([[0, 2]]), s))
    np.testing.assert_allclose(got, expected, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_zlpr_gradients_are_finite_for_all_positive_and_all_negative_rows(dtype):
    y = np.array([[1, 1, 1], [0, 0, 0], [1, 0, 0]], dtype="float32")
    ids = np.array([[0, 1, 2], [-1, -1, -1], [0, -1, -1]])
    s0 = np.array([[0.5, -1.0, 2.0], [1.0, -0.5, 0.2], [-0.3, 0.7, 0.1]], dtype="float32")
    expected = _zlpr_np(y, s0.astype(np.float64))
    for loss, labels in ((multilabel_crossentropy, y), (sparse_multilabel_crossentropy, ids)):
        s = tf.Variable(tf.cast(s0, dtype))
        with tf.GradientTape() as tape:
            value = loss(labels, s)
        grad = tf.cast(tape.gradient(value, s), "float32").numpy()
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
        np.testing.assert_allclose(_np(tf.cast(value, "float32")), expected,
                                   rtol=1e-5 if dtype == "float32" else 2e-2)


@pytest.mark.parametrize("loss, default, function", [
    (HardTruncatedCrossEntropy(margin=0.9), HardTruncatedCrossEntropy(),
     lambda y, p: hard_truncated_crossentropy(y, p, margin=0.9)),
    (SoftTruncatedCrossEntropy(margin=0.8, scale=3.0, from_logits=True),
     SoftTruncatedCrossEntropy(from_logits=True),
     lambda y, p: soft_truncated_crossentropy(y, p, margin=0.8, scale=3.0, from_logits=True)),
    (BinaryFocalLoss(gamma=1.0, alpha=None), BinaryFocalLoss(),
     lambda y, p: binary_focal_loss(y, p, gamma=1.0, alpha=None)),
], ids=["hard", "soft", "focal"])
def test_loss_classes_use_their_arguments(loss, default, function):
    y = np.array([[1, 0], [0, 1], [1, 1]], dtype="float32")
    p = np.array([[0.7, 0.35], [0.1, 0.85], [0.55, 0.95]], dtype="float32")
    got = float(loss(y, p))
    assert got == pytest.approx(float(np.mean(_np(function(y, p)))), rel=1e-6)
    assert abs(got - float(default(y, p))) > 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match="margin"):
        HardTruncatedCrossEntropy(margin=0.3)
    with pytest.raises(ValueError, match="scale"):
        SoftTruncatedCrossEntropy(scale=0.0)
    with pytest.raises(ValueError, match="alpha"):
        BinaryFocalLoss(alpha=1.5)
    with pytest.raises(ValueError, match="gamma"):
        binary_focal_loss(Y, P, gamma=-1.0)


def _training_data():
    """Inputs, and one target per head: a binary label and multi-label 0/1 rows (also as ids)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    binary = (x[:, :1] + 0.5 * x[:, 1:2] > 0).astype("float32")  # (64, 1)
    multi = (x > 0.3).astype("float32")  # (64, 4): 0–4 positives per row
    ids = np.full((64, 4), 99, dtype="int32")  # padded with 99: a non-default mask_value
    for b in range(64):
        pos = np.flatnonzero(multi[b])
        ids[b, : len(pos)] = pos
    return x, [binary, binary, binary, multi, ids]


def test_each_loss_trains_in_fit_and_reloads_in_safe_mode(tmp_path):
    # one model with a separate Dense head per loss: a single traced fit covers all five
    keras.utils.set_random_seed(0)
    losses = [HardTruncatedCrossEntropy(margin=0.7),
              SoftTruncatedCrossEntropy(margin=0.7, scale=5.0, from_logits=True),
              BinaryFocalLoss(gamma=1.0, alpha=None, from_logits=True),
              MultilabelCrossEntropy(), SparseMultilabelCrossEntropy(mask_value=99)]
    x, targets = _training_data()
    inputs = keras.Input((4,))
    heads = [keras.layers.Dense(1, activation="sigmoid")(inputs),
             keras.layers.Dense(1)(inputs), keras.layers.Dense(1)(inputs),
             keras.layers.Dense(4)(inputs), keras.layers.Dense(4)(inputs)]
    model = keras.Model(inputs, heads)
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss=losses, jit_compile=False)

    def per_head(m, compiled):
        return [float(loss(y, pred)) for loss, y, pred in zip(compiled, targets, m(x), strict=True)]

    first = per_head(model, losses)
    model.fit(x, targets, epochs=5, batch_size=16, verbose=0)
    trained = per_head(model, losses)
    for name, a, b in zip(["hard", "soft", "focal", "zlpr", "sparse_zlpr"], first, trained,
                          strict=True):
        assert b < 0.8 * a, (name, a, b)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert [type(loss) for loss in loaded.loss] == [type(loss) for loss in losses]
    assert [loss.get_config() for loss in loaded.loss] == [loss.get_config() for loss in losses]
    np.testing.assert_allclose(per_head(loaded, loaded.loss), trained, rtol=1e-6)
    assert float(loaded.compute_loss(x, targets, loaded(x), training=False)) == pytest.approx(
        sum(trained), rel=1e-5)


def test_function_form_compiles_and_reloads_in_safe_mode(tmp_path):
    x, (y, *_) = _training_data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss=hard_truncated_crossentropy)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.loss is hard_truncated_crossentropy
    expected = float(np.mean(_np(hard_truncated_crossentropy(y, model(x)))))
    got = float(loaded.compute_loss(x, y, loaded(x), training=False))
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("make", [
    lambda: kexue_losses.HardTruncatedCrossEntropy(margin=0.6),
    lambda: kexue_losses.SoftTruncatedCrossEntropy(margin=0.6, scale=10.0),
    lambda: kexue_losses.BinaryFocalLoss(gamma=2.0, alpha=0.25),
])
def test_binary_losses_take_labels_without_the_trailing_axis(make):
    # a sigmoid model outputs (batch, 1) while datasets often yield labels of shape (batch,):
    # both must give the per-example loss, not a (batch, batch) cross product
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    p = np.array([[0.9], [0.45], [0.3], [0.2]], np.float32)
    loss = make()
    flat = float(loss(y, p))
    column = float(loss(y[:, None], p))
    assert flat == pytest.approx(column, rel=1e-6)
    assert float(loss(y, p[:, 0])) == pytest.approx(column, rel=1e-6)
