import json

import numpy as np
import pytest
import yaml

from kexue import metrics as scores_lib
from kexue.config import ConfigError, load_section
from kexue.corpora import tag_labels
from kexue.corpora.people_daily import entity_spans, parse_line
from kexue.families import multilabel as ml
from kexue.io import write_jsonl

OPTIMIZER = {"name": "adam", "learning_rate": 0.02, "schedule": {}, "weight_decay": 0.0,
             "global_clipnorm": 5.0, "gradient_accumulation_steps": 1, "use_ema": False,
             "ema_momentum": 0.99, "lr_multipliers": {}, "lookahead_k": 0, "lookahead_alpha": 0.5}
TINY = {"maxlen": 64, "min_count": 1, "bigrams": True, "bigram_min_count": 1, "embedding_dim": 8,
        "encoder": "cnn", "layers": 1, "units": 16, "kernel_size": 3, "dropout": 0.0, "loss": "zlpr",
        "focal_gamma": 2.0, "focal_alpha": 0.5, "logit_adjustment": 0.0,
        "fit": {"epochs": 6, "batch_size": 8, "seed": 0, "deterministic": True, "distribute": "none",
                "optimizer": OPTIMIZER}}
TINY_BASELINES = {"losses": ["bce", "focal"], "threshold_candidates": 9, "per_label_thresholds": True,
                  "tfidf": True, "ngram_min": 1, "ngram_max": 2, "min_df": 1, "c_grid": [1.0],
                  "seed": 0, "fasttext": True, "fasttext_lr": [1e-4, 0.5], "fasttext_epoch": [50],
                  "fasttext_word_ngrams": [1], "fasttext_dim": 10}


def test_labels_of_a_tagged_line():
    tagged = parse_line("１月/t  ５日/t  ，/w  江/nr  泽民/nr  在/p  北京/ns  会见/v  ＶＣＤ/nx  "
                        "厂商/n  ，/w  大家/r  欢聚一堂/i  了/y  。/w")
    labels = tag_labels.label_vector([pos for _, pos in tagged])
    present = {name for name, hit in zip(tag_labels.LABEL_NAMES, labels, strict=True) if hit}
    assert present == {"time", "person", "place", "foreign", "idiom", "modal_particle"}
    assert labels.dtype == np.float32 and labels.shape == (len(tag_labels.LABELS),)
    assert tag_labels.label_vector(["w"]).sum() == 0


def test_labels_from_prepared_rows(tmp_path):
    tagged = parse_line("新华社/nt  记者/n  张/nr  三/nr  报道/v")
    row = {"line": 1, "text": "".join(w for w, _ in tagged), "words": [w for w, _ in tagged],
           "pos": [p for _, p in tagged], "entities": [list(s) for s in entity_spans(tagged)]}
    write_jsonl(tmp_path / "valid.jsonl", [row])
    texts, y = tag_labels.load_split(tmp_path, "valid")
    assert texts == ["新华社记者张三报道"]
    assert y[0, tag_labels.LABEL_NAMES.index("organisation")] == 1 and y[0, tag_labels.LABEL_NAMES.index("person")] == 1
    assert y.sum() == 2


def test_micro_and_macro_f1_by_hand():
    names = ["a", "b", "c"]
    y_true = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    y_pred = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0]])
    scores = scores_lib.multilabel_scores(y_true, y_pred, names)
    # a: tp 2 fp 0 fn 1 → F1 4/5; b: tp 0 fp 1 fn 1 → 0; c: tp 0 fp 1 fn 1 → 0
    # pooled: tp 2 fp 2 fn 3 → micro F1 4/9, precision 1/2, recall 2/5
    assert scores["micro_f1"] == round(4 / 9, 4)
    assert scores["macro_f1"] == round((4 / 5) / 3, 4)
    assert scores["micro_precision"] == 0.5 and scores["micro_recall"] == 0.4
    assert scores["exact_match"] == 0.0  # no line has all three decisions right
    assert scores["per_label"]["a"] == {"precision": 1.0, "recall": round(2 / 3, 4), "f1": 0.8,
                                        "support": 3}
    assert scores["per_label"]["b"]["f1"] == 0.0 and scores["examples"] == 4


