import json
from dataclasses import replace

import numpy as np
import pytest
import yaml
from conftest import ROOT

from kexue import cli
from kexue.corpora.reviews import load_split
from kexue.families import sentiment
from kexue.io import write_jsonl
from kexue.metrics import classification_metrics, correct_items
from kexue.peers import sentiment as sentiment_peers
from kexue.train import FitConfig, OptimizerConfig

CFG = sentiment.Config(
    maxlen=32, min_count=1, bigrams=True, bigram_min_count=1, embedding_dim=8, encoder="gru", units=8, pooling="max", dropout=0.0, members=1,
    fit=FitConfig(epochs=4, batch_size=16, seed=3, deterministic=True, distribute="none",
                  optimizer=OptimizerConfig(
                      name="adam", learning_rate=0.02, schedule={}, weight_decay=0.0,
                      global_clipnorm=5.0, gradient_accumulation_steps=1, use_ema=False,
                      ema_momentum=0.99, lr_multipliers={}, lookahead_k=0, lookahead_alpha=0.5)),
)


def _synthetic(tmp_path, n=160, seed=0):
    """Positive texts use 好/棒, negative ones 差/烂, padded with shared filler characters."""
    rng = np.random.default_rng(seed)
    filler = list("这本书的内容我们觉得")
    rows = {}
    for split, size in (("train", n), ("valid", n // 4), ("test", n // 4)):
        out = []
        for i in range(size):
            label = i % 2
            marks = list("好棒") if label else list("差烂")
            chars = list(rng.choice(filler, size=rng.integers(3, 20))) + [marks[i % 2]]
            rng.shuffle(chars)
            out.append({"id": f"{split}-{i}", "text": "".join(chars), "label": label, "line": i})
        rows[split] = out
        write_jsonl(tmp_path / "data" / f"{split}.jsonl", out)
    return tmp_path / "data"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sentiment")
    data = _synthetic(tmp)
    info = sentiment.train(CFG, data, tmp / "model", tmp / "live")
    return tmp, data, info


@pytest.mark.parametrize("pooling", ["last", "max", "max_mean"])
@pytest.mark.parametrize("use_bigrams", [False, True])
def test_padding_does_not_change_the_prediction(pooling, use_bigrams):
    cfg = replace(CFG, pooling=pooling, bigrams=use_bigrams)
    model = sentiment.build_model(cfg, vocab_size=20, bigram_vocab_size=30)
    ids = np.array([[5, 6, 7]], dtype=np.int32)
    padded = np.array([[5, 6, 7, 0, 0, 0, 0]], dtype=np.int32)
    inputs = (ids, ids + 10) if use_bigrams else ids
    padded_inputs = (padded, np.where(padded > 0, padded + 10, 0)) if use_bigrams else padded
    np.testing.assert_allclose(model(inputs).numpy(), model(padded_inputs).numpy(), atol=1e-6)


def test_bigrams_align_with_characters():
    assert sentiment.bigrams(list("好书啊")) == ["好书", "书啊", "啊</s>"]
    vocab = sentiment.Vocab.build([list("好书")])
    pair_vocab = sentiment.Vocab.build([sentiment.bigrams(list("好书"))])
    chars, pairs = sentiment.encode(vocab, ["好书", ""], 8, pair_vocab)
    assert [len(c) for c in chars] == [len(p) for p in pairs] == [2, 1]


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, p)
    assert m["accuracy"] == 0.5 and m["macro_f1"] == 0.5 and m["roc_auc"] == 0.75 and m["examples"] == 4


def test_train_writes_outputs_and_learns(trained):
    tmp, data, info = trained
    for name in ("model.keras", "vocab.json", "train_info.json"):
        assert (tmp / "model" / name).is_file()
    assert (tmp / "live" / "plots" / "metrics" / "eval" / "accuracy.tsv").is_file()
    assert 1 <= info["best_epoch"] <= info["epochs_run"] == 4
    assert info["best_value"] == max(info["history"]["val_accuracy"])
    metrics, rows = sentiment.evaluate(tmp / "model", data)
    assert metrics["test"]["accuracy"] >= 0.9
    assert len(rows) == metrics["test"]["examples"] == 40
    assert sum(map(sum, metrics["test"]["confusion"]["matrix"])) == 40
    assert metrics["cost"]["params"] == info["params"] > 0
    items = metrics["items"]
    assert (items["metric"], items["kind"], items["higher_is_better"]) == ("accuracy", "mean", True)
    for split, n in (("test", 40), ("valid", 40)):  # 1/0 per review: their mean is the accuracy
        assert len(items[split]) == n and set(items[split]) <= {0, 1}
        assert round(sum(items[split]) / n, 4) == metrics[split]["accuracy"]


def test_correct_items_check_the_accuracy_they_should_give():
    y, prob = np.array([1, 0, 1, 0]), np.array([0.9, 0.2, 0.3, 0.5])
    assert correct_items(y, prob, 0.5) == [1, 1, 0, 0]  # 0.5 counts as positive
    with pytest.raises(AssertionError, match="accuracy"):
        correct_items(y, prob, 0.75)


def test_the_comparison_block_pairs_the_model_with_the_peer_strongest_on_valid(trained):
    from kexue.comparison import attach

    tmp, data, _ = trained
    metrics, _ = sentiment.evaluate(tmp / "model", data)
    cfg = sentiment_peers.BaselineConfig(ngram_min=1, ngram_max=2, min_df=1, c_grid=[1.0], seed=0,
                                   fasttext=True, fasttext_lr=[0.5], fasttext_epoch=[10],
                                   fasttext_word_ngrams=[2])
    peers = sentiment_peers.baselines(cfg, data)
    valid = {name: peer["valid"]["accuracy"] for name, peer in peers.items()}
    block = attach(metrics, peers, resamples=50)["comparison"]
    assert block["metric"] == "accuracy" and block["peer"] == max(valid, key=valid.get)
    assert block["test"]["kexue"] == metrics["test"]["accuracy"]
    assert block["test"]["peer"] == peers[block["peer"]]["test"]["accuracy"]
    assert block["valid"]["n"] == block["test"]["n"] == 40
    assert "items" not in metrics and all("items" not in p for p in peers.values())


def test_same_seed_same_weights(trained, tmp_path):
    tmp, data, info = trained
    again = sentiment.train(CFG, data, tmp_path / "model", None)
    assert again["history"] == info["history"]
    a = sentiment.SentimentClassifier(tmp / "model").predict_proba(["好书", "差书"])
    b = sentiment.SentimentClassifier(tmp_path / "model").predict_proba(["好书", "差书"])
    np.testing.assert_array_equal(a, b)


def test_predict_keeps_input_order(trained):
    tmp, _, _ = trained
    clf = sentiment.SentimentClassifier(tmp / "model", batch_size=2)
    texts = ["好", "差差差差差差差", "这本书好好", "差", "内容"]
    probs = clf.predict_proba(texts)
    singles = np.array([clf.predict_proba([t])[0] for t in texts])
    np.testing.assert_allclose(probs, singles, atol=1e-5)


def test_cli_json_lines_from_args_and_file(trained, tmp_path, capsys):
    tmp, data, _ = trained
    texts = [r["text"] for r in sentiment.read_jsonl(data / "test.jsonl")[:6]]
    expected = sentiment.SentimentClassifier(tmp / "model").predict_proba(texts)
    assert cli.main(["sentiment", "--model", str(tmp / "model"), *texts[:2]]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["text"] for o in out] == texts[:2]
    assert [o["prob_pos"] for o in out] == [round(float(p), 4) for p in expected[:2]]
    lines = tmp_path / "in.txt"
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    assert cli.main(["sentiment", "--model", str(tmp / "model"), "--file", str(lines)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["text"] for o in out] == texts
    assert [o["label"] for o in out] == ["pos" if p >= 0.5 else "neg" for p in expected]


def test_cli_missing_model_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["sentiment", "--model", str(tmp_path / "nope"), "好"]) == 1
    assert "train@sentiment" in capsys.readouterr().err



def test_the_peers_stage_runs_without_keras(tmp_path):
    """`baselines_sentiment` scores TF-IDF and fastText only: its process never imports Keras
    (nor TensorFlow), which would cost seconds of start-up for nothing."""
    import subprocess
    import sys

    data = _synthetic(tmp_path)
    section = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["baselines"]["sentiment"]
    section.update(c_grid=[1.0], fasttext=False)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"baselines": {"sentiment": section}}))
    code = ("import sys\nfrom kexue.stages.baselines import main\n"
            f"code = main(['sentiment', '--data', {str(data)!r}, '--out', 'peers.json'])\n"
            "print(code, 'keras' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["0", "False", "False"]
    assert "tfidf_char_lr" in json.loads((tmp_path / "peers.json").read_text())

def test_baseline_peer_runs(tmp_path):
    data = _synthetic(tmp_path)
    cfg = sentiment_peers.BaselineConfig(ngram_min=1, ngram_max=2, min_df=1, c_grid=[1.0, 4.0], seed=0)
    peers = sentiment_peers.baselines(cfg, data)
    assert peers["tfidf_char_lr"]["test"]["accuracy"] >= 0.9
    assert peers["tfidf_char_lr"]["chosen"]["C"] in (1.0, 4.0)
    assert "fasttext" not in peers  # off unless asked for
    with pytest.raises(ValueError, match="ngram_min"):
        sentiment_peers.baselines(replace(cfg, ngram_min=3), data)


def test_fasttext_peer_learns_picks_its_setting_on_valid_and_is_deterministic(tmp_path):
    data = _synthetic(tmp_path)
    cfg = sentiment_peers.BaselineConfig(ngram_min=1, ngram_max=2, min_df=1, c_grid=[1.0], seed=0,
                                   refit=True, fasttext=True, fasttext_lr=[1e-4, 0.5],
                                   fasttext_epoch=[10], fasttext_word_ngrams=[2])
    peers = sentiment_peers.baselines(cfg, data)
    fast = peers["fasttext"]
    assert fast["test"]["accuracy"] >= 0.9 and fast["valid"]["accuracy"] >= 0.9
    # lr 1e-4 learns next to nothing in 10 epochs: valid picks 0.5
    assert fast["chosen"] == {"lr": 0.5, "epoch": 10, "word_ngrams": 2, "dim": 10, "refit": True}
    assert [t["lr"] for t in fast["tried"]] == [1e-4, 0.5] and fast["cost"]["fits"] == 3
    for name, peer in peers.items():
        for split in ("valid", "test"):
            assert len(peer["items"][split]) == peer[split]["examples"] == 40, name
            assert round(sum(peer["items"][split]) / 40, 4) == peer[split]["accuracy"], name
    again = sentiment_peers.baselines(cfg, data)["fasttext"]
    assert {k: v for k, v in again.items() if k not in ("cost", "tried")} == \
        {k: v for k, v in fast.items() if k not in ("cost", "tried")}


def test_stage_rejects_bad_param(tmp_path, monkeypatch, capsys):
    from kexue.stages import train as train_stage

    (tmp_path / "params.yaml").write_text("sentiment:\n  maxlen: many\n")
    monkeypatch.chdir(tmp_path)
    code = train_stage.main(["sentiment", "--data", "d", "--model", "m", "--live", "l"])
    assert code == 2
    assert "sentiment.maxlen = 'many'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_optimizer_options_reach_training(tmp_path):
    """Params → build_optimizer: a 0 multiplier freezes the character embedding during a real
    sentiment fit, while Lookahead, EMA, schedule and accumulation are all switched on."""
    import keras

    from kexue.optimizers import Lookahead
    from kexue.train import build_optimizer

    data = _synthetic(tmp_path, n=64)
    opt_cfg = replace(CFG.fit.optimizer, schedule={2: 1.0, 10: 0.5}, use_ema=True,
                      gradient_accumulation_steps=2, lr_multipliers={"char_embedding": 0.0},
                      lookahead_k=2)
    cfg = replace(CFG, fit=replace(CFG.fit, epochs=1, optimizer=opt_cfg))
    keras.utils.set_random_seed(cfg.fit.seed)
    model = sentiment.build_model(cfg, vocab_size=14, bigram_vocab_size=40)
    assert isinstance(build_optimizer(opt_cfg, model), Lookahead)
    with pytest.raises(ValueError, match="lr_multipliers need"):
        build_optimizer(opt_cfg, None)
    sentiment.train(cfg, data, tmp_path / "m", None)
    keras.utils.set_random_seed(cfg.fit.seed)
    fresh = sentiment.build_model(cfg, len(sentiment.Vocab.load(tmp_path / "m" / "vocab.json")),
                                  len(sentiment.Vocab.load(tmp_path / "m" / "bigram_vocab.json")))
    trained = sentiment.SentimentClassifier(tmp_path / "m").model
    before = fresh.get_layer("char_embedding").get_weights()[0]
    after = trained.get_layer("char_embedding").get_weights()[0]
    np.testing.assert_array_equal(before, after)
    assert not np.array_equal(fresh.get_layer("prob_pos").get_weights()[0],
                              trained.get_layer("prob_pos").get_weights()[0])
    # a fresh process (the CLI) loads the model compiled with the kexue optimizer wrappers
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kexue.cli", "sentiment", "--model",
                           str(tmp_path / "m"), "这本书好"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["text"] == "这本书好"


def test_seed_ensemble_averages_members(tmp_path):
    data = _synthetic(tmp_path, n=64)
    cfg = replace(CFG, members=2, fit=replace(CFG.fit, epochs=1))
    info = sentiment.train(cfg, data, tmp_path / "m", tmp_path / "live")
    assert len(info["members"]) == 2
    assert info["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in info["members"]), abs=0.05)
    for member in ("member0", "member1"):
        assert (tmp_path / "live" / "plots" / "metrics" / member / "eval" / "accuracy.tsv").is_file()
    clf = sentiment.SentimentClassifier(tmp_path / "m")
    texts = ["这本书好", "内容差"]
    ids = sentiment.SequenceBatches(sentiment.encode(clf.vocab, texts, cfg.maxlen, clf.bigram_vocab),
                                    None, 8, shuffle=False)
    x = ids[0][0]
    parts = [clf.model.get_layer(f"member{i}")(x).numpy()[:, 0] for i in range(2)]
    expected = np.empty(2, dtype=np.float32)
    expected[ids.order()] = (parts[0] + parts[1]) / 2
    np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-6)
    assert not np.allclose(parts[0], parts[1])  # the members differ (different seeds)
    np.testing.assert_allclose(clf.predict_proba(texts, member="member1")[ids.order()], parts[1],
                               atol=1e-6)
    # the traced pass equals the saved ensemble's own output (its Average layer), for texts of
    # other lengths and batch sizes too, traced once
    longer = ["这本书的内容好", "差", "内容觉得差书的", "好书"]
    batches = sentiment.SequenceBatches(sentiment.encode(clf.vocab, longer, cfg.maxlen, clf.bigram_vocab),
                                        None, 8, shuffle=False)
    whole = np.empty(4, dtype=np.float32)
    whole[batches.order()] = clf.model(batches[0][0]).numpy()[:, 0]
    np.testing.assert_allclose(clf.predict_proba(longer), whole, atol=1e-6)
    assert clf.member_probs(longer).shape == (4, 2)
    assert clf._traced().experimental_get_tracing_count() == 1
    with pytest.raises(ValueError, match="no ensemble member 'member7'"):
        clf.predict_proba(texts, member="member7")
    speed = clf.throughput(longer)
    assert speed["examples"] == 4 and speed["examples_per_second"] > 0
    metrics, _ = sentiment.evaluate(tmp_path / "m", data)
    assert set(metrics["members"]) == {"member0", "member1"}
    assert 0 <= metrics["members"]["member1"]["test"]["accuracy"] <= 1
    assert metrics["cost"]["inference_examples_per_second"] > 0
    assert metrics["items"]["every_peer"] == {"accuracy": [0]}  # each review's 1/0 against every peer


def _with_weights(data, weight_of_label):
    from kexue.io import read_jsonl

    for split in ("train", "valid", "test"):
        rows = read_jsonl(data / f"{split}.jsonl")
        write_jsonl(data / f"{split}.jsonl",
                    [{**r, "weight": weight_of_label[r["label"]]} for r in rows])


def test_refit_trains_on_valid_and_reports_the_selection_runs_valid(tmp_path):
    data = _synthetic(tmp_path)
    _with_weights(data, {0: 0.5, 1: 1.5})
    cfg = replace(CFG, members=2, refit=True, sample_weights="density_ratio", loss="truncated",
                  fit=replace(CFG.fit, epochs=2))
    info = sentiment.train(cfg, data, tmp_path / "model", None)
    assert info["train_examples"] == 160
    for member in info["members"]:
        assert len(member["selection_valid_prob"]) == 40 and member["refit_seconds"] > 0
    metrics, _ = sentiment.evaluate(tmp_path / "model", data)
    assert "selection run" in metrics["valid"]["source"]
    _, y = load_split(data, "valid")
    prob = np.mean([m["selection_valid_prob"] for m in info["members"]], axis=0)
    assert metrics["valid"] == {**classification_metrics(y.astype(int), prob),
                                "source": metrics["valid"]["source"]}
    # the refit model differs from the selection model: it learnt from valid too
    clf = sentiment.SentimentClassifier(tmp_path / "model")
    texts, _ = load_split(data, "valid")
    refit_prob = clf.predict_proba(texts, member="member0")
    assert not np.allclose(refit_prob, info["members"][0]["selection_valid_prob"], atol=1e-3)


def test_losses_are_selectable_and_weights_change_training(tmp_path):
    data = _synthetic(tmp_path)
    losses = {}
    for loss in ("ce", "truncated", "soft_truncated", "focal"):
        assert type(sentiment.make_loss(replace(CFG, loss=loss))).__name__ in (
            "BinaryCrossentropy", "HardTruncatedCrossEntropy", "SoftTruncatedCrossEntropy",
            "BinaryFocalLoss")
        losses[loss] = sentiment.make_loss(replace(CFG, loss=loss))
    y, p = np.array([[1.0], [0.0]]), np.array([[0.7], [0.45]])
    assert float(losses["truncated"](y, p)) == pytest.approx(-np.log(0.55) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="no 'weight' field"):
        sentiment.train(replace(CFG, sample_weights="density_ratio"), data, tmp_path / "m", None)
    cfg = replace(CFG, fit=replace(CFG.fit, epochs=1))
    plain = sentiment.train(cfg, data, tmp_path / "plain", None)
    _with_weights(data, {0: 0.2, 1: 1.8})
    weighted = sentiment.train(replace(cfg, sample_weights="density_ratio"), data,
                               tmp_path / "weighted", None)
    assert plain["history"]["loss"] != weighted["history"]["loss"]


def test_weighted_peer_is_reported_beside_the_plain_one(tmp_path):
    data = _synthetic(tmp_path)
    _with_weights(data, {0: 0.5, 1: 1.5})
    cfg = sentiment_peers.BaselineConfig(ngram_min=1, ngram_max=2, min_df=1, c_grid=[1.0], seed=0, refit=True)
    peers = sentiment_peers.baselines(cfg, data)
    assert set(peers) == {"tfidf_char_lr", "tfidf_char_lr_density_ratio"}
    assert peers["tfidf_char_lr_density_ratio"]["chosen"] == {"C": 1.0, "sample_weights": "density_ratio",
                                                              "refit": True}


def test_a_model_trained_with_a_kexue_loss_loads_in_a_fresh_process(tmp_path):
    """The evaluate stage and the CLI import only the family: kexue's losses must be registered."""
    import subprocess
    import sys

    data = _synthetic(tmp_path, n=32)
    sentiment.train(replace(CFG, loss="focal", fit=replace(CFG.fit, epochs=1)), data,
                    tmp_path / "model", None)
    code = ("import sys; from kexue.families.sentiment_classifier import SentimentClassifier; "
            "print(type(SentimentClassifier(sys.argv[1]).model.loss).__name__)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "model")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("BinaryFocalLoss")
