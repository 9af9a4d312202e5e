"""Multi-label sentence tagging on People's Daily: which tag kinds occur in a line.

苏剑林, "将“softmax+交叉熵”推广到多标签分类问题" (kexue.fm/archives/7359, 2020) replaces n
independent sigmoids + binary cross-entropy with one loss over all labels (ZLPR):

    log(1 + Σ_{i∈neg} e^{s_i}) + log(1 + Σ_{j∈pos} e^{−s_j})

— every positive score should beat every negative one and 0 sits between them, so the decision
threshold is 0 on the logits with no tuning and no class weights, however rare a label is.

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
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.batches import SequenceBatches
from kexue.config import require_network
from kexue.io import atomic_path, read_json, read_jsonl, write_json
from kexue.layers.pooling import MaskedGlobalMaxPooling1D
from kexue.tagging import ZeroPadding
from kexue.text.vocab import Vocab, characters
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything

# label → PKU tag. A line has the label when any of its words carries the tag. Chosen from the
# tags present in every split with usable counts (lines with the label in train / valid / test
# of the default split: person 7053/352/931 ... foreign 238/22/18; see metrics "labels").
LABELS: dict[str, str] = {
    "person": "nr",
    "place": "ns",
    "organisation": "nt",
    "other_proper_noun": "nz",
    "time": "t",
    "number": "m",
    "idiom": "i",
    "fixed_expression": "l",
    "abbreviation": "j",
    "modal_particle": "y",
    "foreign": "nx",  # Latin-letter strings: ＶＣＤ, ＣＤＭＡ, ＧＤＰ
}
LABEL_NAMES = list(LABELS)
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
    fit: FitConfig


# ---------------------------------------------------------------------------------------------
# labels and scores


def label_vector(pos_tags: Sequence[str]) -> np.ndarray:
    """0/1 per label of :data:`LABELS`: does any word of the line carry the label's tag."""
    present = set(pos_tags)
    return np.array([tag in present for tag in LABELS.values()], dtype=np.float32)


def load_split(data_dir: str | Path, split: str) -> tuple[list[str], np.ndarray]:
    """(line texts, labels (lines, num_labels)) of a prepared People's Daily split."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro prepare_people_daily`")
    rows = read_jsonl(path)
    if not rows:
        raise ValueError(f"{path} is empty: rerun prepare_people_daily")
    labels = np.stack([label_vector(r["pos"]) for r in rows])
    return [r["text"] for r in rows], labels


def label_counts(labels: np.ndarray) -> dict:
    """Lines per label, lines without any label, mean labels per line."""
    return {"lines": int(len(labels)),
            "per_label": {name: int(n) for name, n in zip(LABEL_NAMES, labels.sum(0), strict=True)},
            "no_label": int((labels.sum(1) == 0).sum()),
            "mean_labels_per_line": round(float(labels.sum(1).mean()), 3) if len(labels) else 0.0}


def _f1(tp, fp, fn):
    """F1 = 2tp / (2tp + fp + fn), element-wise; 0 where nothing was gold or predicted (as sklearn)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(denominator), where=denominator > 0)


def _counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
    return ((y_true & y_pred).sum(0), (~y_true & y_pred).sum(0), (y_true & ~y_pred).sum(0))


def multilabel_scores(y_true: np.ndarray, y_pred: np.ndarray,
                      names: Sequence[str] = LABEL_NAMES) -> dict:
    """Micro F1 (pooled over every line × label decision), macro F1 (mean of per-label F1s),
    micro precision / recall, exact-match accuracy, and per-label precision / recall / F1."""
    tp, fp, fn = _counts(y_true, y_pred)
    per_label_f1 = _f1(tp, fp, fn)
    all_tp, all_fp, all_fn = tp.sum(), fp.sum(), fn.sum()  # pooled over labels
    per_label = {}
    for i, name in enumerate(names):
        per_label[name] = {
            "precision": round(float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else 0.0, 4),
            "recall": round(float(tp[i] / (tp[i] + fn[i])) if tp[i] + fn[i] else 0.0, 4),
            "f1": round(float(per_label_f1[i]), 4),
            "support": int(tp[i] + fn[i]),
        }
    return {
        "micro_f1": round(float(_f1(all_tp, all_fp, all_fn)), 4),
        "macro_f1": round(float(per_label_f1.mean()), 4),
        "micro_precision": round(float(all_tp / (all_tp + all_fp)) if all_tp + all_fp else 0.0, 4),
        "micro_recall": round(float(all_tp / (all_tp + all_fn)) if all_tp + all_fn else 0.0, 4),
        "exact_match": round(float((y_true.astype(bool) == y_pred.astype(bool)).all(1).mean()), 4),
        "examples": int(len(y_true)),
        "per_label": per_label,
    }