def test_threshold_tuning_picks_the_best_threshold():
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    scores = np.array([[0.9, 0.2], [0.35, 0.3], [0.3, 0.8], [0.1, 0.25]])
    # 0.5 misses the second positive of label 0 (micro F1 0.8); 0.33 finds both and no
    # negative (F1 1.0); 0.28 adds the false positive 0.3 of label 1 ...
    assert scores_lib.tune_threshold(y, scores, [0.2, 0.28, 0.33, 0.5, 0.7]) == 0.33
    # per label: label 0 needs a threshold in (0.3, 0.35]; label 1 one in (0.3, 0.8]
    np.testing.assert_allclose(scores_lib.tune_thresholds_per_label(y, scores, [0.2, 0.32, 0.5, 0.9]),
                               [0.32, 0.32])
    assert scores_lib.threshold_candidates(3) == [0.25, 0.5, 0.75]


def test_line_counts_sum_to_the_micro_f1():
    y_true = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    y_pred = np.array([[1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0]])
    counts = scores_lib.line_counts(y_true, y_pred, micro_f1=round(4 / 9, 4))  # as in the F1 test above
    assert counts == [[1, 1, 2], [1, 2, 2], [0, 1, 0], [0, 0, 1]]  # [right, predicted, gold]
    tp, predicted, gold = np.sum(counts, axis=0)
    assert 2 * tp / (predicted + gold) == pytest.approx(4 / 9)
    with pytest.raises(AssertionError, match="micro F1"):
        scores_lib.line_counts(y_true, y_pred, micro_f1=0.5)


def _synthetic_corpus(path, seed=0):
    """Lines of filler words with marker words: 李/nr, 京/ns, 社/nt, ８/m (each present or not)."""
    rng = np.random.default_rng(seed)
    fillers = [("这", "r"), ("是", "v"), ("的", "u"), ("工作", "vn"), ("大", "a")]
    markers = [("李", "nr"), ("京", "ns"), ("社", "nt"), ("８", "m")]
    for split, n in (("train", 96), ("valid", 16), ("test", 16)):
        rows = []
        for i in range(n):
            tagged = [fillers[j] for j in rng.integers(0, len(fillers), size=rng.integers(2, 8))]
            tagged += [m for m in markers if rng.random() < 0.5]
            rng.shuffle(tagged)
            rows.append({"line": i, "text": "".join(w for w, _ in tagged),
                         "words": [w for w, _ in tagged], "pos": [p for _, p in tagged],
                         "entities": []})
        write_jsonl(path / f"{split}.jsonl", rows)
    return path


def _params(path, **multilabel):
    params = {"multilabel": {**TINY, **multilabel}, "baselines": {"multilabel": TINY_BASELINES}}
    (path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))


