"""Word2Vec in Keras (kexue.fm "【不可思议的Word2Vec】Keras版的Word2Vec"): skip-gram or CBOW with
negative sampling, on the corpora the `tokenize` stage cut into words.

The recipe is word2vec's: words seen ``min_count`` times; frequent words subsampled with keep
probability ``(sqrt(f / t) + 1) * t / f`` (``f`` a word's share of the tokens, ``t`` =
``subsample``), drawn afresh every epoch; for each centre word a window of ``b`` words each side,
``b`` uniform in 1..window ("reduced windows", which weights near words more); ``negatives``
noise words per positive drawn from the unigram^0.75 table; input vectors start uniform in
±0.5/dim, output vectors at zero; plain SGD whose rate decays linearly to ~0 over the run.

Why it is fast in Keras: the (centre, context) pairs of a whole epoch are built with a few
vectorised NumPy operations (one shift per window offset, no Python loop over tokens) and cut
into batches in NumPy before ``tf.data`` sees them; noise words are drawn in the model from the
unigram^0.75 table and shared by groups of pairs (:class:`kexue.layers.word2vec.NegativeSamplingLogits`,
same expected gradient as k draws per pair); a batch of thousands of pairs is two gathers, a
batched matmul and one sparse SGD scatter per matrix (:class:`kexue.layers.word2vec.SparseSGDModel`;
Keras's optimizers would update whole matrices every step). Each pair's gradient is summed, not
averaged, over the batch, so the learning rate means what it means in word2vec (per pair).

Throughput is measured as corpus tokens x epochs / training seconds (pair building included,
vocabulary building excluded), the same way for the gensim peer (``workers = threads``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from kexue.comparison import attach
from kexue.config import require_network
from kexue.io import read_json, write_json
from kexue.nonfinite import StopOnNonFiniteLoss
from kexue.text.tokenized import sentences as tokenized_sentences
from kexue.text.word_vectors import (
    WordVectors,
    agreement_scores,
    build_vocab,
    count_words,
    encode_corpus,
    evaluation_words,
)

STEPS_PER_EXECUTION = 16


@dataclass(frozen=True)
class Config:
    architecture: Literal["skipgram", "cbow"]  # predict each context word from the centre, or the centre from the mean of its context
    dim: int = field(metadata={"min": 1})  # vector size
    window: int = field(metadata={"min": 1})  # largest distance between centre and context word
    negatives: int = field(metadata={"min": 1})  # noise words per positive (unigram^0.75)
    noise_words: int = field(metadata={"min": 1})  # noise words drawn per group of rows, shared by the group, each weighted negatives / noise_words
    noise_group: int = field(metadata={"min": 1})  # rows sharing one noise draw; keep noise_group * negatives / noise_words moderate (~160)
    min_count: int = field(metadata={"min": 1})  # rarer words are dropped from the corpus
    subsample: float = field(metadata={"min": 0.0})  # t of the keep probability; 0 = off
    epochs: int = field(metadata={"min": 1})
    batch_size: int = field(metadata={"min": 1})  # pairs (skip-gram) or centre words (CBOW) per step
    learning_rate: float = field(metadata={"min": 0.0})  # per-pair SGD rate at the start
    min_learning_rate: float = field(metadata={"min": 0.0})  # the rate at the end (linear decay)
    threads: int = field(metadata={"min": 1})  # TensorFlow threads (and gensim workers in the peer)
    seed: int


@dataclass(frozen=True)
class BaselineConfig:
    """The gensim peer and the evaluation protocol every set of vectors is scored with."""

    gensim: bool  # train gensim 4.4 Word2Vec with the same corpus and settings (word2vec section)
    k: int = field(metadata={"min": 1})  # neighbours per query word (POS agreement@k)
    candidate_min_count: int = field(metadata={"min": 1})  # neighbours are searched among corpus words seen this often (>= every model's min_count)
    query_min_count: int = field(metadata={"min": 1})  # query words: People's Daily gold words seen this often


def keep_probability(counts: np.ndarray, subsample: float) -> np.ndarray:
    """word2vec's subsampling: keep a token of a word of count ``c`` out of ``N`` tokens with
    probability ``min(1, (sqrt(c / (t N)) + 1) * t N / c)``; ``t = 0`` keeps everything."""
    counts = np.asarray(counts, dtype=np.float64)
    if subsample <= 0:
        return np.ones_like(counts)
    threshold = subsample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)


def negative_table(counts: np.ndarray, power: float = 0.75, size: int = 10_000_000) -> np.ndarray:
    """word2vec's noise table: word ``i`` fills a share ``c_i^power / sum_j c_j^power`` of the
    ``size`` slots, so a uniform slot is a draw from the unigram^power distribution."""
    weights = np.asarray(counts, dtype=np.float64) ** power
    cumulative = np.cumsum(weights / weights.sum())
    slots = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.minimum(np.searchsorted(cumulative, slots, side="right"), len(weights) - 1).astype(np.int32)


def _subsample(ids: np.ndarray, sent: np.ndarray, keep: np.ndarray, rng: np.random.Generator):
    if np.all(keep >= 1):
        return ids, sent
    mask = rng.random(len(ids)) < keep[ids]
    return ids[mask], sent[mask]


def skipgram_pairs(ids: np.ndarray, sent: np.ndarray, window: int,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """All (centre, context) id pairs of a corpus, shape (n_pairs, 2): the context is at most
    ``b`` tokens away in the same sentence, ``b`` drawn per centre uniform in 1..window (with
    ``rng``; without it, ``b = window``). Ordered by distance, then direction, then position."""
    n = len(ids)
    reach = (rng.integers(1, window + 1, size=n) if rng is not None
             else np.full(n, window)).astype(np.int32)
    out = []
    for offset in range(1, window + 1):
        same = sent[:-offset] == sent[offset:]  # position i and i + offset share a sentence
        left = same & (reach[:-offset] >= offset)  # centre i, context i + offset
        right = same & (reach[offset:] >= offset)  # centre i + offset, context i
        out.append(np.stack([ids[:-offset][left], ids[offset:][left]], axis=1))
        out.append(np.stack([ids[offset:][right], ids[:-offset][right]], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int32)


def cbow_examples(ids: np.ndarray, sent: np.ndarray, window: int, pad: int,
                  rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(centres (n,), contexts (n, 2 window)) for CBOW: each row lists the context ids within the
    centre's reduced window, ``pad`` elsewhere; centres without any context are dropped."""
    n = len(ids)
    reach = (rng.integers(1, window + 1, size=n) if rng is not None
             else np.full(n, window)).astype(np.int32)
    context = np.full((n, 2 * window), pad, dtype=np.int32)
    for offset in range(1, window + 1):
        same = sent[:-offset] == sent[offset:]
        ok = same & (reach[:-offset] >= offset)  # centre i sees i + offset
        context[:-offset, window + offset - 1] = np.where(ok, ids[offset:], pad)
        ok = same & (reach[offset:] >= offset)  # centre i + offset sees i
        context[offset:, window - offset] = np.where(ok, ids[:-offset], pad)
    has = (context != pad).any(axis=1)
    return ids[has], context[has]


