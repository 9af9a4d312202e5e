import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kexue.layers.margin import (
    PRIME,
    HashedNgramBag,
    bag_vectors,
    char_ngrams,
    document_frequency_idf,
    hashed_ngrams,
    ngram_hash,
    slot_of,
)

TEXT = "莫斯科市长卢日科夫宣布申办奥运会"


def test_char_ngrams_distinct_in_first_occurrence_order():
    assert char_ngrams("人民日报", 2, 10) == ["人", "民", "日", "报", "人民", "民日", "日报"]
    assert char_ngrams("哈哈哈", 3, 10) == ["哈", "哈哈", "哈哈哈"]  # repeats counted once
    assert char_ngrams("人 民\n日", 2, 2) == ["人", "民", "人民"]  # spaces dropped, then maxlen
    assert char_ngrams("", 3, 10) == []
    np.testing.assert_array_equal(hashed_ngrams("", 3, 10), [0])  # padding only
    with pytest.raises(ValueError, match="ngram_max"):
        char_ngrams("人民", 0, 10)


def test_ngram_hash_is_stable_across_processes():
    # Python's str hash is salted per process: two interpreters with different seeds must still
    # agree with this one, and with the value every saved model was trained with
    assert ngram_hash("人民") == 1510860551 and ngram_hash("a") == 1756872262
    mine = hashed_ngrams(TEXT, 3, 64).tolist()
    assert all(1 <= i < PRIME for i in mine)
    code = f"from kexue.layers.margin import hashed_ngrams; print(hashed_ngrams({TEXT!r}, 3, 64).tolist())"

    def run(program: str, seed: str) -> str:
        return subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()

    salted = f"print(hash({TEXT!r}))"
    assert run(salted, "1") != run(salted, "2")  # str hashes differ between processes...
    assert run(code, "1") == str(mine)  # ...n-gram ids do not


def _bag(dim=4096, slots=1024):
    layer = HashedNgramBag(dim, slots)
    layer.build((None, None))
    return layer


def test_bag_dot_product_is_the_weighted_overlap():
    layer = _bag()
    a = [ngram_hash(g) for g in ("北", "京", "北京", "大学")]
    b = [ngram_hash(g) for g in ("北京", "大学", "上海")]
    raw = keras.ops.convert_to_numpy(layer(np.array([a + [0], b + [0, 0]], np.int32)))
    # weights 1 (idf 1, factor 1) and no collisions at this dim: entries ±1, one per n-gram
    assert sorted(np.abs(raw[0][raw[0] != 0]).tolist()) == [1.0] * 4
    assert float(raw[0] @ raw[1]) == pytest.approx(2.0)  # 北京 and 大学 shared
    cos = bag_vectors(layer, [np.array(a), np.array(b)])
    assert float(cos[0] @ cos[1]) == pytest.approx(2 / np.sqrt(4 * 3), rel=1e-6)
    # padding adds nothing
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(np.array([a], np.int32)))[0], raw[0])


def test_shared_rare_ngram_raises_cosine_and_learnt_weights_scale_it():
    layer = _bag(dim=8192, slots=1 << 16)
    query = hashed_ngrams("卢日科夫宣布申办", 3, 64)
    with_name = hashed_ngrams("市长卢日科夫今天说", 3, 64)
    without = hashed_ngrams("市长普里马科夫今天说", 3, 64)
    v = bag_vectors(layer, [query, with_name, without])
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    # a larger weight on the shared n-grams (idf and learnt factor) raises that cosine further
    shared = np.intersect1d(query, with_name)
    idf = np.ones(layer.slots, np.float32)
    idf[slot_of(shared, layer.slots)] = 3.0
    layer.set_idf(idf)
    weighted = bag_vectors(layer, [query, with_name])
    assert weighted[0] @ weighted[1] > v[0] @ v[1] + 0.1
    theta = np.zeros(layer.slots, np.float32)
    theta[slot_of(shared, layer.slots)] = -20.0  # factor softplus(−20)/ln 2 ≈ 0: shared n-grams off
    layer.theta.assign(theta)
    off = bag_vectors(layer, [query, with_name])
    assert abs(float(off[0] @ off[1])) < 0.05
    w = keras.ops.convert_to_numpy(layer.ngram_weights(np.array([[shared[0], 0]], np.int32)))
    assert w[0, 0] == pytest.approx(3.0 * np.log1p(np.exp(-20.0)) / np.log(2.0), rel=1e-3)
    assert w[0, 1] == 0.0
    with pytest.raises(ValueError, match="shape"):
        layer.set_idf(np.ones(3))


def test_document_frequency_idf_by_hand():
    docs = [np.array([5, 7, 0]), np.array([5]), np.array([9])]
    idf = document_frequency_idf(docs, slots=1 << 20)
    s5, s7, s9 = slot_of(np.array([5, 7, 9]), 1 << 20)
    assert len({s5, s7, s9}) == 3
    assert idf[s5] == pytest.approx(np.log(4 / 3) + 1)  # in 2 of 3 documents
    assert idf[s7] == pytest.approx(np.log(4 / 2) + 1)
    assert idf[slot_of(np.array([11]), 1 << 20)[0]] == pytest.approx(np.log(4) + 1)  # unseen: highest


def test_bag_layer_round_trips_through_keras_saving(tmp_path):
    ids = keras.Input((None,), dtype="int32")
    layer = HashedNgramBag(64, 128, name="bag")
    model = keras.Model(ids, layer(ids))
    layer.set_idf(np.linspace(1, 2, 128).astype(np.float32))
    layer.theta.assign(np.linspace(-1, 1, 128).astype(np.float32))
    x = np.stack([hashed_ngrams("人民日报社论", 2, 16)[:8], hashed_ngrams("新华社北京电", 2, 16)[:8]])
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(model(x)),
                               rtol=1e-6)
    assert again.layers[-1].get_config()["dim"] == 64
    with pytest.raises(ValueError, match="dim and slots"):
        HashedNgramBag(0, 8)
