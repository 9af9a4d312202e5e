"""Sentiment of product/book reviews: character embedding → BiLSTM/BiGRU → sigmoid.

The recipe of the 科学空间 posts "文本情感分类（一/二/三）": characters rather than words (no
segmenter needed and no out-of-vocabulary words), a bidirectional recurrent encoder with masking
so padding never reaches the state, and a single sigmoid output.

``embeddings: word2vec | glove`` (issue 5's downstream check; default ``none`` leaves the model
as above) adds a word channel: the review is cut into words by the lexicon the `tokenize` stage
learnt, every character gets the pretrained vector of the word that contains it (frozen;
unknown words get a zero vector), and that vector is concatenated to the character (+ bigram)
embedding before the encoder. The word vocabulary is the vectors' own; the model folder keeps it
and a copy of the lexicon, so the CLI segments new reviews the same way. Note: the lexicon and
the vectors were learnt from the raw text of every review (no labels), test reviews included.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from kexue.batches import SequenceBatches
from kexue.io import atomic_path, read_json, read_jsonl, write_json
from kexue.layers import MaskedGlobalMaxPooling1D
from kexue.text.vocab import Vocab
from kexue.train import (
    FitConfig,
    build_optimizer,
    fit,
    make_strategy,
    run_key,
    seed_everything,
)

LABELS = ["neg", "pos"]
VECTORS_ROOT = "models"  # models/<embeddings>/ holds the vectors (stages train_word2vec, train_glove)
TOKENIZED_DIR = "data/tokenized"  # the learnt lexicon (stage tokenize)


@dataclass(frozen=True)
class Config:
    maxlen: int = field(metadata={"min": 1})  # characters kept per review (head)
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    bigrams: bool  # add a character-bigram embedding to each position's character embedding
    bigram_min_count: int = field(metadata={"min": 1})  # rarer bigrams map to <unk>
    embedding_dim: int = field(metadata={"min": 1})
    encoder: Literal["lstm", "gru"]
    units: int = field(metadata={"min": 1})  # per direction
    pooling: Literal["last", "max", "max_mean"]  # how the encoder's states become one vector
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})
    members: int = field(metadata={"min": 1})  # ensemble size: seeds seed, seed+1, ...; probabilities averaged
    fit: FitConfig
    # a frozen pretrained word-vector channel (params.yaml must name it; the default serves
    # callers that build a Config in Python)
    embeddings: Literal["none", "word2vec", "glove"] = "none"


def tokens(text: str) -> list[str]:
    """Characters; whitespace is dropped."""
    return [ch for ch in text if not ch.isspace()]


def bigrams(chars: list[str]) -> list[str]:
    """The bigram starting at each character (the last one pairs with an end marker), so the
    bigram sequence aligns with the character sequence."""
    return [a + b for a, b in zip(chars, chars[1:] + ["</s>"], strict=True)]


def encode(vocab: Vocab, texts: list[str], maxlen: int,
           bigram_vocab: Vocab | None = None) -> list[np.ndarray] | tuple[list[np.ndarray], ...]:
    chars = [tokens(t) for t in texts]
    ids = [vocab.encode(c, maxlen) for c in chars]
    if bigram_vocab is None:
        return ids
    pairs = [bigram_vocab.encode(bigrams(c), maxlen) if c else np.ones(1, np.int32) for c in chars]
    return ids, pairs


def word_ids(word_vocab: Vocab, segment, texts: list[str], maxlen: int) -> list[np.ndarray]:
    """Per character, the id of the word (cut by ``segment``) that contains it; aligned with
    :func:`tokens` (a text whose words do not spell its characters gets <unk> throughout)."""
    out = []
    for text in texts:
        ids: list[int] = []
        for word in segment(text):
            ids.extend([word_vocab.index.get(word, 1)] * len(word))
        if len(ids) != len(tokens(text)):
            ids = [1] * len(tokens(text))
        out.append(np.asarray(ids[:maxlen] or [1], dtype=np.int32))
    return out


def _add_words(encoded, words: list[np.ndarray] | None):
    if words is None:
        return encoded
    return (*encoded, words) if isinstance(encoded, tuple) else (encoded, words)


def _input_specs(cfg_bigrams: bool, embeddings: str) -> list:
    ids = [keras.Input(shape=(None,), dtype="int32", name="char_ids")]  # (batch, seq_len)
    if cfg_bigrams:
        ids.append(keras.Input(shape=(None,), dtype="int32", name="bigram_ids"))
    if embeddings != "none":
        ids.append(keras.Input(shape=(None,), dtype="int32", name="word_ids"))
    return ids


def build_model(cfg: Config, vocab_size: int, bigram_vocab_size: int = 0,
                name: str = "sentiment", word_matrix: np.ndarray | None = None) -> keras.Model:
    rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.encoder]
    ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, seq_len)
    inputs = [ids]
    x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True,
                               name="char_embedding")(ids)  # (batch, seq_len, dim)
    if cfg.bigrams:
        pair_ids = keras.Input(shape=(None,), dtype="int32", name="bigram_ids")  # (batch, seq_len)
        inputs.append(pair_ids)
        pairs = keras.layers.Embedding(bigram_vocab_size, cfg.embedding_dim, mask_zero=True,
                                       name="bigram_embedding")(pair_ids)  # (batch, seq_len, dim)
        x = keras.layers.Add(name="char_plus_bigram")([x, pairs])
    if cfg.embeddings != "none":
        if word_matrix is None:
            raise ValueError(f"sentiment.embeddings = {cfg.embeddings}: build_model needs the vectors")
        wids = keras.Input(shape=(None,), dtype="int32", name="word_ids")  # (batch, seq_len)
        inputs.append(wids)
        table = keras.layers.Embedding(len(word_matrix), word_matrix.shape[1], mask_zero=True,
                                       trainable=False, name="word_embedding")
        words = table(wids)  # (batch, seq_len, vector dim)
        table.set_weights([word_matrix])
        x = keras.layers.Concatenate(name="chars_and_words")([x, words])  # (batch, seq_len, dim + vector dim)
    # every layer is named: resuming restores state (e.g. dropout seed generators) by layer
    # name, and auto-names depend on what else the process built before
    x = keras.layers.SpatialDropout1D(cfg.dropout, name="embedding_dropout")(x)
    if cfg.pooling == "last":
        x = keras.layers.Bidirectional(rnn(cfg.units, name="rnn"),
                                       name="encoder")(x)  # (batch, 2 * units)
    else:
        x = keras.layers.Bidirectional(rnn(cfg.units, return_sequences=True, name="rnn"),
                                       name="encoder")(x)  # (batch, seq_len, 2 * units)
        pooled = MaskedGlobalMaxPooling1D(name="max_pool")(x)  # (batch, 2 * units)
        if cfg.pooling == "max_mean":
            mean = keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)  # masked mean
            pooled = keras.layers.Concatenate(name="max_mean")([pooled, mean])  # (batch, 4 * units)
        x = pooled
    x = keras.layers.Dropout(cfg.dropout, name="output_dropout")(x)
    prob = keras.layers.Dense(1, activation="sigmoid", name="prob_pos")(x)  # (batch, 1)
    return keras.Model(inputs if len(inputs) > 1 else ids, prob, name=name)


def average_members(members: list[keras.Model], bigrams: bool,
                    embeddings: str = "none") -> keras.Model:
    """One model whose output is the mean of the members' P(positive) (a seed ensemble)."""
    inputs = _input_specs(bigrams, embeddings)
    inputs = inputs if len(inputs) > 1 else inputs[0]
    probs = [member(inputs) for member in members]  # each (batch, 1)
    prob = keras.layers.Average(name="prob_pos")(probs)  # (batch, 1)
    return keras.Model(inputs, prob, name="sentiment_ensemble")


