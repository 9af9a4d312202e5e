"""Character sequence labelling shared by the ``segment`` and ``ner`` families.

The recipe of 苏剑林's "简明条件随机场CRF介绍（附带纯Keras实现）" (kexue.fm, 2018): every character
gets a score per tag from an encoder (here character + character-bigram embeddings → a stack of
convolutions or a BiLSTM), and a linear-chain CRF (:class:`kexue.layers.CRF`) scores whole tag
paths; decoding is Viterbi. ``head: softmax`` swaps the CRF for an independent per-character
softmax, the ablation that shows what the transition matrix adds.

Long lines are cut into pieces at sentence punctuation before tagging (training and inference
alike), so batches hold sentences rather than whole paragraphs.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from keras import ops

from kexue.batches import SequenceBatches
from kexue.checkpoint import CheckpointFolder, load_member, save_member
from kexue.io import atomic_path, write_json
from kexue.layers.crf import CRF, viterbi_decode
from kexue.layers.inputs import char_embeddings
from kexue.layers.pooling import ZeroPadding
from kexue.text.tagging_features import LEXICON_IDS, Features, pieces
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
class TaggerConfig:
    maxlen: int = field(metadata={"min": 8})  # longest piece a line is cut into (characters)
    min_count: int = field(metadata={"min": 1})  # rarer characters map to <unk>
    bigrams: bool  # add the embedding of the bigram starting at each character
    bigram_min_count: int = field(metadata={"min": 1})  # rarer bigrams map to <unk>
    lexicon_min_count: int = field(metadata={"min": 0})  # training words seen this often form a lexicon feature; 0 = off
    dictionary: Literal["none", "jieba"]  # a second lexicon feature from an external word list (jieba's dict.txt)
    embedding_dim: int = field(metadata={"min": 1})  # per embedding (character, bigram)
    encoder: Literal["cnn", "bilstm"]
    layers: int = field(metadata={"min": 1})  # convolution layers, or stacked BiLSTMs
    units: int = field(metadata={"min": 1})  # filters per convolution, or LSTM units per direction
    kernel_size: int = field(metadata={"min": 1})  # convolution width (cnn)
    dropout: float = field(metadata={"min": 0.0, "max": 0.95})
    head: Literal["crf", "softmax"]  # CRF over tag paths, or independent per-character softmax
    crf_lr_multiplier: float = field(metadata={"min": 0.0})  # transitions learn this much faster (post's trick)
    members: int = field(metadata={"min": 1})  # seed ensemble: emissions and transitions averaged
    inference_dtype: Literal["float32", "bfloat16"]  # compute type of evaluation and the CLI
    fit: FitConfig


def build_model(cfg: TaggerConfig, num_tags: int, vocab_size: int, bigram_vocab_size: int,
                name: str) -> keras.Model:
    """Embeddings → encoder → per-character tag scores (+ CRF). The output is the emission
    scores (CRF head) or the tag probabilities (softmax head), shape (batch, T, num_tags)."""
    recurrent = cfg.encoder == "bilstm"
    inputs, x, pairs = char_embeddings(vocab_size, bigram_vocab_size, cfg.embedding_dim,
                                       cfg.bigrams, mask_zero=recurrent)
    ids = inputs[0]  # (batch, T) character ids
    if pairs is not None:
        x = keras.layers.Concatenate(name="char_and_bigram")([x, pairs])  # (batch, T, 2 dim)
    if cfg.lexicon_min_count:
        codes = keras.Input(shape=(None,), dtype="int32", name="lexicon_codes")  # (batch, T)
        inputs.append(codes)
        lexical = keras.layers.Embedding(LEXICON_IDS, cfg.embedding_dim, mask_zero=recurrent,
                                         name="lexicon_embedding")(codes)  # (batch, T, dim)
        x = keras.layers.Concatenate(name="with_lexicon")([x, lexical])
    if cfg.dictionary != "none":
        codes = keras.Input(shape=(None,), dtype="int32", name="dictionary_codes")  # (batch, T)
        inputs.append(codes)
        listed = keras.layers.Embedding(LEXICON_IDS, cfg.embedding_dim, mask_zero=recurrent,
                                        name="dictionary_embedding")(codes)  # (batch, T, dim)
        x = keras.layers.Concatenate(name="with_dictionary")([x, listed])
    x = keras.layers.Dropout(cfg.dropout, name="embedding_dropout")(x)
    for i in range(cfg.layers):
        if recurrent:
            x = keras.layers.Bidirectional(
                keras.layers.LSTM(cfg.units, return_sequences=True, name=f"lstm{i}"),
                name=f"bilstm{i}")(x)  # (batch, T, 2 units)
        else:
            x = ZeroPadding(name=f"zero_padding{i}")([x, ids])
            x = keras.layers.Conv1D(cfg.units, cfg.kernel_size, padding="same", activation="relu",
                                    name=f"conv{i}")(x)  # (batch, T, units)
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout{i}")(x)
    scores = keras.layers.Dense(num_tags, name="tag_scores")(x)  # (batch, T, num_tags)
    if cfg.head == "crf":
        out = CRF(num_tags, lr_multiplier=cfg.crf_lr_multiplier or 1.0, name="crf")(scores)
    else:
        out = keras.layers.Softmax(name="tag_probs")(scores)
    return keras.Model(inputs if len(inputs) > 1 else ids, out, name=name)


def _compile(model: keras.Model, cfg: TaggerConfig) -> None:
    if cfg.head == "crf":
        loss = model.get_layer("crf").loss
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(ignore_class=-1)
    model.compile(optimizer=build_optimizer(cfg.fit.optimizer, model), loss=loss)


@dataclass
class Examples:
    """Line pieces with their tag ids, ready for batching."""

    inputs: tuple[list[np.ndarray], ...]
    tags: list[np.ndarray]

    @property
    def chars(self) -> int:
        return int(sum(len(t) for t in self.tags))


def make_examples(texts: Sequence[str], tags: Sequence[Sequence[str]], tag_names: Sequence[str],
                  features: Features, maxlen: int) -> Examples:
    index = {t: i for i, t in enumerate(tag_names)}
    columns: list[list[np.ndarray]] | None = None
    tag_ids = []
    for text, line_tags in zip(texts, tags, strict=True):
        if len(text) != len(line_tags):
            raise ValueError(f"{len(text)} characters but {len(line_tags)} tags: {text[:30]!r}")
        for start, end in pieces(text, maxlen):
            encoded = features.encode(text[start:end])
            columns = columns or [[] for _ in encoded]
            for column, array in zip(columns, encoded, strict=True):
                column.append(array)
            tag_ids.append(np.array([index[t] for t in line_tags[start:end]], dtype=np.int32))
    return Examples(tuple(columns or []), tag_ids)


def decode_batch(model: keras.Model, x, lengths: np.ndarray) -> list[np.ndarray]:
    """Tag ids per sequence: Viterbi under the model's CRF, or the per-character argmax."""
    scores = ops.convert_to_numpy(model(x, training=False))  # (batch, T, num_tags)
    try:
        crf = model.get_layer("crf")
    except ValueError:
        return [scores[b, : lengths[b]].argmax(-1) for b in range(len(lengths))]
    return viterbi_decode(scores, ops.convert_to_numpy(crf.transitions), lengths)


