import keras
import numpy as np

from kexue.infer import compiled_call


def _recurrent_model(outputs: int) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32")
    h = keras.layers.Embedding(20, 4, mask_zero=True)(ids)
    h = keras.layers.GRU(3, return_sequences=True)(h)
    pooled = keras.layers.GlobalAveragePooling1D()(h)
    outs = [keras.layers.Dense(2)(pooled), h][:outputs]
    return keras.Model(ids, outs if outputs > 1 else outs[0])


def test_compiled_call_equals_the_eager_call_for_every_length():
    keras.utils.set_random_seed(0)
    model = _recurrent_model(1)
    call = compiled_call(model)
    rng = np.random.default_rng(0)
    for length in (3, 7, 12):  # one trace serves batches of other lengths
        x = rng.integers(1, 20, (5, length)).astype(np.int32)
        got = call(x)
        assert isinstance(got, np.ndarray) and got.shape == (5, 2)
        np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x, training=False)),
                                   rtol=1e-5, atol=1e-6)


def test_compiled_call_returns_a_list_of_arrays_for_several_outputs():
    keras.utils.set_random_seed(1)
    model = _recurrent_model(2)
    x = np.random.default_rng(1).integers(1, 20, (4, 6)).astype(np.int32)
    got = compiled_call(model)(x)
    want = [keras.ops.convert_to_numpy(t) for t in model(x, training=False)]
    assert [g.shape for g in got] == [(4, 2), (4, 6, 3)]
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
