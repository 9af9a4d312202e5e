"""Cloze reading: a shared bidirectional RNN, attention over document positions, attention-sum.

苏剑林, "开学啦！咱们来做完形填空" (kexue.fm/archives/4564; CMRC2017, 73.55% valid / 75.77%
test): the answer to an automatically built cloze is a word of the document, so the model only
has to point at document positions. Words (not characters) are the unit, as in the post —
People's Daily is already segmented. The query, with a blank token where the answer was, and the
document go through one shared embedding and one shared bidirectional LSTM (or GRU); the query
vector is the encoder state at the blank, i.e. the forward summary of the blank's left context
joined to the backward summary of its right context. Each document position is scored by its
dot product with the query vector (optionally through a bilinear map), a softmax runs over the
positions, and each distinct word gets the summed probability of its positions
(:class:`kexue.layers.attention.AttentionSum`); the loss is the cross-entropy of the answer's
summed probability, and the prediction is the most probable word.

The samples are People's Daily articles cut as the HIT People Daily set is (stage
`prepare_cloze`, :mod:`kexue.corpora.cloze`). ``candidates`` decides which document words may
be the answer: those with an occurrence under the answer tags (nouns and names, the peers'
candidates) or every word (as in the post). Training documents may be cut to a window around
the place the query sentence came from (``train_document_words``, for time); evaluation and the
CLI always read the whole document. Peers on the same samples (`baselines@cloze`): the most
frequent document noun, the same without the words the query shows, a random document noun
(seeded, with its expected accuracy), and context match: each candidate scored by how many of
the query words around the blank also stand around its occurrences in the document (the lexical
matching a reader without a network would try first; its window, aggregation, frequency weight,
IDF weighting and query exclusion are chosen on valid).

The reader reported is the network joined to that evidence (:mod:`kexue.families.cloze_evidence`):
its candidate probabilities times exp(weight × context-match score), the peer's setting and the
weight chosen on valid — a hybrid, as the similarity family's n-gram bag one is; the network
alone is reported beside it (``reader_alone``).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.corpora.cloze import BLANK, ClozeSample, load_meta, load_samples
from kexue.families.cloze_data import (
    MATCH_BITS,
    ClozeBatches,
    Encoded,
    build_vocab,
    encode,
    sample_items,
)
from kexue.families.cloze_evidence import EVIDENCE_FILE, Evidence, choose_weight, join, peer_setting
from kexue.infer import compiled_call
from kexue.io import atomic_path, read_json, require_files, write_json
from kexue.layers.attention import AttentionSum, BitFeatures, TokenState
from kexue.text.context_match import DocumentFrequency, training_articles
from kexue.text.vocab import Vocab
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything


@dataclass(frozen=True)
class Config:
    min_count: int = field(metadata={"min": 1})  # rarer training words map to <unk>
    max_query_words: int = field(metadata={"min": 3})  # query words kept around the blank
    train_document_words: int = field(metadata={"min": 0})  # training window around the cut; 0 = whole
    candidates: Literal["answer_tags", "all"]  # which document words may be the answer
    embedding_dim: int = field(metadata={"min": 1})
    encoder: Literal["lstm", "gru"]  # the shared bidirectional RNN
    units: int = field(metadata={"min": 1})  # per direction
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # spatial dropout on the embeddings
    score: Literal["dot", "bilinear"]  # q·h_i, or q·W·h_i
    match_features: Literal["none", "query", "context"]  # learnt score terms of word matches (see MATCH_BITS)
    context_weights: list[float]  # weights of the context-match evidence tried on valid; 0 = the reader alone
    fit: FitConfig


def check_config(cfg: Config) -> None:
    if not cfg.context_weights or min(cfg.context_weights) < 0:
        raise ValueError(f"cloze.context_weights = {cfg.context_weights}: list one or more weights "
                         ">= 0 (0 = the reader alone), e.g. [0.0, 1.0, 2.0]")


def build_model(cfg: Config, vocab_size: int, blank_id: int) -> keras.Model:
    """(query ids, document ids, candidate keys) → P(candidate word) (batch, d_len + 1)."""
    query = keras.Input(shape=(None,), dtype="int32", name="query_ids")  # (batch, q_len)
    document = keras.Input(shape=(None,), dtype="int32", name="document_ids")  # (batch, d_len)
    keys = keras.Input(shape=(None,), dtype="int32", name="candidate_keys")  # (batch, d_len)
    inputs = [query, document, keys]
    embedding = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True,
                                       name="word_embedding")
    dropout = keras.layers.SpatialDropout1D(cfg.dropout, name="embedding_dropout")
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cfg.encoder]
    encoder = keras.layers.Bidirectional(cell(cfg.units, return_sequences=True),
                                         name=f"shared_bi{cfg.encoder}")
    query_states = encoder(dropout(embedding(query)))  # (batch, q_len, 2·units)
    document_states = encoder(dropout(embedding(document)))  # (batch, d_len, 2·units)
    vector = TokenState(blank_id, name="blank_state")([query_states, query])  # (batch, 2·units)
    if cfg.score == "bilinear":
        vector = keras.layers.Dense(2 * cfg.units, use_bias=False, name="bilinear")(vector)
    scores = keras.layers.Dot(axes=(2, 1), name="position_scores")(
        [document_states, vector])  # (batch, d_len)
    bits = MATCH_BITS[cfg.match_features]
    if bits:
        masks = keras.Input(shape=(None,), dtype="int32", name="match_bits")  # (batch, d_len)
        inputs.append(masks)
        features = BitFeatures(bits, name="match_features")(masks)  # (batch, d_len, bits)
        bonus = keras.layers.Dense(1, use_bias=False, name="match_weights")(features)  # (batch, d_len, 1)
        scores = keras.layers.Add(name="scores_with_match")(
            [scores, keras.layers.Reshape((-1,))(bonus)])  # (batch, d_len)
    probs = AttentionSum(name="attention_sum")([scores, keys])  # (batch, d_len + 1)
    return keras.Model(inputs, probs, name="cloze_reader")


def predict_probs(model: keras.Model, encoded: Encoded, batch_size: int,
                  call: Callable[[tuple], np.ndarray] | None = None) -> list[np.ndarray]:
    """Per sample, P over its candidate keys (index k = key k; index 0 unused), input order.
    ``call``: ``compiled_call(model)`` made once by a caller that predicts repeatedly."""
    call = call or compiled_call(model)
    batches = ClozeBatches(encoded, batch_size, shuffle=False, with_labels=False,
                           match_bits=_model_bits(model))
    order = batches.order()  # sample indices in the order the batches yield them
    out: list[np.ndarray] = [np.zeros(0)] * len(encoded.documents)
    done = 0
    for b in range(len(batches)):
        (inputs,) = batches[b]
        probs = call(list(inputs))  # (batch, d_len + 1)
        for row, i in enumerate(order[done : done + len(probs)]):
            out[i] = probs[row, : len(encoded.words[i]) + 1]
        done += len(probs)
    return out


def _model_bits(model: keras.Model) -> int:
    """How many match bits a built model reads (0 without the match input)."""
    return model.get_layer("match_features").bits if len(model.inputs) == 4 else 0


def accuracy(probs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    hits = [int(np.argmax(p[1:]) + 1) == y for p, y in zip(probs, labels, strict=True)]
    return round(float(np.mean(hits)), 4) if hits else 0.0


class ValidAccuracy(keras.callbacks.Callback):
    """Logs ``val_accuracy`` on the validation samples with whole documents (the reported task,
    not the training windows)."""

    def __init__(self, model: keras.Model, encoded: Encoded, batch_size: int):
        super().__init__()
        self.reader, self.encoded, self.batch_size = model, encoded, batch_size
        self.call = compiled_call(model)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            probs = predict_probs(self.reader, self.encoded, self.batch_size, self.call)
            logs["val_accuracy"] = accuracy(probs, self.encoded.labels)


def _answer_tags(cfg: Config, meta: dict) -> list[str] | None:
    return list(meta["answer_tags"]) if cfg.candidates == "answer_tags" else None


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "cloze",
          peers: str | Path | None = None) -> dict:
    """Fit on the training samples, keep the epoch with the best validation accuracy; then, with
    ``peers`` (`baselines@cloze`'s output), weigh the context-match evidence on valid
    (:mod:`kexue.families.cloze_evidence`). Writes ``model.keras``, ``vocab.json``,
    ``context.json`` (with ``peers``) and ``train_info.json`` into ``model_dir``."""
    check_config(cfg)
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    setting = peer_setting(read_json(peers)) if peers is not None else None
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / f for f in
                                                ("train.jsonl", "valid.jsonl", "meta.json")])
        resume_dir = Path(resume_root) / family / key
    meta = load_meta(data_dir)
    tags = _answer_tags(cfg, meta)
    train_rows = load_samples(data_dir, "train")
    vocab = build_vocab(train_rows, cfg.min_count)
    encoded = encode(sample_items(train_rows), vocab, tags, cfg.max_query_words,
                     cfg.train_document_words)
    inside = np.flatnonzero(encoded.labels > 0)  # the answer lies in the training window
    encoded = encoded.subset(inside)
    valid = encode(sample_items(load_samples(data_dir, "valid")), vocab, tags, cfg.max_query_words)

    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    batches = ClozeBatches(encoded, cfg.fit.batch_size, seed=cfg.fit.seed,
                           match_bits=MATCH_BITS[cfg.match_features])
    with make_strategy(cfg.fit.distribute).scope():
        model = build_model(cfg, len(vocab), vocab.index[BLANK])
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    scorer = ValidAccuracy(model, valid, max(cfg.fit.batch_size // 2, 1))
    result = fit(model, batches, None, cfg.fit, monitor="val_accuracy", mode="max",
                 live_dir=live_dir, resume_dir=resume_dir, scorers=[scorer])
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)

    evidence, tried = None, {}
    if setting is not None:
        frequency = DocumentFrequency.of(training_articles(data_dir))
        valid_rows = load_samples(data_dir, "valid")
        scores = Evidence(setting, 0.0, frequency).scores(valid_rows, tags)
        probs = predict_probs(model, valid, scorer.batch_size, scorer.call)
        weight, tried = choose_weight(probs, scores, valid.labels, cfg.context_weights)
        evidence = Evidence(setting, weight, frequency)

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    vocab.save(model_dir / "vocab.json")
    (model_dir / EVIDENCE_FILE).unlink(missing_ok=True)
    if evidence is not None:
        evidence.save(model_dir / EVIDENCE_FILE)
    info = {"config": dataclasses.asdict(cfg), "answer_tags": meta["answer_tags"],
            "vocab_size": len(vocab), "params": int(model.count_params()),
            "train_samples": len(train_rows), "train_samples_used": int(len(inside)),
            "train_samples_outside_window": int(len(train_rows) - len(inside)),
            "context_evidence": ({"setting": dataclasses.asdict(evidence.setting),
                                  "weight": evidence.weight, "valid_accuracy_by_weight": tried}
                                 if evidence is not None else None),
            **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


class ClozeReader:
    """A trained reader: ``rank(query, document, tags)`` → candidate words with probabilities
    (the reader's, joined to the context-match evidence when the model folder has it)."""

    def __init__(self, model_dir: str | Path, batch_size: int = 128):
        model_dir = require_files(model_dir, ("model.keras", "vocab.json", "train_info.json"),
                                  "train@cloze")
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.config = self.info["config"]
        self.answer_tags = (self.info["answer_tags"] if self.config["candidates"] == "answer_tags"
                            else None)
        evidence = model_dir / EVIDENCE_FILE
        self.evidence = Evidence.load(evidence) if evidence.is_file() else None
        self.batch_size = batch_size
        self.call = compiled_call(self.model)

    def encode(self, items) -> Encoded:
        return encode(items, self.vocab, self.answer_tags, self.config["max_query_words"])

    def probabilities(self, encoded: Encoded) -> list[np.ndarray]:
        """The reader's own distributions (index k = key k)."""
        return predict_probs(self.model, encoded, self.batch_size, self.call)

    def joined(self, samples: Sequence[ClozeSample], probs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``probs`` of ``samples`` joined to the context-match evidence (as they are without it)."""
        if self.evidence is None:
            return list(probs)
        scores = self.evidence.scores(samples, self.answer_tags)
        return [join(p, c, self.evidence.weight) for p, c in zip(probs, scores, strict=True)]

    def rank(self, query: Sequence[str], document: Sequence[str], tags: Sequence[str],
             k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable candidate words for the blank of ``query``: (word, P)."""
        encoded = self.encode([(list(query), list(document), list(tags), None, 0)])
        if not encoded.words[0]:
            raise ValueError("the document has no candidate word (no word tagged "
                             f"{'/'.join(self.answer_tags or [])})")
        sample = ClozeSample("query", list(query), list(document), list(tags), "", "", 0)
        probs = self.joined([sample], self.probabilities(encoded))[0][1:]
        order = np.argsort(-probs, kind="stable")[:k]
        return [(encoded.words[0][i], float(probs[i])) for i in order]


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Accuracy on test and valid (whole documents) of the reader joined to its evidence, per
    answer tag too, and of the reader alone; confusion rows of the answer's tag against the
    predicted word's tag (test)."""
    reader = ClozeReader(model_dir)
    metrics: dict = {"items": {"metric": "accuracy", "kind": "mean"}}  # per sample, for the bootstrap
    reader_alone: dict = {}
    rows: list[dict] = []
    seconds, count = 0.0, 0
    for split in ("test", "valid"):
        items = load_samples(data_dir, split)
        encoded = reader.encode(sample_items(items))
        if (encoded.labels <= 0).any():
            raise ValueError(f"{split}: {(encoded.labels <= 0).sum()} answers are not candidates "
                             "of their documents: the model's answer tags differ from "
                             "prepare_cloze's; retrain")
        start = time.perf_counter()
        alone = reader.probabilities(encoded)
        probs = reader.joined(items, alone)
        if split == "test":
            seconds, count = time.perf_counter() - start, len(items)
        predicted = [int(np.argmax(p[1:]) + 1) for p in probs]
        hits = np.asarray(predicted) == encoded.labels
        metrics["items"][split] = hits.astype(int).tolist()
        reader_alone[split] = {"accuracy": accuracy(alone, encoded.labels), "samples": len(items)}
        per_tag = {}
        for tag in sorted({s.answer_tag for s in items}):
            mask = np.asarray([s.answer_tag == tag for s in items])
            per_tag[tag] = {"accuracy": round(float(hits[mask].mean()), 4), "samples": int(mask.sum())}
        metrics[split] = {"accuracy": round(float(hits.mean()), 4), "samples": len(items),
                          "mean_candidates": round(float(np.mean([len(w) for w in encoded.words])), 1),
                          "per_answer_tag": per_tag}
        if split == "test":
            for sample, key, words in zip(items, predicted, encoded.words, strict=True):
                word = words[key - 1]
                seen = [t for w, t in zip(sample.document, sample.document_tags, strict=True)
                        if w == word]  # its tags in the document; a candidate tag first
                tag = next((t for t in seen if t in (reader.answer_tags or seen)), seen[0])
                rows.append({"actual": sample.answer_tag, "predicted": tag})
    info = reader.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"], "params": info["params"],
        "examples_per_second": info["examples_per_second"], "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "inference_samples_per_second": round(count / max(seconds, 1e-9), 1),
    }
    metrics["reader_alone"] = reader_alone  # the network without the context-match evidence
    metrics["context_evidence"] = info.get("context_evidence")
    metrics["train_samples"] = {"total": info["train_samples"], "used": info["train_samples_used"],
                                "answer_outside_window": info["train_samples_outside_window"]}
    return metrics, rows