def _set_threads(threads: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised in this process (tests)
        pass


def build_model(cfg: Config, counts: np.ndarray):
    """(centre or context ids, target ids) → logits of [target, shared noise words...]; the
    loss is :class:`NegativeSamplingLoss` with weight negatives / noise_words. CBOW rows may
    hold the pad id ``len(counts)``."""
    import keras

    from kexue.layers.word2vec import NegativeSamplingLogits, SparseSGDModel

    if cfg.architecture == "skipgram":
        inputs = keras.Input(shape=(), dtype="int32", name="centre")  # (batch,)
    else:
        inputs = keras.Input(shape=(2 * cfg.window,), dtype="int32", name="context")  # (batch, 2w)
    targets = keras.Input(shape=(), dtype="int32", name="target")  # (batch,)
    logits = NegativeSamplingLogits(len(counts), cfg.dim, negative_table(counts, size=1_000_000),
                                    cfg.noise_words, cfg.noise_group,
                                    mean_inputs=cfg.architecture == "cbow",
                                    seed=cfg.seed, name="word2vec")([inputs, targets])  # (batch, 1+M)
    return SparseSGDModel([inputs, targets], logits, name=f"word2vec_{cfg.architecture}")


def _dataset(inputs: np.ndarray, targets: np.ndarray, batch_size: int):
    """Batches of ((inputs, targets), dummy y) from one epoch's shuffled examples, cut in NumPy:
    ``from_tensor_slices(...).batch()`` would assemble every batch element by element, which
    alone costs more than the training step.

    Only full batches are kept: the last ``len(targets) % batch_size`` examples of the epoch's
    shuffle (under 0.1% of an epoch at the defaults; the next epoch draws and shuffles anew) are
    dropped. Why: XLA compiles one program per input shape, and a tail batch, whose size changes
    with every epoch's subsampling, cost a fresh compile (seconds) in every epoch. An epoch
    shorter than one batch is kept whole."""
    import tensorflow as tf

    full = len(targets) // batch_size * batch_size
    if full == 0:  # tiny corpora (tests): one short batch
        return tf.data.Dataset.from_tensors(((inputs, targets), np.zeros(len(targets), np.float32)))
    x = inputs[:full].reshape(-1, batch_size, *inputs.shape[1:])
    t = targets[:full].reshape(-1, batch_size)
    ds = tf.data.Dataset.from_tensor_slices(((x, t), np.zeros(t.shape, np.float32)))
    return ds.prefetch(tf.data.AUTOTUNE)


def _epoch_examples(cfg: Config, ids, sent, keep, vocab_size, epoch):
    rng = np.random.default_rng([cfg.seed, epoch])
    kept_ids, kept_sent = _subsample(ids, sent, keep, rng)
    if cfg.architecture == "skipgram":
        pairs = skipgram_pairs(kept_ids, kept_sent, cfg.window, rng)
        pairs = pairs[rng.permutation(len(pairs))]
        return pairs[:, 0].copy(), pairs[:, 1].copy()
    centres, context = cbow_examples(kept_ids, kept_sent, cfg.window, vocab_size, rng)
    order = rng.permutation(len(centres))
    return context[order], centres[order]


def train_vectors(cfg: Config, sentences: list[list[str]]) -> tuple[WordVectors, dict]:
    """Train on tokenized ``sentences``; returns the input vectors and a record (words/s etc.)."""
    _set_threads(cfg.threads)
    import keras

    from kexue.layers.word2vec import NegativeSamplingLoss
    from kexue.train import seed_everything

    seed_everything(cfg.seed, deterministic=False)
    counts = count_words(sentences)
    words = build_vocab(counts, cfg.min_count)
    if len(words) <= cfg.negatives:
        raise ValueError(f"word2vec: only {len(words)} words seen >= min_count={cfg.min_count} times")
    index = {w: i for i, w in enumerate(words)}
    word_counts = np.array([counts[w] for w in words], dtype=np.int64)
    ids, sent = encode_corpus(sentences, index)
    raw_tokens = sum(map(len, sentences))
    keep = keep_probability(word_counts, cfg.subsample)
    expected = _expected_examples(cfg, keep, ids, sent)
    total_steps = max(1, math.ceil(expected * cfg.epochs / cfg.batch_size))
    schedule = keras.optimizers.schedules.PolynomialDecay(
        cfg.learning_rate, total_steps, end_learning_rate=cfg.min_learning_rate)
    model = build_model(cfg, word_counts)
    # several steps per tf.function call (a step is ~10 ms, so Python's per-step dispatch shows),
    # compiled with XLA: it fuses the gathers, products and scatters (about 2x the pairs/s)
    model.compile(optimizer=keras.optimizers.SGD(schedule),
                  loss=NegativeSamplingLoss(cfg.negatives / cfg.noise_words),
                  steps_per_execution=STEPS_PER_EXECUTION, jit_compile=True)
    start = time.perf_counter()
    history = []
    # the next epoch's examples are built (NumPy, which releases the GIL) while this one trains
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(_epoch_examples, cfg, ids, sent, keep, len(words), 0)
        for epoch in range(cfg.epochs):
            inputs, targets = upcoming.result()
            if epoch + 1 < cfg.epochs:
                upcoming = pool.submit(_epoch_examples, cfg, ids, sent, keep, len(words), epoch + 1)
            result = model.fit(_dataset(inputs, targets, cfg.batch_size), epochs=1, verbose=2,
                               callbacks=[StopOnNonFiniteLoss("word2vec.learning_rate")])
            history.append(float(result.history["loss"][-1]))
    seconds = time.perf_counter() - start
    matrix = model.get_layer("word2vec").input_vectors()[: len(words)]
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(words), "corpus_tokens": raw_tokens,
            "train_seconds": round(seconds, 2),
            "words_per_second": round(raw_tokens * cfg.epochs / seconds, 1),
            "examples_per_epoch": int(expected), "loss_per_epoch": history,
            "params": int(model.count_params())}
    return WordVectors(words, matrix, word_counts), info


