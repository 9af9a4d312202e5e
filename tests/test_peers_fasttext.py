"""The fastText peer: it learns a separable toy corpus, two fits give the same model, ``ova``
gives one probability per label, the setting is chosen on valid, a clear error without the
package."""

import sys

import numpy as np
import pytest

from kexue.peers import fasttext

FILLER = list("这本书的内容我们觉得")


def _corpus(n, seed):
    """Documents of filler characters with one marker: 好 or 棒 for pos, 差 or 烂 for neg."""
    rng = np.random.default_rng(seed)
    documents, labels = [], []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        marks = "好棒" if label == "pos" else "差烂"
        chars = list(rng.choice(FILLER, size=rng.integers(2, 8))) + [marks[i // 2 % 2]]
        rng.shuffle(chars)
        documents.append([str(c) for c in chars])
        labels.append([label])
    return documents, labels


def test_document_lines_drop_separators_and_refuse_label_tokens():
    assert fasttext.document_line(["好", " ", "a\tb", "", "书"]) == "好 ab 书"
    with pytest.raises(ValueError, match="label"):
        fasttext.document_line(["__label__pos"])


def test_a_separable_corpus_is_learnt_and_refitting_gives_the_same_model():
    documents, labels = _corpus(200, seed=0)
    test_documents, test_labels = _corpus(40, seed=1)
    model = fasttext.fit(documents, labels, lr=0.5, epoch=10, word_ngrams=2, dim=10, seed=3)
    probs = fasttext.probabilities(model, test_documents, ["neg", "pos"])
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)  # softmax, fastText's 1e-5 removed
    predicted = np.where(probs[:, 1] >= 0.5, "pos", "neg")
    assert (predicted == [g for (g,) in test_labels]).all()
    again = fasttext.fit(documents, labels, lr=0.5, epoch=10, word_ngrams=2, dim=10, seed=3)
    np.testing.assert_array_equal(fasttext.probabilities(again, test_documents, ["neg", "pos"]), probs)
    # a label the model never saw gets probability 0
    assert (fasttext.probabilities(model, test_documents[:3], ["pos", "other"])[:, 1] == 0).all()


def test_one_vs_all_gives_a_probability_per_label():
    rng = np.random.default_rng(0)
    documents, labels = [], []
    for _ in range(300):
        has_a, has_b = rng.random() < 0.5, rng.random() < 0.5
        chars = list(rng.choice(FILLER, size=4)) + ["甲"] * has_a + ["乙"] * has_b
        documents.append([str(c) for c in chars])
        labels.append([n for n, hit in (("a", has_a), ("b", has_b)) if hit] or ["none"])
    model = fasttext.fit(documents, labels, lr=0.5, epoch=20, word_ngrams=1, dim=10, loss="ova")
    probs = fasttext.probabilities(model, [list("这书甲乙"), list("这书"), list("内容乙")], ["a", "b"])
    np.testing.assert_array_equal(probs >= 0.5, [[True, True], [False, False], [False, True]])


def test_the_setting_is_chosen_on_valid():
    documents, labels = _corpus(200, seed=0)
    valid_documents, valid_labels = _corpus(40, seed=2)
    gold = np.array([g == "pos" for (g,) in valid_labels])

    def accuracy(probs):
        return float(((probs[:, 1] >= 0.5) == gold).mean())

    # a learning rate of 1e-4 learns next to nothing in 10 epochs: valid must prefer lr 0.5
    settings = fasttext.grid([1e-4, 0.5], [10], [1])
    assert settings == [{"lr": 1e-4, "epoch": 10, "word_ngrams": 1},
                        {"lr": 0.5, "epoch": 10, "word_ngrams": 1}]
    _, valid_probs, chosen = fasttext.tune((documents, labels), valid_documents, ["neg", "pos"],
                                           settings, accuracy, dim=10)
    assert chosen["lr"] == 0.5 and len(chosen["candidates"]) == 2
    assert chosen["valid_score"] == round(accuracy(valid_probs), 4) == 1.0
    assert chosen["candidates"][0]["valid_score"] < 1.0
    with pytest.raises(ValueError, match="empty"):
        fasttext.grid([], [1], [1])
    with pytest.raises(ValueError, match="lr"):
        fasttext.grid([0.0], [1], [1])


def test_without_the_package_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "fasttext", None)
    documents, labels = _corpus(4, seed=0)
    with pytest.raises(ImportError, match="fasttext-wheel"):
        fasttext.fit(documents, labels, lr=0.1, epoch=1, word_ngrams=1, dim=4)