def line_counts(y_true: np.ndarray, y_pred: np.ndarray, micro_f1: float | None = None) -> list[list[int]]:
    """Per line ``[labels right, predicted, gold]``: summed over any set of lines they give that
    set's micro F1 (2 tp / (predicted + gold)), the statistics of the paired bootstrap. Checked
    against ``micro_f1`` (as :func:`multilabel_scores` rounds it) when given."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    counts = np.stack([(y_true & y_pred).sum(1), y_pred.sum(1), y_true.sum(1)], axis=1)
    if micro_f1 is not None:
        tp, predicted, gold = counts.sum(0)
        value = round(float(_f1(tp, predicted - tp, gold - tp)), 4)
        if value != micro_f1:
            raise AssertionError(f"multilabel: the per-line items give micro F1 {value}, "
                                 f"the metrics say {micro_f1}")
    return counts.astype(int).tolist()


def tune_threshold(y_true: np.ndarray, scores: np.ndarray, candidates: Sequence[float]) -> float:
    """The one threshold (``scores >= t`` is positive) with the best micro F1 on ``y_true``;
    ties go to the first candidate."""
    best, best_f1 = candidates[0], -1.0
    for t in candidates:
        tp, fp, fn = _counts(y_true, scores >= t)
        f1 = float(_f1(tp.sum(), fp.sum(), fn.sum()))
        if f1 > best_f1:
            best, best_f1 = t, f1
    return float(best)


def tune_thresholds_per_label(y_true: np.ndarray, scores: np.ndarray,
                              candidates: Sequence[float]) -> np.ndarray:
    """Per label, the threshold with the best F1 of that label; ties go to the first candidate."""
    f1s = np.stack([_f1(*_counts(y_true, scores >= t)) for t in candidates])  # (candidates, labels)
    return np.asarray(candidates, dtype=np.float64)[f1s.argmax(0)]


def threshold_candidates(n: int) -> list[float]:
    """n evenly spaced probabilities strictly inside (0, 1): 1/(n+1), ..., n/(n+1)."""
    return [round(i / (n + 1), 6) for i in range(1, n + 1)]


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
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, T)
    inputs = [ids]
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=recurrent,
                               name="char_embedding")(ids)  # (batch, T, dim)
    if cfg.bigrams:
        pair_ids = keras.Input(shape=(None,), dtype="int32", name="bigram_ids")  # (batch, T)
        inputs.append(pair_ids)
        pairs = keras.layers.Embedding(bigram_vocab_size, cfg.embedding_dim, mask_zero=recurrent,
                                       name="bigram_embedding")(pair_ids)  # (batch, T, dim)
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
        tp, fp, fn = _counts(self.labels, logits > 0)
        if logs is not None:
            logs["val_micro_f1"] = float(_f1(tp.sum(), fp.sum(), fn.sum()))


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
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=make_loss(cfg))
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
    label counts per split, cost, the per-line ``items`` of valid and test (:func:`line_counts`,
    the same lines in the same order as the peers'); plus the per-label confusion rows of test."""
    clf = MultilabelClassifier(model_dir)
    if clf.labels != LABEL_NAMES:
        raise ValueError(f"{model_dir}: trained for labels {clf.labels}, this code scores "
                         f"{LABEL_NAMES}: retrain (`dvc repro train@multilabel`)")
    data_dir = Path(data_dir)
    splits = {s: load_split(data_dir, s) for s in ("train", "valid", "test")}
    # per line [right, predicted, gold] at logit 0, for the paired bootstrap against the peers
    metrics: dict = {"items": {"metric": "micro_f1", "kind": "f1", "higher_is_better": True}}
    logits = {}
    for split in ("test", "valid"):
        texts, y = splits[split]
        start = time.perf_counter()
        logits[split] = clf.logits(texts)
        seconds = time.perf_counter() - start
        metrics[split] = multilabel_scores(y, logits[split] > 0)
        metrics["items"][split] = line_counts(y, logits[split] > 0, metrics[split]["micro_f1"])
        if split == "test":
            test_seconds = seconds
    # the headline uses no tuning; this records what tuning one global threshold would add
    logit_grid = list(np.round(np.linspace(-3.0, 3.0, 61), 3))
    t = tune_threshold(splits["valid"][1], logits["valid"], logit_grid)
    metrics["tuned"] = {"threshold_logit": t, **{
        split: {k: v for k, v in multilabel_scores(splits[split][1], logits[split] >= t).items()
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
    }
    metrics["labels"] = {"pku_tags": LABELS,
                         **{split: label_counts(y) for split, (_, y) in splits.items()}}
    return metrics, confusion_rows(splits["test"][1], logits["test"] > 0)


# ---------------------------------------------------------------------------------------------
# peers


@dataclass(frozen=True)
class BaselineConfig:
    losses: list[Literal["zlpr", "bce", "focal"]]  # the `multilabel` network retrained with each loss
    threshold_candidates: int = field(metadata={"min": 1})  # tuned probability thresholds come from 1/(n+1) ... n/(n+1)
    per_label_thresholds: bool  # also tune one threshold per label (besides one global threshold)
    tfidf: bool  # TF-IDF over character n-grams + one-vs-rest logistic regression
    ngram_min: int = field(metadata={"min": 1})
    ngram_max: int = field(metadata={"min": 1})
    min_df: int = field(metadata={"min": 1})
    c_grid: list[float]  # inverse regularisation strengths; the best valid micro F1 at 0.5 is kept
    seed: int  # also seeds fastText (its initialisation and the order of its training lines)
    # fastText supervised, one sigmoid per label (loss ova), over the characters the network reads,
    # its word n-grams = character n-grams (kexue.peers.fasttext): every (lr, epoch, word_ngrams)
    # of the grids is fitted on train and the best valid micro F1 at 0.5 kept
    fasttext: bool = False
    fasttext_lr: list[float] = field(default_factory=lambda: [0.1])
    fasttext_epoch: list[int] = field(default_factory=lambda: [5])
    fasttext_word_ngrams: list[int] = field(default_factory=lambda: [2])
    fasttext_dim: int = field(default=10, metadata={"min": 1})  # embedding size


def _threshold_peers(name: str, y: dict, probs: dict, candidates: list[float],
                     per_label: bool, extra: dict) -> dict:
    """``name_t0.5``, ``name_tuned`` (one threshold from valid), ``name_tuned_per_label``; each
    with its per-line ``items`` (:func:`line_counts`) of valid and test."""
    def scored(threshold) -> dict:
        out: dict = {split: multilabel_scores(y[split], probs[split] >= threshold)
                     for split in ("test", "valid")}
        out["items"] = {split: line_counts(y[split], probs[split] >= threshold,
                                           out[split]["micro_f1"]) for split in ("valid", "test")}
        return out

    peers = {f"{name}_t0.5": {**scored(0.5), "threshold": 0.5, **extra}}
    t = tune_threshold(y["valid"], probs["valid"], candidates)
    peers[f"{name}_tuned"] = {**scored(t), "threshold": t, **extra}
    if per_label:
        ts = tune_thresholds_per_label(y["valid"], probs["valid"], candidates)
        peers[f"{name}_tuned_per_label"] = {
            **scored(ts), "threshold": dict(zip(LABEL_NAMES, map(float, ts), strict=True)), **extra}
    return peers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _tfidf_lr(cfg: BaselineConfig, texts: dict, y: dict) -> tuple[dict, dict]:
    """Probabilities on valid and test of the C (from ``c_grid``) with the best valid micro F1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(cfg.ngram_min, cfg.ngram_max),
                                 min_df=cfg.min_df, sublinear_tf=True)
    x = {"train": vectorizer.fit_transform(texts["train"])}
    for split in ("valid", "test"):
        x[split] = vectorizer.transform(texts[split])
    best = None
    for c in cfg.c_grid:
        clf = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000, random_state=cfg.seed))
        clf.fit(x["train"], y["train"].astype(int))
        f1 = multilabel_scores(y["valid"], clf.predict_proba(x["valid"]) >= 0.5)["micro_f1"]
        if best is None or f1 > best[0]:
            best = (f1, c, clf)
    _, c, clf = best
    probs = {split: clf.predict_proba(x[split]) for split in ("valid", "test")}
    extra = {"train_seconds": round(time.perf_counter() - start, 2), "C": c,
             "features": int(x["train"].shape[1])}
    return probs, extra


NO_LABEL = "none"  # fastText's label for a line without any: fastText skips unlabelled lines


def _fasttext(cfg: BaselineConfig, texts: dict, y: dict) -> tuple[dict, dict]:
    """fastText's per-label probabilities on valid and test, of the (lr, epoch, word_ngrams) with
    the best valid micro F1 at 0.5. A line with none of the labels is trained with the extra
    label :data:`NO_LABEL` (else fastText would skip it, and never learn that a label is absent);
    its probability is not scored."""
    from kexue.peers import fasttext

    documents = {split: [characters(t) for t in texts[split]] for split in texts}
    labels = [[name for name, hit in zip(LABEL_NAMES, row, strict=True) if hit] or [NO_LABEL]
              for row in y["train"]]
    start = time.perf_counter()
    settings = fasttext.grid(cfg.fasttext_lr, cfg.fasttext_epoch, cfg.fasttext_word_ngrams)
    model, valid_probs, chosen = fasttext.tune(
        (documents["train"], labels), documents["valid"], LABEL_NAMES, settings,
        lambda probs: multilabel_scores(y["valid"], probs >= 0.5)["micro_f1"],
        dim=cfg.fasttext_dim, loss="ova", seed=cfg.seed)
    probs = {"valid": valid_probs,
             "test": fasttext.probabilities(model, documents["test"], LABEL_NAMES)}
    extra = {"train_seconds": round(time.perf_counter() - start, 2),
             "chosen": {"lr": chosen["lr"], "epoch": chosen["epoch"],
                        "word_ngrams": chosen["word_ngrams"], "dim": cfg.fasttext_dim, "loss": "ova"},
             "tried": chosen["candidates"]}
    return probs, extra


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """The `multilabel` network trained with each of ``cfg.losses`` (its params section, only the
    loss changed), scored at probability 0.5 and at thresholds tuned on valid; and the TF-IDF
    and (``cfg.fasttext``) fastText peers, scored the same ways. Thresholds never see test.
    Every peer carries per-line ``items`` for the evaluate stage's paired bootstrap."""
    if cfg.ngram_min > cfg.ngram_max:
        raise ValueError(f"baselines.multilabel: ngram_min={cfg.ngram_min} > ngram_max={cfg.ngram_max}")
    data_dir = Path(data_dir)
    splits = {s: load_split(data_dir, s) for s in ("train", "valid", "test")}
    texts = {s: t for s, (t, _) in splits.items()}
    y = {s: labels for s, (_, labels) in splits.items()}
    candidates = threshold_candidates(cfg.threshold_candidates)
    peers: dict = {}
    if cfg.losses:
        network = require_network(network, "multilabel")
        for loss in cfg.losses:
            net = dataclasses.replace(network, loss=loss)
            with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
                info = train(net, data_dir, Path(tmp) / "model", None, None, family=f"multilabel_{loss}")
                clf = MultilabelClassifier(Path(tmp) / "model")
                probs = {split: _sigmoid(clf.logits(texts[split])) for split in ("valid", "test")}
            extra = {"train_seconds": info["train_seconds"], "epochs_run": info["epochs_run"],
                     "best_epoch": info["best_epoch"]}
            peers.update(_threshold_peers(loss, y, probs, candidates, cfg.per_label_thresholds, extra))
    if cfg.tfidf:
        probs, extra = _tfidf_lr(cfg, texts, y)
        tfidf = _threshold_peers("tfidf_lr", y, probs, candidates, cfg.per_label_thresholds, extra)
        peers["tfidf_lr"] = tfidf.pop("tfidf_lr_t0.5")
        peers.update(tfidf)
    if cfg.fasttext:
        probs, extra = _fasttext(cfg, texts, y)
        fast = _threshold_peers("fasttext", y, probs, candidates, cfg.per_label_thresholds, extra)
        peers["fasttext"] = fast.pop("fasttext_t0.5")
        peers.update(fast)
    return peers
