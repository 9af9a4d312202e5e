import itertools
import math
from collections import Counter

import numpy as np
import pytest

from kexue.corpora.people_daily import segmentation_scores
from kexue.text.discovery import (
    DiscoveryConfig,
    Lexicon,
    average_char_entropy,
    best_segmentation,
    learn_lexicon,
    ngram_statistics,
    pretokenize,
)


@pytest.fixture(scope="module")
def synthetic():
    """4000 sentences of 3..11 words drawn (seeded) from ~300 random words of 1..4 characters
    over a 400-character alphabet, with Zipfian word frequencies: (texts, gold words, vocab)."""
    rng = np.random.default_rng(0)
    chars = [chr(0x4E00 + i) for i in rng.choice(5000, size=400, replace=False)]
    lengths = rng.choice([1, 2, 3, 4], size=300, p=[0.2, 0.55, 0.15, 0.1])
    vocab = sorted({"".join(rng.choice(chars, size=n)) for n in lengths})
    vocab = [vocab[i] for i in rng.permutation(len(vocab))]
    p = 1 / np.arange(1, len(vocab) + 1)
    gold = [[vocab[i] for i in rng.choice(len(vocab), size=rng.integers(3, 12), p=p / p.sum())]
            for _ in range(4000)]
    return ["".join(words) for words in gold], gold, vocab


def test_pretokenize_numbers_latin_marks():
    assert pretokenize("１９９７年１月筹资６３．５万元，ＶＣＤ机——好") == [
        ("num", "１９９７年"), ("num", "１月"), ("cjk", "筹资"), ("num", "６３．５万"),
        ("cjk", "元"), ("other", "，"), ("lat", "ＶＣＤ"), ("cjk", "机"), ("other", "——"),
        ("cjk", "好")]
    assert pretokenize("5 个 50%", number_suffixes="") == [
        ("num", "5"), ("cjk", "个"), ("num", "50%")]
    assert pretokenize("４年", number_suffixes="") == [("num", "４"), ("cjk", "年")]
    assert pretokenize("") == []


def _brute_force_entropies(texts, n):
    """Per n-gram of Chinese characters: count, left and right neighbour entropies (nats)."""
    right, left, count = {}, {}, Counter()
    for text in texts:
        units = ["<b>"]
        for kind, piece in pretokenize(text):
            units.extend(piece if kind == "cjk" else [piece])
        units.append("<b>")
        for i in range(1, len(units) - n):
            gram = units[i : i + n]
            if all(len(u) == 1 and "\u4e00" <= u <= "\u9fff" for u in gram):
                key = "".join(gram)
                count[key] += 1
                right.setdefault(key, Counter())[units[i + n]] += 1
                left.setdefault(key, Counter())[units[i - 1]] += 1

    def entropy(counter):
        p = np.array(list(counter.values()), dtype=float) / sum(counter.values())
        return float(-(p * np.log(p)).sum())

    return {k: (count[k], entropy(left[k]), entropy(right[k])) for k in count}


def test_ngram_statistics_match_brute_force_and_vbe_definition():
    texts = ["我爱北京，北京爱我", "北京天安门", "我爱天安门。我爱北京", "天安门"]
    stats = ngram_statistics(texts, max_n=3)
    for n in (1, 2, 3):
        table = stats.by_length[n]
        expected = _brute_force_entropies(texts, n)
        assert set(table["ngrams"]) == set(expected)
        for i, gram in enumerate(table["ngrams"]):
            count, h_left, h_right = expected[gram]
            assert table["count"][i] == count
            assert table["h_left"][i] == pytest.approx(h_left)
            assert table["h_right"][i] == pytest.approx(h_right)
    two, one = stats.by_length[2], stats.by_length[1]
    h1 = {g: (hl, hr) for g, hl, hr in zip(one["ngrams"], one["h_left"], one["h_right"], strict=True)}
    for i, gram in enumerate(two["ngrams"]):
        assert two["vbe_right"][i] == pytest.approx(two["h_right"][i] - h1[gram[0]][1])
        assert two["vbe_left"][i] == pytest.approx(two["h_left"][i] - h1[gram[1]][0])
    # 北京 is followed once each by ，, 爱, 天 and the end of a text: H_right = log 4;
    # preceded by 爱, ，, the start of a text and 爱 again: H_left = entropy of (2, 1, 1)
    i = list(two["ngrams"]).index("北京")
    assert two["count"][i] == 4 and two["h_right"][i] == pytest.approx(math.log(4))
    assert two["h_left"][i] == pytest.approx(-(0.5 * math.log(0.5) + 0.5 * math.log(0.25)))
    with pytest.raises(ValueError):
        ngram_statistics(texts, max_n=0)


