"""Sentence similarity by classification: GRU encoder + AM-Softmax, retrieval by cosine.

苏剑林, "基于GRU和AM-Softmax的句子相似度模型" (kexue.fm, 2018): instead of pairs or triplets,
treat each group of sentences that mean the same as one class and train a classifier whose
features are an L2-normalised sentence vector and whose logits are cosines with (normalised)
class vectors, with an additive margin m on the target's cosine and a scale s (AM-Softmax, as in
face recognition). Every training sentence is contrasted with every class at each step, so no
negative sampling is needed; at use time the class layer is dropped and sentences are compared
by the cosine of their vectors. The post: s = 30, m = 0.35; top-1 0.9172 vs 0.9077 with plain
softmax on its own paraphrase groups.

Here a class is a People's Daily article of the training months' share (stage
`prepare_articles`) and its members are its headline and body sentences: sentences of one
article should lie close together. Evaluation is retrieval on the held-out articles of a split
(valid, test), headline → lead and body sentence → article (:mod:`kexue.retrieval`). The peers
(:mod:`kexue.peers.similarity`) include this network retrained with m = 0 (softmax over s·cos θ).
kexue's own best epoch (and the ablation's) is still picked on the valid headline → lead top-1,
as the network was tuned (see ``train``).

The encoder (param ``encoder``): ``gru`` / ``bigru`` is the post's recurrent encoder over
characters (+ bigrams). It learns coarse topics from 2k training articles but cannot carry the
rare names a headline shares with its lead into its vector: names unseen in training map to
<unk>. ``mean`` averages the character (+ bigram) embeddings and projects the mean (a
fastText-like encoder: faster than the GRU and, here, better on valid). ``ngrams`` is a bag of
hashed character n-grams 1..``ngram_max`` (:class:`kexue.layers.margin.HashedNgramBag`): every
n-gram, seen or not, owns a fixed signed coordinate of a ``hash_dim``-dimensional vector,
weighted by an idf prior times a factor the AM-Softmax loss learns per n-gram, so the cosine of
two sentences is their weighted n-gram overlap (what TF-IDF and BM25 score). ``ngrams+gru`` /
``ngrams+bigru`` / ``ngrams+mean`` concatenate a fixed idf bag (the exact overlap of rare
names, which no learnt part carries) and a learnt part, scaled so that the sentence cosine is
``ngram_share``·cos(bags) + (1 − ``ngram_share``)·cos(learnt vectors); AM-Softmax trains the
learnt part, whose class vectors are then ``units`` wide rather than ``hash_dim``. Every choice
ends in one L2-normalised vector, compared by cosine. ``body_sentences`` narrows an article's
class to its headline, its lead and the next sentences: the group the retrieval asks for.
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

from kexue.batches import SequenceBatches, pad
from kexue.corpora.prepared_articles import load_articles
from kexue.io import atomic_path, read_json, require_files, write_json
from kexue.layers.margin import (
    CosineLogits,
    HashedNgramBag,
    L2Normalize,
    document_frequency_idf,
    hashed_ngrams,
)
from kexue.layers.pooling import MaskedGlobalMaxPooling1D
from kexue.losses import AMSoftmaxLoss
from kexue.retrieval import (
    ITEM_COLUMNS,
    members,
    queries_and_candidates,
    rank_rows,
    retrieval_metrics,
    split_retrieval,
)
from kexue.text.vocab import Vocab, characters
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything

QUERY_CHUNK = 512  # queries encoded at once when scoring


@dataclass(frozen=True)
class Config:
    maxlen: int = field(metadata={"min": 1})  # characters read per sentence (head)
    min_chars: int = field(metadata={"min": 1})  # shorter body sentences are not training members
    body_sentences: int = field(metadata={"min": 0})  # members: headline + lead + the next k-1; 0 = all
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    bigrams: bool  # add a character-bigram embedding to each position's character embedding
    bigram_min_count: int = field(metadata={"min": 1})
    embedding_dim: int = field(metadata={"min": 1})
    # gru (the post) | bigru | mean (of the embeddings) | ngrams (hashed n-gram bag) |
    # ngrams+gru | ngrams+bigru | ngrams+mean (a fixed idf bag beside the learnt part)
    encoder: Literal["gru", "bigru", "mean", "ngrams", "ngrams+gru", "ngrams+bigru", "ngrams+mean"]
    units: int = field(metadata={"min": 1})  # GRU units (per direction); mean: projection size
    pooling: Literal["last", "max"]  # final state, or masked max over time
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})  # spatial dropout on the embeddings
    ngram_max: int = field(metadata={"min": 1})  # the bag holds character n-grams 1..ngram_max
    hash_dim: int = field(metadata={"min": 1})  # coordinates of the bag vector (collisions ~ 1/√dim)
    hash_slots: int = field(metadata={"min": 1})  # entries of the learnt per-n-gram weight table
    ngram_share: float = field(metadata={"min": 0.0, "max": 1.0})  # fixed bag's part of the cosine
    scale: float = field(metadata={"min": 0.0})  # AM-Softmax s
    margin: float = field(metadata={"min": 0.0, "max": 1.0})  # AM-Softmax m; 0 = softmax over s·cos
    fit: FitConfig


# --- data ---------------------------------------------------------------------------------


def char_bigrams(chars: list[str]) -> list[str]:
    """The bigram starting at each character (the last pairs with an end marker): aligned."""
    return [a + b for a, b in zip(chars, chars[1:] + ["</s>"], strict=True)]


def uses_embeddings(encoder: str) -> bool:
    """Whether the encoder reads character (+ bigram) ids through embeddings (GRU or mean)."""
    return encoder != "ngrams"


def uses_ngrams(encoder: str) -> bool:
    return encoder.startswith("ngrams")


def is_hybrid(encoder: str) -> bool:
    """A fixed idf n-gram bag beside a learnt part: AM-Softmax trains the learnt part alone."""
    return uses_ngrams(encoder) and uses_embeddings(encoder)


def encode(texts: Sequence[str], vocab: Vocab | None, bigram_vocab: Vocab | None, maxlen: int,
           ngram_max: int | None = None):
    """Model inputs in the order of the encoder's inputs: character ids (+ bigram ids) when
    ``vocab`` is given (GRU), hashed n-gram ids when ``ngram_max`` is given (bag). One input is
    a list of id arrays, several are a tuple of lists."""
    chars = [characters(t) for t in texts]
    inputs = []
    if vocab is not None:
        inputs.append([vocab.encode(c, maxlen) for c in chars])
        if bigram_vocab is not None:
            inputs.append([bigram_vocab.encode(char_bigrams(c), maxlen) for c in chars])
    if ngram_max is not None:
        inputs.append([hashed_ngrams(t, ngram_max, maxlen) for t in texts])
    if not inputs:
        raise ValueError("encode: give a vocabulary (GRU inputs) or ngram_max (n-gram bag inputs)")
    return inputs[0] if len(inputs) == 1 else tuple(inputs)


class SentenceBatches(SequenceBatches):
    """:class:`SequenceBatches` whose inputs may differ in length within an example (a sentence
    has more distinct n-grams than characters): each input is padded to its own longest in the
    batch (aligned inputs, characters and bigrams, come out as from the parent class)."""

    def __getitem__(self, index: int):
        idx = self._batches[index]
        # + index % 2: as the parent, odd batches get one more padded step (see there)
        xs = tuple(pad([inp[i] for i in idx], max(len(inp[i]) for i in idx) + index % 2)
                   for inp in self.inputs)
        x = xs if self.multi else xs[0]
        return (x,) if self.labels is None else (x, self.labels[idx])


# --- model --------------------------------------------------------------------------------


def build_encoder(cfg: Config, vocab_size: int, bigram_vocab_size: int = 0,
                  name: str = "sentence_encoder") -> keras.Model:
    """Characters (+ bigrams) → (Bi)GRU → last state or masked max, or → masked mean →
    projection: a unit vector; and/or hashed n-grams → weighted bag → unit vector; both: the two
    concatenated, the bag's weights fixed at the idf (see the module doc)."""
    inputs, parts = [], []
    if uses_embeddings(cfg.encoder):
        ids = keras.Input(shape=(None,), dtype="int32", name="char_ids")  # (batch, seq_len)
        inputs.append(ids)
        x = keras.layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True,
                                   name="char_embedding")(ids)  # (batch, seq_len, dim)
        if cfg.bigrams:
            pair_ids = keras.Input(shape=(None,), dtype="int32", name="bigram_ids")  # (batch, seq_len)
            inputs.append(pair_ids)
            pairs = keras.layers.Embedding(bigram_vocab_size, cfg.embedding_dim, mask_zero=True,
                                           name="bigram_embedding")(pair_ids)  # (batch, seq_len, dim)
            x = keras.layers.Add(name="char_plus_bigram")([x, pairs])
        x = keras.layers.SpatialDropout1D(cfg.dropout, name="embedding_dropout")(x)
        if cfg.encoder.endswith("mean"):  # fastText-like: the average embedding, projected
            x = keras.layers.GlobalAveragePooling1D(name="mean_pool")(x)  # (batch, dim), mask-aware
            x = keras.layers.Dense(cfg.units, name="projection")(x)  # (batch, units)
        else:
            sequences = cfg.pooling == "max"
            rnn = keras.layers.GRU(cfg.units, return_sequences=sequences, name="gru")
            if cfg.encoder.endswith("bigru"):
                rnn = keras.layers.Bidirectional(rnn, name="bigru")
            x = rnn(x)  # (batch, [seq_len,] units · directions)
            if sequences:
                x = MaskedGlobalMaxPooling1D(name="max_pool")(x)  # (batch, units · directions)
        parts.append(x)
    if uses_ngrams(cfg.encoder):
        ngram_ids = keras.Input(shape=(None,), dtype="int32", name="ngram_ids")  # (batch, ngrams)
        inputs.append(ngram_ids)
        bag = HashedNgramBag(cfg.hash_dim, cfg.hash_slots, name="ngram_bag")
        # beside a learnt part the bag is the fixed idf-weighted overlap (the class vectors then
        # live on the learnt part only, not on hash_dim coordinates)
        bag.trainable = not uses_embeddings(cfg.encoder)
        parts.append(bag(ngram_ids))  # (batch, hash_dim)
    if len(parts) == 2:
        # unit learnt vector · √(1 − share) ⊕ unit bag vector · √share: a unit vector whose dot
        # products are (1 − share)·cos(learnt) + share·cos(bag)
        learnt = L2Normalize(name="learnt_unit")(parts[0])  # (batch, dim)
        learnt_part = keras.layers.Rescaling(float(np.sqrt(1.0 - cfg.ngram_share)),
                                             name="learnt_share")(learnt)
        bag_part = keras.layers.Rescaling(float(np.sqrt(cfg.ngram_share)), name="ngram_share")(
            L2Normalize(name="ngram_unit")(parts[1]))  # (batch, hash_dim)
        parts = [keras.layers.Concatenate(name="learnt_and_ngrams")([learnt_part, bag_part])]
    vector = L2Normalize(name="unit_vector")(parts[0])  # (batch, dim), ‖v‖ = 1
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], vector, name=name)