class DecodedScore(keras.callbacks.Callback):
    """Logs ``val_<name>``: the family's own score (word F1, entity F1) of the decoded tags of
    the validation pieces, so the best epoch is picked on what is reported, not on the loss.
    ``score(gold, predicted)`` takes lists of tag-name sequences."""

    def __init__(self, batches: SequenceBatches, tag_names: Sequence[str],
                 score: Callable[[list[list[str]], list[list[str]]], float], name: str):
        super().__init__()
        self.batches, self.tag_names, self.score, self.name = batches, list(tag_names), score, name

    def on_epoch_end(self, epoch, logs=None):
        gold, predicted = [], []
        for i in range(len(self.batches)):
            x, y = self.batches[i]
            lengths = (y >= 0).sum(axis=1)
            for row, path in enumerate(decode_batch(self.model, x, lengths)):
                gold.append([self.tag_names[t] for t in y[row, : lengths[row]]])
                predicted.append([self.tag_names[t] for t in path])
        if logs is not None:
            logs[f"val_{self.name}"] = float(self.score(gold, predicted))


def average_members(members: list[keras.Model], crf: bool, name: str) -> keras.Model:
    """One model from a seed ensemble: the members' emissions (or probabilities) averaged, and
    for the CRF head a CRF whose transitions are the members' mean, so Viterbi maximises the
    members' average path score."""
    inputs = [keras.Input(shape=(None,), dtype="int32", name=t.name.split(":")[0])
              for t in members[0].inputs]  # (batch, T) each
    x = inputs if len(inputs) > 1 else inputs[0]
    outputs = [member(x) for member in members]  # each (batch, T, num_tags)
    out = keras.layers.Average(name="average")(outputs)
    if crf:
        num_tags = members[0].get_layer("crf").num_tags
        layer = CRF(num_tags, name="crf")
        out = layer(out)
        layer.set_weights([np.mean([ops.convert_to_numpy(m.get_layer("crf").transitions)
                                    for m in members], axis=0)])
    return keras.Model(x, out, name=name)


