"""Multi-label sentence tagging on People's Daily: which tag kinds occur in a line.

苏剑林, "将“softmax+交叉熵”推广到多标签分类问题" (kexue.fm/archives/7359, 2020) replaces n
independent sigmoids + binary cross-entropy with one loss over all labels (ZLPR):

    log(1 + Σ_{i∈neg} e^{s_i}) + log(1 + Σ_{j∈pos} e^{−s_j})

— every positive score should beat every negative one and 0 sits between them, so the decision
threshold is 0 on the logits with no tuning and no class weights, however rare a label is.

Rare labels still come out with scores below 0 too often: a label in 1.6% of the training lines
(``foreign``) is never predicted on valid by plain ZLPR. ``logit_adjustment: τ`` trains on
``s + τ·log(π/(1−π))`` (π: the label's frequency in the training lines) and predicts from ``s``
at the same fixed threshold 0, so the network learns scores with the label's prior taken out
(Menon et al., "Long-tail learning via logit adjustment", ICLR 2021, for softmax; here per label
inside ZLPR). τ is chosen on valid; 0 is plain ZLPR.

The task: the labels of a line are the PKU part-of-speech kinds that occur in it (person, place,
organisation, time, number, idiom, ...; :data:`LABELS`); the model reads the raw characters only.
Character (+ bigram) embeddings → a small encoder (stacked 'same' convolutions or a BiGRU) →
masked max over time (a label is present if some position says so) → one logit per label.

`train@multilabel` trains the ``loss`` of the params (ZLPR by default); `baselines@multilabel`
retrains the same network with sigmoid BCE and focal loss (each scored at probability 0.5 and at
thresholds tuned on valid: one global, and one per label) and fits TF-IDF over character n-grams
+ one-vs-rest logistic regression and fastText (one sigmoid per label), all on the same split.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.batches import SequenceBatches
from kexue.corpora.tag_labels import LABEL_NAMES, LABELS, label_counts, load_split
from kexue.io import atomic_path, read_json, write_json
from kexue.layers.inputs import char_embeddings
from kexue.layers.pooling import MaskedGlobalMaxPooling1D, ZeroPadding
from kexue.macro_f1 import per_label_counts
from kexue.metrics import line_counts, micro_f1, multilabel_scores, tune_threshold
from kexue.text.vocab import Vocab, characters
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything

LOSSES = ("zlpr", "bce", "focal")


@dataclass(frozen=True)
class Config:
    maxlen: int = field(metadata={"min": 1})  # characters the model reads per line (head); labels come from the whole line
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    bigrams: bool  # add a character-bigram embedding to each position's character embedding
    bigram_min_count: int = field(metadata={"min": 1})
    embedding_dim: int = field(metadata={"min": 1})
    encoder: Literal["cnn", "bigru"]
    layers: int = field(metadata={"min": 1})  # stacked convolutions (cnn) or BiGRUs (bigru)
    units: int = field(metadata={"min": 1})  # filters per convolution, or GRU units per direction
    kernel_size: int = field(metadata={"min": 1})  # convolution width (cnn)
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})
    loss: Literal["zlpr", "bce", "focal"]
    focal_gamma: float = field(metadata={"min": 0.0})  # focal loss: (1 - p_t)^gamma down-weights easy cases
    focal_alpha: float = field(metadata={"min": 0.0, "max": 1.0})  # focal loss: weight of the positive class
    logit_adjustment: float = field(metadata={"min": 0.0})  # τ: train on logits + τ·log(π/(1−π)), π = label frequency; 0 = off
    fit: FitConfig


# ---------------------------------------------------------------------------------------------
# model


def char_bigrams(chars: list[str]) -> list[str]:
    """The bigram starting at each character (the last pairs with an end marker): aligned."""
    return [a + b for a, b in zip(chars, chars[1:] + ["</s>"], strict=True)]


def encode(texts: Sequence[str], vocab: Vocab, bigram_vocab: Vocab | None,
           maxlen: int) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray]]:
    chars = [characters(t) for t in texts]
    ids = [vocab.encode(c, maxlen) for c in chars]
    if bigram_vocab is None:
        return ids
    pairs = [bigram_vocab.encode(char_bigrams(c), maxlen) if c else np.ones(1, np.int32)
             for c in chars]
    return ids, pairs


def build_model(cfg: Config, vocab_size: int, bigram_vocab_size: int = 0,
                name: str = "multilabel") -> keras.Model:
    """Characters (+ bigrams) → encoder → masked max over time → one logit per label."""
    recurrent = cfg.encoder == "bigru"
    inputs, x, pairs = char_embeddings(vocab_size, bigram_vocab_size, cfg.embedding_dim,
                                       cfg.bigrams, mask_zero=recurrent)
    ids = inputs[0]  # (batch, T) character ids
    if pairs is not None:
        x = keras.layers.Add(name="char_plus_bigram")([x, pairs])  # (batch, T, dim)
    x = keras.layers.SpatialDropout1D(cfg.dropout, name="embedding_dropout")(x)
    for i in range(cfg.layers):
        if recurrent:  # the mask from the embeddings keeps padding out of the states
            x = keras.layers.Bidirectional(
                keras.layers.GRU(cfg.units, return_sequences=True, name=f"gru{i}"),
                name=f"bigru{i}")(x)  # (batch, T, 2 units)
        else:  # padding zeroed before each convolution: a padded batch gives what the line alone gives
            x = ZeroPadding(name=f"zero_padding{i}")([x, ids])
            x = keras.layers.Conv1D(cfg.units, cfg.kernel_size, padding="same", activation="relu",
                                    name=f"conv{i}")(x)  # (batch, T, units)
    mask = None if recurrent else keras.ops.not_equal(ids, 0)  # (batch, T); the GRU path carries its own
    x = MaskedGlobalMaxPooling1D(name="max_pool")(x, mask=mask)  # (batch, features)
    x = keras.layers.Dropout(cfg.dropout, name="output_dropout")(x)
    logits = keras.layers.Dense(len(LABELS), name="logits")(x)  # (batch, num_labels)
    return keras.Model(inputs if len(inputs) > 1 else ids, logits, name=name)


def make_loss(cfg: Config) -> keras.losses.Loss:
    """The training loss on logits: ZLPR, sigmoid BCE or sigmoid focal loss."""
    if cfg.loss == "zlpr":
        from kexue.losses import MultilabelCrossEntropy

        return MultilabelCrossEntropy()
    if cfg.loss == "bce":
        return keras.losses.BinaryCrossentropy(from_logits=True)
    if cfg.loss == "focal":
        from kexue.losses import BinaryFocalLoss

        return BinaryFocalLoss(gamma=cfg.focal_gamma, alpha=cfg.focal_alpha, from_logits=True)
    raise ValueError(f"multilabel.loss = {cfg.loss!r}: expected one of {' | '.join(LOSSES)}")


def label_log_odds(labels: np.ndarray) -> np.ndarray:
    """``log(π / (1 − π))`` per label (float64), π = the label's frequency among the rows of
    ``labels`` (lines, num_labels), clipped to [1e-4, 1 − 1e-4] so that a label absent from
    training (or in every line) gets a finite offset."""
    prior = np.clip(np.asarray(labels, dtype=np.float64).mean(0), 1e-4, 1 - 1e-4)
    return np.log(prior / (1 - prior))


@keras.saving.register_keras_serializable(package="kexue")
class LogitAdjusted(keras.losses.Loss):
    """``base`` scored on the logits plus a fixed per-label ``offsets`` vector, in training only
    (the model itself and its threshold are unchanged)."""

    def __init__(self, base: keras.losses.Loss, offsets, name: str = "logit_adjusted", **kwargs):
        super().__init__(name=name, **kwargs)
        self.base = base
        self.offsets = [float(v) for v in np.asarray(offsets, dtype=np.float32)]
        self._shift = keras.ops.convert_to_tensor(np.asarray(offsets, dtype=np.float32))

    def call(self, y_true, y_pred):
        return self.base.call(y_true, y_pred + keras.ops.cast(self._shift, y_pred.dtype))

    def get_config(self):
        return {**super().get_config(), "base": keras.saving.serialize_keras_object(self.base),
                "offsets": self.offsets}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["base"] = keras.saving.deserialize_keras_object(config["base"])
        return cls(**config)


def training_loss(cfg: Config, train_labels: np.ndarray) -> keras.losses.Loss:
    """:func:`make_loss`, logit-adjusted by ``cfg.logit_adjustment`` times the training labels'
    log-odds when that is above 0."""
    loss = make_loss(cfg)
    if cfg.logit_adjustment > 0:
        return LogitAdjusted(loss, cfg.logit_adjustment * label_log_odds(train_labels))
    return loss


class LabelVectorBatches(SequenceBatches):
    """Length-bucketed batches whose label is one 0/1 vector per line (SequenceBatches reads a
    vector label as one tag per token)."""

    def __init__(self, sequences, labels: np.ndarray, batch_size: int, seed: int = 0,
                 shuffle: bool = True):
        super().__init__(sequences, None, batch_size, seed=seed, shuffle=shuffle)
        self.labels = np.asarray(labels, dtype=np.float32)  # (examples, num_labels)


def predict_logits(model: keras.Model, inputs, batch_size: int) -> np.ndarray:
    """Logits (examples, num_labels) in input order."""
    batches = SequenceBatches(inputs, None, batch_size, shuffle=False)
    out = np.concatenate([keras.ops.convert_to_numpy(model(batches[i][0], training=False))
                          for i in range(len(batches))])
    logits = np.empty_like(out)
    logits[batches.order()] = out
    return logits


class ValidMicroF1(keras.callbacks.Callback):
    """Logs ``val_micro_f1``: micro F1 of the validation lines at logit 0 (ZLPR's threshold;
    probability 0.5 for the sigmoid losses), so the best epoch is picked on what is reported."""

    def __init__(self, inputs, labels: np.ndarray, batch_size: int):
        super().__init__()
        self.inputs, self.labels, self.batch_size = inputs, labels, batch_size

    def on_epoch_end(self, epoch, logs=None):
        logits = predict_logits(self.model, self.inputs, self.batch_size)
        if logs is not None:
            logs["val_micro_f1"] = micro_f1(self.labels, logits > 0)


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "multilabel") -> dict:
    """Train on ``data_dir/train.jsonl``, keeping the epoch with the best validation micro F1;
    write ``model.keras``, the vocabularies and ``train_info.json`` into ``model_dir``."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    make_loss(cfg)  # fail before the data is read if the loss is not available
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / "train.jsonl", data_dir / "valid.jsonl"])
        resume_dir = Path(resume_root) / family / key
    train_texts, train_y = load_split(data_dir, "train")
    valid_texts, valid_y = load_split(data_dir, "valid")
    vocab = Vocab.build((characters(t) for t in train_texts), min_count=cfg.min_count)
    bigram_vocab = (Vocab.build((char_bigrams(characters(t)) for t in train_texts),
                                min_count=cfg.bigram_min_count) if cfg.bigrams else None)
    train_inputs = encode(train_texts, vocab, bigram_vocab, cfg.maxlen)
    valid_inputs = encode(valid_texts, vocab, bigram_vocab, cfg.maxlen)

    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    train_batches = LabelVectorBatches(train_inputs, train_y, cfg.fit.batch_size, seed=cfg.fit.seed)
    valid_batches = LabelVectorBatches(valid_inputs, valid_y, cfg.fit.batch_size, shuffle=False)
    with make_strategy(cfg.fit.distribute).scope():
        model = build_model(cfg, len(vocab), len(bigram_vocab) if bigram_vocab else 0, name=family)
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                      loss=training_loss(cfg, train_y))
    result = fit(model, train_batches, valid_batches, cfg.fit, monitor="val_micro_f1", mode="max",
                 live_dir=live_dir, resume_dir=resume_dir,
                 scorers=[ValidMicroF1(valid_inputs, valid_y, cfg.fit.batch_size)])
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    vocab.save(model_dir / "vocab.json")
    if bigram_vocab is not None:
        bigram_vocab.save(model_dir / "bigram_vocab.json")
    info = {"config": dataclasses.asdict(cfg), "labels": LABELS, "vocab_size": len(vocab),
            "bigram_vocab_size": len(bigram_vocab) if bigram_vocab else 0,
            "params": int(model.count_params()), "train_examples": len(train_texts),
            **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


class MultilabelClassifier:
    """A trained model with its vocabularies: ``logits(texts)``, ``predict(texts)``."""

    def __init__(self, model_dir: str | Path, batch_size: int = 256):
        model_dir = Path(model_dir)
        for name in ("model.keras", "vocab.json", "train_info.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(f"{model_dir / name} not found: train the model first "
                                        "(`dvc repro train@multilabel`)")
        # compile=False: scoring needs only the forward pass, not the training loss
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.labels = list(self.info["labels"])
        self.maxlen = self.info["config"]["maxlen"]
        self.bigram_vocab = (Vocab.load(model_dir / "bigram_vocab.json")
                             if self.info["config"]["bigrams"] else None)
        self.batch_size = batch_size

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return predict_logits(self.model, encode(texts, self.vocab, self.bigram_vocab, self.maxlen),
                              self.batch_size)

    def predict(self, texts: Sequence[str], threshold: float = 0.0) -> list[list[str]]:
        """The labels whose logit exceeds ``threshold`` (0: ZLPR's rule; probability 0.5)."""
        return [[name for name, hit in zip(self.labels, row, strict=True) if hit]
                for row in self.logits(texts) > threshold]


def confusion_rows(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict]:
    """Per line and label, ``label=yes/no`` gold vs predicted: one 2 × 2 block per label in
    DVC's confusion template."""
    rows = []
    for gold, pred in zip(y_true.astype(bool), y_pred.astype(bool), strict=True):
        for name, g, p in zip(LABEL_NAMES, gold, pred, strict=True):
            rows.append({"actual": f"{name}={'yes' if g else 'no'}",
                         "predicted": f"{name}={'yes' if p else 'no'}"})
    return rows


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Scores at logit 0 on test and valid, what a threshold tuned on valid would change,
    label counts per split, cost, the per-line ``items`` of valid and test (:func:`line_counts`;
    per line and label, :func:`per_label_counts`; the same lines in the same order as the
    peers'); plus the per-label confusion rows of test."""
    clf = MultilabelClassifier(model_dir)
    if clf.labels != LABEL_NAMES:
        raise ValueError(f"{model_dir}: trained for labels {clf.labels}, this code scores "
                         f"{LABEL_NAMES}: retrain (`dvc repro train@multilabel`)")
    data_dir = Path(data_dir)
    splits = {s: load_split(data_dir, s) for s in ("train", "valid", "test")}
    # per line [right, predicted, gold] at logit 0, for the paired bootstrap against the peers
    # and per line and label, for macro F1: every peer is compared on both (kexue.every_peer);
    # kind mean_f1 (kexue.macro_f1) is plain F1 on the three micro columns
    n_labels = len(LABEL_NAMES)
    metrics: dict = {"items": {
        "metric": "micro_f1", "kind": "mean_f1", "higher_is_better": True, "per_label": {},
        "every_peer": {"micro_f1": [0, 1, 2],
                       "macro_f1": {"items": "per_label", "columns": list(range(3 * n_labels))}}}}
    logits = {}
    for split in ("test", "valid"):
        texts, y = splits[split]
        start = time.perf_counter()
        logits[split] = clf.logits(texts)
        seconds = time.perf_counter() - start
        metrics[split] = multilabel_scores(y, logits[split] > 0, LABEL_NAMES)
        metrics["items"][split] = line_counts(y, logits[split] > 0, metrics[split]["micro_f1"])
        metrics["items"]["per_label"][split] = per_label_counts(y, logits[split] > 0,
                                                                metrics[split]["macro_f1"])
        if split == "test":
            test_seconds = seconds
    # the headline uses no tuning; this records what tuning one global threshold would add
    logit_grid = list(np.round(np.linspace(-3.0, 3.0, 61), 3))
    t = tune_threshold(splits["valid"][1], logits["valid"], logit_grid)
    metrics["tuned"] = {"threshold_logit": t, **{
        split: {k: v for k, v in multilabel_scores(splits[split][1], logits[split] >= t, LABEL_NAMES).items()
                if k in ("micro_f1", "macro_f1")} for split in ("test", "valid")}}
    info = clf.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"],
        "params": info["params"],
        "examples_per_second": info["examples_per_second"],
        "inference_examples_per_second": round(len(splits["test"][0]) / test_seconds, 1),
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "loss": info["config"]["loss"],
        "logit_adjustment": info["config"]["logit_adjustment"],
    }
    metrics["labels"] = {"pku_tags": LABELS,
                         **{split: label_counts(y) for split, (_, y) in splits.items()}}
    return metrics, confusion_rows(splits["test"][1], logits["test"] > 0)
