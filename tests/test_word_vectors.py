"""Word2Vec (Keras), Simpler GloVe, the POS agreement evaluation and `kexue similar`."""

import json
import math

import numpy as np
import pytest

from kexue.comparison import attach
from kexue.families import glove, word2vec
from kexue.text.word_vectors import (
    WordVectors,
    agreement_scores,
    majority_pos,
    pos_agreement_at_k,
)


def test_negative_table_follows_unigram_to_the_three_quarters():
    counts = np.array([1, 16, 81, 0])
    table = word2vec.negative_table(counts, size=36_000)
    share = np.bincount(table, minlength=4) / len(table)
    expected = np.array([1, 8, 27, 0]) / 36  # c^0.75
    assert np.allclose(share, expected, atol=1 / 36_000)


def test_keep_probability_is_word2vecs_formula():
    counts = np.array([1000, 10])
    t = 0.01
    threshold = t * 1010
    keep = word2vec.keep_probability(counts, t)
    assert keep[0] == pytest.approx((math.sqrt(1000 / threshold) + 1) * threshold / 1000)
    assert keep[1] == 1.0  # rare words are always kept
    assert np.all(word2vec.keep_probability(counts, 0.0) == 1.0)


def test_skipgram_pairs_of_a_tiny_corpus():
    ids = np.array([0, 1, 2, 3, 4], dtype=np.int32)  # sentence 0: 0 1 2; sentence 1: 3 4
    sent = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    pairs = {tuple(p) for p in word2vec.skipgram_pairs(ids, sent, window=1)}
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)}
    pairs2 = [tuple(p) for p in word2vec.skipgram_pairs(ids, sent, window=2)]
    assert sorted(pairs2) == sorted([*pairs, (0, 2), (2, 0)])  # never across sentences
    # reduced windows draw a subset, and a centre keeps all of its distance-1 neighbours
    rng = np.random.default_rng(0)
    reduced = [tuple(p) for p in word2vec.skipgram_pairs(ids, sent, window=2, rng=rng)]
    assert set(reduced) <= set(pairs2) and set(pairs) <= set(reduced)


def test_cbow_examples_list_the_window():
    ids = np.array([5, 6, 7], dtype=np.int32)
    sent = np.zeros(3, dtype=np.int32)
    centres, context = word2vec.cbow_examples(ids, sent, window=1, pad=9)
    assert centres.tolist() == [5, 6, 7]
    assert context.tolist() == [[9, 6], [5, 7], [6, 9]]  # [left, right]


def test_cooccurrence_and_pmi_targets():
    ids = np.array([0, 1, 0, 2], dtype=np.int32)
    sent = np.zeros(4, dtype=np.int32)
    rows, cols, counts = glove.cooccurrence(ids, sent, window=1, vocab_size=3)
    x = np.zeros((3, 3))
    x[rows, cols] = counts
    assert x.tolist() == [[0, 2, 1], [2, 0, 0], [1, 0, 0]]  # symmetric window-1 counts
    pmi = glove.pmi_targets(rows, cols, counts)
    total, row = x.sum(), x.sum(axis=1)
    for r, c, value in zip(rows, cols, pmi, strict=True):
        assert value == pytest.approx(math.log(x[r, c] * total / (row[r] * row[c])))


def test_glove_loss_is_the_closed_form_and_has_no_bias():
    import keras

    rng = np.random.default_rng(0)
    rows = np.array([0, 0, 1, 2, 2], dtype=np.int32)
    cols = np.array([1, 2, 0, 0, 2], dtype=np.int32)
    counts = np.array([3.0, 150.0, 3.0, 150.0, 7.0])
    targets = glove.pmi_targets(rows, cols, counts)
    weights = glove.glove_weights(counts, x_max=100.0, alpha=0.75)
    assert weights[1] == 1.0 and weights[0] == pytest.approx((3 / 100) ** 0.75)
    model = glove.build_model(vocab_size=3, dim=4, seed=0)
    assert [tuple(w.shape) for w in model.trainable_weights] == [(3, 4)]  # one table, no biases
    vectors = rng.normal(size=(3, 4)).astype(np.float32)
    model.get_layer("vectors").set_weights([vectors])
    loss = keras.losses.MeanSquaredError(reduction="sum")
    keras_value = float(loss(targets[:, None].astype(np.float32), model([rows, cols]),
                             sample_weight=weights.astype(np.float32)))
    closed = sum(w * (vectors[r] @ vectors[c] - t) ** 2
                 for r, c, t, w in zip(rows, cols, targets, weights, strict=True))
    assert keras_value == pytest.approx(closed, rel=1e-5)
    assert glove.glove_loss(vectors, rows, cols, targets, weights) == pytest.approx(closed, rel=1e-5)