def _expected_examples(cfg: Config, keep, ids, sent) -> float:
    """Pairs (or CBOW rows) per epoch, estimated from epoch 0 (the schedule needs a length)."""
    rng = np.random.default_rng([cfg.seed, 0])
    kept_ids, kept_sent = _subsample(ids, sent, keep, rng)
    if cfg.architecture == "cbow":
        return float(len(kept_ids))
    pairs = skipgram_pairs(kept_ids, kept_sent, cfg.window, rng)
    return float(len(pairs))


def train(cfg: Config, data_dir: str | Path, model_dir: str | Path, live_dir=None,
          resume_root=None) -> dict:
    """Stage `train@word2vec`: vectors from ``data_dir`` (the tokenize stage's folder)."""
    sentences = list(tokenized_sentences(data_dir))
    vectors, info = train_vectors(cfg, sentences)
    vectors.save(model_dir)
    write_json(Path(model_dir) / "train_info.json", info)
    log_curve(live_dir, info["loss_per_epoch"])
    return {**info, "monitor": "loss", "best_value": info["loss_per_epoch"][-1],
            "best_epoch": cfg.epochs, "epochs_run": cfg.epochs}


def log_curve(live_dir: str | Path | None, losses: list[float]) -> None:
    """The loss per epoch as a DVCLive curve (``plots/<family>/train``)."""
    if live_dir is None:
        return
    from dvclive import Live

    with Live(str(live_dir), dvcyaml=False, save_dvc_exp=False) as live:
        for loss in losses:
            live.log_metric("train/loss", loss)
            live.next_step()