def component(encoder: keras.Model, part: Literal["learnt", "ngrams"]) -> keras.Model:
    """The unit vector of one part of a hybrid encoder (``ngrams+gru`` …), on that part's inputs
    only: the learnt part is what AM-Softmax trains; each alone is reported beside the whole."""
    unit = encoder.get_layer("learnt_unit" if part == "learnt" else "ngram_unit").output
    names = ("ngram_ids",) if part == "ngrams" else ("char_ids", "bigram_ids")
    inputs = [t for t in encoder.inputs if t.name in names]  # the keras.Input names, kept on load
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], unit, name=f"{encoder.name}_{part}")


def build_classifier(encoder: keras.Model, num_classes: int) -> keras.Model:
    """The training model: encoder → cosines with the class vectors (the loss adds s and m)."""
    cosines = CosineLogits(num_classes, name="class_cosines")(encoder.outputs[0])  # (batch, classes)
    return keras.Model(encoder.inputs, cosines, name=f"{encoder.name}_classifier")


def embed(encoder: keras.Model, inputs, batch_size: int = 256) -> np.ndarray:
    """Unit sentence vectors (examples, dim) in input order."""
    batches = SentenceBatches(inputs, None, batch_size, shuffle=False)
    out = np.concatenate([keras.ops.convert_to_numpy(encoder(batches[i][0], training=False))
                          for i in range(len(batches))])
    vectors = np.empty_like(out)
    vectors[batches.order()] = out
    return vectors


