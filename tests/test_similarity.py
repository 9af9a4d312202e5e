import json
import math
import sys

import keras
import numpy as np
import pytest
import yaml

from kexue import cli, retrieval
from kexue.config import ConfigError, load_section
from kexue.corpora.prepared_articles import load_articles
from kexue.families import similarity as sim
from kexue.io import write_jsonl
from kexue.layers.margin import CosineLogits
from kexue.losses import AMSoftmaxLoss, am_softmax_logits, am_softmax_loss
from kexue.peers import bm25
from kexue.peers import similarity as sim_peers
from kexue.text.vocab import Vocab

OPTIMIZER = {"name": "adam", "learning_rate": 0.02, "schedule": {}, "weight_decay": 0.0,
             "global_clipnorm": 5.0, "gradient_accumulation_steps": 1, "use_ema": False,
             "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
TINY = {"maxlen": 32, "min_chars": 2, "body_sentences": 0, "min_count": 1, "bigrams": True, "bigram_min_count": 1,
        "embedding_dim": 16, "encoder": "bigru", "units": 16, "pooling": "max", "dropout": 0.0,
        "ngram_max": 3, "hash_dim": 256, "hash_slots": 4096, "ngram_share": 0.5,
        "scale": 30.0, "margin": 0.35,
        "fit": {"epochs": 4, "batch_size": 16, "seed": 0, "deterministic": True, "distribute": "none",
                "optimizer": OPTIMIZER}}


def _config(**overrides) -> sim.Config:
    from kexue.config import parse

    return parse(sim.Config, {**TINY, **overrides}, "similarity")


def test_cosine_logits_and_am_softmax_closed_form():
    layer = CosineLogits(3)
    x = np.array([[3.0, 4.0], [1.0, 0.0]], np.float32)
    layer.build((None, 2))
    w = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0]], np.float32)
    layer.set_weights([w])
    cos = keras.ops.convert_to_numpy(layer(x))
    expected = np.array([[0.6, 0.8, 7 / (5 * math.sqrt(2))], [1.0, 0.0, 1 / math.sqrt(2)]])
    np.testing.assert_allclose(cos, expected, rtol=1e-6)
    y = np.array([1, 2])
    s, m = 30.0, 0.35
    logits = keras.ops.convert_to_numpy(am_softmax_logits(y, cos, scale=s, margin=m))
    closed = s * expected
    closed[0, 1] = s * (expected[0, 1] - m)  # only the target's cosine loses the margin
    closed[1, 2] = s * (expected[1, 2] - m)
    np.testing.assert_allclose(logits, closed, rtol=1e-5)
    loss = keras.ops.convert_to_numpy(am_softmax_loss(y, cos, scale=s, margin=m))
    by_hand = [np.log(np.exp(row).sum()) - row[t] for row, t in zip(closed, y, strict=True)]
    np.testing.assert_allclose(loss, by_hand, rtol=1e-5)


def test_margin_zero_is_softmax_over_scaled_cosines():
    rng = np.random.default_rng(0)
    cos = np.tanh(rng.normal(size=(5, 7))).astype(np.float32)
    y = rng.integers(0, 7, size=(5, 1))
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(y, 30.0 * cos)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(am_softmax_loss(y, cos, 30.0, 0.0)),
                               keras.ops.convert_to_numpy(plain), rtol=1e-5)
    loss = AMSoftmaxLoss(scale=30.0, margin=0.0)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.get_config()["margin"] == 0.0 and again.get_config()["scale"] == 30.0
    with pytest.raises(ValueError, match="margin"):
        AMSoftmaxLoss(margin=-0.1)