def test_pos_agreement_on_a_hand_made_case():
    words = ["猫", "狗", "马", "跑", "跳", "飞"]
    matrix = np.array([[1, 0.1], [1, 0.2], [1, -0.1], [0.1, 1], [0.2, 1], [0.9, 0.5]])
    pos = {"猫": "n", "狗": "n", "马": "n", "跑": "v", "跳": "v", "飞": "v"}
    vectors = WordVectors(words, matrix)
    # 猫's 2 nearest: 狗, 马 (n, n) -> 1; 跑's: 跳, 飞 (v, v) -> 1; 飞's: 狗? cosines decide
    assert pos_agreement_at_k(vectors, ["猫", "跑"], words, pos, k=2) == 1.0
    sims = vectors.unit @ vectors.unit[5]
    sims[5] = -np.inf
    top = np.argsort(-sims)[:2]
    expected = np.mean([pos[words[i]] == "v" for i in top])
    assert pos_agreement_at_k(vectors, ["飞"], words, pos, k=2) == pytest.approx(expected)
    assert majority_pos([[("跑", "v"), ("跑", "n")], [("跑", "v")]])["跑"] == ("v", 3)



def test_agreement_items_give_the_paired_comparison_of_two_vector_sets():
    """Per-query shares ride in ``items``; their mean is the reported agreement, and the
    comparison block pairs two vector sets query by query."""
    words = ["猫", "狗", "马", "跑", "跳", "飞"]
    pos = {"猫": "n", "狗": "n", "马": "n", "跑": "v", "跳": "v", "飞": "v"}
    good = WordVectors(words, np.array([[1, 0.1], [1, 0.2], [1, -0.1], [0.1, 1], [0.2, 1], [0.3, 1]]))
    mixed = WordVectors(words, np.array([[1, 0.1], [0.1, 1], [1, -0.1], [1, 0.2], [0.2, 1], [0.9, 0.5]]))
    split = {"candidates": words, "pos": pos, "valid": ["猫", "跑", "飞"], "test": words}
    ours, theirs = (agreement_scores(v, split, k=2) for v in (good, mixed))
    for scores in (ours, theirs):
        for name in ("valid", "test"):
            assert len(scores["items"][name]) == len(split[name])
            assert scores[name]["pos_agreement_at_2"] == pytest.approx(
                np.mean(scores["items"][name]), abs=1e-4)
    assert ours["test"]["pos_agreement_at_2"] == 1.0 > theirs["test"]["pos_agreement_at_2"]
    metrics = attach({"test": ours["test"], "items": ours["items"]},
                     {"mixed": {"test": theirs["test"], "items": theirs["items"]}})
    block = metrics["comparison"]
    assert "items" not in metrics and block["peer"] == "mixed" and block["test"]["n"] == 6
    assert block["test"]["delta"] == pytest.approx(
        ours["test"]["pos_agreement_at_2"] - theirs["test"]["pos_agreement_at_2"], abs=1e-4)

def _toy_sentences(n=600, seed=0):
    """Two topics whose words only co-occur within a topic."""
    rng = np.random.default_rng(seed)
    topics = [["甲", "乙", "丙", "丁"], ["子", "丑", "寅", "卯"]]
    return [list(rng.choice(topics[i % 2], size=6)) for i in range(n)]


def _toy_config(**overrides):
    # 8 words: a batch holds each many times, and pair gradients add up: keep batches small
    values = dict(architecture="skipgram", dim=8, window=2, negatives=2, noise_words=4,
                  noise_group=16, min_count=1, subsample=0.0, epochs=2, batch_size=16,
                  learning_rate=0.025, min_learning_rate=0.001, threads=2, seed=0)
    values.update(overrides)
    return word2vec.Config(**values)


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_keras_word2vec_separates_two_topics(architecture):
    vectors, info = word2vec.train_vectors(_toy_config(architecture=architecture), _toy_sentences())
    assert info["words_per_second"] > 0 and info["vocab_size"] == 8
    for word, topic in (("甲", "甲乙丙丁"), ("子", "子丑寅卯")):
        assert {w for w, _ in vectors.most_similar(word, 3)} <= set(topic)


def test_cli_similar_on_a_tiny_model(tmp_path, capsys):
    from kexue import cli

    vectors, _ = word2vec.train_vectors(_toy_config(), _toy_sentences())
    vectors.save(tmp_path / "w2v")
    capsys.readouterr()  # drop the training progress lines
    assert cli.main(["similar", "甲", "-k", "3", "--model", str(tmp_path / "w2v")]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["word"] == "甲" and len(row["neighbours"]) == 3
    assert {n["word"] for n in row["neighbours"]} <= set("乙丙丁")
    assert cli.main(["similar", "没有", "--model", str(tmp_path / "w2v")]) == 1
    assert "'没有' is not in the vocabulary" in capsys.readouterr().err
    assert cli.main(["similar", "甲", "--model", str(tmp_path / "missing")]) == 1
    assert "train them first (`dvc repro train_word2vec`)" in capsys.readouterr().err


def test_bad_word2vec_param_names_the_key(tmp_path):
    from kexue.config import ConfigError, load_section

    (tmp_path / "params.yaml").write_text("word2vec:\n  architecture: glove\n")
    with pytest.raises(ConfigError, match="word2vec.architecture = 'glove'.*skipgram \\| cbow"):
        load_section("word2vec", word2vec.Config, tmp_path / "params.yaml")
