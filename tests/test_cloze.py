import dataclasses
import json
import math
import shutil

import keras
import numpy as np
import pytest
import yaml

from kexue import cli
from kexue.config import ConfigError, load_section, parse
from kexue.corpora import cloze as corpus
from kexue.families import cloze, cloze_data, cloze_evidence
from kexue.io import write_json, write_jsonl
from kexue.layers.attention import AttentionSum, TokenState
from kexue.peers import cloze as cloze_peers
from kexue.stages import prepare_cloze
from kexue.text import context_match

OPTIMIZER = {"name": "adam", "learning_rate": 0.02, "schedule": {}, "weight_decay": 0.0,
             "global_clipnorm": 5.0, "gradient_accumulation_steps": 1, "use_ema": False,
             "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
TINY = {"min_count": 1, "max_query_words": 10, "train_document_words": 0,
        "candidates": "answer_tags", "embedding_dim": 16, "encoder": "lstm", "units": 16,
        "dropout": 0.0, "score": "bilinear", "match_features": "none", "context_weights": [0.0],
        "fit": {"epochs": 6, "batch_size": 8, "seed": 0, "deterministic": True,
                "distribute": "none", "optimizer": OPTIMIZER}}


def _config(**overrides) -> cloze.Config:
    return parse(cloze.Config, {**TINY, **overrides}, "cloze")


# --- layers ---------------------------------------------------------------------------------


def test_attention_sum_adds_the_probability_of_identical_words():
    scores = np.array([[1.0, 2.0, 0.5, 3.0, 9.0],     # position 4 is masked (key 0)
                       [0.0, 0.0, 0.0, 0.0, 0.0]], np.float32)
    keys = np.array([[1, 2, 1, 3, 0],               # word 1 at positions 0 and 2
                     [2, 2, 2, 0, 0]], np.int32)    # one word, three times
    probs = keras.ops.convert_to_numpy(AttentionSum()([scores, keys]))
    assert probs.shape == (2, 6)
    e = np.exp([1.0, 2.0, 0.5, 3.0])
    alpha = e / e.sum()  # softmax over the unmasked positions only
    np.testing.assert_allclose(probs[0], [0, alpha[0] + alpha[2], alpha[1], alpha[3], 0, 0], rtol=1e-6)
    np.testing.assert_allclose(probs[1], [0, 0, 1, 0, 0, 0], rtol=1e-6)
    empty = keras.ops.convert_to_numpy(AttentionSum()([scores[:1], np.zeros((1, 5), np.int32)]))
    np.testing.assert_array_equal(empty, 0.0)  # nothing may be the answer: no probability anywhere


def test_attention_sum_gradient_and_token_state():
    scores = keras.Variable(np.array([[0.3, -1.0, 2.0]], np.float32))
    keys = np.array([[1, 2, 1]], np.int32)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = -keras.ops.log(AttentionSum()([scores, keys])[0, 1])
    grad = tape.gradient(loss, scores).numpy()
    alpha = np.exp([0.3, -1.0, 2.0]) / np.exp([0.3, -1.0, 2.0]).sum()
    p = alpha[0] + alpha[2]
    # d(-log P)/ds_i = alpha_i - [i holds the word] alpha_i / P
    np.testing.assert_allclose(grad[0], alpha - np.array([1, 0, 1]) * alpha / p, rtol=1e-5)
    states = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    ids = np.array([[5, 2, 7], [2, 4, 0]])
    picked = keras.ops.convert_to_numpy(TokenState(2)([states, ids]))
    np.testing.assert_array_equal(picked, [[2.0, 3.0], [6.0, 7.0]])
    again = TokenState.from_config(TokenState(2).get_config())
    assert again.token_id == 2


# --- samples --------------------------------------------------------------------------------


def _line(text: str):
    return [tuple(tok.rsplit("/", 1)) for tok in text.split()]


TAGGED = [
    _line("李/nr 鹏/nr 会见/v 代表团/n"),                               # headline (line 1)
    _line("（/w 附/v 图片/n ）/w"),                                       # caption, skipped
    _line("李/nr 鹏/nr 在/p 北京/ns 会见/v 了/u 代表团/n 。/w 代表团/n 团长/n 说/v ：/w “/w 北京/ns 很/d 美/a 。/w ”/w"),
    _line("双方/n 谈/v 了/u 合作/vn 问题/n ，/w 代表团/n 和/c 北京/ns 代表/n 都/d 满意/a 。/w"),
]
ARTICLES = [{"id": "a00001", "line": 1, "headline": "李鹏会见代表团", "subtitles": [],
             "body": ["李鹏在北京会见了代表团。代表团团长说：“北京很美。”",
                      "双方谈了合作问题，代表团和北京代表都满意。"]}]


def test_tagged_sentences_and_names():
    (sentences,) = corpus.tag_articles(ARTICLES, TAGGED)
    assert [w for w, _ in sentences[0]] == ["李鹏", "会见", "代表团"]  # nr + nr merged
    assert len(sentences) == 4  # headline + 3 body sentences; the quote closes its sentence
    assert [w for w, _ in sentences[2]][-2:] == ["。", "”"]
    bad = [{**ARTICLES[0], "body": ["不在语料里的句子。"]}]
    with pytest.raises(ValueError, match="not found after line 1"):
        corpus.tag_articles(bad, TAGGED)


def test_samples_blank_an_answer_that_the_document_holds():
    (sentences,) = corpus.tag_articles(ARTICLES, TAGGED)
    kwargs = dict(answer_tags=["n", "nr", "ns"], min_query_words=3, max_query_words=30,
                  min_document_occurrences=1, answers_per_sentence=3)
    rows = corpus.build_split(ARTICLES, [sentences], seed=0, **kwargs)
    again = corpus.build_split(ARTICLES, [sentences], seed=0, **kwargs)
    assert rows == again  # seeded
    items = list(corpus.samples(rows))
    assert items and all(q["sentence"] > 0 for q in rows[0]["queries"])  # the headline is no query
    words = rows[0]["words"]
    for sample, q in zip(items, rows[0]["queries"], strict=True):
        assert sample.query.count(corpus.BLANK) == 1 and sample.answer not in sample.query
        assert sample.answer in sample.document and sample.answer_tag in ("n", "nr", "ns")
        others = [w for i, s in enumerate(words) if i != q["sentence"] for w in s]
        assert sample.document == others  # the rest of the article, in order, without the query
        assert len(sample.document) == sum(map(len, words)) - len(words[q["sentence"]])
    twice = corpus.choose_queries([[("甲", "n")], [("乙", "n"), ("乙", "n"), ("丙", "n")],
                                   [("乙", "n"), ("丙", "v")]], np.random.default_rng(0),
                                  ["n"], 1, 10, 1, 5)
    # sentence 1: 乙 is twice in it, 丙 is no noun elsewhere; sentence 2: 乙 once, a noun elsewhere
    assert twice == [{"sentence": 2, "position": 0, "answer": "乙"}]
    assert corpus.candidate_keys(["a", "b", "a", "c"], ["n", "v", "v", "n"], ["n"]) == [1, 0, 1, 2]
    assert corpus.candidate_keys(["a", "b", "a"], ["v", "v", "v"], None) == [1, 2, 1]


def test_prepare_rejects_inconsistent_params(tmp_path):
    params = prepare_cloze.Params(answer_tags=["n"], min_query_words=9, max_query_words=8,
                                  min_document_occurrences=1, train_answers_per_sentence=1, seed=0)
    with pytest.raises(ConfigError, match="min_query_words"):
        prepare_cloze.prepare(params, tmp_path, tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"prepare_cloze": {
        "answer_tags": "n", "min_query_words": 1, "max_query_words": 5,
        "min_document_occurrences": 1, "train_answers_per_sentence": 1, "seed": 0}}))
    with pytest.raises(ConfigError, match=r"prepare_cloze\.answer_tags"):
        load_section("prepare_cloze", prepare_cloze.Params, tmp_path / "params.yaml")