def test_bm25s_peer_against_hand_computation_and_known_best_match():
    docs = [list("aab"), list("bc"), list("cccd")]
    k1, b = 1.2, 0.5
    avgdl = (3 + 2 + 4) / 3

    def idf(n):  # Lucene's idf over the 3 documents
        return math.log(1 + (3 - n + 0.5) / (n + 0.5))

    def term(tf, dl, n):  # bm25s' Lucene variant: no (k1 + 1) factor, the ranking is the same
        return idf(n) * tf / (tf + k1 * (1 - b + b * dl / avgdl))

    scores = bm25.scores(docs, [list("ab"), list("cz"), list("cc"), list("zz")], k1=k1, b=b)
    expected = [[term(2, 3, 1) + term(1, 3, 2), term(1, 2, 2), 0.0],
                [0.0, term(1, 2, 2), term(3, 4, 2)],  # z, unknown to the collection, adds nothing
                [0.0, 2 * term(1, 2, 2), 2 * term(3, 4, 2)],  # a repeated query token counts twice
                [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert scores.argmax(axis=1)[:3].tolist() == [0, 2, 2]
    # through the peers: character + bigram terms; the candidate sharing the query's rare
    # bigram 人民 ranks first, ahead of one that shares only its common characters
    candidates = ["今天的天气很好。", "人民日报的社论。", "今天的的的会议。"]
    assert sim_peers.bm25_scores(["人民的报纸"], candidates, "both", 1.5, 0.75).argmax() == 1
    assert sim_peers.bm25_terms("人民日报", "bigrams") == ["人民", "民日", "日报"]
    assert sim_peers.bm25_terms("人民", "both") == ["人", "民", "人民"]
    with pytest.raises(ValueError, match="0 <= b <= 1"):
        bm25.scores(docs, [list("a")], k1=1.2, b=1.5)


def test_missing_bm25s_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm25s", None)  # import bm25s now raises ImportError
    with pytest.raises(ImportError, match=r"package bm25s: pip install bm25s==0\.3\.16"):
        bm25.scores([list("ab")], [list("a")])


def test_sentence_queries_exclude_the_query_from_its_article():
    articles = [
        {"headline": "甲", "lead": "第一篇的导语句。", "sentences": ["第一篇的导语句。", "短句。", "第一篇第二长句。",
                                                           "本报北京电讯。", "第一篇第二长句。"]},
        {"headline": "乙", "lead": "第二篇的导语句。", "sentences": ["第二篇的导语句。", "第二篇又一长句。", "本报北京电讯。"]},
        {"headline": "丙", "lead": "只有一句话的文章。", "sentences": ["只有一句话的文章。"]},
    ]
    q = retrieval.sentence_queries(articles, min_chars=6)
    # the short sentence, the byline found in two articles and the lone lead (nothing left once
    # it is removed) are no queries; a sentence repeated within an article is one query
    assert q.queries == ["第一篇的导语句。", "第一篇第二长句。", "第二篇的导语句。", "第二篇又一长句。"]
    assert q.gold.tolist() == [0, 0, 1, 1]
    # the leads, then the stand-ins of the queries that are their article's lead
    assert q.candidates == ["第一篇的导语句。", "第二篇的导语句。", "只有一句话的文章。", "短句。", "第二篇又一长句。"]
    own = [q.candidates[q.columns[i, g]] for i, g in enumerate(q.gold)]
    assert own == ["短句。", "第一篇的导语句。", "第二篇又一长句。", "第二篇的导语句。"]
    assert all(text != query for text, query in zip(own, q.queries, strict=True))  # never an exact match
    assert q.columns[:, 2].tolist() == [2] * 4  # other articles stand as their leads
    # an exact-match scorer finds no query's own article by the query itself
    exact = np.array([[float(c == query) for c in q.candidates] for query in q.queries])
    per_article = q.gather(exact)
    assert per_article.shape == (4, 3) and per_article[np.arange(4), q.gold].sum() == 0
    assert retrieval.retrieval_metrics(per_article, q.gold)["top1"] == 0.0
    assert retrieval.gold_ranks(np.array([[0.1, 0.9], [0.3, 0.2]]), np.array([1, 1])).tolist() == [1, 2]


def test_top_k_and_mrr_on_a_toy_ranking():
    scores = np.array([[0.9, 0.1, 0.2],   # gold first
                       [0.5, 0.4, 0.6],   # gold third
                       [0.3, 0.3, 0.3]])  # all tied: ties count against the query → third
    assert list(retrieval.gold_ranks(scores)) == [1, 3, 3]
    metrics = retrieval.retrieval_metrics(scores)
    assert metrics["top1"] == round(1 / 3, 4) and metrics["top5"] == 1.0
    assert metrics["mrr"] == round((1 + 1 / 3 + 1 / 3) / 3, 4)
    assert metrics["queries"] == 3 and metrics["candidates"] == 3


TOPICS = ["足球比赛球队进球", "股票市场价格上涨", "天气降雨气温寒冷", "医院医生病人治疗",
          "学校学生老师考试", "农民粮食丰收耕地", "火车铁路旅客春运", "电影演员导演观众"]


def _toy_articles(tmp_path):
    """Articles whose sentences draw characters from one topic each; valid and test reuse the
    topics, so a headline's nearest lead is its own article's."""
    rng = np.random.default_rng(3)

    def article(i, topic):
        chars = list(TOPICS[topic])
        sentences = ["".join(rng.choice(chars, size=rng.integers(5, 10))) + "。" for _ in range(4)]
        headline = "".join(rng.choice(chars, size=6))
        return {"id": f"a{i}", "line": i, "headline": headline, "subtitles": [],
                "body": ["".join(sentences[:2]), "".join(sentences[2:])], "sentences": sentences,
                "lead": sentences[0]}

    data = tmp_path / "articles"
    write_jsonl(data / "train.jsonl", [article(i, i % 8) for i in range(24)])
    write_jsonl(data / "valid.jsonl", [article(100 + i, i) for i in range(4)])
    write_jsonl(data / "test.jsonl", [article(200 + i, 4 + i) for i in range(4)])
    return data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("similarity")
    data = _toy_articles(tmp_path)
    info = sim.train(_config(), data, tmp_path / "model", tmp_path / "live")
    return tmp_path, data, info


def test_tiny_train_and_evaluate(trained):
    tmp_path, data, info = trained
    assert info["classes"] == 24 and info["epochs_run"] == 4 and info["monitor"] == "val_top1"
    assert (tmp_path / "live" / "plots" / "metrics" / "eval" / "top1.tsv").is_file()
    metrics, rows = sim.evaluate(tmp_path / "model", data)
    for split in ("test", "valid"):
        assert metrics[split]["queries"] == 4 and metrics[split]["top10"] == 1.0
        assert 0 <= metrics[split]["top1"] <= metrics[split]["top5"] <= 1
    assert metrics["test"]["top1"] >= 0.5  # the topics separate the toy articles
    assert metrics["items"]["metric"] == "sentence_top1"  # the sentence set drives the comparison
    sentences = retrieval.sentence_queries(load_articles(data, "test"))
    assert metrics["test"]["sentence_queries"] == len(sentences.queries) == len(metrics["items"]["test"]) > 4
    assert metrics["test"]["sentence_candidates"] == 4
    items = np.array(metrics["items"]["test"])  # per sentence query [top-1, reciprocal rank]
    assert items[:, 0].mean() == pytest.approx(metrics["test"]["sentence_top1"], abs=1e-4)
    assert items[:, 1].mean() == pytest.approx(metrics["test"]["sentence_mrr"], abs=1e-4)
    assert metrics["items"]["every_peer"] == retrieval.ITEM_COLUMNS
    headline = np.array(metrics["items"]["headline"]["test"])  # the headline queries', likewise
    assert len(headline) == metrics["test"]["queries"] == 4
    assert headline[:, 0].mean() == pytest.approx(metrics["test"]["top1"], abs=1e-4)
    assert headline[:, 1].mean() == pytest.approx(metrics["test"]["mrr"], abs=1e-4)
    assert len(rows) == 4 and metrics["cost"]["params"] > metrics["cost"]["encoder_params"] > 0
    encoder = sim.SentenceEncoder(tmp_path / "model")
    vectors = encoder.vectors(["足球进球", "股票上涨"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_baselines_on_toy_articles(tmp_path):
    data = _toy_articles(tmp_path)
    cfg = sim_peers.BaselineConfig(tfidf_ngram_max=[1, 2], tfidf_min_df=1, bm25_terms=["chars", "both"],
                                   bm25_k1=[0.9, 1.5], bm25_b=[0.75], margin_ablation=False)
    peers = sim_peers.baselines(cfg, data)
    assert set(peers) == {"tfidf_char", "bm25"}
    tried = peers["bm25"]["valid_by_option"]
    assert set(tried) == {"chars k1=0.9 b=0.75", "chars k1=1.5 b=0.75", "both k1=0.9 b=0.75",
                          "both k1=1.5 b=0.75"}
    chosen = peers["bm25"]["chosen"]
    assert tried[f"{chosen['terms']} k1={chosen['k1']:g} b={chosen['b']:g}"] == max(tried.values())
    assert peers["bm25"]["valid"]["sentence_top1"] == max(tried.values())
    assert 0 <= peers["tfidf_char"]["test"]["top1"] <= 1
    queries = len(retrieval.sentence_queries(load_articles(data, "valid")).queries)
    for peer in peers.values():  # per sentence query: [own article first, 1 / its rank]
        assert len(peer["items"]["valid"]) == peer["valid"]["sentence_queries"] == queries
        items = np.array(peer["items"]["test"])
        assert items[:, 0].mean() == pytest.approx(peer["test"]["sentence_top1"], abs=1e-4)
        assert items[:, 1].mean() == pytest.approx(peer["test"]["sentence_mrr"], abs=1e-4)
        headline = np.array(peer["items"]["headline"]["valid"])
        assert headline[:, 0].mean() == pytest.approx(peer["valid"]["top1"], abs=1e-4)


def test_the_peers_module_imports_no_keras():
    """`baselines@similarity` without the margin ablation scores TF-IDF and BM25 only: importing
    its peers module (and asking for the network's params schema only when a stage does) loads
    neither Keras nor TensorFlow."""
    import subprocess

    code = ("import sys\nimport kexue.peers.similarity, kexue.retrieval\n"
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]
    assert sim_peers.NetworkConfig is sim.Config  # the schema the stage loads for the ablation


def test_bag_encoders_train_save_and_load(tmp_path):
    """The n-gram bag alone and beside the BiGRU: trained on the toy articles, the saved encoder
    (custom layer, safe mode) gives the vectors of the in-memory one, and the GRU-less model
    needs no vocabulary."""
    data = _toy_articles(tmp_path)
    for encoder in ("ngrams", "ngrams+bigru"):
        cfg = _config(encoder=encoder, bigrams=False, fit={**TINY["fit"], "epochs": 2})
        info = sim.train(cfg, data, tmp_path / encoder, None)
        assert info["epochs_run"] == 2
        assert (tmp_path / encoder / "vocab.json").is_file() == (encoder != "ngrams")
        metrics, _ = sim.evaluate(tmp_path / encoder, data)
        assert metrics["test"]["top10"] == 1.0 and metrics["test"]["top1"] >= 0.5
        model = sim.SentenceEncoder(tmp_path / encoder)
        bag = model.model.get_layer("ngram_bag")
        assert bag.get_config()["dim"] == 256
        idf = keras.ops.convert_to_numpy(bag.idf)
        assert idf.min() >= 1.0 and idf.max() > idf.min()  # the training sentences' idf was saved
        vectors = model.vectors(["足球比赛进球", "股票价格上涨", "足球进球"])
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
        assert vectors[0] @ vectors[2] > vectors[0] @ vectors[1]
    vocab = Vocab.build([list("足球比赛进股票上涨")], min_count=1)
    encoder = sim.build_encoder(_config(encoder="ngrams+gru", ngram_share=1.0, bigrams=False), len(vocab))
    texts = ["足球比赛", "足球进球", "股票上涨"]
    inputs = sim.encode(texts, vocab, None, 32, 3)
    bag_only = sim.build_encoder(_config(encoder="ngrams"), vocab_size=0)
    bag_only.get_layer("ngram_bag").set_weights(encoder.get_layer("ngram_bag").get_weights())
    # share 1: the concatenated vector's cosines are the bag's alone
    both, alone = sim.embed(encoder, inputs), sim.embed(bag_only, inputs[1])
    np.testing.assert_allclose(both @ both.T, alone @ alone.T, atol=1e-5)


def test_members_keep_the_lead_and_the_next_sentences():
    article = {"headline": "标题", "lead": "短", "sentences": ["短", "第二句话很长", "三", "第四句话也长", "第五句话还长"]}
    texts, labels = retrieval.members([article, article], min_chars=3)
    assert texts[:4] == ["标题", "第二句话很长", "第四句话也长", "第五句话还长"]  # the short lead is not a member
    assert labels.tolist() == [0] * 4 + [1] * 4
    texts, labels = retrieval.members([article], min_chars=3, body_sentences=2)
    assert texts == ["标题", "短", "第二句话很长"]  # the lead always, then the next long sentence
    assert retrieval.members([article], 3, body_sentences=9)[0] == ["标题", "短", "第二句话很长", "第四句话也长",
                                                                    "第五句话还长"]


def test_hybrid_trains_the_learnt_part_and_keeps_the_idf_bag(tmp_path):
    """ngrams+mean: AM-Softmax's class vectors live on the learnt part (units wide, not hash_dim),
    the bag's weights stay at the training idf, and the evaluation reports each part alone;
    the whole vector's cosine is share·cos(bag) + (1 − share)·cos(learnt)."""
    data = _toy_articles(tmp_path)
    cfg = _config(encoder="ngrams+mean", body_sentences=2, fit={**TINY["fit"], "epochs": 3})
    info = sim.train(cfg, data, tmp_path / "model", None)
    # the classifier: the learnt part and the class vectors (units wide); the bag's theta and idf
    # (hash_slots each) are in the encoder only
    assert info["params"] == info["encoder_params"] - 2 * cfg.hash_slots + info["classes"] * cfg.units
    assert info["train_examples"] == 24 * 3  # headline, lead and one more sentence per article
    model = sim.SentenceEncoder(tmp_path / "model")
    bag = model.model.get_layer("ngram_bag")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bag.theta), 0.0)  # not trained
    assert not bag.trainable
    texts = ["足球比赛进球", "股票价格上涨", "足球进球", "天气寒冷"]
    whole = model.vectors(texts)
    parts = model.part_vectors(texts)
    learnt, bag_part = parts["learnt"], parts["ngrams"]
    np.testing.assert_allclose(whole @ whole.T, cfg.ngram_share * (bag_part @ bag_part.T)
                               + (1 - cfg.ngram_share) * (learnt @ learnt.T), atol=1e-5)
    metrics, _ = sim.evaluate(tmp_path / "model", data)
    assert set(metrics["parts"]) == {"learnt", "ngrams"}
    assert set(metrics["parts"]["ngrams"]) == {"test", "valid"}
    assert metrics["test"]["top10"] == 1.0 and metrics["test"]["top1"] >= 0.5
    with pytest.raises(ValueError, match="has no parts"):
        sim.SentenceEncoder(tmp_path / "model").__class__.part_vectors(
            type("Plain", (), {"encoder": "ngrams"})(), texts)


def test_missing_model_names_the_stage(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.keras not found.*dvc repro train@similarity"):
        sim.SentenceEncoder(tmp_path)


def test_sentence_batches_pad_each_input_to_its_own_length():
    chars = [np.array([1, 2]), np.array([3, 4, 5])]
    ngrams = [np.array([7, 8, 9, 10, 11]), np.array([12, 13, 14, 15, 16, 17, 18])]
    (x,) = sim.SentenceBatches((chars, ngrams), None, batch_size=2, shuffle=False)[0]
    assert x[0].shape == (2, 3) and x[1].shape == (2, 7)  # n-grams not cut to the characters' length
    np.testing.assert_array_equal(x[1][0], [7, 8, 9, 10, 11, 0, 0])


def test_bad_param_names_the_key(tmp_path):
    for key, value in (("encoder", "ngram"), ("ngram_share", 1.5), ("hash_dim", 0), ("ngram_max", 0)):
        params = {"similarity": {**TINY, key: value}}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        with pytest.raises(ConfigError, match=rf"similarity\.{key}"):
            load_section("similarity", sim.Config, tmp_path / "params.yaml")
    params = {"similarity": {**TINY, "margin": 1.5}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"similarity\.margin"):
        load_section("similarity", sim.Config, tmp_path / "params.yaml")
    params = {"similarity": {**TINY, "scael": 30.0}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"similarity\.scael.*Did you mean 'scale'"):
        load_section("similarity", sim.Config, tmp_path / "params.yaml")


def test_cli_similar_sentence(trained, tmp_path, capsys):
    model_dir = trained[0] / "model"
    among = tmp_path / "among.txt"
    among.write_text("股票市场价格上涨。\n\n足球比赛球队进球。\n天气寒冷。\n", encoding="utf-8")
    assert cli.main(["similar-sentence", "球队比赛进球", "--among", str(among), "-k", "2",
                     "--model", str(model_dir)]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["text"] == "球队比赛进球" and len(row["nearest"]) == 2
    assert row["nearest"][0]["cosine"] >= row["nearest"][1]["cosine"]
    assert {n["sentence"] for n in row["nearest"]} <= {"股票市场价格上涨。", "足球比赛球队进球。", "天气寒冷。"}
    assert cli.main(["similar-sentence", "x", "--among", str(among),
                     "--model", str(tmp_path / "missing")]) == 1
    assert "dvc repro train@similarity" in capsys.readouterr().err
