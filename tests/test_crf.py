"""The CRF against brute-force enumeration of every tag path."""

import itertools

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

from kexue.layers import CRF, crf_log_partition, crf_nll, crf_path_score, viterbi_decode

K, T = 3, 4


def _case(seed=0):
    rng = np.random.default_rng(seed)
    emissions = rng.normal(size=(3, T, K)).astype("float32")
    transitions = rng.normal(size=(K, K)).astype("float32")
    lengths = np.array([4, 2, 1])
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype("float32")
    return emissions, transitions, lengths, mask


def _score(em, tr, path):
    return sum(em[t, y] for t, y in enumerate(path)) + sum(
        tr[a, b] for a, b in zip(path, path[1:], strict=False))


def _all_paths(n):
    return list(itertools.product(range(K), repeat=n))


def test_log_partition_equals_brute_force_with_mask():
    em, tr, lengths, mask = _case()
    got = np.asarray(crf_log_partition(em, tr, mask))
    for b, n in enumerate(lengths):
        brute = logsumexp([_score(em[b], tr, p) for p in _all_paths(n)])
        assert got[b] == pytest.approx(brute, abs=1e-4)


def test_path_score_equals_brute_force_and_ignores_padding():
    em, tr, lengths, mask = _case(1)
    rng = np.random.default_rng(5)
    tags = rng.integers(0, K, size=(3, T))
    got = np.asarray(crf_path_score(em, tr, tags, mask))
    for b, n in enumerate(lengths):
        assert got[b] == pytest.approx(_score(em[b], tr, tags[b, :n]), abs=1e-4)


def test_nll_is_a_proper_negative_log_probability():
    em, tr, lengths, _ = _case(2)
    for b, n in enumerate(lengths):
        probs = []
        for p in _all_paths(n):
            tags = np.full((1, T), -1)
            tags[0, :n] = p
            probs.append(np.exp(-float(np.asarray(crf_nll(em[b : b + 1], tr, tags))[0])))
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)  # probabilities over all paths sum to 1


def test_viterbi_equals_brute_force_argmax():
    em, tr, lengths, _ = _case(3)
    paths = viterbi_decode(em, tr, lengths)
    for b, n in enumerate(lengths):
        best = max(_all_paths(n), key=lambda p: _score(em[b], tr, p))
        assert tuple(paths[b].tolist()) == best


def test_layer_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 6, size=(64, T)).astype("int32")
    y = (x % K).astype("int32")  # tag = token id mod K: learnable from the emissions alone
    y[:8, 2:] = -1  # some padded sequences
    x[:8, 2:] = 0
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(6, 8, mask_zero=True)(inputs)
    emissions = keras.layers.Dense(K)(h)
    crf = CRF(K, lr_multiplier=2.0, name="crf")
    model = keras.Model(inputs, crf(emissions))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=crf.loss)
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=30, batch_size=16, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.2 * first
    paths = crf.decode(model.predict(x[8:12], verbose=0))
    assert [p.tolist() for p in paths] == y[8:12].tolist()
    model.save(tmp_path / "crf.keras")
    loaded = keras.saving.load_model(tmp_path / "crf.keras", safe_mode=True,
                                     custom_objects={"loss": crf.loss}, compile=False)
    restored = loaded.get_layer("crf")
    assert restored.lr_multiplier == 2.0
    np.testing.assert_allclose(np.asarray(restored.transitions), np.asarray(crf.transitions))


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_tags"):
        CRF(1)
    with pytest.raises(ValueError, match="put Dense"):
        CRF(3)(keras.Input((None, 4)))


def test_log_partition_in_a_graph_with_unknown_length_equals_brute_force():
    # Keras fit traces the loss with (None, None, K) inputs: the scan must work there too
    import tensorflow as tf

    em, tr, lengths, mask = _case(3)
    graph = tf.function(crf_log_partition, input_signature=[
        tf.TensorSpec([None, None, K]), tf.TensorSpec([K, K]), tf.TensorSpec([None, None])])
    got = graph(em, tr, mask).numpy()
    for b, n in enumerate(lengths):
        brute = logsumexp([_score(em[b], tr, p) for p in _all_paths(n)])
        assert got[b] == pytest.approx(brute, abs=1e-4)


def test_batched_viterbi_equals_brute_force_on_many_lengths():
    rng = np.random.default_rng(7)
    em = rng.normal(size=(6, 5, K))
    tr = rng.normal(size=(K, K))
    lengths = np.array([5, 4, 3, 2, 1, 5])
    for b, path in enumerate(viterbi_decode(em, tr, lengths)):
        n = lengths[b]
        best = max(_all_paths(n), key=lambda p, b=b: _score(em[b], tr, p))
        assert list(path) == list(best)