# --- peers ----------------------------------------------------------------------------------


def _sample(query, document, tags, answer):
    return corpus.ClozeSample("x-0", query, document, tags, answer, "n", 0)


GRID = cloze_peers.ContextMatchGrid(windows=[1, 2], decays=[1.0, 0.5], aggregates=["max", "sum"],
                              frequency_weights=[0.0, 0.1], idf=[False, True],
                              exclude_query=[False, True])
# 北京 three times with no context of the blank's; 上海 once, between the blank's neighbours
CONTEXT_DOCUMENT = ["北京", "北京", "北京", "。", "记者", "上海", "报道", "。"]
CONTEXT_TAGS = ["ns", "ns", "ns", "w", "n", "ns", "v", "w"]
CONTEXT_QUERY = ["记者", corpus.BLANK, "报道", "。"]


def _setting(window=1, decay=1.0, aggregate="max", frequency_weight=0.0, idf=False,
             exclude_query=False):
    return context_match.ContextSetting(window, decay, aggregate, frequency_weight, idf, exclude_query)


def test_context_match_finds_the_word_between_the_blanks_neighbours():
    sample = _sample(CONTEXT_QUERY, CONTEXT_DOCUMENT, CONTEXT_TAGS, "上海")
    assert cloze_peers.most_frequent(sample, ["n", "ns"], exclude_query=True) == "北京"  # wrong
    table = context_match.context_table(sample, ["n", "ns"], 2, lambda w: 1.0)
    assert table.words == ["北京", "记者", "上海"] and table.counts.tolist() == [3, 1, 1]
    assert table.query_distance.tolist() == [1, 1, 2]  # 记者, 报道 beside the blank; 。 two away
    # k = 1: 上海 has both neighbours (2 + 0.1); 北京 none (0 + 0.3)
    # k = 2, decay 0.5: 上海 1 + 1 + 0.5 (。 two away) = 2.5; 北京's three occurrences
    # 0, 0.5 (。) and 1 (。 and 记者, each two away): summed 1.5, at best 1.0. With weight 0.6
    # on the counts the sum prefers 北京 (3.3 vs 3.1), the best occurrence still 上海 (2.8)
    settings = [_setting(frequency_weight=0.1), _setting(2, 0.5, "sum"),
                _setting(2, 0.5, "sum", frequency_weight=0.6),
                _setting(2, 0.5, "max", frequency_weight=0.6)]
    assert cloze_peers.context_choices(table, settings) == ["上海", "上海", "北京", "上海"]
    # IDF: the rare 记者 and 报道 outweigh the common 。
    idf = context_match.inverse_document_frequency([["记者", "。"], ["。"], ["。", "报道"]])
    assert idf("。") == pytest.approx(1.0) and idf("记者") == pytest.approx(np.log(2) + 1)
    assert idf("没见过") == pytest.approx(np.log(4) + 1)


