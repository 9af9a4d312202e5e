"""The CRFsuite peer: its features, a toy fit, the choice of c1 / c2 on valid, a clear error
without the package."""

import sys

import pytest

from kexue.peers import crfsuite


def test_features_see_two_characters_each_side_and_their_classes():
    first, second, *_ = crfsuite.char_features("我1A，")
    assert first["c-2"] == first["c-1"] == "<s>" and first["c+1"] == "1" and first["c+2"] == "A"
    assert second["b-1"] == "我1" and second["k0"] == "d"
    assert [f["k0"] for f in crfsuite.char_features("我1A，")] == ["h", "d", "l", "p"]
    assert crfsuite.char_features("") == []


TEXTS = ["我们爱北京", "北京很大", "我们很好", "大家爱我们", "北京大学很好", "我爱大家"]
WORDS = [["我们", "爱", "北京"], ["北京", "很", "大"], ["我们", "很", "好"],
         ["大家", "爱", "我们"], ["北京", "大学", "很", "好"], ["我", "爱", "大家"]]


def _bmes(words):
    return [t for w in words for t in (["s"] if len(w) == 1 else ["b", *["m"] * (len(w) - 2), "e"])]


def test_a_toy_segmenter_is_learnt_and_chosen_on_valid():
    tags = [_bmes(w) for w in WORDS]
    crf = crfsuite.fit(TEXTS, tags, c1=0.0, c2=0.01, max_iterations=100)
    assert crfsuite.predict(crf, TEXTS) == tags  # the training lines are learnt exactly
    assert crfsuite.predict(crf, ["", "我们"]) == [[], ["b", "e"]]

    def accuracy(gold, predicted):
        pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
        return sum(g == p for g, p in pairs) / len(pairs)

    # an L1 penalty of 50 removes every feature: valid must prefer the lightly penalised model
    model, chosen = crfsuite.tune((TEXTS, tags), (TEXTS[:2], tags[:2]), [0.0, 50.0], [0.01], 100,
                                  accuracy)
    assert chosen["c1"] == 0.0 and len(chosen["candidates"]) == 2
    assert chosen["valid_score"] == 1.0 > chosen["candidates"][1]["valid_score"]


def test_without_the_package_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn_crfsuite", None)
    with pytest.raises(ImportError, match="sklearn-crfsuite"):
        crfsuite.fit(TEXTS, [_bmes(w) for w in WORDS], 0.0, 0.01, 10)
