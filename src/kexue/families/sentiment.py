"""Sentiment of product/book reviews: character embedding → BiLSTM/BiGRU → sigmoid.

The recipe of the 科学空间 posts "文本情感分类（一/二/三）": characters rather than words (no
segmenter needed and no out-of-vocabulary words), a bidirectional recurrent encoder with masking
so padding never reaches the state, and a single sigmoid output.

``embeddings: word2vec | glove`` (the downstream check of the word vectors; default ``none`` leaves the model
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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from sklearn.metrics import confusion_matrix

from kexue import losses  # registers kexue's losses, so a model compiled with one loads
from kexue.batches import SequenceBatches
from kexue.checkpoint import CheckpointFolder, load_member, save_member
from kexue.corpora.reviews import LABELS, load_rows, load_split, sample_weights
from kexue.families.sentiment_classifier import SentimentClassifier
from kexue.families.sentiment_inputs import (
    add_words,
    bigrams,
    concat_inputs,
    encode,
    input_specs,
    word_channel,
    word_ids,
)
from kexue.io import atomic_path, read_jsonl, write_json
from kexue.layers.pooling import MaskedGlobalMaxPooling1D
from kexue.metrics import classification_metrics, correct_items
from kexue.nonfinite import StopOnNonFiniteLoss
from kexue.text.vocab import Vocab
from kexue.text.vocab import characters as tokens
from kexue.train import (
    FitConfig,
    build_optimizer,
    fit,
    make_strategy,
    run_key,
    seed_everything,
    write_fit_curves,
)


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
    # the training loss (kexue.losses): ce | truncated (hard-truncated CE, margin) | soft_truncated
    # (its sigmoid-softened form, margin and scale) | focal (gamma, alpha)
    loss: Literal["ce", "truncated", "soft_truncated", "focal"] = "ce"
    margin: float = field(default=0.6, metadata={"min": 0.5, "max": 1.0})
    scale: float = field(default=10.0, metadata={"min": 0.0})
    gamma: float = field(default=2.0, metadata={"min": 0.0})
    alpha: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # none | density_ratio: weight each training review by p_test(x) / p_train(x), the `split`
    # stage's discriminator odds (covariate-shift correction; needs data from that stage)
    sample_weights: Literal["none", "density_ratio"] = "none"
    # after the best epoch is picked on valid, retrain each member (same seed) on train + valid for
    # that many epochs: an adversarial validation set holds the most test-like reviews, which the
    # final model should learn from; valid metrics then come from the selection run
    refit: bool = False
    # train on the augment stage's variants as well (data/augmented/reviews/train.jsonl)
    augment: bool = False


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
    inputs = input_specs(bigrams, embeddings)
    inputs = inputs if len(inputs) > 1 else inputs[0]
    probs = [member(inputs) for member in members]  # each (batch, 1)
    prob = keras.layers.Average(name="prob_pos")(probs)  # (batch, 1)
    return keras.Model(inputs, prob, name="sentiment_ensemble")


def make_loss(cfg: Config) -> keras.losses.Loss:
    """The Keras loss named by ``cfg.loss`` (the model outputs probabilities)."""
    if cfg.loss == "ce":
        return keras.losses.BinaryCrossentropy()
    if cfg.loss == "truncated":
        return losses.HardTruncatedCrossEntropy(margin=cfg.margin)
    if cfg.loss == "soft_truncated":
        return losses.SoftTruncatedCrossEntropy(margin=cfg.margin, scale=cfg.scale)
    return losses.BinaryFocalLoss(gamma=cfg.gamma, alpha=cfg.alpha)


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, vectors_root: str | Path | None = None,
          tokenized_dir: str | Path | None = None, augmented_dir: str | Path | None = None) -> dict:
    """Train on ``data_dir/train.jsonl`` with best-on-valid selection; write the model, its vocab
    and ``train_info.json`` into ``model_dir`` (each file atomically). ``vectors_root`` (holding
    ``<embeddings>/``) and ``tokenized_dir`` are read when ``cfg.embeddings`` is not none,
    ``augmented_dir/train.jsonl`` when ``cfg.augment`` is true.

    With ``resume_root`` an interrupted run resumes from its last finished epoch (the backup is
    keyed by the params and the data, so any change starts afresh)."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    resume_dir = None
    augmented = Path(augmented_dir or "<augmented_dir not given>") / "train.jsonl"
    if cfg.augment and not augmented.is_file():
        raise FileNotFoundError(f"sentiment.augment is true but {augmented} is missing: run the "
                                "augment stage (`dvc repro augment`) and pass its directory "
                                "(stage train: --inputs augmented_dir=...), or set augment: false")
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / "train.jsonl", data_dir / "valid.jsonl"]
                      + ([augmented] if cfg.augment else []))
        resume_dir = Path(resume_root) / "sentiment" / key
    train_texts, train_y, train_rows = load_rows(data_dir, "train")
    weights = sample_weights(train_rows, cfg.sample_weights, data_dir / "train.jsonl")
    if cfg.augment:  # the variants join the training set (never valid: selection stays clean)
        extra = read_jsonl(augmented)
        train_texts = train_texts + [r["text"] for r in extra]
        train_y = np.concatenate([train_y, np.array([r["label"] for r in extra], np.float32)])
        if weights is not None:
            weights = np.concatenate([weights, sample_weights(extra, cfg.sample_weights, augmented)])
    valid_texts, valid_y = load_split(data_dir, "valid")
    vocab = Vocab.build((tokens(t) for t in train_texts), min_count=cfg.min_count)
    bigram_vocab = (Vocab.build((bigrams(tokens(t)) for t in train_texts),
                                min_count=cfg.bigram_min_count) if cfg.bigrams else None)

    word_vocab = segment = word_matrix = None
    if cfg.embeddings != "none":
        word_vocab, segment, word_matrix = word_channel(cfg.embeddings, vectors_root, tokenized_dir)

    def inputs(texts):
        words = word_ids(word_vocab, segment, texts, cfg.maxlen) if word_vocab else None
        return add_words(encode(vocab, texts, cfg.maxlen, bigram_vocab), words)

    train_ids = inputs(train_texts)
    refit_ids = refit_y = refit_weights = None
    if cfg.refit:  # train + valid, for the refit after selection
        valid_rows = load_rows(data_dir, "valid")[2]
        refit_ids = concat_inputs(train_ids, inputs(valid_texts))
        refit_y = np.concatenate([train_y, valid_y])
        valid_weights = sample_weights(valid_rows, cfg.sample_weights, data_dir / "valid.jsonl")
        refit_weights = None if weights is None else np.concatenate([weights, valid_weights])
    valid_batches = SequenceBatches(inputs(valid_texts), valid_y, cfg.fit.batch_size, shuffle=False)
    members, results = [], []
    for index in range(cfg.members):
        done = resume_dir / f"member{index}.keras" if resume_dir is not None else None
        prefix = f"member{index}/" if cfg.members > 1 else ""
        finished = load_member(done, safe_mode=True) if done is not None else None
        if finished is not None:  # finished before an interruption
            members.append(finished[0])
            results.append(finished[1])
            if live_dir is not None:
                write_fit_curves(live_dir, cfg.fit, finished[1]["history"], prefix, index > 0)
            continue
        seed = cfg.fit.seed + index
        seed_everything(seed, cfg.fit.deterministic)
        train_batches = SequenceBatches(train_ids, train_y, cfg.fit.batch_size, seed=seed,
                                        weights=weights)
        with make_strategy(cfg.fit.distribute).scope():
            model = build_model(cfg, len(vocab), len(bigram_vocab) if bigram_vocab else 0,
                                name=f"member{index}" if cfg.members > 1 else "sentiment",
                                word_matrix=word_matrix)
            model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                          loss=make_loss(cfg),
                          metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
        result = fit(model, train_batches, valid_batches, cfg.fit, monitor="val_accuracy",
                     mode="max", live_dir=live_dir,
                     resume_dir=resume_dir / f"member{index}" if resume_dir is not None else None,
                     live_prefix=prefix, keep_curves=index > 0, keep_checkpoint=True)
        result = result.to_dict()
        if cfg.refit:
            result["selection_valid_prob"] = [round(float(v), 6) for v in
                                              _predict(model, valid_batches)]
            model, result["refit_seconds"] = _refit(cfg, index, seed, model.name, refit_ids,
                                                    refit_y, refit_weights, result["best_epoch"],
                                                    len(vocab), len(bigram_vocab) if bigram_vocab else 0,
                                                    word_matrix)
        if done is not None:
            save_member(done, model, result)
        members.append(model)
        results.append(result)
    model = (members[0] if cfg.members == 1
             else average_members(members, cfg.bigrams, cfg.embeddings))

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
            "train_seconds": round(sum(r["train_seconds"] + r.get("refit_seconds", 0.0)
                                       for r in results), 2),
            "examples_per_second": round(
                len(train_texts) * sum(r["epochs_run"] for r in results)
                / max(sum(r["train_seconds"] for r in results), 1e-9), 1),
            "epochs_run": sum(r["epochs_run"] for r in results),
            "best_epoch": results[0]["best_epoch"], "best_value": results[0]["best_value"],
            "monitor": results[0]["monitor"], "history": results[0]["history"],
            "members": results}
    write_json(model_dir / "train_info.json", info)
    if resume_dir is not None:  # only now: a kill before this point resumes from the members
        CheckpointFolder(resume_dir).discard()
    return info


