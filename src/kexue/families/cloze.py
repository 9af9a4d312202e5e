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

from kexue.batches import SequenceBatches, pad
from kexue.corpora.cloze import BLANK, ClozeSample, candidate_keys, load_meta, load_samples
from kexue.infer import compiled_call
from kexue.io import atomic_path, read_json, require_files, write_json
from kexue.layers.attention import AttentionSum, BitFeatures, TokenState
from kexue.text.vocab import PAD, UNK, Vocab
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
    fit: FitConfig


# --- data ---------------------------------------------------------------------------------


def query_window(query: Sequence[str], size: int) -> list[str]:
    """At most ``size`` words of ``query`` around its blank (the blank as central as fits)."""
    if len(query) <= size:
        return list(query)
    blank = list(query).index(BLANK)
    start = max(0, min(blank - size // 2, len(query) - size))
    return list(query[start : start + size])


def document_window(length: int, offset: int, size: int) -> tuple[int, int]:
    """[start, end) of ``size`` positions centred on ``offset`` inside ``[0, length)``."""
    if size <= 0 or length <= size:
        return 0, length
    start = max(0, min(offset - size // 2, length - size))
    return start, start + size


MATCH_BITS = {"none": 0, "query": 1, "context": 5}  # match feature bits per match_features


def match_masks(query: Sequence[str], document: Sequence[str]) -> np.ndarray:
    """Per document position an integer whose bits say: 0 its word occurs in the query (an
    answer never does); 1 / 2 the word before / after it equals the word before / after the
    blank; 3 / 4 the same for the two words before / after. (batch-free, int32 (d_len,))"""
    query = list(query)
    b = query.index(BLANK)
    shown = set(query)
    left1 = query[b - 1 : b] if b >= 1 else None
    right1 = query[b + 1 : b + 2] if b + 1 < len(query) else None
    left2 = query[b - 2 : b] if b >= 2 else None
    right2 = query[b + 1 : b + 3] if b + 2 < len(query) else None
    out = np.zeros(len(document), dtype=np.int32)
    for i, word in enumerate(document):
        bits = int(word in shown)
        bits |= 2 * int(left1 is not None and i >= 1 and document[i - 1 : i] == left1)
        bits |= 4 * int(right1 is not None and document[i + 1 : i + 2] == right1)
        bits |= 8 * int(left2 is not None and i >= 2 and document[i - 2 : i] == left2)
        bits |= 16 * int(right2 is not None and document[i + 1 : i + 3] == right2)
        out[i] = bits
    return out


@dataclass
class Encoded:
    """Model inputs of a list of samples: query ids, document ids, candidate keys, each
    document position's match bits (:func:`match_masks`), the answer's key (label; -1 when the
    answer is not a candidate of the kept window) and the key → word lists (``words[i][k - 1]``
    is the word of key k in sample i)."""

    queries: list[np.ndarray]
    documents: list[np.ndarray]
    keys: list[np.ndarray]
    match: list[np.ndarray]
    labels: np.ndarray
    words: list[list[str]]

    def subset(self, keep: np.ndarray) -> Encoded:
        return Encoded([self.queries[i] for i in keep], [self.documents[i] for i in keep],
                       [self.keys[i] for i in keep], [self.match[i] for i in keep],
                       self.labels[keep], [self.words[i] for i in keep])


def encode(items: Sequence[tuple[list[str], list[str], list[str], str | None, int]], vocab: Vocab,
           answer_tags: Sequence[str] | None, max_query_words: int,
           document_words: int = 0) -> Encoded:
    """``items``: (query words with one :data:`BLANK`, document words, document tags, answer or
    None, offset of the cut). ``answer_tags`` None makes every document word a candidate."""
    queries, documents, keys, match, labels, words = [], [], [], [], [], []
    for query, document, tags, answer, offset in items:
        if list(query).count(BLANK) != 1:
            raise ValueError(f"a query needs exactly one blank ({BLANK}), got "
                             f"{list(query).count(BLANK)} in {' '.join(query)[:60]!r}")
        start, end = document_window(len(document), offset, document_words)
        document, tags = document[start:end], tags[start:end]
        if not document:
            raise ValueError("a cloze needs a non-empty document")
        key = candidate_keys(document, tags, answer_tags)
        lookup = {}
        for word, k in zip(document, key, strict=True):
            if k:
                lookup.setdefault(k, word)
        query = query_window(query, max_query_words)
        queries.append(vocab.encode(query))
        match.append(match_masks(query, document))
        documents.append(vocab.encode(document))
        keys.append(np.asarray(key, dtype=np.int32))
        by_word = {w: k for k, w in lookup.items()}
        labels.append(by_word.get(answer, -1) if answer is not None else -1)
        words.append([lookup[k] for k in range(1, len(lookup) + 1)])
    return Encoded(queries, documents, keys, match, np.asarray(labels, dtype=np.int32), words)


def sample_items(rows: Sequence[ClozeSample]):
    return [(s.query, s.document, s.document_tags, s.answer, s.offset) for s in rows]


def build_vocab(rows: Sequence[ClozeSample], min_count: int) -> Vocab:
    """Words of the training documents and queries, counted over the samples (an article's
    words once per query drawn from it); <blank> reserved after <pad> and <unk>."""
    counted = Vocab.build(([w for w in s.query if w != BLANK] + s.document for s in rows),
                          min_count=min_count)
    return Vocab([PAD, UNK, BLANK, *counted.tokens[2:]])


class ClozeBatches(SequenceBatches):
    """Length-bucketed batches ``((query ids, document ids, keys[, match bits]), answer
    keys)``, bucketed by document length (queries are padded per batch to their own longest)."""

    def __init__(self, encoded: Encoded, batch_size: int, seed: int = 0, shuffle: bool = True,
                 with_labels: bool = True, match_bits: int = 0):
        aligned = (encoded.documents, encoded.keys, *([encoded.match] if match_bits else []))
        super().__init__(aligned, encoded.labels if with_labels else None, batch_size, seed, shuffle)
        self.queries = encoded.queries

    def __getitem__(self, index: int):
        batch = super().__getitem__(index)
        idx = self._batches[index]
        # one extra padded step on odd batches, as the documents get (see SequenceBatches)
        queries = pad([self.queries[i] for i in idx],
                      max(len(self.queries[i]) for i in idx) + index % 2)  # (batch, q_len)
        aligned = list(batch[0])  # documents, keys[, match bits]: (batch, d_len) each
        return ((queries, *aligned), *batch[1:])


# --- model --------------------------------------------------------------------------------


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
          resume_root: str | Path | None = None, family: str = "cloze") -> dict:
    """Fit on the training samples, keep the epoch with the best validation accuracy; write
    ``model.keras``, ``vocab.json`` and ``train_info.json`` into ``model_dir``."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
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

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    vocab.save(model_dir / "vocab.json")
    info = {"config": dataclasses.asdict(cfg), "answer_tags": meta["answer_tags"],
            "vocab_size": len(vocab), "params": int(model.count_params()),
            "train_samples": len(train_rows), "train_samples_used": int(len(inside)),
            "train_samples_outside_window": int(len(train_rows) - len(inside)),
            **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


class ClozeReader:
    """A trained reader: ``rank(query, document, tags)`` → candidate words with probabilities."""

    def __init__(self, model_dir: str | Path, batch_size: int = 128):
        model_dir = require_files(model_dir, ("model.keras", "vocab.json", "train_info.json"),
                                  "train@cloze")
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
        self.vocab = Vocab.load(model_dir / "vocab.json")
        self.info = read_json(model_dir / "train_info.json")
        self.config = self.info["config"]
        self.answer_tags = (self.info["answer_tags"] if self.config["candidates"] == "answer_tags"
                            else None)
        self.batch_size = batch_size
        self.call = compiled_call(self.model)

    def encode(self, items) -> Encoded:
        return encode(items, self.vocab, self.answer_tags, self.config["max_query_words"])

    def probabilities(self, encoded: Encoded) -> list[np.ndarray]:
        return predict_probs(self.model, encoded, self.batch_size, self.call)

    def rank(self, query: Sequence[str], document: Sequence[str], tags: Sequence[str],
             k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable candidate words for the blank of ``query``: (word, P)."""
        encoded = self.encode([(list(query), list(document), list(tags), None, 0)])
        if not encoded.words[0]:
            raise ValueError("the document has no candidate word (no word tagged "
                             f"{'/'.join(self.answer_tags or [])})")
        probs = self.probabilities(encoded)[0][1:]
        order = np.argsort(-probs, kind="stable")[:k]
        return [(encoded.words[0][i], float(probs[i])) for i in order]


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Accuracy on test and valid (whole documents), per answer tag too; confusion rows of the
    answer's tag against the predicted word's tag (test)."""
    reader = ClozeReader(model_dir)
    metrics: dict = {"items": {"metric": "accuracy", "kind": "mean"}}  # per sample, for the bootstrap
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
        probs = reader.probabilities(encoded)
        if split == "test":
            seconds, count = time.perf_counter() - start, len(items)
        predicted = [int(np.argmax(p[1:]) + 1) for p in probs]
        hits = np.asarray(predicted) == encoded.labels
        metrics["items"][split] = hits.astype(int).tolist()
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
    metrics["train_samples"] = {"total": info["train_samples"], "used": info["train_samples_used"],
                                "answer_outside_window": info["train_samples_outside_window"]}
    return metrics, rows