def test_context_match_setting_is_chosen_on_valid():
    """The same document with two answers: 上海 (context decides: frequency weight 0 is right)
    and 北京 (frequency decides: with weight 1 it ties 上海 and wins as the more frequent).
    Valid picks the weight; test is scored once with the pick."""
    by_context = _sample(CONTEXT_QUERY, CONTEXT_DOCUMENT, CONTEXT_TAGS, "上海")
    by_frequency = dataclasses.replace(by_context, answer="北京")
    grid = cloze_peers.ContextMatchGrid(windows=[1], decays=[1.0], aggregates=["max"],
                                  frequency_weights=[0.0, 1.0], idf=[False], exclude_query=[True])
    test = [by_context, by_frequency, by_context]
    results = {name: cloze_peers.context_match(grid, ["n", "ns"], {"valid": [valid] * 3, "test": test},
                                         lambda w: 1.0)
               for name, valid in (("context", by_context), ("frequency", by_frequency))}
    assert results["context"]["chosen"]["frequency_weight"] == 0.0
    assert results["frequency"]["chosen"]["frequency_weight"] == 1.0
    assert results["context"]["items"] == {"valid": [1, 1, 1], "test": [1, 0, 1]}
    assert results["frequency"]["items"] == {"valid": [1, 1, 1], "test": [0, 1, 0]}
    assert results["context"]["test"]["accuracy"] == pytest.approx(0.6667)
    assert results["frequency"]["valid_best_by_option"]["frequency_weight"] == {"0.0": 0.0, "1.0": 1.0}


def test_context_match_peer_on_the_toy_articles(tmp_path):
    """The answer is the name after the query's cue: context match gets every test sample,
    frequency none, and each peer gives one hit per sample."""
    write_jsonl(tmp_path / "train.jsonl", _toy_rows(20, 1))
    write_jsonl(tmp_path / "valid.jsonl", _toy_rows(30, 2))
    write_jsonl(tmp_path / "test.jsonl", _toy_rows(30, 3))
    write_json(tmp_path / "meta.json", {"answer_tags": ["n", "nr"], "blank": corpus.BLANK})
    peers = cloze_peers.baselines(cloze_peers.BaselineConfig(
        peers=["most_frequent_noun", "context_match"], seed=0, context_match=GRID), tmp_path)
    match = peers["context_match"]
    assert match["valid"]["accuracy"] == 1.0 and match["test"]["accuracy"] == 1.0
    assert peers["most_frequent_noun"]["test"]["accuracy"] < 0.1
    assert match["settings_tried"] == 64 and match["chosen"]["window"] == 1
    assert len(match["items"]["valid"]) == len(match["items"]["test"]) == 30