def _load_split(data_dir: Path, split: str) -> tuple[list[str], np.ndarray]:
    rows = read_jsonl(data_dir / f"{split}.jsonl")
    if not rows:
        raise ValueError(f"{data_dir / f'{split}.jsonl'} is empty: rerun prepare_reviews")
    return [r["text"] for r in rows], np.array([r["label"] for r in rows], dtype=np.float32)


def _word_channel(cfg: Config, vectors_root: str | Path, tokenized_dir: str | Path):
    """(word vocab, segmenter, matrix with pad and <unk> rows) for ``cfg.embeddings``."""
    from kexue.text.tokenized import load_segmenter
    from kexue.text.word_vectors import WordVectors

    vectors = WordVectors.load(Path(vectors_root) / cfg.embeddings)
    vocab = Vocab(["<pad>", "<unk>", *vectors.words])
    matrix = np.concatenate([np.zeros((2, vectors.dim), np.float32), vectors.matrix])
    return vocab, load_segmenter(tokenized_dir), matrix


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, vectors_root: str | Path = VECTORS_ROOT,
          tokenized_dir: str | Path = TOKENIZED_DIR) -> dict:
    """Train on ``data_dir/train.jsonl`` with best-on-valid selection; write the model, its vocab
    and ``train_info.json`` into ``model_dir`` (each file atomically).

    With ``resume_root`` an interrupted run resumes from its last finished epoch (the backup is
    keyed by the params and the data, so any change starts afresh)."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / "train.jsonl", data_dir / "valid.jsonl"])
        resume_dir = Path(resume_root) / "sentiment" / key
    train_texts, train_y = _load_split(data_dir, "train")
    valid_texts, valid_y = _load_split(data_dir, "valid")
    vocab = Vocab.build((tokens(t) for t in train_texts), min_count=cfg.min_count)
    bigram_vocab = (Vocab.build((bigrams(tokens(t)) for t in train_texts),
                                min_count=cfg.bigram_min_count) if cfg.bigrams else None)

    word_vocab = segment = word_matrix = None
    if cfg.embeddings != "none":
        word_vocab, segment, word_matrix = _word_channel(cfg, vectors_root, tokenized_dir)

    def inputs(texts):
        words = word_ids(word_vocab, segment, texts, cfg.maxlen) if word_vocab else None
        return _add_words(encode(vocab, texts, cfg.maxlen, bigram_vocab), words)

    train_ids = inputs(train_texts)
    valid_batches = SequenceBatches(inputs(valid_texts), valid_y, cfg.fit.batch_size, shuffle=False)
    members, results = [], []
    for index in range(cfg.members):
        done = resume_dir / f"member{index}.keras" if resume_dir is not None else None
        if done is not None and done.is_file():  # finished before an interruption
            members.append(keras.saving.load_model(done, safe_mode=True))
            results.append(read_json(done.with_suffix(".json")))
            continue
        seed = cfg.fit.seed + index
        seed_everything(seed, cfg.fit.deterministic)
        train_batches = SequenceBatches(train_ids, train_y, cfg.fit.batch_size, seed=seed)
        with make_strategy(cfg.fit.distribute).scope():
            model = build_model(cfg, len(vocab), len(bigram_vocab) if bigram_vocab else 0,
                                name=f"member{index}" if cfg.members > 1 else "sentiment",
                                word_matrix=word_matrix)
            model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                          loss="binary_crossentropy",
                          metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
        result = fit(model, train_batches, valid_batches, cfg.fit, monitor="val_accuracy",
                     mode="max", live_dir=live_dir,
                     resume_dir=resume_dir / f"member{index}" if resume_dir is not None else None,
                     live_prefix=f"member{index}/" if cfg.members > 1 else "",
                     keep_curves=index > 0)
        if done is not None:
            with atomic_path(done) as tmp:
                model.save(tmp)
            write_json(done.with_suffix(".json"), result.to_dict())
        members.append(model)
        results.append(result.to_dict())
    model = (members[0] if cfg.members == 1
             else average_members(members, cfg.bigrams, cfg.embeddings))
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    vocab.save(model_dir / "vocab.json")
    if bigram_vocab is not None:
        bigram_vocab.save(model_dir / "bigram_vocab.json")
    if word_vocab is not None:
        word_vocab.save(model_dir / "word_vocab.json")
        (model_dir / "lexicon").mkdir(exist_ok=True)
        for name in ("lexicon.tsv", "config.json"):
            shutil.copyfile(Path(tokenized_dir) / name, model_dir / "lexicon" / name)
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(vocab),
            "bigram_vocab_size": len(bigram_vocab) if bigram_vocab else 0,
            "params": int(model.count_params()), "train_examples": len(train_texts),
            "train_seconds": round(sum(r["train_seconds"] for r in results), 2),
            "examples_per_second": round(
                len(train_texts) * sum(r["epochs_run"] for r in results)
                / max(sum(r["train_seconds"] for r in results), 1e-9), 1),
            "epochs_run": sum(r["epochs_run"] for r in results),
            "best_epoch": results[0]["best_epoch"], "best_value": results[0]["best_value"],
            "monitor": results[0]["monitor"], "history": results[0]["history"],
            "members": results}
    write_json(model_dir / "train_info.json", info)
    return info


class SentimentClassifier:
    """A trained sentiment model with its vocabulary, for evaluation and the CLI."""

    def __init__(self, model_dir: str | Path, batch_size: int = 256):
        model_dir = Path(model_dir)
        for name in ("model.keras", "vocab.json", "train_info.json"):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(
                    f"{model_dir / name} not found: train the model first (`dvc repro train@sentiment`)"
                )
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.maxlen = self.info["config"]["maxlen"]
        self.bigram_vocab = (Vocab.load(model_dir / "bigram_vocab.json")
                             if self.info["config"].get("bigrams") else None)
        self.word_vocab = self.segment = None
        if self.info["config"].get("embeddings", "none") != "none":
            from kexue.text.tokenized import load_segmenter

            self.word_vocab = Vocab.load(model_dir / "word_vocab.json")
            self.segment = load_segmenter(model_dir / "lexicon")
        self.batch_size = batch_size

    def member_names(self) -> list[str]:
        """The ensemble's member sub-models (empty for a single model)."""
        return [layer.name for layer in self.model.layers if isinstance(layer, keras.Model)]

    def predict_proba(self, texts: list[str], member: str | None = None) -> np.ndarray:
        """P(positive) for each text, in input order; ``member`` asks one ensemble member."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        model = self.model if member is None else self.model.get_layer(member)
        words = (word_ids(self.word_vocab, self.segment, texts, self.maxlen)
                 if self.word_vocab is not None else None)
        batches = SequenceBatches(_add_words(encode(self.vocab, texts, self.maxlen, self.bigram_vocab),
                                             words), None, self.batch_size, shuffle=False)
        out = np.concatenate([model(batches[i][0], training=False).numpy()[:, 0]
                              for i in range(len(batches))])
        probs = np.empty(len(texts), dtype=np.float32)
        probs[batches.order()] = out
        return probs


def classification_metrics(y_true: np.ndarray, prob_pos: np.ndarray) -> dict:
    pred = (prob_pos >= 0.5).astype(int)
    return {
        "accuracy": round(float(accuracy_score(y_true, pred)), 4),
        "macro_f1": round(float(f1_score(y_true, pred, average="macro")), 4),
        "roc_auc": round(float(roc_auc_score(y_true, prob_pos)), 4),
        "examples": int(len(y_true)),
    }


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Metrics on valid and test, cost figures, and the test confusion rows for DVC's
    ``confusion`` plot template."""
    clf = SentimentClassifier(model_dir)
    data_dir = Path(data_dir)
    metrics: dict = {}
    members = clf.member_names()
    if members:
        metrics["members"] = {name: {} for name in members}
    rows: list[dict] = []
    seconds = 0.0
    for split in ("test", "valid"):
        texts, y = _load_split(data_dir, split)
        start = time.perf_counter()
        if members:  # each member once; the ensemble's output is their mean
            member_probs = {name: clf.predict_proba(texts, member=name) for name in members}
            prob = np.mean(list(member_probs.values()), axis=0)
            for name, p in member_probs.items():
                metrics["members"][name][split] = classification_metrics(y.astype(int), p)
        else:
            prob = clf.predict_proba(texts)
        elapsed = time.perf_counter() - start
        if split == "test":
            seconds = elapsed
            pred = (prob >= 0.5).astype(int)
            rows = [{"actual": LABELS[int(a)], "predicted": LABELS[int(p)]} for a, p in zip(y, pred, strict=True)]
            cm = confusion_matrix(y.astype(int), pred, labels=[0, 1])
            metrics_cm = {"labels": LABELS, "matrix": cm.tolist()}
        metrics[split] = classification_metrics(y.astype(int), prob)
    metrics["test"]["confusion"] = metrics_cm
    info = clf.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"],
        "params": info["params"],
        "examples_per_second": info["examples_per_second"],
        "inference_examples_per_second": round(metrics["test"]["examples"] / seconds, 1),
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
    }
    return metrics, rows