class ValidRetrieval(keras.callbacks.Callback):
    """Logs ``val_top1`` and ``val_mrr``: headline → lead retrieval on the validation articles
    (classes the model never trains on), so the best epoch is picked on the reported task."""

    def __init__(self, encoder: keras.Model, queries, candidates, batch_size: int):
        super().__init__()
        self.encoder, self.queries, self.candidates = encoder, queries, candidates
        self.batch_size = batch_size

    def on_epoch_end(self, epoch, logs=None):
        scores = (embed(self.encoder, self.queries, self.batch_size)
                  @ embed(self.encoder, self.candidates, self.batch_size).T)
        result = retrieval_metrics(scores)
        if logs is not None:
            logs["val_top1"], logs["val_mrr"] = result["top1"], result["mrr"]


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir: str | Path | None,
          resume_root: str | Path | None = None, family: str = "similarity") -> dict:
    """Train on the training articles (class = article), keeping the epoch with the best
    validation top-1 (then MRR) of the whole encoder; write the encoder (``model.keras``), the
    vocabularies (embedding encoders) and ``train_info.json`` into ``model_dir``. A hybrid
    encoder's bag is fixed at the idf of the training sentences, so AM-Softmax trains its learnt
    part: the classifier and the training batches see that part's inputs only."""
    data_dir, model_dir = Path(data_dir), Path(model_dir)
    resume_dir = None
    if resume_root is not None:
        key = run_key(dataclasses.asdict(cfg), [data_dir / "train.jsonl", data_dir / "valid.jsonl"])
        resume_dir = Path(resume_root) / family / key
    train_articles = load_articles(data_dir, "train")
    texts, labels = members(train_articles, cfg.min_chars, cfg.body_sentences)
    vocab = bigram_vocab = None
    if uses_embeddings(cfg.encoder):
        vocab = Vocab.build((characters(t) for t in texts), min_count=cfg.min_count)
        if cfg.bigrams:
            bigram_vocab = Vocab.build((char_bigrams(characters(t)) for t in texts),
                                       min_count=cfg.bigram_min_count)
    ngram_max = cfg.ngram_max if uses_ngrams(cfg.encoder) else None
    queries, candidates = queries_and_candidates(load_articles(data_dir, "valid"))

    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    hybrid = is_hybrid(cfg.encoder)
    train_inputs = encode(texts, vocab, bigram_vocab, cfg.maxlen, None if hybrid else ngram_max)
    train_batches = SentenceBatches(train_inputs, labels, cfg.fit.batch_size, seed=cfg.fit.seed)
    with make_strategy(cfg.fit.distribute).scope():
        encoder = build_encoder(cfg, len(vocab) if vocab else 0, len(bigram_vocab) if bigram_vocab else 0)
        if ngram_max is not None:  # the idf: document frequencies of all training sentences
            all_sentences = members(train_articles, cfg.min_chars)[0]
            ngram_ids = [hashed_ngrams(t, ngram_max, cfg.maxlen) for t in all_sentences]
            encoder.get_layer("ngram_bag").set_idf(document_frequency_idf(ngram_ids, cfg.hash_slots))
        model = build_classifier(component(encoder, "learnt") if hybrid else encoder,
                                 len(train_articles))
        model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model),
                      loss=AMSoftmaxLoss(scale=cfg.scale, margin=cfg.margin))
    scorer = ValidRetrieval(encoder, encode(queries, vocab, bigram_vocab, cfg.maxlen, ngram_max),
                            encode(candidates, vocab, bigram_vocab, cfg.maxlen, ngram_max),
                            cfg.fit.batch_size)
    result = fit(model, train_batches, None, cfg.fit, monitor="val_top1", mode="max",
                 live_dir=live_dir, resume_dir=resume_dir, scorers=[scorer])
    if resume_dir is not None:
        shutil.rmtree(resume_dir, ignore_errors=True)

    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        encoder.save(tmp)
    if vocab is not None:
        vocab.save(model_dir / "vocab.json")
    if bigram_vocab is not None:
        bigram_vocab.save(model_dir / "bigram_vocab.json")
    info = {"config": dataclasses.asdict(cfg), "classes": len(train_articles),
            "vocab_size": len(vocab) if vocab else 0, "bigram_vocab_size": len(bigram_vocab) if bigram_vocab else 0,
            "params": int(model.count_params()), "encoder_params": int(encoder.count_params()),
            "train_examples": len(texts), **result.to_dict()}
    write_json(model_dir / "train_info.json", info)
    return info