def gensim_vectors(cfg: Config, sentences: list[list[str]]) -> tuple[WordVectors, dict]:
    """gensim's Word2Vec with the same corpus and settings; ``cfg.threads`` workers."""
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=cfg.dim, window=cfg.window, min_count=cfg.min_count,
                     sg=int(cfg.architecture == "skipgram"), negative=cfg.negatives, hs=0,
                     sample=cfg.subsample, alpha=cfg.learning_rate,
                     min_alpha=cfg.min_learning_rate, workers=cfg.threads, seed=cfg.seed,
                     cbow_mean=1, ns_exponent=0.75)
    model.build_vocab(sentences)
    raw_tokens = sum(map(len, sentences))
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=cfg.epochs)
    seconds = time.perf_counter() - start
    words = list(model.wv.index_to_key)
    counts = [int(model.wv.get_vecattr(w, "count")) for w in words]
    info = {"vocab_size": len(words), "corpus_tokens": raw_tokens,
            "train_seconds": round(seconds, 2),
            "words_per_second": round(raw_tokens * cfg.epochs / seconds, 1), "workers": cfg.threads}
    return WordVectors(words, model.wv.vectors, counts), info


def baselines(cfg: BaselineConfig, data_dir: str | Path, network: Config | None = None) -> dict:
    """Stage `baselines@word2vec`: gensim Word2Vec with the `word2vec` settings, scored here with
    the same word sets (:func:`kexue.text.word_vectors.evaluation_words`) as kexue's vectors."""
    if not cfg.gensim:
        return {}
    net = require_network(network, "word2vec")
    vectors, info = gensim_vectors(net, list(tokenized_sentences(data_dir)))
    words = evaluation_words(data_dir, cfg.candidate_min_count, cfg.query_min_count)
    return {"gensim": {**agreement_scores(vectors, words, cfg.k), "cost": info}}


def evaluate(model_dirs: dict[str, str | Path], data_dir: str | Path, peers: dict,
             cfg: BaselineConfig) -> dict[str, dict]:
    """Stage `evaluate_vectors`: ``{name: metrics}`` for each of ``model_dirs`` (kexue's
    word2vec and glove), each with the others and the gensim peer as its peers."""
    words = evaluation_words(data_dir, cfg.candidate_min_count, cfg.query_min_count)
    scores, infos, examples = {}, {}, {}
    for name, model_dir in model_dirs.items():
        vectors = WordVectors.load(model_dir)
        scores[name] = agreement_scores(vectors, words, cfg.k)
        infos[name] = read_json(Path(model_dir) / "train_info.json")
        examples[name] = {w: [n for n, _ in vectors.most_similar(w, 5)]
                          for w in ("中国", "发展", "北京", "我们", "喜欢") if w in vectors}
    out = {}
    for name in model_dirs:
        # per-query shares ride along as ``items`` until attach() turns them into the comparison
        others = {f"{other}_kexue": {split: scores[other][split] for split in ("test", "valid", "items")}
                  for other in model_dirs if other != name}
        gensim = {k: {split: v[split] for split in ("test", "valid", "items") if split in v}
                  for k, v in peers.items()}
        info = infos[name]
        cost = {"train_seconds": info["train_seconds"], "params": info["params"],
                "vocab_size": info["vocab_size"]}
        if "words_per_second" in info:
            cost["words_per_second"] = info["words_per_second"]
            if "gensim" in peers:
                theirs = peers["gensim"]["cost"]["words_per_second"]
                cost.update(gensim_words_per_second=theirs, gensim_workers=peers["gensim"]["cost"]["workers"],
                            speed_ratio_to_gensim=round(info["words_per_second"] / theirs, 3))
        if "pairs_per_second" in info:
            cost["pairs_per_second"] = info["pairs_per_second"]
        out[name] = attach({"test": scores[name]["test"], "valid": scores[name]["valid"],
                            "peers": {**gensim, **others}, "cost": cost,
                            "nearest_neighbours": examples[name], "items": scores[name]["items"]},
                           {**gensim, **others})
    return out