def _predict(model: keras.Model, batches: SequenceBatches) -> np.ndarray:
    """P(positive) per example of unshuffled ``batches``, in example order."""
    out = np.concatenate([model(batches[i][0], training=False).numpy()[:, 0]
                          for i in range(len(batches))])
    probs = np.empty(len(out), dtype=np.float32)
    probs[batches.order()] = out
    return probs


def _refit(cfg: Config, index: int, seed: int, name: str, ids, y, weights, epochs: int,
           vocab_size: int, bigram_vocab_size: int, word_matrix) -> tuple[keras.Model, float]:
    """A fresh member (same seed, same recipe) trained on train + valid for ``epochs`` epochs."""
    from kexue.callbacks import EpochSync

    seed_everything(seed, cfg.fit.deterministic)
    batches = SequenceBatches(ids, y, cfg.fit.batch_size, seed=seed, weights=weights)
    with make_strategy(cfg.fit.distribute).scope():
        model = build_model(cfg, vocab_size, bigram_vocab_size, name=name, word_matrix=word_matrix)
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=make_loss(cfg))
    start = time.perf_counter()
    model.fit(batches, epochs=epochs, callbacks=[StopOnNonFiniteLoss("sentiment"), EpochSync(batches)], shuffle=False,
              verbose=1 if sys.stderr.isatty() else 2)
    seconds = round(time.perf_counter() - start, 2)
    print(f"sentiment: member{index} refit on train + valid for {epochs} epoch(s) in {seconds:.0f}s",
          file=sys.stderr)
    return model, seconds


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Metrics on valid and test, cost figures, and the test confusion rows for DVC's
    ``confusion`` plot template; ``items`` holds, per split, 1/0 for each review right or wrong
    (the same reviews in the same order as the peers' items)."""
    clf = SentimentClassifier(model_dir)
    data_dir = Path(data_dir)
    # right (1) or wrong (0) per review, for the paired bootstrap against the peers
    # and against every peer (the target names the weighted TF-IDF peer and fastText, not only the
    # one strongest on valid): kexue.every_peer
    metrics: dict = {"items": {"metric": "accuracy", "kind": "mean", "higher_is_better": True,
                               "every_peer": {"accuracy": [0]}}}
    members = clf.member_names()
    if members:
        metrics["members"] = {name: {} for name in members}
    rows: list[dict] = []
    refit = bool(clf.info["config"].get("refit"))
    names = members or ["sentiment"]
    for split in ("test", "valid"):
        texts, y = load_split(data_dir, split)
        if split == "valid" and refit:  # the final model trained on valid: use the selection run's
            columns = np.stack([np.asarray(r["selection_valid_prob"], np.float32)
                                for r in clf.info["members"]], axis=1)
        else:  # every member in one pass; the ensemble's output is their mean
            columns = clf.member_probs(texts)
        prob = columns.mean(axis=1)
        if members:
            for name, p in zip(names, columns.T, strict=True):
                metrics["members"][name][split] = classification_metrics(y.astype(int), p)
        if split == "test":
            speed = clf.throughput(texts)
            pred = (prob >= 0.5).astype(int)
            rows = [{"actual": LABELS[int(a)], "predicted": LABELS[int(p)]} for a, p in zip(y, pred, strict=True)]
            cm = confusion_matrix(y.astype(int), pred, labels=[0, 1])
            metrics_cm = {"labels": LABELS, "matrix": cm.tolist()}
        metrics[split] = classification_metrics(y.astype(int), prob)
        metrics["items"][split] = correct_items(y.astype(int), prob, metrics[split]["accuracy"])
    metrics["test"]["confusion"] = metrics_cm
    if refit:
        metrics["valid"]["source"] = ("selection run: the members before their refit on train + valid "
                                      "(the final model has seen valid)")
    info = clf.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"],
        "params": info["params"],
        "examples_per_second": info["examples_per_second"],
        # a second pass over the test reviews, timed alone: segmentation and encoding included,
        # every member, the graph already traced (as the taggers' and the peers' speeds)
        "inference_examples_per_second": speed["examples_per_second"],
        "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
    }
    return metrics, rows