def test_peers_on_a_hand_case():
    document = ["北京", "是", "首都", "。", "上海", "北京", "上海", "跑", "跑", "跑"]
    tags = ["ns", "v", "n", "w", "ns", "ns", "ns", "v", "v", "v"]
    query = ["<blank>", "在", "北京"]
    sample = _sample(query, document, tags, "上海")
    # 北京 and 上海 twice each (the verb 跑 is no noun): the tie goes to the earlier, 北京
    assert cloze_peers.most_frequent(sample, ["n", "ns"]) == "北京"
    assert cloze_peers.most_frequent(sample, ["n", "ns"], exclude_query=True) == "上海"
    rng = np.random.default_rng(0)
    word, chance = cloze_peers.random_noun(sample, ["n", "ns"], rng)
    assert word in {"北京", "首都", "上海"} and chance == pytest.approx(1 / 3)


# --- model ----------------------------------------------------------------------------------

NAMES = ["张三", "李四", "王五", "赵六", "钱七", "孙八"]
CUES = ["跑步", "唱歌", "读书", "画画", "游泳", "下棋"]


def _toy_rows(count: int, seed: int) -> list[dict]:
    """Each article: three people, each after an activity ("下棋 王五 。"); the query gives an
    activity, the answer is who follows it (every name once, so frequency cannot tell)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        names = rng.choice(NAMES, 3, replace=False)
        cues = rng.choice(CUES, 3, replace=False)
        body = [[str(c), str(n), "。"] for n, c in zip(names, cues, strict=True)]
        j = int(rng.integers(3))
        words = [["新闻"], *body, [str(cues[j]), str(names[j]), "。"]]
        tags = [["n"], *[["vn", "nr", "w"]] * 4]
        rows.append({"id": f"a{seed}{i:03d}", "words": words, "tags": tags,
                     "queries": [{"sentence": 4, "position": 1, "answer": str(names[j])}]})
    return rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cloze")
    data = tmp / "data"
    write_jsonl(data / "train.jsonl", _toy_rows(320, 1))
    write_jsonl(data / "valid.jsonl", _toy_rows(30, 2))
    write_jsonl(data / "test.jsonl", _toy_rows(30, 3))
    write_json(data / "meta.json", {"answer_tags": ["n", "nr"], "blank": corpus.BLANK})
    # the context-match setting a peer would choose here: the name right after the query's cue
    write_json(tmp / "peers.json", {"context_match": {"chosen": dataclasses.asdict(CUE_SETTING)}})
    info = cloze.train(_config(context_weights=[0.0, 1.0]), data, tmp / "model", tmp / "live",
                       peers=tmp / "peers.json")
    return tmp, data, info


CUE_SETTING = context_match.ContextSetting(1, 1.0, "max", 0.0, False, True)


def test_tiny_train_evaluate_and_predict(trained):
    tmp, data, info = trained
    assert info["epochs_run"] == 6 and info["monitor"] == "val_accuracy"
    assert info["train_samples_used"] == 320
    metrics, rows = cloze.evaluate(tmp / "model", data)
    peers = cloze_peers.baselines(cloze_peers.BaselineConfig(
        peers=["most_frequent_noun", "random_noun"], seed=0, context_match=GRID), data)
    # frequency cannot tell the names apart (each once, 新闻 too): the peer takes the earliest
    assert peers["most_frequent_noun"]["test"]["accuracy"] < 0.1
    assert peers["random_noun"]["test"]["expected_accuracy"] == pytest.approx(0.25)
    assert metrics["valid"]["accuracy"] >= 0.9 and metrics["test"]["accuracy"] >= 0.8
    assert metrics["test"]["samples"] == 30 and metrics["test"]["mean_candidates"] == 4.0
    for system in (metrics, *peers.values()):  # right or wrong per sample, in the same order
        assert len(system["items"]["test"]) == 30 and len(system["items"]["valid"]) == len(
            metrics["items"]["valid"])
    assert sum(metrics["items"]["test"]) / 30 == pytest.approx(metrics["test"]["accuracy"], abs=1e-4)
    assert {r["actual"] for r in rows} == {"nr"} and len(rows) == 30
    reader = cloze.ClozeReader(tmp / "model")
    document = ["新闻", "下棋", "王五", "。", "唱歌", "赵六", "。"]
    tags = ["n", "vn", "nr", "w", "vn", "nr", "w"]
    ranked = reader.rank(["唱歌", corpus.BLANK, "。"], document, tags, k=3)
    assert ranked[0][0] == "赵六" and [w for w, _ in ranked] == sorted(
        [w for w, _ in ranked], key=lambda w: -dict(ranked)[w])
    assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-5)  # 3 candidates: all listed
    with pytest.raises(ValueError, match="exactly one blank"):
        reader.rank(["今天", "唱歌"], document, tags)


def test_the_weight_of_the_evidence_is_chosen_on_valid_and_kept_with_the_model(trained, tmp_path):
    tmp, data, info = trained
    evidence = info["context_evidence"]
    tried = evidence["valid_accuracy_by_weight"]
    assert set(tried) == {"0.0", "1.0"} and evidence["setting"] == dataclasses.asdict(CUE_SETTING)
    assert evidence["weight"] == float(max(tried, key=lambda w: (tried[w], -float(w))))
    metrics, _ = cloze.evaluate(tmp / "model", data)
    # weight 0 on valid is the network alone, scored the same way by the evaluation
    assert metrics["reader_alone"]["valid"]["accuracy"] == tried["0.0"]
    assert metrics["valid"]["accuracy"] == tried[str(evidence["weight"])]
    assert metrics["context_evidence"] == evidence
    # the same network with a heavy weight on the cue: the evidence decides every sample
    heavy = tmp_path / "model"
    shutil.copytree(tmp / "model", heavy)
    cloze_evidence.Evidence(CUE_SETTING, 50.0, context_match.DocumentFrequency.of([])).save(
        heavy / cloze_evidence.EVIDENCE_FILE)
    joined, _ = cloze.evaluate(heavy, data)
    assert joined["test"]["accuracy"] == 1.0
    assert joined["reader_alone"] == metrics["reader_alone"]
    reader = cloze.ClozeReader(heavy)
    assert reader.evidence.weight == 50.0 and reader.evidence.setting == CUE_SETTING
    (heavy / cloze_evidence.EVIDENCE_FILE).unlink()  # without the file: the network alone
    alone, _ = cloze.evaluate(heavy, data)
    assert alone["test"]["accuracy"] == metrics["reader_alone"]["test"]["accuracy"]


def test_join_is_the_product_of_the_experts_renormalised():
    probs = np.array([0.1, 0.5, 0.3, 0.1])  # index 0: mass off the candidates, unused
    scores = np.array([1.0, 0.0, -np.inf])  # the third candidate is shown by the query
    joined = cloze_evidence.join(probs, scores, 2.0)
    expected = np.array([0.5 * np.exp(2.0), 0.3, 0.0])
    np.testing.assert_allclose(joined, [0.0, *(expected / expected.sum())], rtol=1e-12)
    # weight 0: the reader's own distribution over the candidates (the shown one kept)
    np.testing.assert_allclose(cloze_evidence.join(probs, scores, 0.0), [0, 5 / 9, 3 / 9, 1 / 9])


def test_choose_weight_takes_the_best_on_valid_and_the_first_of_equals():
    # A: the reader is right and mild evidence does not overturn it; B: the reader is wrong and
    # the evidence is right. Weight 1 gets both, 0 and 10 one each.
    probs = [np.array([0.0, 0.6, 0.4]), np.array([0.0, 0.45, 0.55])]
    scores = [np.array([0.0, 0.3]), np.array([1.0, 0.0])]
    labels = np.array([1, 1])
    weight, tried = cloze_evidence.choose_weight(probs, scores, labels, [0.0, 1.0, 10.0])
    assert weight == 1.0 and tried == {"0.0": 0.5, "1.0": 1.0, "10.0": 0.5}
    weight, _ = cloze_evidence.choose_weight(probs, scores, labels, [10.0, 0.0])
    assert weight == 10.0  # equal on valid: the first listed
    with pytest.raises(ValueError, match="no context_match choice.*baselines@cloze"):
        cloze_evidence.peer_setting({"most_frequent_noun": {}})
    with pytest.raises(ValueError, match=r"cloze.context_weights = \[\]"):
        cloze.check_config(_config(context_weights=[]))


def test_cli_cloze(trained, capsys):
    model = str(trained[0] / "model")
    document = "新闻/n 下棋/vn 王五/nr 。/w 唱歌/vn 赵/nr 六/nr 。/w"
    assert cli.main(["cloze", document, "下棋/vn ___ 。/w", "--pretagged",
                     "--model", model, "-k", "2"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["answer"] == "王五" and len(row["candidates"]) == 2
    assert row["candidates"][1]["word"] in {"赵六", "新闻"}  # 赵/nr 六/nr merged into one name
    assert math.isclose(row["probability"], row["candidates"][0]["probability"])
    assert cli.main(["cloze", document, "下棋/vn 。/w", "--pretagged", "--model", model]) == 1
    assert "blank marker '___' exactly once (found 0)" in capsys.readouterr().err
    assert cli.main(["cloze", "北京/ns", "___ 好", "--pretagged", "--model", model]) == 1
    assert "word/tag" in capsys.readouterr().err
    assert cli.main(["cloze", document, "下棋/vn ___", "--pretagged",
                     "--model", str(trained[0] / "missing")]) == 1
    assert "dvc repro train@cloze" in capsys.readouterr().err


def test_bad_params_name_the_key(tmp_path):
    for bad, pattern in (({"units": 0}, r"cloze\.units"), ({"candidates": "nouns"}, r"cloze\.candidates"),
                         ({"encodr": "gru"}, r"cloze\.encodr.*Did you mean 'encoder'")):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({"cloze": {**TINY, **bad}}))
        with pytest.raises(ConfigError, match=pattern):
            load_section("cloze", cloze.Config, tmp_path / "params.yaml")
    with pytest.raises(ValueError, match="peers is empty"):
        cloze_peers.baselines(cloze_peers.BaselineConfig(peers=[], seed=0, context_match=GRID), tmp_path)
    with pytest.raises(ValueError, match=r"context_match\.decays"):
        cloze_peers.grid_settings(dataclasses.replace(GRID, decays=[]))
    with pytest.raises(ValueError, match=r"context_match\.windows"):
        cloze_peers.grid_settings(dataclasses.replace(GRID, windows=[0, 1]))


def test_windows():
    assert cloze_data.document_window(10, 5, 4) == (3, 7)
    assert cloze_data.document_window(10, 0, 4) == (0, 4) and cloze_data.document_window(10, 10, 4) == (6, 10)
    assert cloze_data.document_window(10, 5, 0) == (0, 10)
    query = ["a", "b", "c", corpus.BLANK, "d", "e", "f", "g"]
    assert cloze_data.query_window(query, 4) == ["b", "c", corpus.BLANK, "d"]


def test_match_masks_by_hand():
    query = ["甲", "乙", corpus.BLANK, "丙", "丁"]
    document = ["乙", "戊", "甲", "乙", "己", "丙", "丁", "己", "丙"]
    masks = cloze_data.match_masks(query, document)
    # bit 0: in the query; 1 / 2: the word before / after is 乙 / 丙; 3 / 4: 甲 乙 before / 丙 丁 after
    assert masks.tolist() == [1, 2, 1, 1, 2 | 4 | 8 | 16, 1, 1, 4, 1]
    assert cloze_data.match_masks([corpus.BLANK], ["甲", "乙"]).tolist() == [0, 0]  # nothing around the blank


def test_bit_features_unpack_masks():
    import keras

    from kexue.layers import BitFeatures

    out = keras.ops.convert_to_numpy(BitFeatures(3)(np.array([[0, 5, 6, 7, 9]])))
    assert out.tolist() == [[[0, 0, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1], [1, 0, 0]]]
    with pytest.raises(ValueError, match="bits"):
        BitFeatures(0)


def test_context_match_features_learn_the_toy_task_fast(tmp_path):
    """In the toy articles the answer is the word after the query's cue, which the context bits
    mark: with them, one epoch of a reader with a 4-unit encoder is enough; the saved model
    reloads with its match input."""
    data = tmp_path / "data"
    write_jsonl(data / "train.jsonl", _toy_rows(320, 1))
    write_jsonl(data / "valid.jsonl", _toy_rows(30, 2))
    write_jsonl(data / "test.jsonl", _toy_rows(30, 3))
    write_json(data / "meta.json", {"answer_tags": ["n", "nr"], "blank": corpus.BLANK})
    fit = {**TINY["fit"], "epochs": 1}
    cloze.train(_config(match_features="context", units=4, embedding_dim=4, fit=fit), data,
                tmp_path / "model", None)
    metrics, _ = cloze.evaluate(tmp_path / "model", data)
    assert metrics["test"]["accuracy"] >= 0.9
