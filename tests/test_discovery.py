import math

import numpy as np
import pytest

from kexue.text.discovery import (
    DEFAULT_THRESHOLDS,
    UnigramSegmenter,
    average_char_entropy,
    build_lexicon,
    cohesion_split,
    count_ngrams,
    min_cohesion,
    segment_texts,
    segment_with_lexicon,
)

VOCAB = ["我们", "北京", "喜欢", "天气", "很好", "今天", "学习", "中文", "电脑", "朋友", "图书馆", "的"]


@pytest.fixture(scope="module")
def synthetic():
    """3000 sentences of 3..8 words drawn uniformly (seeded) from VOCAB: (texts, gold words)."""
    rng = np.random.default_rng(0)
    gold = [[VOCAB[i] for i in rng.integers(0, len(VOCAB), size=rng.integers(3, 9))]
            for _ in range(3000)]
    return ["".join(words) for words in gold], gold


def _spans(words):
    spans, offset = set(), 0
    for word in words:
        spans.add((offset, offset + len(word)))
        offset += len(word)
    return spans


def _word_f1(gold, predicted):
    correct = n_gold = n_pred = 0
    for g, p in zip(gold, predicted, strict=True):
        correct += len(_spans(g) & _spans(p))
        n_gold, n_pred = n_gold + len(g), n_pred + len(p)
    precision, recall = correct / n_pred, correct / n_gold
    return 2 * precision * recall / (precision + recall)


def test_count_ngrams_exact_and_not_across_texts():
    counts, total = count_ngrams(["我爱我家", "爱家"], max_n=3)
    assert total == 6
    assert counts == {"我": 2, "爱": 2, "家": 2,
                      "我爱": 1, "爱我": 1, "我家": 1, "爱家": 1,
                      "我爱我": 1, "爱我家": 1}  # no 家爱 (across the two texts)
    assert count_ngrams(["我爱我家"], max_n=1) == ({"我": 2, "爱": 1, "家": 1}, 4)
    with pytest.raises(ValueError):
        count_ngrams(["我"], max_n=0)


def test_min_cohesion_by_hand_and_the_cut_it_implies():
    counts = {"北": 10, "京": 8, "人": 12, "北京": 6, "京人": 4, "北京人": 3}
    total = 100
    # 2-gram: 6 * 100 / (10 * 8) = 7.5
    assert min_cohesion("北京", counts, total) == pytest.approx(math.log(7.5))
    # 3-gram: splits 北|京人 -> 3*100/(10*4) = 7.5 and 北京|人 -> 3*100/(6*12) = 4.1667; min wins
    assert min_cohesion("北京人", counts, total) == pytest.approx(math.log(300 / 72))
    assert min_cohesion("京北", counts, total) == -math.inf
    # 京人: 4 * 100 / (8 * 12) = 4.17 < 5, so only the 3-gram can hold the second gap
    loose = (math.log(5), math.log(4), math.log(125))
    strict = (math.log(5), math.log(5), math.log(125))
    assert cohesion_split(["北京人"], counts, total, 2, loose, 3) == [["北京人"]]
    assert cohesion_split(["北京人"], counts, total, 2, strict, 3) == [["北京", "人"]]
    # 北京人 (3) and 北京 (6) are rarer than min_count = 7: nothing holds, every gap is cut
    assert cohesion_split(["北京人"], counts, total, 7, loose, 3) == [["北", "京", "人"]]


def test_synthetic_corpus_lexicon_and_segmentation(synthetic):
    texts, gold = synthetic
    counts, total = count_ngrams(texts, 4)
    pieces = cohesion_split(texts, counts, total, 8, DEFAULT_THRESHOLDS, 4)
    assert all("".join(p) == t for p, t in zip(pieces, texts, strict=True))
    assert _word_f1(gold, pieces) > 0.95  # the cut alone already finds the words

    lexicon = build_lexicon(texts, max_n=4, min_count=8)
    for word in VOCAB:
        assert word in lexicon, word
    n_pieces = sum(lexicon.values())
    frequent_multi = {w for w, c in lexicon.items() if len(w) > 1 and c > 0.01 * n_pieces}
    assert frequent_multi == {w for w in VOCAB if len(w) > 1}

    predicted = segment_texts(texts, lexicon)
    assert all("".join(p) == t for p, t in zip(predicted, texts, strict=True))
    assert _word_f1(gold, predicted) > 0.9


def test_long_pieces_are_split_back_into_characters():
    texts = ["甲乙丙丁戊己庚"] * 50  # every 2-gram: 50 * 350 / (50 * 50) = 7 > 5: one 7-char piece
    assert build_lexicon(texts, max_word_len=4) == {c: 50 for c in "甲乙丙丁戊己庚"}
    whole = build_lexicon(texts, max_word_len=7)
    assert whole == {"甲乙丙丁戊己庚": 50, **{c: 1 for c in "甲乙丙丁戊己庚"}}


def test_segmentation_prefers_a_frequent_long_word_and_joins_back():
    lexicon = {"北京": 50, "北": 5, "京": 5, "大学": 30, "大": 10, "学": 10, "北京大学": 20}
    # log(20/130) > log(50/130) + log(30/130)
    assert segment_with_lexicon("北京大学", lexicon) == ["北京大学"]
    assert segment_with_lexicon("我在北京大学。", lexicon) == ["我", "在", "北京大学", "。"]
    without = {w: c for w, c in lexicon.items() if w != "北京大学"}
    assert segment_with_lexicon("北京大学", without) == ["北京", "大学"]
    assert segment_with_lexicon("", lexicon) == []
    segmenter = UnigramSegmenter(lexicon)
    rng = np.random.default_rng(1)
    alphabet = list("北京大学的人。Ab1")
    for _ in range(50):
        text = "".join(rng.choice(alphabet, size=rng.integers(1, 20)))
        assert "".join(segmenter(text)) == text


def test_average_char_entropy_exact_and_lower_with_words(synthetic):
    words = [["北京", "北京", "好"]]  # p = 2/3, 2/3, 1/3 over 5 characters
    assert average_char_entropy(words) == pytest.approx((2 * math.log2(1.5) + math.log2(3)) / 5)
    chars = [["北", "京", "北", "京", "好"]]  # p = 2/5, 2/5, 2/5, 2/5, 1/5
    assert average_char_entropy(chars) == pytest.approx((4 * math.log2(2.5) + math.log2(5)) / 5)
    assert average_char_entropy([["好", "好"]]) == 0.0
    assert average_char_entropy([]) == 0.0

    texts, gold = synthetic
    by_char = average_char_entropy([list(t) for t in texts])
    by_word = average_char_entropy(gold)
    assert by_word < 0.6 * by_char
    discovered = segment_texts(texts, build_lexicon(texts))
    assert average_char_entropy(discovered) < 0.6 * by_char