def train_tagger(cfg: TaggerConfig, family: str, tag_names: Sequence[str],
                 train_rows: tuple[list[str], list[list[str]]],
                 valid_rows: tuple[list[str], list[list[str]]],
                 model_dir: str | Path, live_dir: str | Path | None,
                 resume_root: str | Path | None, fingerprint: Sequence[Path],
                 score: Callable[[list[list[str]], list[list[str]]], float],
                 train_words: Sequence[Sequence[str]] = ()) -> dict:
    """Train on ``(texts, tags)``, keeping the epoch with the best ``score`` (an F1 of decoded
    validation tags); write ``model.keras``, the vocabularies, ``tags.json`` and
    ``train_info.json`` into ``model_dir``. ``train_words`` (the training lines' words) feed
    the lexicon feature when ``lexicon_min_count`` is on."""
    model_dir = Path(model_dir)
    resume_dir = None
    if resume_root is not None:
        resume_dir = Path(resume_root) / family / run_key(dataclasses.asdict(cfg), list(fingerprint))
    seed_everything(cfg.fit.seed, cfg.fit.deterministic)
    if cfg.lexicon_min_count and not train_words:
        raise ValueError(f"{family}.lexicon_min_count={cfg.lexicon_min_count} needs the training "
                         "words; set it to 0 for a corpus without word boundaries")
    features = Features.build(train_rows[0], cfg, train_words)
    train_ex = make_examples(*train_rows, tag_names, features, cfg.maxlen)
    valid_ex = make_examples(*valid_rows, tag_names, features, cfg.maxlen)
    multi = len(train_ex.inputs) > 1
    train_batches = SequenceBatches(train_ex.inputs if multi else train_ex.inputs[0], train_ex.tags,
                                    cfg.fit.batch_size, seed=cfg.fit.seed)
    valid_batches = SequenceBatches(valid_ex.inputs if multi else valid_ex.inputs[0], valid_ex.tags,
                                    cfg.fit.batch_size, shuffle=False)
    models, results = [], []
    for index in range(cfg.members):
        done = resume_dir / f"member{index}.keras" if resume_dir is not None else None
        finished = load_member(done, safe_mode=True, compile=False) if done is not None else None
        if finished is not None:  # finished before an interruption
            models.append(finished[0])
            results.append(finished[1])
            if live_dir is not None:
                write_fit_curves(live_dir, cfg.fit, finished[1]["history"],
                                 f"member{index}/" if cfg.members > 1 else "", index > 0)
            continue
        seed = cfg.fit.seed + index
        seed_everything(seed, cfg.fit.deterministic)
        train_batches = SequenceBatches(train_ex.inputs if multi else train_ex.inputs[0],
                                        train_ex.tags, cfg.fit.batch_size, seed=seed)
        name = f"member{index}" if cfg.members > 1 else family
        with make_strategy(cfg.fit.distribute).scope():
            model = build_model(cfg, len(tag_names), len(features.chars),
                                len(features.bigrams) if features.bigrams else 0, name=name)
            _compile(model, cfg)
        result = fit(model, train_batches, valid_batches, cfg.fit, monitor="val_f1", mode="max",
                     live_dir=live_dir,
                     resume_dir=resume_dir / name if resume_dir is not None else None,
                     live_prefix=f"{name}/" if cfg.members > 1 else "", keep_curves=index > 0,
                     keep_checkpoint=True,
                     scorers=[DecodedScore(valid_batches, tag_names, score, "f1")])
        if done is not None:
            save_member(done, model, result.to_dict())
        models.append(model)
        results.append(result.to_dict())
    if cfg.members > 1:
        # uncompiled copies: a compiled member carries the CRF's bound-method loss in its saved
        # config, which a nested model cannot be loaded with
        copies = []
        for member in models:
            copy = build_model(cfg, len(tag_names), len(features.chars),
                               len(features.bigrams) if features.bigrams else 0, name=member.name)
            copy.set_weights(member.get_weights())
            copies.append(copy)
        model = average_members(copies, cfg.head == "crf", family)
    else:
        model = models[0]
    ensemble_f1 = None
    if cfg.members > 1:
        scorer = DecodedScore(valid_batches, tag_names, score, "f1")
        scorer.set_model(model)
        logs: dict = {}
        scorer.on_epoch_end(0, logs)
        ensemble_f1 = logs["val_f1"]
    model_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(model_dir / "model.keras") as tmp:
        model.save(tmp)
    features.save(model_dir)
    write_json(model_dir / "tags.json", list(tag_names))
    info = {"config": dataclasses.asdict(cfg), "vocab_size": len(features.chars),
            "bigram_vocab_size": len(features.bigrams) if features.bigrams else 0,
            "params": int(model.count_params()), "train_pieces": len(train_ex.tags),
            "train_chars": train_ex.chars,
            "train_seconds": round(sum(r["train_seconds"] for r in results), 2),
            "chars_per_second": round(train_ex.chars * sum(r["epochs_run"] for r in results)
                                      / max(sum(r["train_seconds"] for r in results), 1e-9), 1),
            "epochs_run": sum(r["epochs_run"] for r in results),
            "best_epoch": results[0]["best_epoch"], "best_value": results[0]["best_value"],
            "monitor": results[0]["monitor"], "history": results[0]["history"],
            "valid_f1_ensemble": ensemble_f1, "members": results}
    write_json(model_dir / "train_info.json", info)
    if resume_dir is not None:  # only now: a kill before this point resumes from the members
        CheckpointFolder(resume_dir).discard()
    return info