@dataclass(frozen=True)
class BaselineConfig:
    ngram_min: int = field(metadata={"min": 1})  # character n-gram range of the TF-IDF features
    ngram_max: int = field(metadata={"min": 1})
    min_df: int = field(metadata={"min": 1})
    c_grid: list[float]  # inverse regularisation strengths tried; the best on valid is kept
    seed: int


def baselines(cfg: BaselineConfig, data_dir: str | Path) -> dict:
    """The peer a practitioner would use: TF-IDF over character n-grams + logistic regression,
    with C picked on the same validation split the neural model uses."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if cfg.ngram_min > cfg.ngram_max:
        raise ValueError(f"baselines.sentiment: ngram_min={cfg.ngram_min} > ngram_max={cfg.ngram_max}")
    data_dir = Path(data_dir)
    splits = {s: _load_split(data_dir, s) for s in ("train", "valid", "test")}
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(cfg.ngram_min, cfg.ngram_max),
                                 min_df=cfg.min_df, sublinear_tf=True)
    x = {s: None for s in splits}
    x["train"] = vectorizer.fit_transform(splits["train"][0])
    for s in ("valid", "test"):
        x[s] = vectorizer.transform(splits[s][0])
    best = None
    for c in cfg.c_grid:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=cfg.seed)
        clf.fit(x["train"], splits["train"][1].astype(int))
        score = accuracy_score(splits["valid"][1].astype(int), clf.predict(x["valid"]))
        if best is None or score > best[0]:
            best = (score, c, clf)
    seconds = time.perf_counter() - start
    _, c, clf = best
    out = {s: classification_metrics(splits[s][1].astype(int), clf.predict_proba(x[s])[:, 1])
           for s in ("test", "valid")}
    out["cost"] = {"train_seconds": round(seconds, 2), "features": int(x["train"].shape[1])}
    out["chosen"] = {"C": c}
    return {"tfidf_char_lr": out}
