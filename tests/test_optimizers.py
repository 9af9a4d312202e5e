"""PiecewiseLinear, per-variable LR multipliers and Lookahead on tiny Dense models."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kexue.optimizers import (
    Lookahead,
    LRMultiplierOptimizer,
    PiecewiseLinear,
    apply_lr_multipliers,
)

N, D = 16, 4


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D)).astype("float32")
    # Targets far from the initial outputs give O(1) gradients, so float32 deltas are precise.
    y = (10.0 + x @ rng.normal(size=(D, 1))).astype("float32")
    return x, y


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    # Sequential with an Input: variable paths are "sequential/a/kernel" here but "a/kernel"
    # after a reload, which the multipliers must survive.
    return keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(1, name="b")]
    )


def _fit(model, optimizer, batch_size: int, epochs: int = 1) -> list[np.ndarray]:
    x, y = _data()
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model.get_weights()


# --- PiecewiseLinear ---------------------------------------------------------------------------


def test_piecewise_linear_warmup_then_decay():
    s = PiecewiseLinear(2.0, {1000: 1.0, 2000: 0.1})
    steps = np.array([0, 250, 1000, 1500, 2000, 10_000])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(s(steps)), [0.0, 0.5, 2.0, 1.1, 0.2, 0.2], rtol=1e-6
    )
    warmup = PiecewiseLinear(1.0, {100: 1.0})
    assert [float(warmup(t)) for t in (0, 50, 100, 7000)] == pytest.approx([0, 0.5, 1, 1])
    decay = PiecewiseLinear(1.0, {0: 1.0, 100: 0.0})  # a knot at 0: no implicit warm-up
    assert [float(decay(t)) for t in (0, 25, 100, 500)] == pytest.approx([1, 0.75, 0, 0])


def test_piecewise_linear_drives_an_optimizer():
    opt = keras.optimizers.SGD(PiecewiseLinear(1.0, {4: 1.0}))
    opt.iterations.assign(2)
    assert float(opt.learning_rate) == pytest.approx(0.5)


def test_piecewise_linear_config_round_trip_through_json():
    s = PiecewiseLinear(3e-4, {500: 1.0, 1000: 0.5, 3000: 0.1}, name="pl")
    # sort_keys puts "1000" before "500": from_config must restore int keys in numeric order.
    text = json.dumps(keras.saving.serialize_keras_object(s), sort_keys=True)
    assert '"1000"' in text
    s2 = keras.saving.deserialize_keras_object(json.loads(text))
    assert isinstance(s2, PiecewiseLinear)
    assert s2.get_config() == s.get_config()
    assert list(s2.knots) == [500, 1000, 3000]
    steps = np.arange(0, 4000, 250)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(s2(steps)), keras.ops.convert_to_numpy(s(steps))
    )


@pytest.mark.parametrize(
    ("knots", "message"),
    [
        ({}, "empty"),
        ({-5: 1.0}, "negative"),
        ({100: 1.0, 50: 0.1}, "strictly increasing"),
        ({100: 1.0, 200: 0.5, 150: 0.1}, "strictly increasing"),
        ({100: -1.0}, ">= 0"),
    ],
)
def test_piecewise_linear_rejects_bad_knots(knots, message):
    with pytest.raises(ValueError, match=message):
        PiecewiseLinear(1.0, knots)


# --- gradient accumulation ---------------------------------------------------------------------


@pytest.mark.parametrize("base", [keras.optimizers.SGD, keras.optimizers.Adam])
@pytest.mark.parametrize("multipliers", [None, {"a": 0.5, "b/kernel": 3.0}])
def test_accumulated_steps_equal_one_big_batch(multipliers, base):
    """k accumulated steps of batch b = one step of batch k·b, for SGD and for Adam (Keras
    averages the accumulated gradients before the update), with and without our multipliers."""
    k, b = 4, N // 4

    def opt(model, **kw):
        o = base(0.01, **kw)
        return o if multipliers is None else apply_lr_multipliers(o, model, multipliers)

    m_acc = _model()
    w_acc = _fit(m_acc, opt(m_acc, gradient_accumulation_steps=k), batch_size=b)
    m_big = _model()
    w0 = m_big.get_weights()
    w_big = _fit(m_big, opt(m_big), batch_size=k * b)
    assert not np.allclose(w_big[0], w0[0])  # something actually trained
    for a, c in zip(w_acc, w_big, strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


# --- LR multipliers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: keras.optimizers.Adam(1e-2), lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.1)],
)
def test_zero_multiplier_freezes_layer_bit_identically(make):
    model = _model()
    w0 = model.get_weights()
    opt = apply_lr_multipliers(make(), model, {"a": 0.0})
    assert isinstance(opt, LRMultiplierOptimizer) and isinstance(opt, type(make()))
    w = _fit(model, opt, batch_size=4, epochs=2)
    np.testing.assert_array_equal(w[0], w0[0])  # a/kernel
    np.testing.assert_array_equal(w[1], w0[1])  # a/bias (AdamW would decay it otherwise)
    assert not np.allclose(w[2], w0[2]) and not np.allclose(w[3], w0[3])
    # No slots for frozen variables: iteration + learning_rate + (m, v) for b's 2 variables.
    assert len(opt.variables) == 2 + 2 * 2


@pytest.mark.parametrize(
    "make",
    [
        lambda: keras.optimizers.SGD(0.01),
        lambda: keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
        lambda: keras.optimizers.Adam(0.1),
        lambda: keras.optimizers.AdamW(0.1, weight_decay=0.2),
        lambda: keras.optimizers.RMSprop(0.05),
    ],
    ids=["sgd", "nesterov", "adam", "adamw", "rmsprop"],
)
def test_multiplier_scales_the_update_by_m(make):
    m = 3.0
    x, y = _data()
    deltas = []
    for optimizer in (make(), None):
        model = _model()
        w0 = model.get_weights()
        if optimizer is None:
            optimizer = apply_lr_multipliers(make(), model, {"b": m})
        model.compile(optimizer=optimizer, loss="mse")
        model.train_on_batch(x, y)
        deltas.append([w1 - w for w1, w in zip(model.get_weights(), w0, strict=True)])
    plain, scaled = deltas
    assert np.abs(plain[2]).min() > 1e-3  # b/kernel moved noticeably
    np.testing.assert_allclose(scaled[0], plain[0], rtol=1e-5)  # a: untouched multiplier
    np.testing.assert_allclose(scaled[2], m * plain[2], rtol=1e-5)  # b/kernel
    np.testing.assert_allclose(scaled[3], m * plain[3], rtol=1e-5)  # b/bias


def test_multiplier_patterns_first_match_wins_and_typos_fail():
    model = _model()
    opt = apply_lr_multipliers(keras.optimizers.SGD(0.1), model, {"b/kernel": 0.0, "b": 2.0})
    assert list(opt.get_config()["lr_multipliers"].values()) == [1.0, 1.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="match no trainable"):
        apply_lr_multipliers(keras.optimizers.SGD(0.1), model, {"dense_9": 0.0})
    with pytest.raises(ValueError, match=">= 0"):
        apply_lr_multipliers(keras.optimizers.SGD(0.1), model, {"a": -1.0})


# --- Lookahead ---------------------------------------------------------------------------------


def test_lookahead_k1_alpha1_is_the_inner_optimizer():
    w_inner = _fit(_model(), keras.optimizers.Adam(1e-2), batch_size=4)
    w_look = _fit(_model(), Lookahead(keras.optimizers.Adam(1e-2), k=1, alpha=1.0), batch_size=4)
    for a, b in zip(w_look, w_inner, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_lookahead_k2_interpolates_towards_slow_weights():
    model = _model()
    w0 = model.get_weights()
    fast = _fit(model, keras.optimizers.Adam(0.05), batch_size=8)  # 2 inner steps
    look = Lookahead(keras.optimizers.Adam(0.05), k=2, alpha=0.5)
    w = _fit(_model(), look, batch_size=8)
    for got, s, f in zip(w, w0, fast, strict=True):
        assert not np.allclose(f, s)
        np.testing.assert_allclose(got, s + 0.5 * (f - s), rtol=1e-5, atol=1e-6)
    # slow weights are optimizer state: 4 slow + Adam's 2 + 2·4 (+ wrapper's 2 scalars)
    assert len(look.variables) == 2 + 4 + 2 + 2 * 4
    assert int(look.iterations) == 2


def test_lookahead_syncs_on_real_updates_under_accumulation():
    # 2 batches with gradient_accumulation_steps=2 are 1 real SGD update, hence 1 sync at k=1.
    model = _model()
    w0 = model.get_weights()
    fast = _fit(model, keras.optimizers.SGD(0.01, gradient_accumulation_steps=2), batch_size=8)
    look = Lookahead(keras.optimizers.SGD(0.01, gradient_accumulation_steps=2), k=1, alpha=0.5)
    w = _fit(_model(), look, batch_size=8)
    assert int(look.iterations) == 1
    for got, s, f in zip(w, w0, fast, strict=True):
        assert not np.allclose(f, s)
        np.testing.assert_allclose(got, s + 0.5 * (f - s), rtol=1e-5, atol=1e-6)


def test_lookahead_validates_arguments():
    with pytest.raises(ValueError, match="k must be"):
        Lookahead(keras.optimizers.SGD(0.1), k=0)
    with pytest.raises(ValueError, match="alpha"):
        Lookahead(keras.optimizers.SGD(0.1), alpha=1.5)


# --- saving ------------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", ["multipliers", "lookahead"])
def test_compiled_model_saves_and_loads_in_safe_mode(wrapper, tmp_path):
    x, y = _data()
    model = _model()
    if wrapper == "multipliers":
        opt = apply_lr_multipliers(keras.optimizers.Adam(1e-2), model, {"a": 0.0, "b": 2.0})
    else:
        opt = Lookahead(keras.optimizers.Adam(1e-2), k=3, alpha=0.5)
    _fit(model, opt, batch_size=4)  # 4 steps: optimizer state is non-trivial
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)

    assert type(loaded.optimizer) is type(opt)
    assert loaded.optimizer.get_config() == opt.get_config()
    assert len(loaded.optimizer.variables) == len(opt.variables)
    for a, b in zip(loaded.optimizer.variables, opt.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training on from the restored state follows the original exactly (multipliers included).
    model.train_on_batch(x, y)
    loaded.train_on_batch(x, y)
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    if wrapper == "multipliers":
        np.testing.assert_array_equal(loaded.get_weights()[0], _model().get_weights()[0])