def test_autonomy_is_the_sum_of_two_z_scores():
    stats = ngram_statistics(["甲乙丙甲乙丁", "乙丙甲", "丁甲乙"], max_n=2)
    autonomy = stats.autonomy(min_count=1)
    for table in stats.by_length.values():
        z = sum((table[k] - table[k].mean()) / table[k].std() for k in ("vbe_left", "vbe_right"))
        for gram, value in zip(table["ngrams"], z, strict=True):
            assert autonomy[gram][1] == pytest.approx(value)
    assert set(stats.autonomy(min_count=3)) == {"甲", "乙", "甲乙"}


def _all_segmentations(text, max_len):
    for cuts in itertools.product([False, True], repeat=len(text) - 1):
        words, start = [], 0
        for i, cut in enumerate(cuts, 1):
            if cut:
                words.append(text[start:i])
                start = i
        words.append(text[start:])
        if all(len(w) <= max_len for w in words):
            yield words


def test_best_segmentation_is_the_brute_force_maximum():
    rng = np.random.default_rng(3)
    alphabet = "甲乙丙丁"
    for _ in range(60):
        text = "".join(rng.choice(list(alphabet), size=rng.integers(1, 9)))
        scores = {"".join(g): float(rng.normal())
                  for n in (1, 2, 3) for g in itertools.product(alphabet, repeat=n)
                  if rng.random() < 0.6}
        unknown = -2.5

        def total(words, scores=scores, unknown=unknown):
            return sum(scores.get(w, unknown if len(w) == 1 else -math.inf) for w in words)

        got = best_segmentation(text, scores, 3, unknown)
        assert "".join(got) == text
        best = max(total(words) for words in _all_segmentations(text, 3))
        assert total(got) == pytest.approx(best)
    assert best_segmentation("", {}, 3, 0.0) == []


def test_learn_lexicon_recovers_the_synthetic_words(synthetic):
    texts, gold, vocab = synthetic
    lexicon = learn_lexicon(texts, DiscoveryConfig())
    assert isinstance(lexicon, Lexicon)
    top = [w for w, _, _ in lexicon.rows()[:60]]
    assert sum(w in vocab for w in top) >= 57, [w for w in top if w not in vocab]
    frequent = {w for w, c in Counter(w for words in gold for w in words).items() if c >= 20}
    missed = [w for w in frequent if lexicon.words.get(w, (0, 0))[0] == 0]
    assert len(missed) <= 0.05 * len(frequent), missed
    segment = lexicon.segmenter()
    predicted = [segment(text) for text in texts]
    assert segmentation_scores(gold, predicted)["f1"] > 0.97
    # counts are the uses in the segmented corpus; the rows round-trip
    used = Counter(w for words in predicted for w in words)
    assert {w: c for w, (c, _) in lexicon.words.items() if c} == dict(used)
    assert lexicon.n_used == len(used)
    again = Lexicon.from_rows(lexicon.rows(), lexicon.config).segmenter()
    assert [again(t) for t in texts[:200]] == predicted[:200]
    # new text: unknown characters, numbers and marks pass through; whitespace is dropped
    a, b = vocab[0], vocab[1]
    assert segment(f"{a}１９９８年{b}，ＯＫ 好{a}") == [
        a, "１９９８年", b, "，", "ＯＫ", "好", a]  # 好 (U+597D) is not in the alphabet
    # the learnt words halve the information per character of the corpus (5476)
    by_char = average_char_entropy([list(t) for t in texts])
    assert average_char_entropy(predicted) < 0.6 * by_char


def test_average_char_entropy_exact():
    words = [["北京", "北京", "好"]]  # p = 2/3, 2/3, 1/3 over 5 characters
    assert average_char_entropy(words) == pytest.approx((2 * math.log2(1.5) + math.log2(3)) / 5)
    chars = [["北", "京", "北", "京", "好"]]  # p = 2/5, 2/5, 2/5, 2/5, 1/5
    assert average_char_entropy(chars) == pytest.approx((4 * math.log2(2.5) + math.log2(5)) / 5)
    assert average_char_entropy([["好", "好"]]) == 0.0
    assert average_char_entropy([]) == 0.0


def test_config_validation():
    with pytest.raises(ValueError):
        DiscoveryConfig(max_word_len=0)