@pytest.mark.filterwarnings("ignore:Label not")  # the toy corpus has none of most labels
def test_train_evaluate_baselines_stages_write_the_metrics(tmp_path, monkeypatch):
    from kexue.stages import baselines, evaluate, train

    data = _synthetic_corpus(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    _params(tmp_path)
    assert train.main(["multilabel", "--data", str(data), "--model", "models/multilabel",
                       "--live", "plots/multilabel/train", "--resume-root", ""]) == 0
    assert baselines.main(["multilabel", "--data", str(data), "--network", "multilabel",
                           "--out", "models/baselines/multilabel.json"]) == 0
    assert evaluate.main(["multilabel", "--data", str(data), "--model", "models/multilabel",
                          "--peers", "models/baselines/multilabel.json",
                          "--out", "metrics/multilabel.json", "--plots", "plots/multilabel"]) == 0
    metrics = json.loads((tmp_path / "metrics/multilabel.json").read_text())
    assert set(metrics) >= {"test", "valid", "peers", "cost", "labels", "tuned"}
    for split in ("test", "valid"):
        assert set(metrics[split]) >= {"micro_f1", "macro_f1", "per_label"}
        assert list(metrics[split]["per_label"]) == tag_labels.LABEL_NAMES
        assert 0 <= metrics[split]["micro_f1"] <= 1
    # the markers are easy: the ZLPR model finds them at threshold 0
    assert metrics["test"]["micro_f1"] >= 0.8
    assert set(metrics["peers"]) == {
        "bce_t0.5", "bce_tuned", "bce_tuned_per_label", "focal_t0.5", "focal_tuned",
        "focal_tuned_per_label", "tfidf_lr", "tfidf_lr_tuned", "tfidf_lr_tuned_per_label",
        "fasttext", "fasttext_tuned", "fasttext_tuned_per_label"}
    for peer in metrics["peers"].values():
        assert 0 <= peer["test"]["micro_f1"] <= 1 and "threshold" in peer
        assert "items" not in peer  # moved into the comparison block
    # fastText (ova) learns the markers; lr 1e-4 learns next to nothing, so valid picks 0.5
    fast = metrics["peers"]["fasttext"]
    assert fast["test"]["micro_f1"] >= 0.8 and fast["threshold"] == 0.5
    assert fast["chosen"] == {"lr": 0.5, "epoch": 50, "word_ngrams": 1, "dim": 10, "loss": "ova"}
    # the comparison: kexue at logit 0 against the peer strongest on valid micro F1
    block = metrics["comparison"]
    valid = {name: peer["valid"]["micro_f1"] for name, peer in metrics["peers"].items()}
    assert block["metric"] == "micro_f1" and valid[block["peer"]] == max(valid.values())
    assert block["test"]["kexue"] == metrics["test"]["micro_f1"]
    assert block["test"]["peer"] == metrics["peers"][block["peer"]]["test"]["micro_f1"]
    assert block["valid"]["kexue"] == metrics["valid"]["micro_f1"] and block["test"]["n"] == 16
    assert "items" not in metrics
    assert metrics["peers"]["bce_t0.5"]["threshold"] == 0.5
    assert metrics["labels"]["train"]["lines"] == 96
    assert metrics["labels"]["pku_tags"]["person"] == "nr"
    assert metrics["cost"]["train_seconds"] > 0 and metrics["cost"]["loss"] == "zlpr"
    rows = json.loads((tmp_path / "plots/multilabel/confusion.json").read_text())
    assert len(rows) == 16 * len(tag_labels.LABELS)
    clf = ml.MultilabelClassifier(tmp_path / "models/multilabel")
    assert clf.predict(["李在京"])[0][:2] == ["person", "place"]


def test_label_log_odds_are_the_training_priors_log_odds():
    labels = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0]])
    expected = [np.log(3.0), -np.log(3.0), np.log(1e-4 / (1 - 1e-4))]  # an absent label: clipped
    np.testing.assert_allclose(ml.label_log_odds(labels), expected, rtol=1e-12)


def _zlpr_by_hand(y, s):
    """log(1 + Σ_neg e^s) + log(1 + Σ_pos e^−s) per row, the ZLPR loss written out."""
    neg = np.log1p(np.where(y == 0, np.exp(s), 0.0).sum(-1))
    pos = np.log1p(np.where(y == 1, np.exp(-s), 0.0).sum(-1))
    return neg + pos