class SentenceEncoder:
    """A trained encoder with its vocabularies: ``vectors(texts)`` → unit vectors, so a dot
    product is a cosine."""

    def __init__(self, model_dir: str | Path, batch_size: int = 256):
        model_dir = require_files(model_dir, ("model.keras", "train_info.json"), "train@similarity")
        self.info = read_json(model_dir / "train_info.json")
        config = self.info["config"]
        encoder = self.encoder = config.get("encoder", "bigru")  # saved before the bag: GRU
        self.vocab = self.bigram_vocab = None
        if uses_embeddings(encoder):
            if not (model_dir / "vocab.json").is_file():
                raise FileNotFoundError(f"{model_dir / 'vocab.json'} not found: the model's "
                                        f"{encoder} encoder needs it; retrain (`dvc repro train@similarity`)")
            self.vocab = Vocab.load(model_dir / "vocab.json")
            if config["bigrams"]:
                self.bigram_vocab = Vocab.load(model_dir / "bigram_vocab.json")
        self.ngram_max = config["ngram_max"] if uses_ngrams(encoder) else None
        self.model = keras.saving.load_model(model_dir / "model.keras", safe_mode=True, compile=False)
        self.maxlen = config["maxlen"]
        self.batch_size = batch_size

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.outputs[0].shape[-1]), dtype=np.float32)
        return embed(self.model, encode(texts, self.vocab, self.bigram_vocab, self.maxlen,
                                        self.ngram_max), self.batch_size)

    def part_vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Unit vectors of each part of a hybrid encoder alone, ``{"learnt": …, "ngrams": …}``
        (see :func:`component`); the texts are encoded once for both."""
        if not is_hybrid(self.encoder):
            raise ValueError(f"part_vectors: the {self.encoder} encoder has no parts")
        inputs = encode(texts, self.vocab, self.bigram_vocab, self.maxlen, self.ngram_max)
        learnt_inputs = inputs[:-1] if len(inputs) > 2 else inputs[0]
        return {"learnt": embed(component(self.model, "learnt"), learnt_inputs, self.batch_size),
                "ngrams": embed(component(self.model, "ngrams"), inputs[-1], self.batch_size)}

    def scores(self, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
        """(queries, candidates) cosines; the queries are encoded :data:`QUERY_CHUNK` at a time
        (a bag vector is ``hash_dim`` wide: thousands of them at once would take gigabytes)."""
        c = self.vectors(list(candidates))
        return np.concatenate([np.zeros((0, len(c)))] + [
            self.vectors(list(queries[i:i + QUERY_CHUNK])) @ c.T
            for i in range(0, len(queries), QUERY_CHUNK)])

    def part_scores(self, queries: Sequence[str], candidates: Sequence[str]) -> dict[str, np.ndarray]:
        """(queries, candidates) cosines of each part alone (queries in chunks, as ``scores``)."""
        c = self.part_vectors(list(candidates))
        chunks = [self.part_vectors(list(queries[i:i + QUERY_CHUNK]))
                  for i in range(0, len(queries), QUERY_CHUNK)]
        return {part: np.concatenate([np.zeros((0, len(c[part])))]
                                     + [q[part] @ c[part].T for q in chunks]) for part in c}

    def most_similar(self, query: str, candidates: Sequence[str], k: int) -> list[tuple[int, float]]:
        """The ``k`` candidates nearest to ``query`` by cosine: (index, cosine), best first."""
        scores = self.vectors(list(candidates)) @ self.vectors([query])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Headline → lead and body sentence → article retrieval on test and valid by cosine of the
    sentence vectors; the per-query items (for the comparison) are the sentence set's."""
    model = SentenceEncoder(model_dir)
    # per query [top-1, reciprocal rank], for the bootstrap: the body-sentence set's top-1 against
    # the strongest peer, and its top-1 and MRR and the headline set's top-1 against every peer
    metrics: dict = {"items": {"metric": "sentence_top1", "kind": "mean", "every_peer": ITEM_COLUMNS}}
    seconds, sentences = 0.0, 0
    for split in ("test", "valid"):
        articles = load_articles(data_dir, split)
        if split == "test":  # the speed, and the plot's ranks, of the headline set
            queries, candidates = queries_and_candidates(articles)
            start = time.perf_counter()
            scores = model.scores(queries, candidates)  # (queries, candidates)
            seconds, sentences = time.perf_counter() - start, len(queries) + len(candidates)
            rows = rank_rows(scores)
        metrics[split], items = split_retrieval(articles, model.scores)
        metrics["items"][split] = items["sentence"]
        metrics["items"].setdefault("headline", {})[split] = items["headline"]
        if is_hybrid(model.encoder):  # each part alone, to show what the whole owes to each
            for part, (part_metrics, _) in split_retrieval(articles, model.part_scores).items():
                metrics.setdefault("parts", {}).setdefault(part, {})[split] = part_metrics
    info = model.info
    metrics["cost"] = {
        "train_seconds": info["train_seconds"], "params": info["params"],
        "encoder_params": info["encoder_params"],
        "examples_per_second": info["examples_per_second"], "epochs_run": info["epochs_run"],
        "best_epoch": info["best_epoch"],
        "inference_sentences_per_second": round(sentences / max(seconds, 1e-9), 1),
    }
    metrics["classes"] = info["classes"]
    metrics["train_examples"] = info["train_examples"]
    return metrics, rows
