"""The `tokenize` stage: word discovery on a tiny corpus, atomic outputs, param errors, and the
sentiment family's word-vector channel on top of its outputs."""

import json

import numpy as np
import pytest
import yaml

from kexue.io import read_json, read_jsonl
from kexue.text import tokenized
from kexue.text.discovery import DiscoveryConfig

WORDS = [("中国", "ns"), ("人民", "n"), ("发展", "v"), ("经济", "n"), ("北京", "ns"),
         ("，", "w"), ("的", "u"), ("建设", "v"), ("１９９８年", "t")]


@pytest.fixture
def tiny_raw(tmp_path):
    """A 60-line word/POS file and two 20-line review files."""
    rng = np.random.default_rng(0)
    pd = tmp_path / "raw" / "people_daily"
    pd.mkdir(parents=True)
    lines = []
    for _ in range(60):
        picks = rng.choice(len(WORDS), size=8)
        lines.append("  ".join(f"{WORDS[i][0]}/{WORDS[i][1]}" for i in picks))
    (pd / "199801.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    reviews = tmp_path / "raw" / "reviews"
    reviews.mkdir()
    (reviews / "neg.txt").write_text("\n".join(["质量很差的东西"] * 10 + ["很差不好"] * 10) + "\n",
                                     encoding="utf-8")
    (reviews / "pos.txt").write_text("\n".join(["质量很好的东西"] * 20) + "\n", encoding="utf-8")
    return tmp_path / "raw"


CFG = DiscoveryConfig(max_word_len=4, min_count=2, word_penalty=1.5, lm_weight=0.3)


def test_tokenize_writes_every_output(tiny_raw, tmp_path):
    out = tmp_path / "tokenized"
    metrics = tokenized.tokenize_corpora(CFG, tiny_raw / "people_daily", tiny_raw / "reviews", out,
                                         jieba=False)
    assert {p.name for p in out.iterdir()} == {"lexicon.tsv", "config.json", "people_daily.jsonl",
                                               "reviews.jsonl", "gold_pos.json"}
    rows = read_jsonl(out / "people_daily.jsonl")
    assert len(rows) == 60 and {r["split"] for r in rows} == {"train", "valid", "test"}
    assert [r["split"] for r in rows][-6:] == ["test"] * 6  # the last 10% of the lines
    assert len(read_jsonl(out / "reviews.jsonl")) == 3  # one row per distinct review text
    assert read_json(out / "gold_pos.json")["发展"][0] == "v"
    for split in ("test", "valid"):
        assert 0 < metrics[split]["f1"] <= 1
    assert metrics["lexicon"]["size"] > 0
    assert metrics["entropy"]["words"] < metrics["entropy"]["characters"]
    segment = tokenized.load_segmenter(out)
    assert "".join(segment("中国人民发展经济")) == "中国人民发展经济"
    assert sum(1 for _ in tokenized.sentences(out)) == 63


def test_tokenize_output_is_replaced_atomically(tiny_raw, tmp_path, monkeypatch):
    out = tmp_path / "tokenized"
    tokenized.tokenize_corpora(CFG, tiny_raw / "people_daily", tiny_raw / "reviews", out, jieba=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(path, rows):
        raise OSError("disk full")

    monkeypatch.setattr(tokenized, "write_jsonl", broken)
    with pytest.raises(OSError, match="disk full"):
        tokenized.tokenize_corpora(DiscoveryConfig(word_penalty=0.5), tiny_raw / "people_daily",
                                   tiny_raw / "reviews", out, jieba=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old output, whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def _params(tmp_path, **tokenize_overrides):
    section = {"max_word_len": 4, "min_count": 2, "word_penalty": 1.5, "lm_weight": 0.3,
               "number_suffixes": "年月日", "reviews": True, "jieba": False}
    section.update(tokenize_overrides)
    params = {"tokenize": section,
              "prepare_people_daily": {"test_fraction": 0.1, "valid_fraction": 0.05, "limit_lines": 0},
              "prepare_reviews": {"test_fraction": 0.2, "valid_fraction": 0.1, "seed": 0,
                                  "limit_per_label": 0}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


def test_tokenize_stage_main_and_bad_param(tiny_raw, tmp_path, monkeypatch, capsys):
    from kexue.stages import tokenize as stage

    monkeypatch.chdir(tmp_path)
    _params(tmp_path)
    args = ["--people-daily", str(tiny_raw / "people_daily"), "--reviews", str(tiny_raw / "reviews"),
            "--out", "data/tokenized", "--metrics", "metrics/tokenize.json",
            "--no-verify"]  # the tiny raw files are not the manifest's
    assert stage.main(args) == 0
    metrics = json.loads((tmp_path / "metrics/tokenize.json").read_text(encoding="utf-8"))
    assert set(metrics) >= {"test", "valid", "peers", "lexicon", "entropy", "cost"}
    _params(tmp_path, word_penalty="high")
    assert stage.main(args) == 2
    assert "tokenize.word_penalty = 'high' is not valid: expected a number" in capsys.readouterr().err
    _params(tmp_path, max_len=4)
    assert stage.main(args) == 2
    assert "unknown key 'tokenize.max_len'" in capsys.readouterr().err


def test_sentiment_with_word_vectors(tiny_raw, tmp_path, toy_reviews):
    """embeddings=word2vec adds a frozen word channel; the classifier reloads it and segments."""
    import dataclasses

    from kexue.families import sentiment
    from kexue.text.word_vectors import WordVectors
    from kexue.train import FitConfig, OptimizerConfig

    optimizer = OptimizerConfig(name="adam", learning_rate=0.02, schedule={}, weight_decay=0.0,
                                global_clipnorm=5.0, gradient_accumulation_steps=1, use_ema=False,
                                ema_momentum=0.99, lr_multipliers={}, lookahead_k=0,
                                lookahead_alpha=0.5)
    base = sentiment.Config(maxlen=32, min_count=1, bigrams=True, bigram_min_count=1,
                            embedding_dim=8, encoder="gru", units=8, pooling="max", dropout=0.0,
                            members=2, fit=FitConfig(epochs=1, batch_size=16, seed=3,
                                                     deterministic=True, distribute="none",
                                                     optimizer=optimizer))

    out = tmp_path / "tokenized"
    tokenized.tokenize_corpora(CFG, tiny_raw / "people_daily", tiny_raw / "reviews", out, jieba=False)
    rng = np.random.default_rng(0)
    words = ["这本", "书", "的", "内容", "好", "差"]
    WordVectors(words, rng.normal(size=(len(words), 4))).save(tmp_path / "models" / "word2vec")
    cfg = dataclasses.replace(base, embeddings="word2vec")
    sentiment.train(cfg, toy_reviews, tmp_path / "model", None, None,
                    vectors_root=tmp_path / "models", tokenized_dir=out)
    clf = sentiment.SentimentClassifier(tmp_path / "model")
    assert [i.name for i in clf.model.inputs] == ["char_ids", "bigram_ids", "word_ids"]
    table = clf.model.get_layer("member0").get_layer("word_embedding")  # a 2-member ensemble
    assert not table.trainable and table.get_weights()[0].shape == (len(words) + 2, 4)
    probs = clf.predict_proba(["这本书的内容好", "差"])
    assert probs.shape == (2,) and np.all((probs >= 0) & (probs <= 1))
    ids = sentiment.word_ids(clf.word_vocab, lambda t: ["这本", "书"], ["这本书"], 10)[0]
    assert ids.tolist() == [clf.word_vocab.index["这本"]] * 2 + [clf.word_vocab.index["书"]]