def test_logit_adjusted_zlpr_is_zlpr_on_the_shifted_logits():
    from kexue.losses import MultilabelCrossEntropy

    rng = np.random.default_rng(0)
    y = (rng.random((6, 4)) < 0.4).astype("float32")
    s = rng.normal(size=(6, 4)).astype("float32")
    offsets = np.array([-2.0, -0.5, 0.0, 1.5])
    loss = ml.LogitAdjusted(MultilabelCrossEntropy(), offsets)
    assert float(loss(y, s)) == pytest.approx(_zlpr_by_hand(y, s + offsets).mean(), rel=1e-5)
    # a negative offset (a rare label) makes the same score cost more when the label is present
    assert float(loss(y, s)) != pytest.approx(_zlpr_by_hand(y, s).mean(), rel=1e-3)
    assert float(ml.LogitAdjusted(MultilabelCrossEntropy(), np.zeros(4))(y, s)) == pytest.approx(
        float(MultilabelCrossEntropy()(y, s)), rel=1e-6)
    # it survives the model file's compile config
    import keras

    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(again, ml.LogitAdjusted) and again.offsets == loss.offsets
    assert float(again(y, s)) == pytest.approx(float(loss(y, s)), rel=1e-7)


def test_training_loss_adjusts_only_when_asked():
    from kexue.losses import MultilabelCrossEntropy

    labels = np.array([[1, 0], [1, 1], [0, 0], [1, 0]])
    plain = ml.training_loss(ml.Config(**{**TINY, "fit": None}), labels)
    assert isinstance(plain, MultilabelCrossEntropy)
    adjusted = ml.training_loss(ml.Config(**{**TINY, "logit_adjustment": 0.5, "fit": None}), labels)
    assert isinstance(adjusted, ml.LogitAdjusted)
    np.testing.assert_allclose(adjusted.offsets, 0.5 * ml.label_log_odds(labels), rtol=1e-6)


def test_a_negative_logit_adjustment_names_the_key(tmp_path):
    _params(tmp_path, logit_adjustment=-0.5)
    with pytest.raises(ConfigError, match="logit_adjustment"):
        load_section("multilabel", ml.Config, tmp_path / "params.yaml")


def test_the_sigmoid_peers_train_without_logit_adjustment(tmp_path, monkeypatch):
    from kexue.peers import multilabel as peers

    data = _synthetic_corpus(tmp_path / "data")
    seen = []

    def train(cfg, *args, **kwargs):
        seen.append((cfg.loss, cfg.logit_adjustment))
        raise RuntimeError("stop: only the config was wanted")

    monkeypatch.setattr(ml, "train", train)
    network = ml.Config(**{**TINY, "logit_adjustment": 1.0, "fit": None})
    cfg = peers.BaselineConfig(**{**TINY_BASELINES, "losses": ["focal"]})
    with pytest.raises(RuntimeError, match="stop"):
        peers.baselines(cfg, data, tmp_path, network=network)
    assert seen == [("focal", 0.0)]


def test_padding_does_not_change_the_logits():
    for encoder in ("cnn", "bigru"):
        cfg = ml.Config(**{**TINY, "encoder": encoder, "fit": None})
        model = ml.build_model(cfg, vocab_size=20, bigram_vocab_size=30)
        ids = np.array([[5, 6, 7]], dtype=np.int32)
        padded = np.array([[5, 6, 7, 0, 0, 0]], dtype=np.int32)
        np.testing.assert_allclose(model((ids, ids + 10)).numpy(),
                                   model((padded, np.where(padded > 0, padded + 10, 0))).numpy(),
                                   atol=1e-5)


def test_a_bad_loss_names_the_key(tmp_path, monkeypatch, capsys):
    from kexue.stages import train

    monkeypatch.chdir(tmp_path)
    _params(tmp_path, loss="hinge")
    with pytest.raises(ConfigError, match=r"multilabel\.loss = 'hinge'.*zlpr \| bce \| focal"):
        load_section("multilabel", ml.Config)
    assert train.main(["multilabel", "--data", "data", "--model", "m", "--live", "l"]) == 2
    assert "multilabel.loss" in capsys.readouterr().err
