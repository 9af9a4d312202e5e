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
(valid, test), each article standing as its lead sentence (first body sentence), with two query
sets (top-1/5/10, MRR for each):

* headline → lead (``top1`` …): the query is an article's headline, the gold candidate its own
  lead. One query per article, ~265 per split: too few to separate systems that differ by a
  point or two (one query is 0.38 points).
* body sentence → article (``sentence_top1`` …, :func:`sentence_queries`): every distinct body
  sentence of at least :data:`SENTENCE_MIN_CHARS` characters is a query, its own article the
  gold, the candidates the same leads. The query sentence is taken out of its own article's
  representation, so the task is never an exact-match lookup: when the query *is* the lead,
  its article stands as its next sentence for that query (the article's lead once the query is
  removed; an article with nothing left gives no query), and a sentence found in more than one
  article of the split (a byline, a stock phrase) is no query — it names none of them. ~3.6k
  queries per split.

The per-query top-1 of the sentence set drives the ``comparison`` block (kexue against the
peer strongest on valid, paired bootstrap): more than ten times the queries of the headline
set narrow the 95% interval three- to five-fold. The headline → lead figures are still reported
beside it. Peers score the same queries and candidates (`baselines@similarity`): TF-IDF over character
n-grams (cosine), BM25 (``bm25s``, :mod:`kexue.peers.bm25`) over characters and/or bigrams, and
this network retrained with m = 0 (softmax over s·cos θ) in that stage. Their settings are
chosen on valid by the sentence set (top-1, then MRR); test is scored once, for the choice.
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
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kexue.batches import SequenceBatches, pad
from kexue.config import require_network
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
from kexue.text.vocab import Vocab, characters
from kexue.train import FitConfig, build_optimizer, fit, make_strategy, run_key, seed_everything

TOP_K = (1, 5, 10)
SENTENCE_MIN_CHARS = 6  # shorter body sentences are no queries (fixed: not a training choice)
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


def members(articles: Sequence[dict], min_chars: int, body_sentences: int = 0
            ) -> tuple[list[str], np.ndarray]:
    """(sentences, class ids): each article's headline and its body sentences of at least
    ``min_chars`` characters, labelled with the article's index. ``body_sentences`` = k > 0
    keeps the lead (whatever its length) and the next k − 1 of those body sentences only: the
    group the retrieval asks for, a headline and the sentences that open its article."""
    texts, labels = [], []
    for label, article in enumerate(articles):
        body = [s for s in article["sentences"] if len(s) >= min_chars]
        if body_sentences:
            lead = article["lead"]
            body = [lead, *[s for s in body if s != lead][: body_sentences - 1]]
        group = [article["headline"], *body]
        texts.extend(group)
        labels.extend([label] * len(group))
    return texts, np.asarray(labels, dtype=np.int32)


def queries_and_candidates(articles: Sequence[dict]) -> tuple[list[str], list[str]]:
    """Headlines (queries) and lead sentences (candidates); query i's answer is candidate i."""
    return [a["headline"] for a in articles], [a["lead"] for a in articles]


@dataclass(frozen=True)
class SentenceQueries:
    """Body sentence → article retrieval on one split (see the module doc). ``candidates`` are
    every article's lead, then the stand-ins (an article's next sentence, for the query that is
    its lead); ``columns[i, j]`` is the candidate that stands for article j in query i's
    ranking, ``gold[i]`` the query's own article."""

    queries: list[str]
    gold: np.ndarray  # (queries,) article index
    candidates: list[str]
    columns: np.ndarray  # (queries, articles) candidate index

    def gather(self, scores: np.ndarray) -> np.ndarray:
        """(queries, articles) scores out of (queries, candidates) scores."""
        return np.take_along_axis(np.asarray(scores), self.columns, axis=1)


def sentence_queries(articles: Sequence[dict], min_chars: int = SENTENCE_MIN_CHARS) -> SentenceQueries:
    """Each distinct body sentence of at least ``min_chars`` characters that occurs in no other
    article of ``articles``, as a query whose answer is its own article. An article stands as its
    lead; for the query that is the lead, as its first sentence other than the query (an article
    with none gives no such query)."""
    found_in = Counter(s for a in articles for s in {*a["sentences"], a["lead"]})
    candidates = [a["lead"] for a in articles]
    queries, gold, stand_ins = [], [], {}  # stand_ins: query index → candidate index
    for index, article in enumerate(articles):
        for sentence in dict.fromkeys(article["sentences"]):
            if len(sentence) < min_chars or found_in[sentence] > 1:
                continue
            if sentence == article["lead"]:
                rest = [s for s in article["sentences"] if s != sentence]
                if not rest:
                    continue
                stand_ins[len(queries)] = len(candidates)
                candidates.append(rest[0])
            queries.append(sentence)
            gold.append(index)
    columns = np.tile(np.arange(len(articles)), (len(queries), 1))
    for query, candidate in stand_ins.items():
        columns[query, gold[query]] = candidate
    return SentenceQueries(queries, np.asarray(gold, dtype=np.int64), candidates, columns)


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


# --- metrics ------------------------------------------------------------------------------


def gold_ranks(scores: np.ndarray, gold: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of query i's gold candidate (column ``gold[i]``; by default column i) in
    ``scores`` (queries, candidates). Ties count against the query (a candidate scoring the same
    as the gold one ranks above it), so a method that scores everything equal gets no credit for
    the order of the list."""
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(scores))
    gold_score = scores[rows, rows if gold is None else np.asarray(gold)][:, None]
    return 1 + (scores > gold_score).sum(axis=1) + (scores == gold_score).sum(axis=1) - 1


def retrieval_metrics(scores: np.ndarray, gold: np.ndarray | None = None) -> dict:
    """top-k accuracy (gold within the first k) and mean reciprocal rank of the gold."""
    ranks = gold_ranks(scores, gold)
    out = {f"top{k}": round(float((ranks <= k).mean()), 4) for k in TOP_K}
    out["mrr"] = round(float((1.0 / ranks).mean()), 4)
    out["queries"] = int(len(ranks))
    out["candidates"] = int(scores.shape[1])
    return out


def top1_items(scores: np.ndarray, gold: np.ndarray | None = None) -> list[int]:
    """1 where a query's gold candidate ranks first, else 0: the per-query statistics of the
    paired bootstrap (their mean is ``top1``)."""
    return (gold_ranks(scores, gold) <= 1).astype(int).tolist()


def split_retrieval(articles: Sequence[dict], score) -> tuple[dict, list[int]] | dict:
    """Both query sets of one split scored by ``score(queries, candidates)`` → (queries,
    candidates) scores: the headline → lead metrics, the body sentence → article ones (keys
    ``sentence_…``), and the sentence set's per-query top-1 (the comparison's items). A ``score``
    that returns several named score matrices gets a dict of such pairs."""
    queries, candidates = queries_and_candidates(articles)
    by_sentence = sentence_queries(articles)
    headline = score(queries, candidates)
    sentence = score(by_sentence.queries, by_sentence.candidates)

    def one(headline_scores: np.ndarray, sentence_scores: np.ndarray) -> tuple[dict, list[int]]:
        metrics = retrieval_metrics(headline_scores)
        per_article = by_sentence.gather(sentence_scores)  # (queries, articles)
        metrics.update({f"sentence_{k}": v
                        for k, v in retrieval_metrics(per_article, by_sentence.gold).items()})
        return metrics, top1_items(per_article, by_sentence.gold)

    if isinstance(headline, dict):
        return {name: one(headline[name], sentence[name]) for name in headline}
    return one(headline, sentence)


def _selection_key(metrics: dict) -> tuple[float, float]:
    """What valid ranks peer settings by: the sentence set (the comparison's), top-1 then MRR."""
    return metrics["sentence_top1"], metrics["sentence_mrr"]


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


def _rank_rows(scores: np.ndarray) -> list[dict]:
    """Per test query, where its own lead ranked (for the stage's plot file)."""
    buckets = []
    for rank in gold_ranks(scores):
        bucket = ("1" if rank == 1 else "2-5" if rank <= 5 else "6-10" if rank <= 10 else ">10")
        buckets.append({"actual": "own lead", "predicted": f"rank {bucket}"})
    return buckets


def evaluate(model_dir: str | Path, data_dir: str | Path) -> tuple[dict, list[dict]]:
    """Headline → lead and body sentence → article retrieval on test and valid by cosine of the
    sentence vectors; the per-query items (for the comparison) are the sentence set's."""
    model = SentenceEncoder(model_dir)
    metrics: dict = {"items": {"metric": "sentence_top1", "kind": "mean"}}  # per query, for the bootstrap
    seconds, sentences = 0.0, 0
    for split in ("test", "valid"):
        articles = load_articles(data_dir, split)
        if split == "test":  # the speed, and the plot's ranks, of the headline set
            queries, candidates = queries_and_candidates(articles)
            start = time.perf_counter()
            scores = model.scores(queries, candidates)  # (queries, candidates)
            seconds, sentences = time.perf_counter() - start, len(queries) + len(candidates)
            rows = _rank_rows(scores)
        metrics[split], metrics["items"][split] = split_retrieval(articles, model.scores)
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


# --- peers --------------------------------------------------------------------------------


def bm25_terms(text: str, terms: str) -> list[str]:
    """The terms BM25 indexes: characters, character bigrams, or both."""
    chars = characters(text)
    out = []
    if terms in ("chars", "both"):
        out.extend(chars)
    if terms in ("bigrams", "both"):
        out.extend(a + b for a, b in zip(chars, chars[1:], strict=False))
    return out


@dataclass(frozen=True)
class BaselineConfig:
    tfidf_ngram_max: list[int]  # TF-IDF character n-grams 1..n; each n is tried, the best on valid kept
    tfidf_min_df: int = field(metadata={"min": 1})  # n-grams in fewer training texts are dropped
    bm25_terms: list[Literal["chars", "bigrams", "both"]]  # tried on valid, the best kept
    bm25_k1: list[float]  # BM25 term-frequency saturation: each tried on valid (with each b, terms)
    bm25_b: list[float]  # BM25 length normalisation, in [0, 1]: likewise
    margin_ablation: bool  # retrain the `similarity` network with margin 0 (softmax over s·cos θ)


def _pick_on_valid(options: dict, articles: dict) -> tuple[str, dict]:
    """``options``: name → score function (queries, candidates) → scores. Every option is scored
    on valid; the one best there (sentence set top-1, then MRR) is scored once on test. Returns
    its name and ``{"test", "valid", "items", "valid_by_option"}`` (each option's valid
    sentence set top-1)."""
    valid = {name: split_retrieval(articles["valid"], score) for name, score in options.items()}
    best = max(valid, key=lambda name: _selection_key(valid[name][0]))
    test_metrics, test_items = split_retrieval(articles["test"], options[best])
    return best, {"test": test_metrics, "valid": valid[best][0],
                  "items": {"valid": valid[best][1], "test": test_items},
                  "valid_by_option": {name: result[0]["sentence_top1"]
                                      for name, result in valid.items()}}


def fit_tfidf(train_texts: Sequence[str], ngram_max: int, min_df: int):
    """The TF-IDF peer: character n-grams 1..``ngram_max``, sublinear tf, idf from
    ``train_texts`` (the training articles, as the network learns), rows L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, ngram_max), min_df=min_df,
                           sublinear_tf=True).fit(train_texts)


def tfidf_scores(vectorizer, queries: Sequence[str], candidates: Sequence[str]) -> np.ndarray:
    """(queries, candidates) cosines of the TF-IDF vectors."""
    return np.asarray((vectorizer.transform(queries) @ vectorizer.transform(candidates).T).todense())


def bm25_scores(queries: Sequence[str], candidates: Sequence[str], terms: str, k1: float,
                b: float) -> np.ndarray:
    """(queries, candidates) BM25 scores (``bm25s``), the candidates being the collection."""
    from kexue.peers import bm25

    return bm25.scores([bm25_terms(c, terms) for c in candidates],
                       [bm25_terms(q, terms) for q in queries], k1, b)


def baselines(cfg: BaselineConfig, data_dir: str | Path, work_dir: str | Path | None = None,
              network: Config | None = None) -> dict:
    """The peers on the same queries and candidates (both query sets); every choice among their
    settings is made on valid only, and test is scored once, for the choice."""
    data_dir = Path(data_dir)
    articles = {s: load_articles(data_dir, s) for s in ("test", "valid")}
    peers: dict = {}

    if cfg.tfidf_ngram_max:
        start = time.perf_counter()
        train_texts = members(load_articles(data_dir, "train"), 1)[0]
        vectorizers: dict = {}

        def tfidf(ngram_max: int):
            def score(queries, candidates):
                if ngram_max not in vectorizers:
                    vectorizers[ngram_max] = fit_tfidf(train_texts, ngram_max, cfg.tfidf_min_df)
                return tfidf_scores(vectorizers[ngram_max], queries, candidates)
            return score

        best, peers["tfidf_char"] = _pick_on_valid(
            {str(n): tfidf(n) for n in cfg.tfidf_ngram_max}, articles)
        peers["tfidf_char"]["chosen"] = {"ngram_max": int(best),
                                         "features": len(vectorizers[int(best)].vocabulary_)}
        peers["tfidf_char"]["seconds"] = round(time.perf_counter() - start, 2)

    if cfg.bm25_terms:
        start = time.perf_counter()
        grid = {f"{terms} k1={k1:g} b={b:g}": (terms, k1, b)
                for terms in cfg.bm25_terms for k1 in cfg.bm25_k1 for b in cfg.bm25_b}

        def bm25(terms: str, k1: float, b: float):
            return lambda queries, candidates: bm25_scores(queries, candidates, terms, k1, b)

        best, peers["bm25"] = _pick_on_valid({name: bm25(*option) for name, option in grid.items()},
                                             articles)
        terms, k1, b = grid[best]
        peers["bm25"]["chosen"] = {"terms": terms, "k1": k1, "b": b}
        peers["bm25"]["seconds"] = round(time.perf_counter() - start, 2)

    if cfg.margin_ablation:
        net = dataclasses.replace(require_network(network, "similarity"), margin=0.0)
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            info = train(net, data_dir, Path(tmp) / "model", None, None, family="similarity_m0")
            metrics, _ = evaluate(Path(tmp) / "model", data_dir)
        peers["softmax_m0"] = {"test": metrics["test"], "valid": metrics["valid"],
                               "items": {s: metrics["items"][s] for s in ("valid", "test")},
                               "train_seconds": info["train_seconds"],
                               "epochs_run": info["epochs_run"], "best_epoch": info["best_epoch"]}
        if "parts" in metrics:  # the margin acts on the learnt part: its figures alone too
            peers["softmax_m0"]["parts"] = metrics["parts"]
    return peers
